/**
 * Decoding a video into raw frames in JS: a cold Observable per ffmpeg run.
 *
 * Timestamps. `-f rawvideo` carries no timestamps, so each run also inserts `showinfo` at the end of the
 * common filter chain and reads its per-frame line (`n: 12 pts: 1080000 pts_time:12 ...`) from stderr,
 * logged at info level with ffmpeg's `level` tag so those lines can be told from warnings and errors.
 * Frame timing is `passthrough` (`-fps_mode passthrough`, or `-vsync passthrough` before ffmpeg 5.1):
 * without it the rawvideo muxer would duplicate and drop frames to a constant rate, and the n-th
 * showinfo line would no longer be the n-th frame on the pipe. pts = integer pts x the filter time base
 * (from showinfo's `config in time_base` line), exact, not the 6-digit `pts_time`. The stderr line is
 * written before the frame reaches the pipe and stderr is never paused, so a frame waits at most a
 * few lines for its timestamp. `timestamps: 'rate'` skips showinfo and uses `index / rate`.
 * pts is in seconds from the start of the input (ffmpeg shifts the container start time to 0;
 * `startSeconds` is added back after a seek).
 *
 * Backpressure. Frames are emitted as consumers grant credits (`credits$`), unlimited without it.
 * When `maxBufferedFrames` frames wait undelivered, the stdout pipes are paused: ffmpeg then blocks on
 * its write and stops decoding. Lossless: every decoded frame is delivered.
 */
import { Observable, Subject, type Subscription } from 'rxjs';
import type { DecodeConfig, DecodedFrame } from './decode-config.ts';
import { DecodeRun } from './decode-run.ts';

/**
 * A cold Observable of the frames of `input` (a file path or a whitelisted URL). Nothing runs until
 * subscription; each subscription runs its own ffmpeg; unsubscribing ends that child (stdin closed,
 * pipes destroyed, SIGTERM, SIGKILL after the grace). Errors are FfmpegErrors naming the input and
 * quoting ffmpeg, or ConfigErrors for bad options or a scheme that is not allowed. Lossless.
 */
export function decodeFrames$(input: string, config: DecodeConfig = {}): Observable<DecodedFrame> {
  return new Observable<DecodedFrame>((subscriber) => {
    const run = new DecodeRun(input, config, subscriber);
    run.begin();
    return () => run.end();
  });
}

/**
 * The same frames as an async iterator: each `next()` pulls one frame, ffmpeg pauses when
 * `maxBufferedFrames` wait. Breaking out of `for await` (or `return()`) ends the child.
 */
export function decodeFrames(input: string, config: Omit<DecodeConfig, 'credits$'> = {}): AsyncIterableIterator<DecodedFrame> {
  const credits = new Subject<number>();
  const queue: DecodedFrame[] = [];
  let waiter: { resolve: (r: IteratorResult<DecodedFrame>) => void; reject: (e: unknown) => void } | undefined;
  let failure: { error: unknown } | undefined;
  let finished = false;
  let sub: Subscription | undefined;

  const settle = (): void => {
    if (!waiter) return;
    const w = waiter;
    if (queue.length > 0) {
      waiter = undefined;
      w.resolve({ value: queue.shift()!, done: false });
    } else if (failure) {
      waiter = undefined;
      w.reject(failure.error);
    } else if (finished) {
      waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  };

  const iterator: AsyncIterableIterator<DecodedFrame> = {
    next() {
      if (queue.length > 0) return Promise.resolve({ value: queue.shift()!, done: false });
      if (failure) return Promise.reject(failure.error);
      if (finished) return Promise.resolve({ value: undefined, done: true });
      sub ??= decodeFrames$(input, { ...config, credits$: credits }).subscribe({
        next: (frame) => {
          queue.push(frame);
          settle();
        },
        error: (error: unknown) => {
          failure = { error };
          settle();
        },
        complete: () => {
          finished = true;
          settle();
        },
      });
      return new Promise<IteratorResult<DecodedFrame>>((resolve, reject) => {
        waiter = { resolve, reject };
        // The subscription may already have failed synchronously (a bad option).
        settle();
        // One credit per waiting next(): at most one frame ever waits here.
        if (waiter) credits.next(1);
      });
    },
    return() {
      finished = true;
      sub?.unsubscribe();
      queue.length = 0;
      const w = waiter;
      waiter = undefined;
      w?.resolve({ value: undefined, done: true });
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
