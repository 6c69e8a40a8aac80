/**
 * `annotateVideo`: one recorded video (or stream) to an annotated H.264 MP4, a JSONL file with one line per
 * frame, and a run manifest. Probes the input, resolves the configuration, runs the composed pipeline
 * (compose.ts) with one subscription, and gathers the figures: frames, fps, time per stage, flicker.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { setPriority } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { CamstreamError, ConfigError, type CamModel, type EngineName } from '../../models/index.ts';
import {
  activeFfmpegPids,
  locateFfmpeg,
  probeMedia,
  resolveInput,
  type DecodeHandle,
  type EncodeResult,
  type FfmpegTools,
  type InputScheme,
  type MediaInfo,
} from '../ffmpeg/index.ts';
import { composeVideoPipeline, type VideoPipelineConfig, type VideoPipelineHooks } from '../compose/video.ts';
import { writeJsonFile } from '../sinks/manifest.ts';
import type { StageTimings, VideoFrame } from '../stages/frame.ts';
import { chooseBatchFrames, resolveInferStageConfig, type BatchChoice } from '../stages/infer.ts';
import { resolveLocalizeConfig, type LocalizeConfig } from '../stages/localize.ts';
import { resolveOfflineQueueConfig } from '../stages/queue-offline.ts';
import { resolveVideoOverlayConfig, type VideoOverlayConfig } from '../stages/render.ts';
import { resolveSmoothConfig, type SmoothConfig, type SmoothStats } from '../stages/smooth.ts';

/** The run was stopped from outside (SIGINT, an aborted signal). The CLI maps `INTERRUPTED` to exit 130. */
export class InterruptedError extends CamstreamError {
  constructor(message: string) {
    super('INTERRUPTED', message);
  }
}

export interface VideoConfig {
  /** Output video path (H.264 in the container its extension names; `.mp4` expected). Required. */
  out: string;
  /** JSONL path, one line per frame. Default: none. */
  json?: string;
  /** Run manifest path; default `<out>.manifest.json`; `false` writes none. */
  manifest?: string | false;
  /** Classes per frame (maps, boxes, labels). Default 5. */
  topK?: number;
  /** Frames per engine call, or `auto` (time 1 and 4 on the first frame, keep 4 only if 15% faster per frame). Default `auto`. */
  batchFrames?: number | 'auto';
  /** Infer every N-th frame; the frames between reuse the last result. Default 1. */
  everyFrames?: number;
  /** Frames in flight at most (offline queue). Default 8, raised to the batch size when smaller. */
  maxQueueFrames?: number;
  /** Only the first N frames (output and JSONL then have N frames). Default: all. */
  maxFrames?: number;
  smooth?: SmoothConfig;
  localize?: LocalizeConfig;
  overlay?: VideoOverlayConfig;
  /** Threads of the model-size decode. Default 1: scaling to 224 pixels is light, and cores are scarce. */
  decodeThreads?: number;
  /** Threads of the compositing encoder; 0 lets ffmpeg choose. Default 0. */
  encodeThreads?: number;
  /**
   * Nice value given to the two ffmpeg children (decoder and compositing encoder), 0-19. Default 10: the
   * engine's threads then get a core the moment they need one and ffmpeg fills the gaps between operators
   * and batches; the run is lossless, so ffmpeg yielding only reorders work. bench/README.md has the
   * measurements (ResNet-50, 2 cores: 16.1 vs 15.0 fps with spin-waiting off). 0 leaves them as they are.
   */
  ffmpegNice?: number;
  /** x264 preset. Default `veryfast`. */
  preset?: string;
  /** x264 CRF, 0-51. Default 23. */
  crf?: number;
  /** Copy the input's audio. Default true. */
  audio?: boolean;
  /** A damaged packet fails the run (ffmpeg `-xerror`). Default true: a truncated file is an error. */
  strict?: boolean;
  /** Trusted ffmpeg input options (`['-rtsp_transport', 'tcp']`). Default none. */
  inputOptions?: readonly string[];
  /** Allowed input schemes. Default all (file, http, https, rtsp). */
  schemes?: readonly InputScheme[];
  /** Default `locateFfmpeg()`. */
  tools?: FfmpegTools;
}

export const DEFAULT_VIDEO_CONFIG = Object.freeze({
  topK: 5,
  batchFrames: 'auto' as const,
  everyFrames: 1,
  maxQueueFrames: 8,
  decodeThreads: 1,
  encodeThreads: 0,
  ffmpegNice: 10,
  preset: 'veryfast',
  crf: 23,
  audio: true,
  strict: true,
});

export interface VideoProgress {
  frames: number;
  /** Frames expected (the container's count or duration x rate), when known. */
  totalFrames: number | undefined;
  elapsedMs: number;
  /** Frames per second so far. */
  fps: number;
}

