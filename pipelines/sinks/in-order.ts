/**
 * The skeleton the file sinks share: each frame's write runs after the previous one settled (one
 * promise chain, so writes never overlap or reorder), and a last step runs after the final write once
 * the source completes.
 */
import type { Observable, Subscription } from 'rxjs';

/** The steps of a sink that writes frames in order. */
export interface InOrderSteps<T> {
  /** The first write waits for this (an encoder still starting). Default: nothing to wait for. */
  after?: Promise<unknown>;
  /** Writes one frame (and usually passes it on); starts once the previous write has settled. */
  write: (frame: T) => Promise<void>;
  /** Runs after the last write once the source has completed. */
  complete: () => Promise<void>;
  /** Receives a source error, a failed write and, without `completeFailed`, a failed `complete`. */
  fail: (err: unknown) => void;
  /** Receives a failed `complete` (or a failed write it waited for) instead of `fail`. */
  completeFailed?: (err: unknown) => unknown;
}

/**
 * Subscribes to `source` and runs `steps.write` for every frame, one at a time in arrival order, then
 * `steps.complete`. Returns the subscription to `source`; the caller unsubscribes it on teardown.
 */
export function writeInOrder<T>(source: Observable<T>, steps: InOrderSteps<T>): Subscription {
  let chain: Promise<unknown> = steps.after ?? Promise.resolve();
  return source.subscribe({
    next: (frame) => {
      chain = chain.then(() => steps.write(frame));
      chain.catch(steps.fail);
    },
    error: steps.fail,
    complete: () => {
      chain.then(() => steps.complete()).catch(steps.completeFailed ?? steps.fail);
    },
  });
}
