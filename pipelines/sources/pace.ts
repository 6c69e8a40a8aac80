/**
 * Real-time pacing for a played file: ffmpeg reads it at its own rate (`-re`), but a model that holds the
 * thread stalls the pipe, and a file whose frames all wait their turn plays in slow motion. This stage
 * drops the frames that are already late on the file's wall-clock schedule before they reach the model,
 * so the backlog drains at pipe speed (ffmpeg then catches up on its own) and the picture stays at "now".
 */
import { Observable, type MonoTypeOperatorFunction } from 'rxjs';

/** How late a frame may be on the file's schedule before it is dropped, seconds (default 0.2). */
export const DEFAULT_MAX_LATE_SECONDS = 0.2;

export interface PaceOptions {
  /** See DEFAULT_MAX_LATE_SECONDS. */
  maxLateSeconds?: number;
  /** Called for each dropped frame (the caller counts it). */
  onLate: (pts: number) => void;
  /** The wall clock, ms (default `performance.now`; tests pass their own). */
  now?: () => number;
}

/**
 * Passes frames that are on time and drops late ones (lossy). The schedule is the earliest arrival seen:
 * wall time minus pts, which only moves earlier, so an initial burst or a slow start never makes later
 * frames look late, while a stall behind the model does. A jump back in pts (a loop) starts a new schedule.
 * Apply it per decode run: a seek or restart begins a new schedule.
 */
export function dropLateFrames<T extends { pts: number }>(options: PaceOptions): MonoTypeOperatorFunction<T> {
  const maxLate = options.maxLateSeconds ?? DEFAULT_MAX_LATE_SECONDS;
  const now = options.now ?? (() => performance.now());
  return (source) =>
    new Observable<T>((subscriber) => {
      let offset = Number.POSITIVE_INFINITY;
      let lastPts = Number.NEGATIVE_INFINITY;
      return source.subscribe({
        next: (frame) => {
          const wall = now() / 1000;
          if (frame.pts < lastPts) offset = Number.POSITIVE_INFINITY;
          lastPts = frame.pts;
          const behind = wall - frame.pts;
          if (behind < offset) offset = behind;
          if (behind - offset > maxLate) options.onLate(frame.pts);
          else subscriber.next(frame);
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
    });
}
