import { Command, Option } from 'commander';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { lastValueFrom, take, toArray } from 'rxjs';
import { ConfigError } from '../../common/index.ts';
import { DEFAULT_CACHE_DIR, MODEL_CONFIG_FILE, load, resolveSource, type CamModel, type Frame, type ModelFileConfig, type Preprocess } from '../../models/index.ts';
import {
  CALIBRATION_METHODS,
  measureFidelity,
  quantizeOnnx,
  type CalibrationMethod,
  type FidelityReport,
} from '../../models/onnx/index.ts';
import { probeMedia, readImageFrame, readVideo$, writeFileAtomic } from '../../pipelines/index.ts';
import { locateCliFfmpeg } from '../ffmpeg.ts';
import { parsePositiveInt } from '../model.ts';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

interface QuantizeCliOptions {
  output: string;
  calibrate: string[];
  n: number;
  method: CalibrationMethod;
  json?: boolean;
  threads?: number;
  timingRuns: number;
  quiet?: boolean;
}

/** What `quantizeModelFile` needs. */
export interface Int8Request {
  /** fp32 .onnx model spec (path or URL). */
  model: string;
  /** Where the int8 model goes; its camstream.json is written beside it. */
  output: string;
  /** Calibration frames; every 4th is held out for the report when there are 4 or more. */
  frames: Frame[];
  method: CalibrationMethod;
  threads?: number;
  timingRuns?: number;
  /** Called with (done, total) per calibration frame. */
  onFrame?: (done: number, total: number) => void;
}

/** A one-line progress bar on stderr, drawn only on a terminal. */
function progressBar(label: string, enabled: boolean): { update(done: number, total: number): void; stop(): void } {
  let drawn = false;
  return {
    update(done, total) {
      if (!enabled) return;
      const width = 24;
      const full = Math.round((done / total) * width);
      process.stderr.write(`\r\x1b[2K${label} [${'#'.repeat(full)}${' '.repeat(width - full)}] ${done}/${total}`);
      drawn = true;
    },
    stop() {
      if (drawn) process.stderr.write('\r\x1b[2K');
    },
  };
}

/** Files under `path` (a file, or a folder's image files sorted by name). */
async function expandPath(path: string): Promise<string[]> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new ConfigError(`--calibrate: no such file or folder: ${path}`);
  if (info.isFile()) return [path];
  const names = (await readdir(path)).filter((n) => IMAGE_EXTENSIONS.has(extname(n).toLowerCase())).sort();
  return names.map((n) => join(path, n));
}

/** Up to `n` frames of a video at the model's input size, spread evenly over it. */
async function videoFrames(path: string, n: number, pre: Preprocess): Promise<Frame[]> {
  const tools = await locateCliFfmpeg();
  const probe = await probeMedia(path, { tools });
  const total = probe.frameCount ?? probe.estimatedFrameCount ?? n;
  const stride = Math.max(1, Math.floor(total / n));
  const frames = await lastValueFrom(readVideo$(path, { tools, probe, preprocess: pre, maxFrames: stride * n }).pipe(take(stride * n), toArray()));
  return frames.filter((_, i) => i % stride === 0).slice(0, n).map((f) => f.pixels);
}

/**
 * Calibration frames from image files, folders of images and videos: at most `n` in all, images first in
 * the order given, the rest shared evenly by the videos.
 * @throws ConfigError when a path is missing or nothing yields a frame; InputError for an unreadable image.
 */
export async function readCalibrationFrames(paths: readonly string[], n: number, pre: Preprocess): Promise<Frame[]> {
  const files = (await Promise.all(paths.map(expandPath))).flat();
  const images = files.filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase())).slice(0, n);
  const videos = files.filter((f) => !IMAGE_EXTENSIONS.has(extname(f).toLowerCase()));
  const frames: Frame[] = [];
  for (const f of images) frames.push(await readImageFrame(f));
  for (const [i, v] of videos.entries()) {
    const share = Math.floor((n - frames.length) / (videos.length - i));
    if (share > 0) frames.push(...(await videoFrames(v, share, pre)));
  }
  if (frames.length === 0) throw new ConfigError(`--calibrate: no images or video frames in ${paths.join(', ')}`);
  return frames;
}

