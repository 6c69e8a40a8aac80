/**
 * The model options every command shares (--model, --engine, --backend, --threads) and opening the model
 * they name, with the download progress bar on a terminal and the start-up report of what really runs.
 */
import { Option, type Command } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../common/index.ts';
import {
  createProgressBar,
  describePreprocess,
  load,
  PRESET_NAMES,
  RESIZE_FILTERS,
  type CamModel,
  type EngineName,
  type ModelFileConfig,
  type NormalizationPreset,
  type ResizeFilter,
} from '../models/index.ts';

export interface ModelCliOptions {
  model?: string;
  engine?: EngineName;
  backend?: string;
  threads?: number;
  labels?: string;
  /**
   * `--preset`: the named normalization (commander checks the choices), except in `video`, where `--preset`
   * is x264's and the normalization is `--model-preset`.
   */
  preset?: string;
  modelPreset?: NormalizationPreset;
  /** Resampling filter (`--resize-filter`). */
  resizeFilter?: ResizeFilter;
  quiet?: boolean;
  /** ONNX Runtime: let idle intra-op threads spin (default true); commands sharing cores with ffmpeg pass false. */
  spinWait?: boolean;
}

const ZOO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', 'models', 'zoo');

export function addModelOptions(command: Command): Command {
  // `video` already has an x264 --preset: there the normalization preset is --model-preset.
  const presetFlag = command.options.some((o) => o.long === '--preset') ? '--model-preset' : '--preset';
  return command
    .addOption(
      new Option(`${presetFlag} <name>`, 'input normalization: imagenet/torchvision (x/255, ImageNet mean, std), tf (x/127.5 - 1), raw (0-255); overrides camstream.json').choices([...PRESET_NAMES]),
    )
    .addOption(
      new Option('--resize-filter <name>', 'resampling to the model input: triangle (antialiased, as PIL/torchvision; default), area, bilinear (no antialiasing)').choices([...RESIZE_FILTERS]),
    )
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
      config: cliModelConfig(options),
      onProgress: progress?.onProgress,
    });
    if (!options.quiet) process.stderr.write(`camstream: ${describeModel(model)}\n`);
    return model;
  } finally {
    progress?.stop();
  }
}

/** What the model options set over camstream.json (labels, preset, resize filter); undefined when nothing. */
function cliModelConfig(options: ModelCliOptions): ModelFileConfig | undefined {
  const config: ModelFileConfig = {};
  if (options.labels) config.labels = resolve(options.labels);
  // x264 preset names never collide with normalization presets, so only the latter are taken from --preset.
  const preset = options.modelPreset ?? (PRESET_NAMES as readonly string[]).find((p) => p === options.preset);
  if (preset) config.preset = preset as NormalizationPreset;
  if (options.resizeFilter) config.resizeFilter = options.resizeFilter;
  return Object.keys(config).length > 0 ? config : undefined;
}

/** One line on what really runs: engine, backend or provider, threads, head, shapes and normalization. */
export function describeModel(model: CamModel): string {
  const { info } = model;
  const [h, w, k] = info.featureShape;
  const [ih, iw] = info.preprocess.inputSize;
  return (
    `${info.source}: ${info.engine}/${info.backend}, ${info.threads} thread${info.threads === 1 ? '' : 's'}, ` +
    `input ${iw}x${ih}, head ${info.head}, features ${h}x${w}x${k}, ${info.numClasses} classes, ` +
    `normalization ${describePreprocess(info.preprocess)}`
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
