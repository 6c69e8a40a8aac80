/**
 * ONNX Runtime sessions: which execution providers this installation can use, and creating a session with
 * camstream's options (threads, spinning, graph optimization; see engine.ts's file comment).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ConfigError, ModelLoadError } from '../../common/errors.ts';

/** Execution providers camstream can ask ONNX Runtime for. */
export const ONNX_PROVIDERS = Object.freeze(['cpu', 'cuda', 'tensorrt', 'webgpu'] as const);
export type OnnxProvider = (typeof ONNX_PROVIDERS)[number];

/** Where onnxruntime-node keeps its native libraries (provider libraries are installed beside them). */
function bindingFolder(): string {
  const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
  return join(dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
}

function providerLibraryPresent(name: string): boolean {
  const file =
    process.platform === 'win32'
      ? `onnxruntime_providers_${name}.dll`
      : process.platform === 'darwin'
        ? `libonnxruntime_providers_${name}.dylib`
        : `libonnxruntime_providers_${name}.so`;
  return existsSync(join(bindingFolder(), file));
}

/**
 * Providers this onnxruntime-node can use here: those it bundles, plus those whose provider library was
 * installed beside the binding (`cuda`, `tensorrt` come that way on Linux x64).
 */
export function availableOnnxProviders(): OnnxProvider[] {
  return ort
    .listSupportedBackends()
    .filter((b) => (ONNX_PROVIDERS as readonly string[]).includes(b.name))
    .filter((b) => b.bundled || providerLibraryPresent(b.name))
    .map((b) => b.name as OnnxProvider);
}

/** The provider asked for (default `cpu`), checked against this installation. Throws ConfigError naming the choices. */
export function resolveProvider(asked: string | undefined): OnnxProvider {
  const name = asked ?? 'cpu';
  if (!(ONNX_PROVIDERS as readonly string[]).includes(name)) {
    throw new ConfigError(
      `backend '${name}' is not an ONNX Runtime execution provider camstream uses; allowed: ${ONNX_PROVIDERS.join(', ')}`,
    );
  }
  const available = availableOnnxProviders();
  if (!(available as string[]).includes(name)) {
    throw new ConfigError(
      `ONNX Runtime execution provider '${name}' is not available in this installation; available: ${available.join(', ')}`,
    );
  }
  return name as OnnxProvider;
}

/** The provider list handed to ONNX Runtime (it places nodes a provider lacks on the CPU). */
function providerChain(p: OnnxProvider): string[] {
  if (p === 'tensorrt') return ['tensorrt', 'cuda', 'cpu'];
  if (p === 'cuda') return ['cuda', 'cpu'];
  if (p === 'webgpu') return ['webgpu', 'cpu'];
  return ['cpu'];
}

/**
 * A session on `provider` over the model `bytes`. WebGPU that cannot start falls back to cpu with a
 * process warning (the result names the provider really used).
 * @throws ConfigError when another non-cpu provider fails to start; ModelLoadError when ORT rejects the model.
 */
export async function createSession(
  bytes: Uint8Array,
  provider: OnnxProvider,
  threads: number,
  where: string,
  spinWait: boolean,
): Promise<{ session: ort.InferenceSession; provider: OnnxProvider }> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: providerChain(provider),
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // ORT's session config keys are strings ('1' = spin, ORT's default).
    extra: { session: { intra_op: { allow_spinning: spinWait ? '1' : '0' } } },
  };
  try {
    return { session: await ort.InferenceSession.create(bytes, options), provider };
  } catch (err) {
    const message = (err as Error).message;
    if (provider === 'webgpu') {
      process.emitWarning(`camstream: WebGPU is not usable here (${message.split('\n')[0]}); running ${where} on cpu`);
      return createSession(bytes, 'cpu', threads, where, spinWait);
    }
    if (provider !== 'cpu') {
      throw new ConfigError(`ONNX Runtime execution provider '${provider}' failed to start for ${where}: ${message}`);
    }
    throw new ModelLoadError(`${where}: ONNX Runtime could not create a session: ${message}`, { cause: err });
  }
}
