/**
 * `writeOverlayVideo`: the MP4 sink. One ffmpeg reads the packed overlay frames from its stdin (input 0)
 * and the original video itself (input 1), composites them at full resolution (stages/render.ts,
 * `compositeFilter`), copies the original's audio, and writes H.264 to a temporary name renamed onto the
 * target only after a clean exit (ffmpeg/encode.ts). Full-resolution pixels never pass through JS.
 */
import type { OperatorFunction } from 'rxjs';
import { encodeVideo, type FfmpegTools, type InputScheme, type Rational } from '../ffmpeg/index.ts';
import type { StageTimings } from '../stages/frame.ts';
import { compositeFilter, type OverlayLayout } from '../stages/render.ts';
import { encoderSink, type EncoderSinkHooks } from './encoder-sink.ts';

export interface OverlayVideoConfig extends EncoderSinkHooks {
  /** The original video (file or whitelisted URL): composited under the overlay, and the audio source. */
  input: string;
  /** Output file (`.mp4`). */
  out: string;
  layout: OverlayLayout;
  /** The input's frame rate; the output has one frame per input frame at this rate. */
  rate: Rational;
  /** Copy (or, when the codec does not fit MP4, re-encode to AAC) the input's first audio stream. Default true. */
  audio?: boolean;
  /** Cut the audio to this many seconds (a run limited to its first frames). Default: all of it. */
  audioDurationSeconds?: number;
  /** Input options for the original (for example `['-rtsp_transport', 'tcp']`). */
  inputOptions?: readonly string[];
  /** x264 preset. Default `veryfast`. */
  preset?: string;
  /** x264 constant rate factor, 0-51. Default 23. */
  crf?: number;
  /** ffmpeg threads (decoding the original, filtering, encoding); 0 lets ffmpeg choose. Default 0. */
  threads?: number;
  tools?: FfmpegTools;
  schemes?: readonly InputScheme[];
}

/** What `writeOverlayVideo` needs of a frame record. */
export interface OverlaySinkInput {
  /** Packed yuva420p, `layout.width * layout.height * 5 / 2` bytes. Not modified afterwards (ffmpeg reads it later). */
  overlay: Uint8Array;
  /** Called once ffmpeg's pipe has taken `overlay`: its owner may reuse it (renderOverlays' buffers). */
  releaseOverlay?: () => void;
  ms?: StageTimings;
}

/**
 * Writes each frame's overlay, in order, and passes the frame on once ffmpeg has taken it (so credits of
 * the offline queue return at the encoder's pace). Completes after the file is renamed into place.
 * Lossless. Error or unsubscribe aborts ffmpeg and deletes the temporary file: no output is left.
 * `ms.encode` gets the time the frame waited for the pipe.
 */
export function writeOverlayVideo<T extends OverlaySinkInput>(config: OverlayVideoConfig): OperatorFunction<T, T> {
  return encoderSink<T>(
    () =>
      encodeVideo({
        out: config.out,
        width: config.layout.width,
        height: config.layout.height,
        fps: config.rate,
        inputPixFmt: 'yuva420p',
        inputs: [{ input: config.input, options: config.inputOptions }],
        filterComplex: compositeFilter(config.layout, config.rate),
        audioFrom: config.audio === false ? undefined : { input: config.input, durationSeconds: config.audioDurationSeconds },
        preset: config.preset,
        crf: config.crf,
        threads: config.threads,
        tools: config.tools,
        schemes: config.schemes,
      }),
    (encoder, frame) => encoder.write(frame.overlay, undefined, frame.releaseOverlay),
    config,
  );
}
