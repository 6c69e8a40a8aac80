/**
 * `annotateVideo`: one recorded video (or stream) to an annotated H.264 MP4, a JSONL file with one line per
 * frame, and a run manifest. Resolves the configuration (video-config.ts), probes the input, settles the
 * batch size, runs the composed pipeline (compose/video.ts) with one subscription, and gathers the figures:
 * frames, fps, time per stage, flicker.
 */
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { Observable } from 'rxjs';
import { CamstreamError, InputError, normalizationRecord, type CamModel, type CamModelInfo } from '../../models/index.ts';
import {
  activeFfmpegPids,
  locateFfmpeg,
  probeMedia,
  readsOnce,
  type CpuTime,
  type DecodeHandle,
  type EncodeResult,
  type FfmpegTools,
  type MediaInfo,
} from '../ffmpeg/index.ts';
import { composeVideoPipeline, type VideoPipelineConfig, type VideoPipelineHooks } from '../compose/video.ts';
import { writeJsonFile } from '../sinks/manifest.ts';
import type { RenderedFrame, StageTimings, VideoFrame } from '../stages/frame.ts';
import type { BatchChoice } from '../stages/infer.ts';
import type { SmoothStats } from '../stages/smooth.ts';
import { lockOutput } from '../sinks/output-lock.ts';
import { resolveVideoConfig, settleVideoConfig, type ResolvedVideoConfig, type VideoConfig } from './video-config.ts';

/**
 * The run was stopped from outside (SIGINT, SIGTERM, an aborted signal). `signal` names the signal when
 * one did it; the CLI exits 128 + its number (130 for SIGINT, 143 for SIGTERM).
 */
export class InterruptedError extends CamstreamError {
  constructor(
    message: string,
    readonly signal?: NodeJS.Signals,
  ) {
    super('INTERRUPTED', message);
  }
}

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
  /** CPU time of the two ffmpeg children, as each reported it at exit (`-benchmark`). */
  ffmpegCpu: FfmpegCpuReport;
  config: VideoPipelineConfig;
}

/** One ffmpeg child's CPU time: user and system ms over all its threads, and core-ms per output frame. */
export interface ProcessCpuReport extends CpuTime {
  coreMsPerFrame: number;
}

/**
 * The ffmpeg children's CPU: `decoder` reads and decodes the input once, scales the model-size frames and
 * passes the full-size ones on; `compositor` composites and encodes. A child that reported nothing
 * (killed, or an ffmpeg without `-benchmark`) is undefined; `coreMsPerFrame` sums what was reported.
 */
export interface FfmpegCpuReport {
  decoder: ProcessCpuReport | undefined;
  compositor: ProcessCpuReport | undefined;
  coreMsPerFrame: number | undefined;
}

/** camstream's own version (package.json at the project root). */
export function camstreamVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** The installed version of the package behind a model's engine (`CamModelInfo.runtime`). */
export function engineVersion(info: CamModelInfo): string | undefined {
  return info.runtime.version ?? undefined;
}

const STAGES: Array<keyof StageTimings> = ['infer', 'smooth', 'localize', 'render', 'encode', 'json'];

/**
 * Runs the pipeline over `input` with `model` (which the caller owns and disposes). Resolves once the MP4,
 * the JSONL and the manifest are in place; rejects with the first error (FfmpegError naming the input and
 * quoting ffmpeg, ConfigError, engine errors) or InterruptedError, in every case after the pipeline was
 * torn down, leaving no output and no temporary file (ffmpeg children end within their kill grace).
 * The output is locked for the run (sinks/output-lock.ts): ConfigError while another live run writes it;
 * stale temporary files of dead runs beside the outputs are removed. Frames over `maxFramePixels` are an
 * InputError before decoding; in strict mode a decode that ends well short of the container's length fails.
 */
export async function annotateVideo(model: CamModel, input: string, config: VideoConfig, hooks: VideoRunHooks = {}): Promise<VideoReport> {
  const resolved = resolveVideoConfig(input, config, model);
  if (hooks.signal?.aborted) throw interruptedError(input);
  const lock = lockOutput(resolved.out, [resolved.json, resolved.manifest]);
  try {
    return await annotateLocked(model, input, resolved, config.tools ?? (await locateFfmpeg()), hooks);
  } finally {
    lock.release();
  }
}

function interruptedError(input: string): InterruptedError {
  return new InterruptedError(`interrupted while annotating ${input}; no output was written`);
}

