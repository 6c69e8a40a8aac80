/**
 * Checks and defaults both engines share, so a frame, an option or a head is judged the same way (and
 * named the same way in errors) whichever engine runs it.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { ConfigError, InputError } from '../../common/errors.ts';
import type {
  EngineName,
  EngineRuntime,
  Frame,
  InferOptions,
  LinearHead,
  LoadOptions,
  ModelFileConfig,
  ResolvedSource,
} from '../types.ts';

/** Maps per frame when `InferOptions` says neither `topK` nor `classes`. */
export const DEFAULT_TOP_K = 5;

/** `class_0 ... class_<n-1>`, for models that ship no labels. */
export function defaultLabels(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `class_${i}`);
}

/** Throws InputError naming the first frame that is not packed RGB of its stated size. */
export function checkFrames(frames: readonly Frame[]): void {
  if (!Array.isArray(frames) || frames.length === 0) throw new InputError('infer needs at least one frame, got an empty batch');
  frames.forEach((f, i) => {
    if (f === null || typeof f !== 'object' || !(f.data instanceof Uint8Array)) {
      throw new InputError(`frame ${i}: data must be a Uint8Array of packed RGB bytes`);
    }
    if (!Number.isInteger(f.width) || f.width < 1 || !Number.isInteger(f.height) || f.height < 1) {
      throw new InputError(`frame ${i}: size must be two positive integers, got ${f.width}x${f.height}`);
    }
    const want = f.width * f.height * 3;
    if (f.data.length !== want) {
      throw new InputError(`frame ${i}: ${f.data.length} bytes, expected ${want} (${f.width}x${f.height} RGB, 3 bytes per pixel)`);
    }
  });
}

/**
 * What to map: `classes` (validated copies) when asked for, else `k` top classes (topK clamped to the
 * class count). Throws InputError naming the bad value.
 */
export function resolveRequest(options: InferOptions, numClasses: number): { classes?: number[]; k: number } {
  if (options.classes !== undefined) {
    if (!Array.isArray(options.classes) || options.classes.length === 0) {
      throw new InputError(`classes must be a non-empty list of class indices, got ${JSON.stringify(options.classes)}`);
    }
    options.classes.forEach((c, i) => {
      if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
        throw new InputError(`classes[${i}] = ${c} is not a class index of this model (0 to ${numClasses - 1})`);
      }
    });
    return { classes: [...options.classes], k: options.classes.length };
  }
  const topK = options.topK ?? DEFAULT_TOP_K;
  if (!Number.isInteger(topK) || topK < 1) throw new InputError(`topK must be a positive integer, got ${topK}`);
  return { k: Math.min(topK, numClasses) };
}

/**
 * Validates a linear head for `k` feature channels (paper sec. 4: a classifier trained on GAP features);
 * returns its class count and labels. Throws ConfigError naming the bad field.
 */
export function checkLinearHead(head: LinearHead, k: number): { numClasses: number; labels: string[] } {
  if (head === null || typeof head !== 'object' || !(head.weights instanceof Float32Array) || !(head.bias instanceof Float32Array)) {
    throw new ConfigError('withHead: weights and bias must be Float32Arrays');
  }
  const c = head.bias.length;
  if (c < 1) throw new ConfigError('withHead: bias is empty; need one value per class');
  if (head.weights.length !== k * c) {
    throw new ConfigError(
      `withHead: weights have ${head.weights.length} values; need ${k} x ${c} = ${k * c} (row-major [k, numClasses], k = ${k} feature channels)`,
    );
  }
  const badW = head.weights.findIndex((v) => !Number.isFinite(v));
  if (badW >= 0) throw new ConfigError(`withHead: weights[${badW}] is ${head.weights[badW]}, not finite`);
  const badB = head.bias.findIndex((v) => !Number.isFinite(v));
  if (badB >= 0) throw new ConfigError(`withHead: bias[${badB}] is ${head.bias[badB]}, not finite`);
  if (head.labels !== undefined && (!Array.isArray(head.labels) || head.labels.length !== c)) {
    throw new ConfigError(`withHead: ${Array.isArray(head.labels) ? head.labels.length : 'no list of'} labels for ${c} classes`);
  }
  return { numClasses: c, labels: head.labels ? [...head.labels] : defaultLabels(c) };
}

/**
 * Throws ConfigError unless `source` is in the format `engine` reads; `reads` describes that format for
 * the message (`.onnx files`).
 */
export function checkSourceFormat(source: ResolvedSource, engine: EngineName, reads: string, where: string): void {
  if (source.format !== engine) {
    throw new ConfigError(`${where}: the ${engine} engine reads ${reads}, this source is '${source.format}'`);
  }
}

/**
 * The thread policy of both engines: `asked` clamped to the free cores (`os.availableParallelism()`),
 * all of them when unset. Throws ConfigError for a non-integer or a value below 1.
 */
export function resolveThreads(asked: number | undefined): number {
  const free = availableParallelism();
  if (asked === undefined) return free;
  if (!Number.isInteger(asked) || asked < 1) {
    throw new ConfigError(`threads must be a positive integer (at most ${free}, the cores here), got ${asked}`);
  }
  return Math.min(asked, free);
}

/** camstream.json beside the model with `LoadOptions.config` over it (the options win). */
export function mergeFileConfig(source: ResolvedSource, options: LoadOptions): ModelFileConfig {
  return { ...source.fileConfig, ...options.config };
}

/** Throws ConfigError when a labels file does not hold one label per class. */
export function checkLabelCount(labels: readonly string[], numClasses: number, where: string): void {
  if (labels.length !== numClasses) {
    throw new ConfigError(`${where}: ${labels.length} labels for ${numClasses} classes; the labels file needs one line per class`);
  }
}

/** The installed version of `pkg` (from its package.json), null when it cannot be read. */
export function engineRuntime(pkg: string): EngineRuntime {
  try {
    const { version } = createRequire(import.meta.url)(`${pkg}/package.json`) as { version: string };
    return { package: pkg, version };
  } catch {
    return { package: pkg, version: null };
  }
}
