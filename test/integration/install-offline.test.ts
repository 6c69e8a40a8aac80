/**
 * `npm install` offline with any npm (issue 16): onnxruntime-node's install script must not reach for
 * NuGet unless asked. npm 11.16+ never runs it (package.json's allowScripts); older npm (Node 20's npm 10)
 * does, and the `global-agent` stand-in (deps/ort-install-offline, a root dependency that package.json's
 * overrides gives onnxruntime-node too) makes "skip" its default. The script is
 * run here as npm runs it: its own folder as the working directory, `node ./script/install`.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const ortDir = dirname(require.resolve('onnxruntime-node/package.json'));
const root = join(import.meta.dirname, '..', '..');

/**
 * The environment npm gives a dependency's script (npm_package_json is the dependency's own, so the script's
 * "local install" shortcut does not apply), without any install choice of the caller's.
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_|^ONNXRUNTIME_NODE_INSTALL/i.test(name)) env[name] = value;
  }
  return { ...env, npm_config_local_prefix: root, npm_package_json: join(ortDir, 'package.json'), ...extra };
}

/** What the install script would see as its flag after bootstrap(), from onnxruntime-node's folder. */
async function flagAfterBootstrap(env: NodeJS.ProcessEnv, args: string[] = []): Promise<string> {
  const probe = "require('global-agent').bootstrap(); process.stdout.write(String(process.env.ONNXRUNTIME_NODE_INSTALL))";
  const { stdout } = await run(process.execPath, ['-e', probe, '--', ...args], { cwd: ortDir, env });
  return stdout;
}

describe('onnxruntime-node install script without network (issue 16)', () => {
  it('exits 0 with nothing downloaded when no install choice is given, as npm 10 runs it', async () => {
    const { stdout, stderr } = await run(process.execPath, ['./script/install'], { cwd: ortDir, env: cleanEnv(), timeout: 60_000 });
    expect(stdout + stderr).not.toMatch(/Downloading|nuget/i);
  });

  it('resolves global-agent to the stand-in, and the stand-in keeps an explicit choice', async () => {
    expect(require.resolve('global-agent', { paths: [ortDir] })).toBe(require.resolve(join(root, 'deps', 'ort-install-offline', 'index.cjs')));
    expect(await flagAfterBootstrap(cleanEnv())).toBe('skip');
    expect(await flagAfterBootstrap(cleanEnv({ ONNXRUNTIME_NODE_INSTALL: 'cuda12' }))).toBe('cuda12');
    expect(await flagAfterBootstrap(cleanEnv({ ONNXRUNTIME_NODE_INSTALL_CUDA: '12' }))).toBe('undefined');
    expect(await flagAfterBootstrap(cleanEnv(), ['--onnxruntime-node-install=cuda12'])).toBe('undefined');
  });

  it('is set up with keys npm knows: no "Unknown project config" warning, the override resolves', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
    expect(pkg.dependencies['global-agent']).toBe('file:deps/ort-install-offline');
    expect(pkg.overrides['global-agent']).toBe('$global-agent');
    // What npm 10 installs from: a file: override on its own was written here relative to onnxruntime-node
    // (node_modules/onnxruntime-node/deps/...), and npm 10 then had no global-agent to give the script.
    const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8'));
    expect(lock.packages['node_modules/global-agent']).toEqual({ resolved: 'deps/ort-install-offline', link: true });
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
    // `npm ls` exits non-zero when the installed tree does not match package.json (an invalid override).
    const { stdout, stderr } = await run('npm', ['ls', 'global-agent'], { cwd: root, env: cleanEnv() });
    expect(stdout).toContain('global-agent@0.0.0-camstream');
    expect(stderr).not.toMatch(/Unknown (project|user|env) config/);
  });
});
