/**
 * The offline video pipeline, built from a resolved configuration (a pure function of its inputs; nothing
 * runs until subscription, and each subscription is one independent run):
 *
 *   readVideo$ (ffmpeg: decode to model-size frames for JS; for a URL or pipe also full-size frames + audio
 *               for the compositor, so the input is read once)
 *     -> inferCams (engine: forward + CAM, batched)
 *     -> smoothCams (EMA of raw maps, stable scale, hysteresis, cuts)
 *     -> localizeCams (boxes from the smoothed maps)
 *     -> renderOverlays (small packed yuva420p overlay)
 *     -> writeCompositeVideo (ffmpeg: composite over the full-size frames, a file's decoded again, their
 *                             timestamps kept, H.264, audio)
 *     -> writeJsonLines (one line per frame)
 *
 * all under the offline policy (queueOffline: lossless, at most `maxQueueFrames` frames in flight).
 */
import type { Readable } from 'node:stream';
import { finalize, Observable, Subject, tap, type OperatorFunction, type Subscription } from 'rxjs';
import { normalizationRecord, type CamModel, type Preprocess } from '../../models/index.ts';
import { FfmpegError, mp4CopiesAudio, readsOnce, type DecodeHandle, type EncodeResult, type FfmpegTools, type InputScheme, type MediaInfo, type VideoEncoder } from '../ffmpeg/index.ts';
import { writeJsonLines } from '../sinks/jsonl.ts';
import { writeCompositeVideo, type CompositeBase } from '../sinks/composite-video.ts';
import { readVideo$ } from '../sources/video.ts';
import type { LocalizedFrame, RenderedFrame, VideoFrame } from '../stages/frame.ts';
import { inferCams } from '../stages/infer.ts';
import { localizeCams } from '../stages/localize-cams.ts';
import { boxPixels, type ResolvedLocalizeConfig } from '../stages/localize.ts';
import { queueOffline, type OfflineQueueConfig } from '../stages/queue-offline.ts';
import { overlayLayout, renderOverlays, type OverlayLayout, type VideoOverlayConfig } from '../stages/render.ts';
import { smoothCams, type SmoothConfig, type SmoothStats } from '../stages/smooth.ts';

/** How the input is read: the model-size decode. Defaults in jobs/video-config.ts (DEFAULT_VIDEO_CONFIG). */
export interface VideoDecodeSettings {
  /** ffmpeg decoder threads of the model-size decode; 0 lets ffmpeg choose. Default 1. */
  threads: number;
  /** Fail on the first damaged packet (`-xerror`): a truncated or corrupt input is an error, not a short video. Default true. */
  strict: boolean;
  /** Stop after this many frames (a preview or a test); undefined = the whole input. Default undefined. */
  maxFrames: number | undefined;
  /** Trusted ffmpeg input options (`['-rtsp_transport', 'tcp']`). Default none. */
  inputOptions: readonly string[];
  /** Allowed input schemes. Default all (file, http, https, rtsp). */
  schemes: readonly InputScheme[];
}

/** The inference stage of a run (see InferStageConfig). */
export interface VideoInferSettings {
  /** Classes per frame (maps, boxes, labels). Default 5. */
  topK: number;
  /** Frames per engine call. */
  batchFrames: number;
  /** Infer every N-th frame; the frames between reuse the last result. Default 1. */
  everyFrames: number;
}

/** The compositing encoder (x264 over the original frames). */
export interface VideoEncodeSettings {
  /** ffmpeg threads of the compositing encoder; 0 lets ffmpeg choose. Default 0. */
  threads: number;
  /** x264 preset. Default `veryfast`. */
  preset: string;
  /** x264 CRF, 0-51. Default 23. */
  crf: number;
  /** Copy the input's audio. Default true. */
  audio: boolean;
}

