/**
 * A video file or stream as pipeline frames: ffmpeg decodes and scales each frame to the model's input
 * size (one cold Observable per subscription, see ffmpeg/decode.ts); JS only ever receives those small
 * frames. The same run can also write the full-size frames as a stream for the compositor
 * (`passthrough`, sinks/composite-video.ts), so the input is read and decoded once.
 */
import { Observable } from 'rxjs';
import type { Preprocess } from '../../models/index.ts';
import { decodeFrames$, FfmpegError, type DecodeConfig, type MediaInfo } from '../ffmpeg/index.ts';
import type { VideoFrame } from '../stages/frame.ts';

export interface VideoSourceConfig
  extends Pick<
    DecodeConfig,
    | 'threads'
    | 'strict'
    | 'tools'
    | 'schemes'
    | 'inputOptions'
    | 'maxBufferedFrames'
    | 'credits$'
    | 'onStart'
    | 'onDiagnostic'
    | 'maxFrames'
    | 'killGraceMs'
    | 'passthrough'
    | 'measureCpu'
  > {
  /**
   * The probe of this input: its display size becomes each frame's `width` x `height`. Without one, the
   * decode run's own input listing is parsed (a URL then needs no second connection) and handed to
   * `onInputInfo` before the first frame.
   */
  probe: MediaInfo | undefined;
  onInputInfo?: (info: MediaInfo) => void;
  /** The model's preprocessing: frames come out at its input size, padded when it letterboxes. */
  preprocess: Pick<Preprocess, 'inputSize' | 'resize'>;
  /**
   * swscale algorithm for the reduction to model size. Default `area` (averages the source pixels a model
   * pixel covers: no aliasing from a 1280-pixel row squeezed into 224).
   */
  scaleFlags?: string;
  /**
   * Fail when ffmpeg reports damaged data it concealed (`ac-tex damaged`, `corrupt`, `concealing`...), not
   * only when it stops (`strict` / -xerror). A truncated MPEG-2 stream decodes "cleanly" to a shorter
   * end with such lines and nothing else to tell it from a complete file. Default: `strict`.
   */
  failOnDamage?: boolean;
}

/** ffmpeg's words for data it could not decode and papered over; scaler and filter notes are not damage. */
const DAMAGE = /damaged|corrupt|conceal|error|invalid|missing|truncat|not available|overread|incomplete|broken/i;
const NOT_DECODER = /^\[(swscaler|Parsed_|graph|auto_)/;

/**
 * The error for a decode that ended well short of what the container announces (its frame count, else its
 * duration x rate), undefined when it did not. A small slack absorbs edit lists and rounding; a run limited
 * by `maxFrames` is compared with that limit. Streams without a known length are never short.
 */
export function shortfall(input: string, probe: MediaInfo, frames: number, lastPts: number, maxFrames: number | undefined): FfmpegError | undefined {
  const announced = probe.frameCount ?? probe.estimatedFrameCount;
  if (announced === undefined || announced <= 0) return undefined;
  const expected = maxFrames !== undefined ? Math.min(maxFrames, announced) : announced;
  const slack = Math.max(2, Math.ceil(expected * 0.02));
  if (frames >= expected - slack) return undefined;
  const seconds = probe.duration !== undefined ? ` (${lastPts.toFixed(2)} s of ${probe.duration.toFixed(2)} s)` : '';
  return new FfmpegError(
    `${input}: truncated or damaged: decoding ended after ${frames} of ${expected} frames${seconds}; --lenient (strict: false) accepts the shorter video`,
    { file: input },
  );
}

/**
 * The frames of `input` at the model's input size, in order, with their timestamps. Lossless; emits as
 * `credits$` grants (see stages/queue.ts), or freely without it. Errors are FfmpegErrors naming the input
 * and quoting ffmpeg (also for concealed damage, see `failOnDamage`). Each frame's `pixels` buffer belongs to that frame.
 */
export function readVideo$(input: string, config: VideoSourceConfig): Observable<VideoFrame> {
  const [height, width] = config.preprocess.inputSize;
  const { probe: given, preprocess, scaleFlags, failOnDamage, onInputInfo, ...decode } = config;
  const failOn = failOnDamage ?? decode.strict ?? false;
  return new Observable<VideoFrame>((subscriber) => {
    const onDiagnostic = (message: string): void => {
      config.onDiagnostic?.(message);
      if (failOn && DAMAGE.test(message) && !NOT_DECODER.test(message)) {
        // Erroring the subscriber tears the decode down (its ffmpeg is stopped).
        subscriber.error(new FfmpegError(`${input}: damaged or truncated video data; ffmpeg said: ${message}`, { file: input, stderr: [message] }));
      }
    };
    let frames = 0;
    let lastPts = 0;
    let probe = given;
    const decode$ = decodeFrames$(input, {
      ...decode,
      probe,
      onInputInfo: given
        ? undefined
        : (info) => {
            probe = info;
            onInputInfo?.(info);
          },
      width,
      height,
      pixFmt: 'rgb24',
      fit: preprocess.resize === 'letterbox' ? 'pad' : 'stretch',
      scaleFlags: scaleFlags ?? 'area',
      onDiagnostic,
    });
    return decode$.subscribe({
      next: (f) => {
        frames++;
        lastPts = f.pts;
        if (!probe) {
          subscriber.error(new FfmpegError(`${input}: ffmpeg listed no video stream before the first frame`, { file: input }));
          return;
        }
        subscriber.next({
          index: f.index,
          pts: f.pts,
          width: probe.displayWidth,
          height: probe.displayHeight,
          pixels: { data: f.data, width: f.width, height: f.height },
          ms: {},
        });
      },
      error: (err: unknown) => subscriber.error(err),
      // Strict: a file that ends early (cut short, its index intact) is an error, not a shorter video.
      complete: () => {
        const short = failOn && probe ? shortfall(input, probe, frames, lastPts, decode.maxFrames) : undefined;
        if (short) subscriber.error(short);
        else subscriber.complete();
      },
    });
  });
}
