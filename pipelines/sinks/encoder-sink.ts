/**
 * The lifecycle both MP4 sinks share (mp4.ts, composite-video.ts): start one encoder, write each frame to
 * it strictly in order, pass the frame on once ffmpeg has taken it, and complete after the file is renamed
 * into place. Error or unsubscribe aborts ffmpeg and deletes the temporary file: no output is left.
 */
import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import type { EncodeResult, VideoEncoder } from '../ffmpeg/index.ts';
import type { StageTimings } from '../stages/frame.ts';
import { writeInOrder } from './in-order.ts';

export interface EncoderSinkHooks {
  /** Called once ffmpeg runs (pid, command line). */
  onStart?: (encoder: VideoEncoder) => void;
  /** Called with the result once the file is in place, just before completion. */
  onFinish?: (result: EncodeResult) => void;
  /**
   * Called when the run is aborted (error or unsubscribe) with the promise of the abort: it resolves once
   * ffmpeg has exited and the temporary file is deleted. Lets a caller report failure only after cleanup.
   */
  onAbort?: (done: Promise<void>) => void;
}

/**
 * A sink operator over the encoder `start()` resolves to (started at subscription): `write` hands one frame
 * to it; the frame is passed on afterwards, so credits of the offline queue return at the encoder's pace.
 * `ms.encode` gets the time the frame waited for the pipe.
 */
export function encoderSink<T extends { ms?: StageTimings }>(
  start: () => Promise<VideoEncoder>,
  write: (encoder: VideoEncoder, frame: T) => Promise<void>,
  hooks: EncoderSinkHooks,
): OperatorFunction<T, T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      let closed = false;
      let finished = false;
      let encoder: VideoEncoder | undefined;
      const started = start().then((enc) => {
        encoder = enc;
        if (closed && !finished) hooks.onAbort?.(enc.abort());
        else hooks.onStart?.(enc);
        return enc;
      });
      let sourceSub: Subscription | undefined;
      const fail = (err: unknown): void => {
        if (closed) return;
        closed = true;
        sourceSub?.unsubscribe();
        hooks.onAbort?.(started.then((enc) => enc.abort(), () => undefined));
        subscriber.error(err);
      };
      // Frames are written strictly in order, the first once the encoder has started.
      sourceSub = writeInOrder(source, {
        after: started,
        write: async (frame) => {
          if (closed) return;
          const enc = await started;
          const t0 = performance.now();
          await write(enc, frame);
          if (frame.ms) frame.ms.encode = performance.now() - t0;
          if (!closed) subscriber.next(frame);
        },
        complete: async () => {
          if (closed) return;
          const result = await (await started).finish();
          finished = true;
          if (closed) return;
          hooks.onFinish?.(result);
          closed = true;
          subscriber.complete();
        },
        fail,
      });
      started.catch(fail);
      return () => {
        closed = true;
        sourceSub?.unsubscribe();
        if (!finished) hooks.onAbort?.(encoder ? encoder.abort() : started.then((enc) => enc.abort(), () => undefined));
      };
    });
}