/** Writes `bytes` to `path` through a temporary name, so a failed write never leaves a complete-looking file. */
export async function writeAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  await writeFileAtomic(path, bytes);
}

/** camstream.json for the int8 model: the fp32 model's settings (labels copied beside it) plus the report. */
async function writeInt8Config(output: string, source: { fileConfig: ModelFileConfig; labels?: string[] }, quantization: Record<string, unknown>): Promise<void> {
  const dir = dirname(output);
  const configPath = join(dir, MODEL_CONFIG_FILE);
  const existing = existsSync(configPath) ? (JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>) : undefined;
  const { labels: _labels, quantization: _old, ...settings } = source.fileConfig;
  const config: Record<string, unknown> = existing ?? { ...settings };
  if (!existing && source.labels) {
    await writeAtomic(join(dir, 'labels.txt'), `${source.labels.join('\n')}\n`);
  }
  config.quantization = quantization;
  await writeAtomic(configPath, `${JSON.stringify(config, null, 2)}\n`);
}

/**
 * Quantizes an fp32 ONNX model to `request.output` with `request.frames`, measures it against fp32 on the
 * held-out frames, and stores the report in the camstream.json beside the output. Returns the report.
 * @throws ConfigError for a TF.js model (convert it first) or a bad option; ModelLoadError / NoGapHeadError
 *   from the model.
 */
export async function quantizeModelFile(request: Int8Request): Promise<FidelityReport> {
  const source = await resolveSource(request.model, { cacheDir: process.env.CAMSTREAM_CACHE || undefined });
  if (source.format !== 'onnx') {
    throw new ConfigError(`${request.model} is a TF.js model; quantize reads ONNX: run 'camstream convert ${request.model} -o model.onnx' first`);
  }
  const held = request.frames.length >= 4 ? request.frames.filter((_, i) => i % 4 === 3) : request.frames;
  const calibration = request.frames.length >= 4 ? request.frames.filter((_, i) => i % 4 !== 3) : request.frames;
  const fp32 = await load(source.path, { engine: 'onnx', threads: request.threads });
  // The int8 file's own camstream.json is written after the report: until then it runs on the fp32 settings.
  const { labels: _labels, quantization: _old, ...settings } = source.fileConfig;
  let int8: CamModel | undefined;
  try {
    const quantized = await quantizeOnnx(await readFile(source.path), calibration, {
      fileConfig: source.fileConfig,
      where: request.model,
      threads: fp32.info.threads,
      calibration: { method: request.method },
      onFrame: request.onFrame,
    });
    await mkdir(dirname(resolve(request.output)), { recursive: true });
    await writeAtomic(request.output, quantized.bytes);
    int8 = await load(request.output, { engine: 'onnx', threads: fp32.info.threads, config: settings });
    const report = await measureFidelity(fp32, int8, held, request.timingRuns ?? 20);
    await writeInt8Config(request.output, source, {
      ...report,
      method: request.method,
      calibrationFrames: calibration.length,
      heldOut: held !== request.frames,
      source: basename(source.path),
    });
    return report;
  } finally {
    await fp32.dispose();
    await int8?.dispose();
  }
}

/** Cache path of the int8 form of `modelPath` (keyed by the model's bytes and the method). */
export async function int8CachePath(modelPath: string, method: CalibrationMethod): Promise<string> {
  const hash = createHash('sha256').update(await readFile(modelPath)).digest('hex').slice(0, 16);
  return join(process.env.CAMSTREAM_CACHE || DEFAULT_CACHE_DIR, 'int8', `${hash}-${method}`, 'model.int8.onnx');
}

function formatReport(r: FidelityReport): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  return (
    `fidelity on ${r.frames} held-out frame${r.frames === 1 ? '' : 's'}: top-1 agreement ${pct(r.top1Agreement)}, ` +
    `top-5 overlap ${pct(r.top5Overlap)}, CAM r ${r.camR.toFixed(4)} (worst ${r.camRWorst.toFixed(4)}), ` +
    `speedup ${r.speedup.toFixed(2)}x (${r.fp32Ms.toFixed(1)} -> ${r.int8Ms.toFixed(1)} ms, ${r.threads} thread${r.threads === 1 ? '' : 's'})\n`
  );
}

