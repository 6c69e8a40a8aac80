/**
 * The model options every command shares (--model, --engine, --backend, --threads, --int8) and opening the
 * model they name, with the download progress bar on a terminal and the start-up report of what really runs.
 */
import { Option, type Command } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../common/index.ts';
import { CALIBRATION_METHODS, type CalibrationMethod } from '../models/onnx/calibration-methods.ts';
import {
  createProgressBar,
  describePreprocess,
  load,
  openInferPool,
  PRESET_NAMES,
  resolveSource,
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
  /** `--int8`: open the model's cached INT8 form, quantized on first use (cli/int8.ts). */
  int8?: boolean;
  /** `--int8-calibrate` (repeatable): what the first `--int8` run calibrates on. */
  int8Calibrate?: string[];
  /** `--int8-method`: activation ranges of the calibration; part of the cache key. */
  int8Method?: CalibrationMethod;
  /**
   * The command's positional arguments that name local files or folders (its input images, video or
   * dataset folder), set by addModelOptions before the action runs: `--int8` calibrates on them when no
   * `--int8-calibrate` is given.
   */
  int8Inputs?: string[];
  /**
   * Throughput commands (`video`): run the model in this many worker threads, each with its own session of
   * `threads` threads, different frames on each (InferPool). 1 (or unset) keeps it on this thread.
   */
  workers?: number;
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
    .option('--int8', 'run an INT8 form of the ONNX model: quantized on first use (calibrated on --int8-calibrate, else on this command\'s input files) and cached under CAMSTREAM_CACHE (default ~/.cache/camstream)/int8, keyed by the model\'s bytes, normalization and --int8-method')
    .option('--int8-calibrate <path>', 'with --int8, first use: an image, folder of images or video to calibrate on (repeatable; 200 frames at most)', collect)
    .addOption(new Option('--int8-method <name>', 'with --int8: activation ranges, minmax, percentile (99.99) or mse (least error)').choices([...CALIBRATION_METHODS]).default('mse'))
    .option('-q, --quiet', 'no progress bars or start-up report')
    .hook('preAction', (_command, action) => {
      // The inputs are positional arguments, which the options object does not carry: keep the local ones.
      const args = action.processedArgs.flat().filter((a): a is string => typeof a === 'string' && existsSync(a));
      action.setOptionValue('int8Inputs', args);
    });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
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
  let spec = options.model ?? defaultModelDir();
  if (!spec) {
    throw new ConfigError(
      'no --model given and no embedded model is installed in models/zoo; pass --model <folder | model.json | .onnx | URL>',
    );
  }
  if (options.int8) spec = await openInt8(spec, options);
  else if (options.int8Calibrate && options.int8Calibrate.length > 0) throw new ConfigError('--int8-calibrate is only used with --int8');
  const progress = !options.quiet && process.stderr.isTTY ? createProgressBar({ stream: process.stderr }) : undefined;
  const loadOptions = {
    engine: options.engine,
    backend: options.backend,
    threads: options.threads,
    spinWait: options.spinWait,
    cacheDir: process.env.CAMSTREAM_CACHE || undefined,
    config: cliModelConfig(options),
  };
  try {
    let model: CamModel;
    if ((options.workers ?? 1) > 1) {
      // Fetched (a URL) and checked once here; each worker then loads the local copy.
      const source = await resolveSource(spec, { ...loadOptions, onProgress: progress?.onProgress });
      model = await openInferPool(source.path, { workers: options.workers, load: { ...loadOptions, engine: options.engine ?? source.format } });
    } else {
      model = await load(spec, { ...loadOptions, onProgress: progress?.onProgress });
    }
    if (!options.quiet) process.stderr.write(`camstream: ${describeModel(model)}\n`);
    return model;
  } finally {
    progress?.stop();
  }
}

/**
 * Workers and threads for a throughput command when neither `--workers` nor `--threads` is given: an INT8
 * model on ONNX Runtime's CPU provider runs one single-threaded session per free core, each on its own
 * frames. Its integer convolutions gain little from a second intra-op thread (ResNet-50 224, 2 cores:
 * 28.5 ms at 1 thread, 18.1 at 2, so 2 threads spend 27% more core time per frame), and in `video` the
 * cores are shared with ffmpeg: two 1-thread sessions ran the 720p pipeline at 36.2-37.8 fps against
 * 33.2-33.3 for one 2-thread session (README, `video --workers`). Anything else keeps one session with
 * every free core (fp32 gained 3% from two sessions, for twice the memory).
 * `--workers n` without `--threads` shares the cores out: floor(cores / n) threads each, at least 1.
 */
export function throughputWorkers(options: Pick<ModelCliOptions, 'int8' | 'workers' | 'threads' | 'backend'>, cores = availableParallelism()): { workers: number; threads?: number } {
  if (options.workers !== undefined) return { workers: options.workers, threads: options.threads ?? Math.max(1, Math.floor(cores / options.workers)) };
  const ortCpu = options.backend === undefined || options.backend === 'cpu';
  if (options.int8 && ortCpu && options.threads === undefined && cores > 1) return { workers: cores, threads: 1 };
  return { workers: 1, threads: options.threads };
}

/** `--int8`: the path of the model's cached int8 form, made now when missing. */
async function openInt8(spec: string, options: ModelCliOptions): Promise<string> {
  if (options.engine === 'tfjs') throw new ConfigError('--int8 runs on ONNX Runtime: drop --engine tfjs');
  const given = options.int8Calibrate ?? [];
  const { int8ModelFor } = await import('./int8.ts');
  const int8 = await int8ModelFor(spec, {
    calibrate: given.length > 0 ? given : (options.int8Inputs ?? []),
    method: options.int8Method,
    threads: options.threads,
    config: cliModelConfig(options),
    cacheDir: process.env.CAMSTREAM_CACHE || undefined,
    quiet: options.quiet,
  });
  return int8.path;
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
    `${info.source}: ${info.engine}/${info.backend}, ` +
    (info.parallelism > 1 && !info.runsOnJsThread ? `${info.parallelism} workers x ` : '') +
    `${info.threads} thread${info.threads === 1 ? '' : 's'}, ` +
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