/** `annotateVideo` once the output is locked. */
async function annotateLocked(model: CamModel, input: string, resolved: ResolvedVideoConfig, tools: FfmpegTools, hooks: VideoRunHooks): Promise<VideoReport> {
  const interrupted = (): InterruptedError => interruptedError(input);
  const throwIfAborted = (): void => {
    if (hooks.signal?.aborted) throw interrupted();
  };
  // A URL may serve one client only (many IP cameras), a pipe gives its bytes once: the decoding ffmpeg's
  // own listing is then the probe.
  const probe = !readsOnce(input, resolved.decode.schemes) ? await probeMedia(input, { tools, schemes: resolved.decode.schemes }) : undefined;
  if (probe) checkPixelBudget(input, probe, resolved.maxFramePixels);
  throwIfAborted();
  const { config: pipeline, batchChoice } = await settleVideoConfig(model, resolved);
  throwIfAborted();

  const tally = newTally();
  tally.probe = probe;
  let totalFrames = probe ? expectedFrames(probe, pipeline.decode.maxFrames) : undefined;
  const started = performance.now();
  const onFrame = (frame: RenderedFrame): void => {
    countFrame(tally, frame);
    hooks.onFrame?.(frame);
    if (hooks.onProgress) {
      const elapsedMs = performance.now() - started;
      hooks.onProgress({ frames: tally.frames, totalFrames, elapsedMs, fps: (tally.frames * 1000) / elapsedMs });
    }
  };
  const runHooks: VideoPipelineHooks = {
    ...tallyHooks(hooks, tally, lowerPriority(resolved.ffmpegNice)),
    onInputInfo: (info) => {
      checkPixelBudget(input, info, resolved.maxFramePixels);
      tally.probe = info;
      totalFrames = expectedFrames(info, pipeline.decode.maxFrames);
      hooks.onInputInfo?.(info);
    },
  };
  const frames$ = composeVideoPipeline(model, probe, tools, pipeline, runHooks);
  await runToEnd(frames$, tally, onFrame, hooks.signal, interrupted);
  const report = videoReport(input, tally.probe!, pipeline, tally, batchChoice, performance.now() - started);
  if (resolved.manifest === undefined) return report;
  await writeJsonFile(resolved.manifest, runManifest(model, tools, report));
  return { ...report, manifest: resolved.manifest };
}

/** Refuses a video whose frames are larger than `maxFramePixels` (InputError naming both sizes). */
function checkPixelBudget(input: string, probe: MediaInfo, maxFramePixels: number): void {
  const pixels = probe.width * probe.height;
  if (pixels > maxFramePixels) {
    throw new InputError(
      `${input}: frames of ${probe.width}x${probe.height} (${pixels} pixels) exceed the pixel budget of ${maxFramePixels} pixels per frame (maxFramePixels)`,
    );
  }
}

/** What a run gathers while its frames go by. */
interface RunTally {
  frames: number;
  inferredFrames: number;
  stages: Record<keyof StageTimings, { totalMs: number; count: number }>;
  encode: EncodeResult | undefined;
  smooth: SmoothStats | undefined;
  /** The decoder's pid: a failed run waits for it to be gone. */
  decodePid: number | undefined;
  /** The probe given or, for a URL, the decoder's listing. */
  probe: MediaInfo | undefined;
  /** The children, for their CPU figures at the end. */
  decoder: DecodeHandle | undefined;
  encoder: { cpu(): CpuTime | undefined } | undefined;
  /** Encoder teardowns under way (SIGTERM, SIGKILL after a grace, then the temporary file deleted). */
  aborts: Array<Promise<void>>;
}

function newTally(): RunTally {
  const stages = Object.fromEntries(STAGES.map((s) => [s, { totalMs: 0, count: 0 }])) as RunTally['stages'];
  return {
    frames: 0,
    inferredFrames: 0,
    stages,
    encode: undefined,
    smooth: undefined,
    decodePid: undefined,
    probe: undefined,
    decoder: undefined,
    encoder: undefined,
    aborts: [],
  };
}

function countFrame(tally: RunTally, frame: RenderedFrame): void {
  tally.frames++;
  if (frame.inferred) tally.inferredFrames++;
  for (const s of STAGES) {
    const v = frame.ms[s];
    if (v !== undefined) {
      tally.stages[s].totalMs += v;
      tally.stages[s].count++;
    }
  }
}

/** Frames the run should give (the container's count or estimate, capped by `maxFrames`), when known. */
function expectedFrames(probe: MediaInfo, maxFrames: number | undefined): number | undefined {
  const known = probe.frameCount ?? probe.estimatedFrameCount;
  return maxFrames !== undefined ? Math.min(maxFrames, known ?? Number.POSITIVE_INFINITY) : known;
}

/** Gives a child process the nice value `nice` (0 leaves it as it is). */
function lowerPriority(nice: number): (pid: number | undefined) => void {
  return (pid) => {
    if (nice === 0 || pid === undefined) return;
    try {
      setPriority(pid, nice);
    } catch {
      // Only an optimisation: a child that already exited, or a platform without priorities.
    }
  };
}

