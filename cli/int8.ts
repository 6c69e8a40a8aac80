/**
 * INT8 models for the commands: calibration frames from images, folders and videos; quantizing a model
 * file with its fidelity report (`camstream quantize`); and the `--int8` cache, where the quantized form
 * of a model is made on first use and kept for the next run.
 *
 * Cache layout: `<cache>/int8/<key>/model.int8.onnx` + `camstream.json` (+ `labels.txt`), where `<key>`
 * is a hash of the fp32 model's bytes and of the input settings in effect (its camstream.json with the
 * command line's normalization over it: they shape the calibrated ranges), then the calibration method. An entry is built in `<key>.part-<pid>-<random>/` and
 * renamed into place once complete, so a run killed half-way never leaves an entry that looks finished
 * (a quantized model without its settings would load with the wrong normalization).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { lastValueFrom, take, toArray } from 'rxjs';
import { ConfigError } from '../common/index.ts';
import {
  DEFAULT_CACHE_DIR,
  MODEL_CONFIG_FILE,
  load,
  pidAlive,
  resolveSource,
  type CamModel,
  type Frame,
  type ModelFileConfig,
  type Preprocess,
} from '../models/index.ts';
import { measureFidelity, quantizeOnnx, type CalibrationMethod, type FidelityReport } from '../models/onnx/index.ts';
import { probeMedia, readImageFrame, readVideo$, writeFileAtomic } from '../pipelines/index.ts';
import { locateCliFfmpeg } from './ffmpeg.ts';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

/** Calibration frames `--int8` takes from its inputs at most (as `camstream quantize --n`'s default). */
export const INT8_CALIBRATION_FRAMES = 200;

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
  /** Settings over the model's camstream.json (normalization given on the command line); kept in the int8 model's. */
  config?: ModelFileConfig;
  /** Download cache of URL models. */
  cacheDir?: string;
  /** Called with (done, total) per calibration frame. */
  onFrame?: (done: number, total: number) => void;
}

/** A one-line progress bar on stderr, drawn only when `enabled` (a terminal). */
export function progressBar(label: string, enabled: boolean): { update(done: number, total: number): void; stop(): void } {
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
      drawn = false;
    },
  };
}

/** Files under `path` (a file, or a folder's image files sorted by name). */
async function expandPath(path: string, flag: string): Promise<string[]> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new ConfigError(`${flag}: no such file or folder: ${path}`);
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
 * the order given, the rest shared evenly by the videos. `flag` names the option in errors.
 * @throws ConfigError when a path is missing or nothing yields a frame; InputError for an unreadable image.
 */
export async function readCalibrationFrames(paths: readonly string[], n: number, pre: Preprocess, flag = '--calibrate'): Promise<Frame[]> {
  const files = (await Promise.all(paths.map((p) => expandPath(p, flag)))).flat();
  const images = files.filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase())).slice(0, n);
  const videos = files.filter((f) => !IMAGE_EXTENSIONS.has(extname(f).toLowerCase()));
  const frames: Frame[] = [];
  for (const f of images) frames.push(await readImageFrame(f));
  for (const [i, v] of videos.entries()) {
    const share = Math.floor((n - frames.length) / (videos.length - i));
    if (share > 0) frames.push(...(await videoFrames(v, share, pre)));
  }
  if (frames.length === 0) throw new ConfigError(`${flag}: no images or video frames in ${paths.join(', ')}`);
  return frames;
}

/** Writes `bytes` to `path` through a temporary name, so a failed write never leaves a complete-looking file. */
export async function writeAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  await writeFileAtomic(path, bytes);
}

/** The settings of a camstream.json that shape the model's input (labels and reports left out). */
function inputSettings(config: ModelFileConfig): ModelFileConfig {
  const { labels: _labels, quantization: _quantization, ...settings } = config;
  return settings;
}