export function quantizeCommand(): Command {
  return new Command('quantize')
    .summary('static INT8 quantization of an ONNX model, with a fidelity report')
    .description(
      'Quantizes an fp32 ONNX model (QDQ: uint8 activations, int8 per-channel weights, int32 biases; the GAP head ' +
        'and CAM stay fp32) with activation ranges calibrated on images or video frames, then compares it with ' +
        'fp32 on held-out frames (every 4th) and stores the report in camstream.json beside the output.',
    )
    .argument('<model>', 'fp32 .onnx file (or URL); convert TF.js models first with camstream convert')
    .requiredOption('-o, --output <file>', 'the quantized .onnx file to write')
    .requiredOption('--calibrate <paths...>', 'images, folders of images, or videos to calibrate on')
    .option('--n <frames>', 'calibration frames at most', parsePositiveInt('--n'), 200)
    .addOption(new Option('--method <name>', 'activation ranges: minmax, percentile (99.99), mse (least error)').choices([...CALIBRATION_METHODS]).default('mse'))
    .option('--threads <n>', 'intra-op threads for calibration and timing (default: the free cores)', parsePositiveInt('--threads'))
    .option('--timing-runs <n>', 'interleaved forward passes timed per model', parsePositiveInt('--timing-runs'), 20)
    .option('--json', 'print the report as JSON on stdout')
    .option('-q, --quiet', 'no progress bar')
    .action(async (model: string, options: QuantizeCliOptions) => {
      const probe = await load(model, { engine: 'onnx', threads: 1, cacheDir: process.env.CAMSTREAM_CACHE || undefined });
      const pre = probe.info.preprocess;
      await probe.dispose();
      const frames = await readCalibrationFrames(options.calibrate, options.n, pre);
      const bar = progressBar('calibrating', !options.quiet && process.stderr.isTTY === true);
      try {
        const report = await quantizeModelFile({
          model,
          output: options.output,
          frames,
          method: options.method,
          threads: options.threads,
          timingRuns: options.timingRuns,
          onFrame: bar.update,
        });
        bar.stop();
        if (options.json) {
          const { top1Agreement, top5Overlap, camR, camRWorst, speedup } = report;
          process.stdout.write(`${JSON.stringify({ top1Agreement, top5Overlap, camR, camRWorst, speedup, frames: report.frames, threads: report.threads })}\n`);
        } else {
          process.stdout.write(`${options.output}\n${formatReport(report)}`);
        }
      } finally {
        bar.stop();
      }
    });
}

/**
 * `--int8` for a command: the cached int8 form of the model `spec` names, made on first use by
 * calibrating on `inputs` (images, folders, videos) and kept under the model cache, keyed by the fp32
 * model's bytes and the method. Returns the path to open instead of `spec`.
 * @throws ConfigError for a TF.js model or no model (both need an ONNX file: see camstream convert).
 */
export async function int8ModelFor(spec: string | undefined, inputs: readonly string[], quiet: boolean): Promise<string> {
  if (!spec) throw new ConfigError('--int8 needs --model <file.onnx> (convert a TF.js model first with camstream convert)');
  const source = await resolveSource(spec, { cacheDir: process.env.CAMSTREAM_CACHE || undefined });
  if (source.format !== 'onnx') {
    throw new ConfigError(`--int8 needs an ONNX model and ${spec} is TF.js: run 'camstream convert ${spec} -o model.onnx' first`);
  }
  const method: CalibrationMethod = 'mse';
  const cached = await int8CachePath(source.path, method);
  if (existsSync(cached)) return cached;
  const probe = await load(source.path, { engine: 'onnx', threads: 1 });
  const pre = probe.info.preprocess;
  await probe.dispose();
  const frames = await readCalibrationFrames(inputs, 200, pre);
  const bar = progressBar('int8: calibrating', !quiet && process.stderr.isTTY === true);
  try {
    const report = await quantizeModelFile({ model: spec, output: cached, frames, method, onFrame: bar.update });
    bar.stop();
    if (!quiet) process.stderr.write(`camstream: int8 model cached at ${cached}; ${formatReport(report)}`);
  } finally {
    bar.stop();
  }
  return cached;
}
