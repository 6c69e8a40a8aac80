/**
 * `writeCompositeVideo`: the MP4 sink that lays the packed overlay frames (stdin, IVF: each carries its
 * frame's timestamp) over the full-size frames of the input and writes H.264 with the input's own
 * timestamps: a variable-rate clip keeps its frame count, timestamps and duration. The full-size frames
 * come one of two ways (`CompositeBase`):
 * - a regular file is decoded a second time by this sink's ffmpeg. Reading it twice costs a decode, but
 *   the decode run then writes only model-size frames and no full-size frame crosses JS: about 1 core-ms
 *   per 720p frame less in the decoder and 8-10% more frames per second end to end (embedded model, 720p);
 * - a URL or a pipe, which can be read only once, comes from the decode run that fed the model: it also
 *   writes the same frames at full size, with their timestamps and the input's audio, as a NUT stream
 *   (ffmpeg/decode.ts, `passthrough`) that passes JS as bytes on its way from one ffmpeg to the other.
 * The result goes to a temporary name renamed onto the target after a clean exit (ffmpeg/encode.ts).
 */
import type { Readable } from 'node:stream';
import type { OperatorFunction } from 'rxjs';
import { encodeVideo, type EncodeInput, type FfmpegTools, type Rational } from '../ffmpeg/index.ts';
import type { StageTimings } from '../stages/frame.ts';
import type { OverlayLayout } from '../stages/render.ts';
import { encoderSink, type EncoderSinkHooks } from './encoder-sink.ts';

export interface CompositeVideoConfig extends EncoderSinkHooks {
  /** The input as the user named it (messages only). */
  input: string;
  /** Output file (`.mp4`). */
  out: string;
  layout: OverlayLayout;
  /** The input's nominal frame rate (the encoder's rate control); timestamps come from the frames. */
  rate: Rational;
  /** Where the full-size frames (and the audio) come from. */
  base: CompositeBase;
  /** The base's audio: `copy` into the MP4, encode `aac`, or `none` (it carries none). */
  audio: 'copy' | 'aac' | 'none';
  /**
   * When the input's last frame ends (`MediaInfo.videoEnd`) where the run goes to the input's end; older
   * ffmpegs lose the last frame's duration and the MP4 is mended to this (see `EncodeConfig.lastFrameEnds`).
   */
  lastFrameEnds?: number;
  /** Stop after this many frames (a file base is otherwise read to its end). */
  maxFrames?: number;
  /** End the output with its video (a run limited to its first frames, whose stream carries more audio). */
  shortest?: boolean;
  /** x264 preset. Default `veryfast`. */
  preset?: string;
  /** x264 constant rate factor, 0-51. Default 23. */
  crf?: number;
  /** ffmpeg threads (filtering, encoding); 0 lets ffmpeg choose. Default 0. */
  threads?: number;
  tools?: FfmpegTools;
  /** Bytes of the full-size stream held in JS while the compositor waits for overlays. Default 64 MiB or 48 frames, the larger. */
  streamBufferBytes?: number;
  /** Have ffmpeg report its CPU time at exit (`VideoEncoder.cpu()`). Default false. */
  measureCpu?: boolean;
}

/**
 * The full-size frames under the overlays: `stream`, the decode run's NUT stream
 * (`DecodeHandle.passthrough`) once it runs; or `file`, a regular file the compositor decodes again.
 * Its timestamps are moved back by the file's `startTime` (the container's, from the probe), as the
 * decode run's are, so that each overlay meets the frame it was made from; `threads` are its decoder's.
 */
export type CompositeBase = { stream: Promise<Readable> } | { file: string; startTime: number | undefined; threads: number };

/** What `writeCompositeVideo` needs of a frame record. */
export interface CompositeSinkInput {
  /** The frame's timestamp, seconds, as the decode run gave it. */
  pts: number;
  /** Packed yuva420p, `layout.width * layout.height * 5 / 2` bytes. Not modified afterwards (ffmpeg reads it later). */
  overlay: Uint8Array;
  /** Called once ffmpeg's pipe has taken `overlay`: its owner may reuse it (renderOverlays' buffers). */
  releaseOverlay?: () => void;
  ms?: StageTimings;
}