/** The caller's hooks, wrapped to fill `tally` and to lower the ffmpeg children's priority first. */
function tallyHooks(hooks: VideoRunHooks, tally: RunTally, deprioritize: (pid: number | undefined) => void): VideoPipelineHooks {
  return {
    ...hooks,
    onEncodeFinish: (r) => {
      tally.encode = r;
      hooks.onEncodeFinish?.(r);
    },
    onSmoothStats: (s) => {
      tally.smooth = s;
      hooks.onSmoothStats?.(s);
    },
    onDecodeStart: (h: DecodeHandle) => {
      tally.decodePid = h.pid;
      tally.decoder = h;
      deprioritize(h.pid);
      hooks.onDecodeStart?.(h);
    },
    onEncodeStart: (enc) => {
      tally.encoder = enc;
      deprioritize(enc.pid);
      hooks.onEncodeStart?.(enc);
    },
    onEncodeAbort: (done) => {
      tally.aborts.push(done);
      hooks.onEncodeAbort?.(done);
    },
  };
}

/**
 * Teardown of a failed or stopped run is asynchronous (children get SIGTERM, then SIGKILL after a grace;
 * the encoder then deletes its temporary file): the run reports failure only after it.
 */
async function settleTeardown(tally: RunTally): Promise<void> {
  // An error can reach the run before the stages unsubscribe (an error from the source, relayed by the
  // queue): their aborts are registered just after, so wait until no new one appears.
  for (let seen = -1; seen !== tally.aborts.length; ) {
    seen = tally.aborts.length;
    await Promise.allSettled(tally.aborts);
  }
  const t0 = performance.now();
  while (tally.decodePid !== undefined && activeFfmpegPids().includes(tally.decodePid) && performance.now() - t0 < 5000) {
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The run's one subscription: resolves when `frames$` completes; rejects with its error, or with
 * `interrupted()` when `signal` aborts, in both cases after `settleTeardown`.
 */
function runToEnd(
  frames$: Observable<RenderedFrame>,
  tally: RunTally,
  onFrame: (frame: RenderedFrame) => void,
  signal: AbortSignal | undefined,
  interrupted: () => InterruptedError,
): Promise<void> {
  return new Promise<void>((resolvePromise, reject) => {
    const fail = (err: unknown): void => {
      void settleTeardown(tally).then(() => reject(err));
    };
    const onAbort = (): void => {
      sub.unsubscribe();
      fail(interrupted());
    };
    const sub = frames$.subscribe({
      next: onFrame,
      error: (err: unknown) => {
        signal?.removeEventListener('abort', onAbort);
        fail(signal?.aborted ? interrupted() : err);
      },
      complete: () => {
        signal?.removeEventListener('abort', onAbort);
        resolvePromise();
      },
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function videoReport(
  input: string,
  probe: MediaInfo,
  config: VideoPipelineConfig,
  tally: RunTally,
  batchChoice: BatchChoice | undefined,
  elapsedMs: number,
): VideoReport {
  const stages = Object.fromEntries(
    STAGES.map((s) => [s, { totalMs: tally.stages[s].totalMs, meanMs: tally.stages[s].count ? tally.stages[s].totalMs / tally.stages[s].count : 0 }]),
  ) as StageReport;
  return {
    input,
    out: config.out,
    json: config.json,
    manifest: undefined,
    frames: tally.frames,
    inferredFrames: tally.inferredFrames,
    elapsedMs,
    fps: (tally.frames * 1000) / elapsedMs,
    batchFrames: config.infer.batchFrames,
    batchChoice,
    stages,
    smooth: tally.smooth ?? { frames: 0, cuts: 0, switches: 0, flicker: 0 },
    encode: tally.encode!,
    probe,
    ffmpegCpu: ffmpegCpuReport(tally),
    config,
  };
}

function ffmpegCpuReport(tally: RunTally): FfmpegCpuReport {
  const per = (cpu: CpuTime | undefined): ProcessCpuReport | undefined =>
    cpu && tally.frames > 0 ? { ...cpu, coreMsPerFrame: (cpu.userMs + cpu.systemMs) / tally.frames } : undefined;
  const decoder = per(tally.decoder?.cpu());
  const compositor = per(tally.encoder?.cpu());
  const known = [decoder, compositor].filter((c): c is ProcessCpuReport => c !== undefined);
  return { decoder, compositor, coreMsPerFrame: known.length ? known.reduce((s, c) => s + c.coreMsPerFrame, 0) : undefined };
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
      normalization: normalizationRecord(info.preprocess),
      featureShape: info.featureShape,
      numClasses: info.numClasses,
    },
    versions: {
      camstream: camstreamVersion(),
      node: process.versions.node,
      ffmpeg: tools.ffmpeg.version,
      ffmpegPath: tools.ffmpeg.path,
      engine: { package: info.runtime.package, version: info.runtime.version },
    },
    settings: {
      topK: config.infer.topK,
      batchFrames: config.infer.batchFrames,
      batchMsPerFrame: report.batchChoice?.msPerFrame ?? null,
      everyFrames: config.infer.everyFrames,
      maxQueueFrames: config.queue.maxQueueFrames,
      maxFrames: config.decode.maxFrames ?? null,
      decodeThreads: config.decode.threads,
      encodeThreads: config.encode.threads,
      preset: config.encode.preset,
      crf: config.encode.crf,
      strict: config.decode.strict,
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
      ffmpegCpu: report.ffmpegCpu,
    },
  };
}
