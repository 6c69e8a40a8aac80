/**
 * Choosing and starting the TF.js backend.
 *
 * Order when none is asked for: `tensorflow` (native TF through `@tensorflow/tfjs-node-gpu`, then
 * `@tensorflow/tfjs-node`, used only when the user installed one: they are never dependencies), then
 * `wasm` (XNNPACK, SIMD where the runtime has it), then `cpu` (plain JS, slow but always there).
 *
 * TF.js has one active backend per process. A model remembers the backend it was loaded on and switches
 * back to it before each inference; two models on different backends in one process work but pay for the
 * switches (tensors move between backends on first use).
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { ConfigError } from '../../common/errors.ts';

/** The backends this module knows, in the order tried by default. */
export const TFJS_BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type TfjsBackendName = (typeof TFJS_BACKENDS)[number];

/** Native TF bindings, tried in this order. Optional: present only if the user installed them. */
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

export interface TfjsBackend {
  /** The backend really running (`tf.getBackend()` after setting it). */
  name: TfjsBackendName;
  /** Intra-op threads: wasm in Node and cpu are single-threaded (1); native TF uses the cores. */
  threads: number;
}

let nativeProbe: Promise<boolean> | undefined;

/**
 * Imports the native bindings once. A failed import (not installed, wrong Node ABI, a tfjs-core of another
 * version that registered its backend elsewhere) just means "not available".
 */
function probeNative(): Promise<boolean> {
  nativeProbe ??= (async () => {
    for (const name of NATIVE_PACKAGES) {
      try {
        await import(name);
      } catch {
        continue;
      }
      // The package registers 'tensorflow' with the tfjs-core it resolved; only ours counts.
      if (tf.findBackendFactory('tensorflow') != null) return true;
    }
    return false;
  })();
  return nativeProbe;
}

let wasmPathsSet = false;

/** In Node the wasm binaries are read from the package's dist folder; say where it is before the first init. */
function prepareWasm(): void {
  if (wasmPathsSet || tf.engine().registry['wasm'] != null) return;
  wasmPathsSet = true;
  try {
    const require = createRequire(import.meta.url);
    const dist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
    wasm.setWasmPaths(`${dist}/`);
  } catch {
    // Resolution failed: leave tfjs' own default (the folder of its bundle), which works unbundled.
  }
}

/** Tries to make `name` the active backend; false when it cannot start here. */
async function trySet(name: TfjsBackendName): Promise<boolean> {
  if (name === 'tensorflow' && !(await probeNative())) return false;
  if (name === 'wasm') prepareWasm();
  if (tf.getBackend() === name) return true;
  try {
    // setBackend resolves false when the backend's init fails (it logs a warning; silence it here).
    // The cpu backend prints an "install our node backend" banner on its first tensor: spend that first
    // write here, quietly, so the banner never reaches a user's stdout or stderr.
    return await withQuietWarnings(async () => {
      const ok = await tf.setBackend(name);
      if (ok && name === 'cpu') tf.tensor1d([0]).dispose();
      return ok;
    });
  } catch {
    return false;
  }
}

async function withQuietWarnings<T>(fn: () => Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = () => {};
  try {
    return await fn();
  } finally {
    console.warn = warn;
  }
}

function threadsOf(name: TfjsBackendName): number {
  switch (name) {
    case 'wasm':
      try {
        return wasm.getThreadsCount();
      } catch {
        return 1;
      }
    case 'tensorflow':
      return availableParallelism();
    default:
      return 1;
  }
}

/** Backends that can start in this process, in default order (starts each to find out). */
export async function availableTfjsBackends(): Promise<TfjsBackendName[]> {
  const current = tf.getBackend() as TfjsBackendName | undefined;
  const out: TfjsBackendName[] = [];
  for (const name of TFJS_BACKENDS) if (await trySet(name)) out.push(name);
  if (current && out.includes(current)) await tf.setBackend(current);
  return out;
}

/**
 * Makes a backend active: `requested` when given, else the first of `TFJS_BACKENDS` that starts.
 * @throws ConfigError naming the requested backend and the available ones when it cannot start.
 */
export async function initTfjsBackend(requested?: string): Promise<TfjsBackend> {
  if (requested !== undefined) {
    const known = (TFJS_BACKENDS as readonly string[]).includes(requested);
    if (!known || !(await trySet(requested as TfjsBackendName))) {
      const available = await availableTfjsBackends();
      throw new ConfigError(
        `tfjs backend '${requested}' is not available${known ? '' : ` (known: ${TFJS_BACKENDS.join(', ')})`}; ` +
          `available here: ${available.join(', ') || 'none'}`,
      );
    }
    return { name: requested as TfjsBackendName, threads: threadsOf(requested as TfjsBackendName) };
  }
  for (const name of TFJS_BACKENDS) {
    if (await trySet(name)) return { name, threads: threadsOf(name) };
  }
  throw new ConfigError('no tfjs backend could start (tried tensorflow, wasm, cpu)');
}

/** Makes `name` active again if another model switched the process to another backend. */
export async function ensureTfjsBackend(name: TfjsBackendName): Promise<void> {
  if (tf.getBackend() !== name) await tf.setBackend(name);
}