/** camstream.json for the int8 model: the fp32 model's settings (labels copied beside it) plus the report. */
async function writeInt8Config(output: string, source: { fileConfig: ModelFileConfig; labels?: string[] }, quantization: Record<string, unknown>): Promise<void> {
  const dir = dirname(output);
  const configPath = join(dir, MODEL_CONFIG_FILE);
  const existing = existsSync(configPath) ? (JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>) : undefined;
  const config: Record<string, unknown> = existing ?? { ...inputSettings(source.fileConfig) };
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
  const source = await resolveSource(request.model, { cacheDir: request.cacheDir, config: request.config });
  if (source.format !== 'onnx') {
    throw new ConfigError(`${request.model} is a TF.js model; quantize reads ONNX: run 'camstream convert ${request.model} -o model.onnx' first`);
  }
  const held = request.frames.length >= 4 ? request.frames.filter((_, i) => i % 4 === 3) : request.frames;
  const calibration = request.frames.length >= 4 ? request.frames.filter((_, i) => i % 4 !== 3) : request.frames;
  // Both models run on the same settings: the fp32 file's camstream.json with the command line's over it.
  const settings = inputSettings(source.fileConfig);
  const fp32 = await load(source.path, { engine: 'onnx', threads: request.threads, config: settings });
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

/** Where `--int8` keeps quantized models: `int8/` under the model cache. */
export function int8CacheRoot(cacheDir?: string): string {
  return join(cacheDir ?? DEFAULT_CACHE_DIR, 'int8');
}

/**
 * The cache entry folder of the int8 form of the ONNX file `modelPath`, keyed by its bytes, the input
 * settings in effect, `config` (they shape the calibrated ranges; labels and reports are left out), and
 * the method.
 */
export async function int8CacheEntry(modelPath: string, method: CalibrationMethod, options: { config?: ModelFileConfig; cacheDir?: string } = {}): Promise<string> {
  const hash = createHash('sha256').update(await readFile(modelPath));
  const settings = options.config ? inputSettings(options.config) : {};
  if (Object.keys(settings).length > 0) hash.update(JSON.stringify(Object.entries(settings).sort(([a], [b]) => (a < b ? -1 : 1))));
  return join(int8CacheRoot(options.cacheDir), `${hash.digest('hex').slice(0, 16)}-${method}`);
}

export const INT8_MODEL_FILE = 'model.int8.onnx';

/** Removes the half-built entries of runs that died (their pid is gone). */
async function removeStaleEntries(root: string): Promise<void> {
  const names = await readdir(root).catch(() => [] as string[]);
  for (const name of names) {
    const m = /\.part-(\d+)-[0-9a-f]+$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) await rm(join(root, name), { recursive: true, force: true });
  }
}

/** What `int8ModelFor` needs besides the model spec. */
export interface Int8Options {
  /** Images, folders and videos to calibrate on when no cached model exists. */
  calibrate: readonly string[];
  /** Names the calibration source in errors (default `--int8-calibrate`). */
  calibrateFlag?: string;
  method?: CalibrationMethod;
  /** Calibration frames at most (default INT8_CALIBRATION_FRAMES). */
  frames?: number;
  threads?: number;
  /** Input settings over camstream.json (the command line's normalization): part of the cache key. */
  config?: ModelFileConfig;
  /** Model cache folder (default ~/.cache/camstream); the entry point maps CAMSTREAM_CACHE to it. */
  cacheDir?: string;
  /** No progress bar and no report on stderr. */
  quiet?: boolean;
  timingRuns?: number;
}

/** The int8 model `--int8` opens, and whether it was made now (then with its report). */
export interface Int8Model {
  path: string;
  created: boolean;
  report?: FidelityReport;
}

/**
 * `--int8`: the cached int8 form of the ONNX model `spec` names, made on first use by calibrating on
 * `options.calibrate` (images, folders, videos). Returns the path to open instead of `spec`.
 * @throws ConfigError for a TF.js model (it needs converting), or when there is nothing cached and
 *   nothing to calibrate on.
 */
