/**
 * The model options every command shares (--model, --engine, --backend, --threads) and opening the model
 * they name, with the download progress bar on a terminal and the start-up report of what really runs.
 */
import { Option, type Command } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../common/index.ts';
import { createProgressBar, load, type CamModel, type EngineName } from '../models/index.ts';

export interface ModelCliOptions {
  model?: string;
  engine?: EngineName;
  backend?: string;
  threads?: number;
  labels?: string;
  quiet?: boolean;
  /** ONNX Runtime: let idle intra-op threads spin (default true); commands sharing cores with ffmpeg pass false. */
  spinWait?: boolean;
}

const ZOO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', 'models', 'zoo');

export function addModelOptions(command: Command): Command {
  return command
    .option('-m, --model <spec>', 'model folder, model.json, .onnx file, or http(s) URL of one (default: the embedded model)')
    .addOption(new Option('--engine <name>', 'engine (default: by the model format)').choices(['tfjs', 'onnx']))
    .option('--backend <name>', 'tfjs backend (tensorflow, wasm, cpu) or ONNX Runtime provider (cpu, cuda, tensorrt, webgpu)')
    .option('--threads <n>', 'intra-op threads (default and maximum: the free cores)', parsePositiveInt('--threads'))
    .option('--labels <file>', 'class labels, one per line (default: camstream.json\'s labels, else labels.txt beside the model)')
    .option('-q, --quiet', 'no progress bars or start-up report');
}

/** The embedded default model: the first folder in models/zoo with a manifest.json, if one is installed. */
export function defaultModelDir(): string | undefined {
  if (!existsSync(ZOO)) return undefined;
  const names = readdirSync(ZOO, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(ZOO, d.name, 'manifest.json')))
    .map((d) => d.name)
    .sort();
  return names.length > 0 ? join(ZOO, names[0]) : undefined;
}

/** Opens the model named by the options; the caller owns and disposes it. Reads CAMSTREAM_CACHE. */
export async function openModel(options: ModelCliOptions): Promise<CamModel> {
  const spec = options.model ?? defaultModelDir();
  if (!spec) {
    throw new ConfigError(
      'no --model given and no embedded model is installed in models/zoo; pass --model <folder | model.json | .onnx | URL>',
    );
  }
  const progress = !options.quiet && process.stderr.isTTY ? createProgressBar({ stream: process.stderr }) : undefined;
  try {
    const model = await load(spec, {
      engine: options.engine,
      backend: options.backend,
      threads: options.threads,
      spinWait: options.spinWait,
      cacheDir: process.env.CAMSTREAM_CACHE || undefined,
      config: options.labels ? { labels: resolve(options.labels) } : undefined,
      onProgress: progress?.onProgress,
    });
    if (!options.quiet) process.stderr.write(`camstream: ${describeModel(model)}\n`);
    return model;
  } finally {
    progress?.stop();
  }
}

/** One line on what really runs: engine, backend or provider, threads, head and shapes. */
export function describeModel(model: CamModel): string {
  const { info } = model;
  const [h, w, k] = info.featureShape;
  const [ih, iw] = info.preprocess.inputSize;
  return (
    `${info.source}: ${info.engine}/${info.backend}, ${info.threads} thread${info.threads === 1 ? '' : 's'}, ` +
    `input ${iw}x${ih}, head ${info.head}, features ${h}x${w}x${k}, ${info.numClasses} classes`
  );
}

export function parsePositiveInt(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} must be a whole number >= 1, got '${value}'`);
    return n;
  };
}

export function parseNumberIn(flag: string, lo: number, hi: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < lo || n > hi) {
      throw new ConfigError(`${flag} must be a number in [${lo}, ${hi}], got '${value}'`);
    }
    return n;
  };
}
