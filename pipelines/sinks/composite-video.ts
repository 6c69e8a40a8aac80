/**
 * `writeCompositeVideo`: the MP4 sink over a video read once. The decode run that fed the model also
 * writes the same frames at full size, with their timestamps and the input's audio, as a NUT stream
 * (ffmpeg/decode.ts, `passthrough`); this sink's ffmpeg reads that stream (input 1) and the packed overlay
 * frames from stdin (input 0, IVF: each overlay carries its frame's timestamp), composites them at full
 * resolution and writes H.264 with the input's own timestamps: a variable-rate clip keeps its frame count,
 * timestamps and duration, and a URL is opened once. The result goes to a temporary name renamed onto the
 * target after a clean exit (ffmpeg/encode.ts). Full-resolution pixels pass JS only as bytes on their way
 * from one ffmpeg to the other.
 */
import type { Readable } from 'node:stream';
import type { OperatorFunction } from 'rxjs';
import { encodeVideo, type FfmpegTools, type Rational } from '../ffmpeg/index.ts';
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
  /** The decode run's full-size NUT stream (`DecodeHandle.passthrough`), once it runs. */
  base: Promise<Readable>;
  /** The stream's audio: `copy` into the MP4, encode `aac`, or `none` (the stream carries none). */
  audio: 'copy' | 'aac' | 'none';
  /**
   * When the input's last frame ends (`MediaInfo.videoEnd`) where the run goes to the input's end; older
   * ffmpegs lose the last frame's duration and the MP4 is mended to this (see `EncodeConfig.lastFrameEnds`).
   */
  lastFrameEnds?: number;
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

/** What `writeCompositeVideo` needs of a frame record. */
export interface CompositeSinkInput {
  /** The frame's timestamp, seconds, as the decode run gave it. */
  pts: number;
  /** Packed RGBA, `layout.width * layout.height * 4` bytes. Not modified afterwards (ffmpeg reads it later). */
  overlay: Uint8Array;
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
    `[p1]crop=${layout.heatWidth}:${layout.heatHeight}:0:${ah},scale=${aw}:${ah}:flags=bilinear,format=yuva420p[heat]`,
    `[p0]crop=${aw}:${ah}:0:0,format=yuva420p[ann]`,
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
      config.base.then((base) =>
        encodeVideo({
          out: config.out,
          width: config.layout.width,
          height: config.layout.height,
          fps: config.rate,
          inputPixFmt: 'rgba',
          frameTimestamps: true,
          inputs: [{
            input: config.input,
            stream: base,
            options: ['-thread_queue_size', '64', '-probesize', '32', '-analyzeduration', '0', '-fpsprobesize', '0', '-f', 'nut'],
            streamBufferBytes: config.streamBufferBytes ?? Math.max(64 * 1024 * 1024, 48 * frameBytes),
          }],
          filterComplex: timedCompositeFilter(config.layout),
          audioFromInput: config.audio === 'none' ? undefined : { input: 0, codec: config.audio },
          shortest: config.shortest,
          lastFrameEnds: config.lastFrameEnds,
          preset: config.preset,
          crf: config.crf,
          threads: config.threads,
          tools: config.tools,
          measureCpu: config.measureCpu,
        }),
      ),
    (encoder, frame) => encoder.write(frame.overlay, frame.pts),
    config,
  );
}