export async function int8ModelFor(spec: string, options: Int8Options): Promise<Int8Model> {
  const source = await resolveSource(spec, { cacheDir: options.cacheDir, config: options.config });
  if (source.format !== 'onnx') {
    throw new ConfigError(`--int8 needs an ONNX model and ${spec} is TF.js: run 'camstream convert ${spec} -o model.onnx', then pass --model model.onnx`);
  }
  const method: CalibrationMethod = options.method ?? 'mse';
  // The settings in effect (camstream.json with the command line's over it) are part of the key.
  const entry = await int8CacheEntry(source.path, method, { config: source.fileConfig, cacheDir: options.cacheDir });
  const path = join(entry, INT8_MODEL_FILE);
  if (existsSync(path)) {
    if (!options.quiet) {
      process.stderr.write(`camstream: int8: reusing ${path}\n`);
      for (const w of int8Warnings(await storedReport(entry))) process.stderr.write(`camstream: warning: ${w}\n`);
    }
    return { path, created: false };
  }
  const flag = options.calibrateFlag ?? '--int8-calibrate';
  if (options.calibrate.length === 0) {
    throw new ConfigError(`--int8: no quantized form of ${spec} is cached yet and there is nothing to calibrate on: pass ${flag} <images | folder | video>`);
  }
  const probe = await load(source.path, { engine: 'onnx', threads: 1, config: inputSettings(source.fileConfig) });
  const pre = probe.info.preprocess;
  await probe.dispose();
  const frames = await readCalibrationFrames(options.calibrate, options.frames ?? INT8_CALIBRATION_FRAMES, pre, flag);
  const root = int8CacheRoot(options.cacheDir);
  await mkdir(root, { recursive: true });
  await removeStaleEntries(root);
  const staging = `${entry}.part-${process.pid}-${randomBytes(4).toString('hex')}`;
  const bar = progressBar('int8: calibrating', !options.quiet && process.stderr.isTTY === true);
  try {
    const report = await quantizeModelFile({
      model: source.path,
      output: join(staging, INT8_MODEL_FILE),
      frames,
      method,
      threads: options.threads,
      timingRuns: options.timingRuns,
      config: options.config,
      onFrame: bar.update,
    });
    bar.stop();
    try {
      await rename(staging, entry);
    } catch (err) {
      // Another run committed the same entry first: theirs is as good as ours.
      if (!existsSync(path)) throw err;
    }
    if (!options.quiet) {
      process.stderr.write(`camstream: int8 model cached at ${path}; ${formatReport(report)}`);
      for (const w of int8Warnings(report)) process.stderr.write(`camstream: warning: ${w}\n`);
    }
    return { path, created: true, report };
  } finally {
    bar.stop();
    await rm(staging, { recursive: true, force: true });
  }
}

/** Below these the int8 form is not worth running, and the user is told so (the run still uses it). */
export const INT8_WARN = Object.freeze({ speedup: 1, top1Agreement: 0.9, camR: 0.95 });

/**
 * What a fidelity report says against running the int8 form: slower than fp32 (MobileNetV2's depthwise
 * convs measured 0.76x), or answers that differ from fp32's. Empty when there is nothing to say or no report.
 */
export function int8Warnings(r: Partial<Pick<FidelityReport, 'speedup' | 'top1Agreement' | 'camR'>> | undefined): string[] {
  const warnings: string[] = [];
  if (r === undefined) return warnings;
  if (typeof r.speedup === 'number' && r.speedup < INT8_WARN.speedup) {
    warnings.push(`int8 ran slower than fp32 for this model (${r.speedup.toFixed(2)}x the fp32 speed when it was quantized); drop --int8`);
  }
  const agreement = typeof r.top1Agreement === 'number' && r.top1Agreement < INT8_WARN.top1Agreement;
  const maps = typeof r.camR === 'number' && r.camR < INT8_WARN.camR;
  if (agreement || maps) {
    warnings.push(
      `int8 answers differ from fp32's on held-out frames (top-1 agreement ${((r.top1Agreement ?? NaN) * 100).toFixed(1)}%, ` +
        `CAM r ${(r.camR ?? NaN).toFixed(3)}); try another --int8-method or calibrate on more typical frames, or drop --int8`,
    );
  }
  return warnings;
}

/** The fidelity report stored beside a cached int8 model (its camstream.json), if readable. */
async function storedReport(entry: string): Promise<Partial<FidelityReport> | undefined> {
  try {
    const config = JSON.parse(await readFile(join(entry, MODEL_CONFIG_FILE), 'utf8')) as { quantization?: Partial<FidelityReport> };
    return config.quantization;
  } catch {
    return undefined;
  }
}

/** The fidelity report in one line. */
export function formatReport(r: FidelityReport): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  return (
    `fidelity on ${r.frames} held-out frame${r.frames === 1 ? '' : 's'}: top-1 agreement ${pct(r.top1Agreement)}, ` +
    `top-5 overlap ${pct(r.top5Overlap)}, CAM r ${r.camR.toFixed(4)} (worst ${r.camRWorst.toFixed(4)}), ` +
    `speedup ${r.speedup.toFixed(2)}x (${r.fp32Ms.toFixed(1)} -> ${r.int8Ms.toFixed(1)} ms, ${r.threads} thread${r.threads === 1 ? '' : 's'})\n`
  );
}