export interface VideoRunHooks extends VideoPipelineHooks {
  /** After every finished frame. */
  onProgress?: (progress: VideoProgress) => void;
  /** After every finished frame, with its record (tests, live previews). */
  onFrame?: (frame: VideoFrame) => void;
  /** Aborting stops the run: children ended, temporary files deleted, InterruptedError thrown. */
  signal?: AbortSignal;
}

/** Per stage: total and mean milliseconds over the frames where the stage ran. */
export type StageReport = Record<keyof StageTimings, { totalMs: number; meanMs: number }>;

export interface VideoReport {
  input: string;
  out: string;
  json: string | undefined;
  manifest: string | undefined;
  frames: number;
  /** Frames that went through the model (fewer than `frames` with everyFrames > 1). */
  inferredFrames: number;
  elapsedMs: number;
  /** Frames per second from subscription to the renamed output. */
  fps: number;
  batchFrames: number;
  batchChoice: BatchChoice | undefined;
  stages: StageReport;
  smooth: SmoothStats;
  encode: EncodeResult;
  probe: MediaInfo;
  config: VideoPipelineConfig;
}

function checkInt(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${field} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

/**
 * Validates `config` for `input` and `model` (ConfigError naming the field, the value and the range).
 * `batchFrames: 'auto'` stays 0 here; `annotateVideo` measures it.
 */
export function resolveVideoConfig(input: string, config: VideoConfig, model: CamModel): VideoPipelineConfig {
  if (typeof config.out !== 'string' || config.out.trim() === '') throw new ConfigError(`out must be a file path, got ${JSON.stringify(config.out)}`);
  const source = resolveInput(input, config.schemes);
  const out = resolve(config.out);
  const json = config.json === undefined ? undefined : resolve(config.json);
  if (source.scheme === 'file' && (source.url === out || source.url === json)) {
    throw new ConfigError(`output ${JSON.stringify(config.out)} is the input itself`);
  }
  if (json !== undefined && json === out) throw new ConfigError(`the JSONL path ${JSON.stringify(config.json)} is also the video output`);
  for (const [flag, path] of [['out', out], ['json', json]] as const) {
    if (path === undefined) continue;
    const dir = dirname(path);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ConfigError(`${flag}: folder ${JSON.stringify(dir)} does not exist`);
  }
  const infer = resolveInferStageConfig(
    {
      topK: config.topK ?? DEFAULT_VIDEO_CONFIG.topK,
      batchFrames: typeof config.batchFrames === 'number' ? config.batchFrames : undefined,
      everyFrames: config.everyFrames,
    },
    model.info.numClasses,
  );
  const batchAuto = (config.batchFrames ?? DEFAULT_VIDEO_CONFIG.batchFrames) === 'auto';
  if (config.batchFrames !== undefined && config.batchFrames !== 'auto' && typeof config.batchFrames !== 'number') {
    throw new ConfigError(`batchFrames must be an integer in [1, 64] or 'auto', got ${JSON.stringify(config.batchFrames)}`);
  }
  const { maxQueueFrames } = resolveOfflineQueueConfig({ maxQueueFrames: config.maxQueueFrames ?? DEFAULT_VIDEO_CONFIG.maxQueueFrames });
  const crf = checkInt('crf', config.crf ?? DEFAULT_VIDEO_CONFIG.crf, 0, 51);
  const preset = config.preset ?? DEFAULT_VIDEO_CONFIG.preset;
  if (typeof preset !== 'string' || !/^[a-z]+$/.test(preset)) throw new ConfigError(`preset must be an x264 preset name, got ${JSON.stringify(preset)}`);
  return {
    input,
    out,
    json,
    topK: infer.topK,
    batchFrames: batchAuto ? 0 : infer.batchFrames,
    everyFrames: infer.everyFrames,
    maxQueueFrames,
    maxFrames: config.maxFrames === undefined ? undefined : checkInt('maxFrames', config.maxFrames, 1, Number.MAX_SAFE_INTEGER),
    smooth: resolveSmoothConfig(config.smooth),
    localize: resolveLocalizeConfig(config.localize),
    overlay: resolveVideoOverlayConfig(config.overlay),
    decodeThreads: checkInt('decodeThreads', config.decodeThreads ?? DEFAULT_VIDEO_CONFIG.decodeThreads, 0, 64),
    encodeThreads: checkInt('encodeThreads', config.encodeThreads ?? DEFAULT_VIDEO_CONFIG.encodeThreads, 0, 64),
    preset,
    crf,
    audio: config.audio ?? DEFAULT_VIDEO_CONFIG.audio,
    strict: config.strict ?? DEFAULT_VIDEO_CONFIG.strict,
    inputOptions: [...(config.inputOptions ?? [])],
    schemes: [...(config.schemes ?? ['file', 'http', 'https', 'rtsp'])],
  };
}

const require = createRequire(import.meta.url);

function packageVersion(name: string): string | undefined {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** camstream's own version (package.json at the project root). */
export function camstreamVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** The version of the package behind an engine (`@tensorflow/tfjs-core`, `onnxruntime-node`). */
export function engineVersion(engine: EngineName): string | undefined {
  return packageVersion(engine === 'onnx' ? 'onnxruntime-node' : '@tensorflow/tfjs-core');
}

const STAGES: Array<keyof StageTimings> = ['infer', 'smooth', 'localize', 'render', 'encode', 'json'];

/**
 * Runs the pipeline over `input` with `model` (which the caller owns and disposes). Resolves once the MP4,
 * the JSONL and the manifest are in place; rejects with the first error (FfmpegError naming the input and
 * quoting ffmpeg, ConfigError, engine errors) or InterruptedError, in every case after the pipeline was
 * torn down, leaving no output and no temporary file (ffmpeg children end within their kill grace).
 */
export async function annotateVideo(model: CamModel, input: string, config: VideoConfig, hooks: VideoRunHooks = {}): Promise<VideoReport> {
  const resolved = resolveVideoConfig(input, config, model);
  const nice = checkInt('ffmpegNice', config.ffmpegNice ?? DEFAULT_VIDEO_CONFIG.ffmpegNice, 0, 19);
  const deprioritize = (pid: number | undefined): void => {
    if (nice === 0 || pid === undefined) return;
    try {
      setPriority(pid, nice);
    } catch {
      // Only an optimisation: a child that already exited, or a platform without priorities.
    }
  };
  const interrupted = (): InterruptedError => new InterruptedError(`interrupted while annotating ${input}; no output was written`);
  if (hooks.signal?.aborted) throw interrupted();
  const tools = config.tools ?? (await locateFfmpeg());
  const probe = await probeMedia(input, { tools, schemes: resolved.schemes });
  if (hooks.signal?.aborted) throw interrupted();

  let batchChoice: BatchChoice | undefined;
  if (resolved.batchFrames === 0) {
    const [h, w] = model.info.preprocess.inputSize;
    const blank = { data: new Uint8Array(h * w * 3).fill(128), width: w, height: h };
    batchChoice = await chooseBatchFrames(model, blank, { topK: resolved.topK });
    resolved.batchFrames = batchChoice.batchFrames;
  }
  resolved.maxQueueFrames = Math.max(resolved.maxQueueFrames, resolved.batchFrames);
  if (hooks.signal?.aborted) throw interrupted();

  const totals = Object.fromEntries(STAGES.map((s) => [s, { totalMs: 0, count: 0 }])) as Record<keyof StageTimings, { totalMs: number; count: number }>;
  let frames = 0;
  let inferredFrames = 0;
  let encodeResult: EncodeResult | undefined;
  let smoothStats: SmoothStats | undefined;
  const totalFrames = resolved.maxFrames !== undefined
    ? Math.min(resolved.maxFrames, probe.frameCount ?? probe.estimatedFrameCount ?? Number.POSITIVE_INFINITY)
    : probe.frameCount ?? probe.estimatedFrameCount;
  const started = performance.now();

  // Teardown of a failed or stopped run is asynchronous (children get SIGTERM, then SIGKILL after a
  // grace; the encoder then deletes its temporary file): the run reports failure only after it.
  const aborts: Array<Promise<void>> = [];
  let decodePid: number | undefined;
  const settleTeardown = async (): Promise<void> => {
    await Promise.allSettled(aborts);
    const t0 = performance.now();
    while (decodePid !== undefined && activeFfmpegPids().includes(decodePid) && performance.now() - t0 < 5000) {
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await new Promise<void>((resolvePromise, reject) => {
    const fail = (err: unknown): void => {
      void settleTeardown().then(() => reject(err));
    };
    const onAbort = (): void => {
      sub.unsubscribe();
      fail(interrupted());
    };
    const pipelineHooks: VideoPipelineHooks = {
      ...hooks,
      onEncodeFinish: (r) => {
        encodeResult = r;
        hooks.onEncodeFinish?.(r);
      },
      onSmoothStats: (s) => {
        smoothStats = s;
        hooks.onSmoothStats?.(s);
      },
      onDecodeStart: (h: DecodeHandle) => {
        decodePid = h.pid;
        deprioritize(h.pid);
        hooks.onDecodeStart?.(h);
      },
      onEncodeStart: (enc) => {
        deprioritize(enc.pid);
        hooks.onEncodeStart?.(enc);
      },
      onEncodeAbort: (done) => {
        aborts.push(done);
        hooks.onEncodeAbort?.(done);
      },
    };
    const sub = composeVideoPipeline(model, probe, tools, resolved, pipelineHooks).subscribe({
      next: (frame) => {
        frames++;
        if (frame.inferred) inferredFrames++;
        for (const s of STAGES) {
          const v = frame.ms[s];
          if (v !== undefined) {
            totals[s].totalMs += v;
            totals[s].count++;
          }
        }
        hooks.onFrame?.(frame);
        if (hooks.onProgress) {
          const elapsedMs = performance.now() - started;
          hooks.onProgress({ frames, totalFrames, elapsedMs, fps: (frames * 1000) / elapsedMs });
        }
      },
      error: (err: unknown) => {
        hooks.signal?.removeEventListener('abort', onAbort);
        fail(hooks.signal?.aborted ? interrupted() : err);
      },
      complete: () => {
        hooks.signal?.removeEventListener('abort', onAbort);
        resolvePromise();
      },
    });
    hooks.signal?.addEventListener('abort', onAbort, { once: true });
  });

  const elapsedMs = performance.now() - started;
  const stages = Object.fromEntries(
    STAGES.map((s) => [s, { totalMs: totals[s].totalMs, meanMs: totals[s].count ? totals[s].totalMs / totals[s].count : 0 }]),
  ) as StageReport;
  const report: VideoReport = {
    input,
    out: resolved.out,
    json: resolved.json,
    manifest: undefined,
    frames,
    inferredFrames,
    elapsedMs,
    fps: (frames * 1000) / elapsedMs,
    batchFrames: resolved.batchFrames,
    batchChoice,
    stages,
    smooth: smoothStats ?? { frames: 0, cuts: 0, switches: 0, flicker: 0 },
    encode: encodeResult!,
    probe,
    config: resolved,
  };
  if (config.manifest !== false) {
    const path = resolve(config.manifest ?? `${resolved.out}.manifest.json`);
    await writeJsonFile(path, runManifest(model, tools, report));
    report.manifest = path;
  }
  return report;
}

/** The manifest document: what ran, with what, how fast. */
export function runManifest(model: CamModel, tools: FfmpegTools, report: VideoReport): Record<string, unknown> {
  const { info } = model;
  const { probe, config } = report;
  return {
    camstream: camstreamVersion(),
    createdAt: new Date().toISOString(),
    input: {
      source: report.input,
      format: probe.format,
      codec: probe.codec,
      width: probe.displayWidth,
      height: probe.displayHeight,
      frameRate: `${probe.frameRate.num}/${probe.frameRate.den}`,
      durationSeconds: probe.duration,
      audioCodec: probe.audioCodec ?? null,
    },
    outputs: { video: report.out, json: report.json ?? null },
    model: {
      source: info.source,
      engine: info.engine,
      backend: info.backend,
      threads: info.threads,
      head: info.head,
      inputSize: info.preprocess.inputSize,
      resize: info.preprocess.resize,
      featureShape: info.featureShape,
      numClasses: info.numClasses,
    },
    versions: {
      camstream: camstreamVersion(),
      node: process.versions.node,
      ffmpeg: tools.ffmpeg.version,
      ffmpegPath: tools.ffmpeg.path,
      engine: { package: info.engine === 'onnx' ? 'onnxruntime-node' : '@tensorflow/tfjs-core', version: engineVersion(info.engine) ?? null },
    },
    settings: {
      topK: config.topK,
      batchFrames: config.batchFrames,
      batchMsPerFrame: report.batchChoice?.msPerFrame ?? null,
      everyFrames: config.everyFrames,
      maxQueueFrames: config.maxQueueFrames,
      maxFrames: config.maxFrames ?? null,
      decodeThreads: config.decodeThreads,
      encodeThreads: config.encodeThreads,
      preset: config.preset,
      crf: config.crf,
      strict: config.strict,
    },
    thresholds: { boxRule: config.localize.boxRule, threshold: config.localize.threshold },
    smoothing: { ...config.smooth, cutMeanAbsDiff: Number.isFinite(config.smooth.cutMeanAbsDiff) ? config.smooth.cutMeanAbsDiff : null },
    overlay: config.overlay,
    result: {
      frames: report.frames,
      inferredFrames: report.inferredFrames,
      audio: report.encode.audio,
      flicker: report.smooth.flicker,
      cuts: report.smooth.cuts,
      switches: report.smooth.switches,
    },
    timings: {
      wallMs: report.elapsedMs,
      fps: report.fps,
      stages: report.stages,
    },
  };
}