/** Everything a run needs, already validated and grouped by stage (see jobs/video-config.ts, `resolveVideoConfig`). */
export interface VideoPipelineConfig {
  input: string;
  out: string;
  /** JSONL output; none when undefined. */
  json: string | undefined;
  decode: Readonly<VideoDecodeSettings>;
  infer: Readonly<VideoInferSettings>;
  /** The offline policy: frames in flight at most. */
  queue: Readonly<Required<OfflineQueueConfig>>;
  smooth: Required<SmoothConfig>;
  localize: ResolvedLocalizeConfig;
  overlay: Required<VideoOverlayConfig>;
  encode: Readonly<VideoEncodeSettings>;
}

/** Callbacks a run may watch; none is needed. */
export interface VideoPipelineHooks {
  onDecodeStart?: (handle: DecodeHandle) => void;
  onEncodeStart?: (encoder: VideoEncoder) => void;
  onEncodeFinish?: (result: EncodeResult) => void;
  /** The encoder was aborted; the promise settles once its ffmpeg is gone and its temporary file deleted. */
  onEncodeAbort?: (done: Promise<void>) => void;
  onJsonFinish?: (info: { path: string; lines: number }) => void;
  onSmoothStats?: (stats: SmoothStats) => void;
  /** Damaged data ffmpeg concealed, text that could not be drawn. */
  onWarning?: (message: string) => void;
  /**
   * The input as the decoding ffmpeg listed it, when the run was given no probe (a URL: one connection
   * only). Called before the first frame; throwing fails the run.
   */
  onInputInfo?: (info: MediaInfo) => void;
}

/** One JSONL line: a frame's classes by smoothed score, best first, with their boxes, and the class shown. */
export interface FrameLine {
  index: number;
  /** Seconds from the start of the input. */
  pts: number;
  /** Best first by `score`. */
  top: Array<{
    index: number;
    label: string;
    /** Smoothed softmax probability in [0, 1]. */
    score: number;
    /** `[x1, y1, x2, y2]` in original frame pixels, whole pixels (`boxPixels`), or null when the map shows no evidence. */
    box: [number, number, number, number] | null;
  }>;
  /**
   * The class the overlay shows (its map, its box): the one hysteresis holds, which may rank below
   * another in `top` until that one has led for long enough. Always one of `top`.
   */
  shown: { index: number; label: string };
  /** True when this frame was run through the model (false: `everyFrames` reused the previous result). */
  inferred: boolean;
  /** A scene cut was detected here (smoothing restarted). */
  cut: boolean;
  /** The model's input normalization and resize filter (models `normalizationRecord`), when given. */
  normalization?: NormalizationRecord;
}

/** What `normalizationRecord` returns. */
export type NormalizationRecord = ReturnType<typeof normalizationRecord>;

/** `v` with at most `digits` decimals (no binary noise such as 0.30000000000000004 in the JSON). */
const round = (v: number, digits: number): number => Number(v.toFixed(digits));

/** The JSONL record of a frame. */
export function frameLine(frame: LocalizedFrame, labels: readonly string[], normalization?: NormalizationRecord): FrameLine {
  const { cams } = frame;
  const labelOf = (id: number): string => labels[id] ?? `class_${id}`;
  const shownId = cams.ids[cams.shown];
  return {
    index: frame.index,
    pts: round(frame.pts, 6),
    top: Array.from(cams.ids, (id, i) => {
      const b = frame.boxes[i];
      return { index: id, label: labelOf(id), score: round(cams.probabilities[i], 5), box: b ? boxPixels(b) : null };
    }),
    shown: { index: shownId, label: labelOf(shownId) },
    inferred: frame.inferred,
    cut: cams.cut,
    ...(normalization ? { normalization } : {}),
  };
}

/**
 * Counts frames between the engine and the end of the pipeline; `whenIdle()` resolves once none is left.
 * Used to keep an engine that blocks the JS thread from starting while earlier frames still wait to be
 * written to the encoder (see InferStageConfig.beforeInfer).
 */