/**
 * The compositing graph: the packed overlay frame cut into its heat and annotation layers, the heat
 * enlarged to the annotation layer and the annotations laid over it there (small), then that one layer
 * enlarged to the full frame and laid over the full-size frames of input 1: one full-size scale and one
 * full-size blend per frame instead of two of each (about 2 core-ms per 720p frame less). The overlay
 * filter pairs each frame with the last overlay frame at or before its timestamp, which is its own
 * (ivf.ts rounds down); after the overlay stream ends its last frame stays. The layers of
 * `compositeFilter` (stages/render.ts), without its constant-rate retiming.
 */
export function timedCompositeFilter(layout: OverlayLayout): string {
  const { frameWidth: W, frameHeight: H, annWidth: aw, annHeight: ah } = layout;
  return [
    `[0:v]split=2[p0][p1]`,
    `[p1]crop=${layout.heatWidth}:${layout.heatHeight}:0:${layout.heatTop},scale=${aw}:${ah}:flags=bilinear[heat]`,
    `[p0]crop=${aw}:${ah}:0:0[ann]`,
    `[heat][ann]overlay=format=yuv420[layer]`,
    `[layer]scale=${W}:${H}:flags=bilinear[big]`,
    `[1:v:0][big]overlay=format=yuv420,pad=ceil(iw/2)*2:ceil(ih/2)*2[vout]`,
  ].join(';');
}

/**
 * Writes each frame's overlay with its timestamp, in order, and passes the frame on once ffmpeg has
 * taken it (credits of the offline queue return at the compositor's pace). Completes after the file is
 * renamed into place. Lossless. Error or unsubscribe aborts ffmpeg and deletes the temporary file.
 * `ms.encode` gets the time the frame waited for the pipe.
 */
export function writeCompositeVideo<T extends CompositeSinkInput>(config: CompositeVideoConfig): OperatorFunction<T, T> {
  const { frameWidth, frameHeight } = config.layout;
  const frameBytes = Math.ceil(frameWidth / 2) * 2 * Math.ceil(frameHeight / 2) * 2 * 1.5;
  return encoderSink<T>(
    () =>
      baseInput(config, frameBytes).then((base) =>
        encodeVideo({
          out: config.out,
          width: config.layout.width,
          height: config.layout.height,
          fps: config.rate,
          inputPixFmt: 'yuva420p',
          frameTimestamps: true,
          inputs: [base],
          filterComplex: timedCompositeFilter(config.layout),
          audioFromInput: config.audio === 'none' ? undefined : { input: 0, codec: config.audio },
          shortest: config.shortest,
          maxFrames: config.maxFrames,
          lastFrameEnds: config.lastFrameEnds,
          preset: config.preset,
          crf: config.crf,
          threads: config.threads,
          tools: config.tools,
          measureCpu: config.measureCpu,
        }),
      ),
    (encoder, frame) => encoder.write(frame.overlay, frame.pts, frame.releaseOverlay),
    config,
  );
}

/** The compositor's input 1: the NUT stream once the decode run has it, or the file read again. */
export async function baseInput(config: Pick<CompositeVideoConfig, 'input' | 'base' | 'streamBufferBytes'>, frameBytes: number): Promise<EncodeInput> {
  const base = config.base;
  if ('file' in base) {
    const shift = base.startTime ? ['-itsoffset', String(-base.startTime)] : [];
    return { input: base.file, options: ['-thread_queue_size', '64', '-threads', String(base.threads), ...shift] };
  }
  return {
    input: config.input,
    stream: await base.stream,
    options: ['-thread_queue_size', '64', '-probesize', '32', '-analyzeduration', '0', '-fpsprobesize', '0', '-f', 'nut'],
    streamBufferBytes: config.streamBufferBytes ?? Math.max(64 * 1024 * 1024, 48 * frameBytes),
  };
}
