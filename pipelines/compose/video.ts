/**
 * The offline video pipeline, built from a resolved configuration (a pure function of its inputs; nothing
 * runs until subscription, and each subscription is one independent run):
 *
 *   readVideo$ (ffmpeg: decode + scale to model size)
 *     -> inferCams (engine: forward + CAM, batched)
 *     -> smoothCams (EMA of raw maps, stable scale, hysteresis, cuts)
 *     -> localizeCams (boxes from the smoothed maps)
 *     -> renderOverlays (small packed RGBA overlay)
 *     -> writeOverlayVideo (ffmpeg: composite over the original at full size, H.264, audio copied)
 *     -> writeJsonLines (one line per frame)
 *
 * all under the offline policy (queueOffline: lossless, at most `maxQueueFrames` frames in flight).
 */
import { tap, type Observable } from 'rxjs';
import { normalizationRecord, type CamModel, type Preprocess } from '../../models/index.ts';
import type { DecodeHandle, EncodeResult, FfmpegTools, InputScheme, MediaInfo, VideoEncoder } from '../ffmpeg/index.ts';
import { writeJsonLines } from '../sinks/jsonl.ts';
import { writeOverlayVideo } from '../sinks/mp4.ts';
import { readVideo$ } from '../sources/video.ts';
import type { LocalizedFrame, RenderedFrame } from '../stages/frame.ts';
import { inferCams } from '../stages/infer.ts';
import { localizeCams } from '../stages/localize-cams.ts';
import type { ResolvedLocalizeConfig } from '../stages/localize.ts';
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
}

/** One JSONL line: a frame's classes (display order: the shown class first) with their boxes. */
export interface FrameLine {
  index: number;
  /** Seconds from the start of the input. */
  pts: number;
  top: Array<{
    index: number;
    label: string;
    /** Smoothed softmax probability in [0, 1]. */
    score: number;
    /** `[x1, y1, x2, y2]` in original frame pixels (0.1 px), or null when the map shows no evidence. */
    box: [number, number, number, number] | null;
  }>;
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
  return {
    index: frame.index,
    pts: round(frame.pts, 6),
    top: Array.from(cams.ids, (id, i) => {
      const b = frame.boxes[i];
      return {
        index: id,
        label: labels[id] ?? `class_${id}`,
        score: round(cams.probabilities[i], 5),
        box: b ? ([round(b[0], 1), round(b[1], 1), round(b[2], 1), round(b[3], 1)] as [number, number, number, number]) : null,
      };
    }),
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
  probe: MediaInfo,
  tools: FfmpegTools,
  config: VideoPipelineConfig,
  hooks: VideoPipelineHooks = {},
): Observable<RenderedFrame> {
  const { info } = model;
  const layout = layoutFor(model, probe, config.overlay);
  const normalization = normalizationRecord(info.preprocess);
  const withJson = (frames: Observable<RenderedFrame>): Observable<RenderedFrame> =>
    config.json === undefined ? frames : frames.pipe(writeJsonLines(config.json, (f: RenderedFrame) => frameLine(f, info.labels, normalization), hooks.onJsonFinish));
  const blocking = blocksJsThread(model);
  const { decode, infer, encode } = config;
  return queueOffline(
    (credits$) =>
      readVideo$(config.input, {
        probe,
        preprocess: info.preprocess,
        credits$,
        threads: decode.threads,
        strict: decode.strict,
        tools,
        schemes: decode.schemes,
        inputOptions: decode.inputOptions,
        maxFrames: decode.maxFrames,
        onStart: hooks.onDecodeStart,
        onDiagnostic: hooks.onWarning,
      }),
    (frames) => {
      // Per subscription (the stages are applied once per run).
      const gate = blocking ? downstreamGate() : undefined;
      return withJson(
        frames.pipe(
          inferCams(model, { topK: infer.topK, batchFrames: infer.batchFrames, everyFrames: infer.everyFrames, beforeInfer: gate?.whenIdle }),
          tap(() => gate?.enter()),
          smoothCams(config.smooth, hooks.onSmoothStats),
          localizeCams(info.preprocess, config.localize),
          renderOverlays(layout, info.labels, config.overlay, hooks.onWarning),
          writeOverlayVideo({
            input: config.input,
            out: config.out,
            layout,
            rate: probe.frameRate,
            audio: encode.audio,
            audioDurationSeconds: decode.maxFrames === undefined ? undefined : decode.maxFrames / probe.fps,
            inputOptions: decode.inputOptions,
            preset: encode.preset,
            crf: encode.crf,
            threads: encode.threads,
            tools,
            schemes: decode.schemes,
            onStart: hooks.onEncodeStart,
            onFinish: hooks.onEncodeFinish,
            onAbort: hooks.onEncodeAbort,
          }),
        ),
      ).pipe(tap(() => gate?.leave()));
    },
    config.queue,
  );
}