export function downstreamGate(): { enter: () => void; leave: () => void; whenIdle: () => Promise<void> } {
  let inFlight = 0;
  let waiters: Array<() => void> = [];
  return {
    enter: () => {
      inFlight++;
    },
    leave: () => {
      inFlight--;
      if (inFlight === 0) {
        const w = waiters;
        waiters = [];
        for (const resolve of w) resolve();
      }
    },
    whenIdle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
  };
}

/** True when the model's forward pass runs synchronously on the JS thread (`CamModelInfo.runsOnJsThread`). */
export function blocksJsThread(model: CamModel): boolean {
  return model.info.runsOnJsThread;
}

/** The overlay layout of a run (sizes of the packed frames; the map's place over the video). */
export function layoutFor(model: CamModel, probe: MediaInfo, overlay: VideoOverlayConfig): OverlayLayout {
  const [mh, mw] = model.info.featureShape;
  return overlayLayout(probe.displayWidth, probe.displayHeight, [mh, mw], model.info.preprocess as Preprocess, overlay);
}

/**
 * The whole run as one cold Observable of finished frames (each emitted after the encoder took it and its
 * JSON line was written); it completes once the MP4 (and the JSONL) are in place. Unsubscribing stops
 * both ffmpeg children and deletes the temporary outputs.
 */
export function composeVideoPipeline(
  model: CamModel,
  given: MediaInfo | undefined,
  tools: FfmpegTools,
  config: VideoPipelineConfig,
  hooks: VideoPipelineHooks = {},
): Observable<RenderedFrame> {
  const { info } = model;
  const normalization = normalizationRecord(info.preprocess);
  const withJson = (frames: Observable<RenderedFrame>): Observable<RenderedFrame> =>
    config.json === undefined ? frames : frames.pipe(writeJsonLines(config.json, (f: RenderedFrame) => frameLine(f, info.labels, normalization), hooks.onJsonFinish));
  const blocking = blocksJsThread(model);
  const { decode, infer, encode } = config;
  /**
   * Per subscription: the probe once known; whether the compositor decodes the input again (a regular
   * file), else the decode run's full-size stream for it.
   */
  let run: { probe: MediaInfo | undefined; readTwice: boolean; base: Deferred<Readable> };
  return queueOffline(
    (credits$) => {
      const current = (run = { probe: given, readTwice: !readsOnceOrRefused(config.input, decode.schemes), base: deferred<Readable>() });
      // A URL's audio codec is unknown until the listing: copy it, the compositor then copies or encodes.
      const audio = !encode.audio || given?.hasAudio === false ? 'none' : given && !mp4CopiesAudio(given.audioCodec) ? 'pcm' : 'copy';
      return readVideo$(config.input, {
        probe: given,
        onInputInfo: (probe) => {
          current.probe = probe;
          hooks.onInputInfo?.(probe);
        },
        passthrough: current.readTwice ? undefined : {
          audio,
          // The video stops at maxFrames; the audio stops with the output's video (-shortest) and here
          // well after, so a long input is not read to its end for its audio.
          durationSeconds: decode.maxFrames === undefined || !given ? undefined : (2 * decode.maxFrames) / given.fps + 1,
        },
        measureCpu: true,
        preprocess: info.preprocess,
        credits$,
        threads: decode.threads,
        strict: decode.strict,
        tools,
        schemes: decode.schemes,
        inputOptions: decode.inputOptions,
        maxFrames: decode.maxFrames,
        onStart: (handle) => {
          if (handle.passthrough) current.base.resolve(handle.passthrough);
          hooks.onDecodeStart?.(handle);
        },
        onDiagnostic: hooks.onWarning,
      }).pipe(finalize(() => current.base.reject(new FfmpegError(`decoding ${config.input} ended before it started`, { file: config.input }))));
    },
    (frames) => {
      const current = run;
      return frames.pipe(
        onceProbed(
          () => current.probe,
          config.input,
          (probe) => (src) =>
            stagesFor(probe, current.readTwice ? { file: config.input, startTime: probe.startTime, threads: decode.threads } : { stream: current.base.promise }, src),
        ),
      );
    },
    config.queue,
  );

  /** The stages after decoding, once the probe (the frame size, the rate, the audio) is known. */
  function stagesFor(probe: MediaInfo, base: CompositeBase, frames: Observable<VideoFrame>): Observable<RenderedFrame> {
      const layout = layoutFor(model, probe, config.overlay);
      // Per subscription (the stages are applied once per run).
      const gate = blocking ? downstreamGate() : undefined;
      let smoothStats: SmoothStats | undefined;
      return withJson(
        frames.pipe(
          inferCams(model, { topK: infer.topK, batchFrames: infer.batchFrames, everyFrames: infer.everyFrames, beforeInfer: gate?.whenIdle }),
          tap(() => gate?.enter()),
          smoothCams(config.smooth, (s) => {
            smoothStats = s;
          }),
          // Told after smoothCams' figures (it completes first): both reach the hook as one record.
          localizeCams(info.preprocess, config.localize, (l) => {
            if (smoothStats) hooks.onSmoothStats?.({ ...smoothStats, boxFlicker: l.boxFlicker });
          }),
          renderOverlays(layout, info.labels, config.overlay, hooks.onWarning),
          writeCompositeVideo({
            input: config.input,
            out: config.out,
            layout,
            rate: probe.frameRate,
            base,
            audio: !encode.audio || !probe.hasAudio ? 'none' : mp4CopiesAudio(probe.audioCodec) ? 'copy' : 'aac',
            shortest: decode.maxFrames !== undefined,
            maxFrames: decode.maxFrames,
            lastFrameEnds: decode.maxFrames === undefined ? probe.videoEnd : undefined,
            preset: encode.preset,
            crf: encode.crf,
            threads: encode.threads,
            tools,
            measureCpu: true,
            onStart: hooks.onEncodeStart,
            onFinish: hooks.onEncodeFinish,
            onAbort: hooks.onEncodeAbort,
          }),
        ),
      ).pipe(tap(() => gate?.leave()));
  }
}

