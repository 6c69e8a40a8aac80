/**
 * The record a video frame carries through the pipeline. Each stage returns a new record with its own
 * fields added (never mutating what an earlier stage wrote, except the `ms` timings bag), so the sink
 * decides what leaves: the encoder takes `overlay`, the JSON sink takes `cams` and `boxes`.
 *
 * No tensor is held anywhere in a record: engines return plain arrays (models/types.ts, CamResult).
 */
import type { Box, CamResult, Frame } from '../../models/index.ts';
import type { SmoothedCams } from './smooth.ts';

/** Milliseconds each stage spent on this frame (set by the stages; absent when a stage did not run). */
export interface StageTimings {
  /** Engine time attributed to this frame (a batch's time divided by its frames). */
  infer?: number;
  smooth?: number;
  localize?: number;
  render?: number;
  /** Time waiting for the encoder to take the frame (ffmpeg backpressure). */
  encode?: number;
  /** Time writing the JSON line. */
  json?: number;
}

/** A decoded frame: where it is in the video, its full size, and its pixels at the model's input size. */
export interface VideoFrame {
  /** 0-based position in the decoded stream. */
  index: number;
  /** Presentation time, seconds from the start of the input. */
  pts: number;
  /** Full (display) size of the source frame, pixels. The full-size pixels never enter JS. */
  width: number;
  height: number;
  /** The frame scaled to the model's input size by ffmpeg: what the engine and the cut detector see. */
  pixels: Frame;
  ms: StageTimings;
}

/** After `inferCams`. */
export interface InferredFrame extends VideoFrame {
  /** The engine's raw result (plain arrays). On a frame skipped by `everyFrames`, the last inferred result. */
  result: CamResult;
  /** False when this frame reused the previous frame's result (`everyFrames` > 1). */
  inferred: boolean;
}

/** After `smoothCams`. */
export interface SmoothedFrame extends InferredFrame {
  cams: SmoothedCams;
}

/** After `localizeCams`: one box per class of `cams.ids` (frame pixels), null where the map has no evidence. */
export interface LocalizedFrame extends SmoothedFrame {
  boxes: Array<Box | null>;
}

/** After `renderOverlays`: the packed yuva420p overlay frame the compositor reads (see render.ts). */
export interface RenderedFrame extends LocalizedFrame {
  overlay: Uint8Array;
  /** Gives `overlay` back to the render stage for a later frame; the sink calls it once ffmpeg has the bytes. */
  releaseOverlay: () => void;
}
