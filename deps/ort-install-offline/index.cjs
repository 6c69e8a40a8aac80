'use strict';
// onnxruntime-node's install script is the only user of global-agent in camstream's tree: camstream's
// package.json installs this folder under that name and its "overrides" entry gives it to
// onnxruntime-node. The script calls bootstrap() first, then reads its install flag; on linux/x64
// without a flag it downloads the CUDA and TensorRT providers from NuGet, which fails offline and is
// not wanted on CPU machines. npm 11.16 and newer never run the script
// (package.json's allowScripts denies it); older npm does, so this stand-in makes "skip" the default.
// An explicit choice wins: ONNXRUNTIME_NODE_INSTALL (or its npm_config_ and _CUDA forms) or the
// script's own --onnxruntime-node-install flag, e.g. ONNXRUNTIME_NODE_INSTALL=cuda12 to fetch CUDA.
// The real global-agent routed those downloads through HTTP(S)_PROXY; this stand-in does not.

const CHOICES = [
  'ONNXRUNTIME_NODE_INSTALL',
  'npm_config_onnxruntime_node_install',
  'ONNXRUNTIME_NODE_INSTALL_CUDA',
  'npm_config_onnxruntime_node_install_cuda',
];

function bootstrap() {
  const chosen = CHOICES.some((name) => process.env[name]) || process.argv.some((arg) => arg.startsWith('--onnxruntime-node-install'));
  if (!chosen) process.env.ONNXRUNTIME_NODE_INSTALL = 'skip';
  return true;
}

module.exports = { bootstrap };