/** `readsOnce`, and true for an input that is not allowed (the decode run reports it in its own words). */
function readsOnceOrRefused(input: string, schemes: readonly InputScheme[]): boolean {
  try {
    return readsOnce(input, schemes);
  } catch {
    return true;
  }
}

/** A promise with its settle functions; settling twice is a no-op. */
interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody may be waiting (a run that failed before its compositor started).
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/**
 * Applies `build(probe)` to the source once the probe is known: at once when `probe()` already returns
 * one, else at the first frame (the decode run parses its listing before it emits any). Frames are
 * passed on in order. A source that ends without a frame and without a probe is an error.
 */
function onceProbed<T, R>(probe: () => MediaInfo | undefined, input: string, build: (probe: MediaInfo) => OperatorFunction<T, R>): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      let inner: Subject<T> | undefined;
      let innerSub: Subscription | undefined;
      const start = (p: MediaInfo): Subject<T> => {
        const subject = new Subject<T>();
        inner = subject;
        innerSub = build(p)(subject).subscribe(subscriber);
        return subject;
      };
      const known = probe();
      if (known) start(known);
      const sourceSub = source.subscribe({
        next: (frame) => {
          if (inner) {
            inner.next(frame);
            return;
          }
          const p = probe();
          if (p) start(p).next(frame);
          else subscriber.error(new FfmpegError(`${input}: ffmpeg listed no video stream before the first frame`, { file: input }));
        },
        error: (err: unknown) => (inner ? inner.error(err) : subscriber.error(err)),
        complete: () => (inner ? inner.complete() : subscriber.error(new FfmpegError(`${input}: no video frames`, { file: input }))),
      });
      return () => {
        sourceSub.unsubscribe();
        innerSub?.unsubscribe();
      };
    });
}
