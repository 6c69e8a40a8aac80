/**
 * The `offline` backpressure policy (STYLE.md sec. 6): every frame is kept, and at most `maxQueueFrames`
 * frames are anywhere between the source and the end of the stages. The bound is enforced by pulling:
 * the source emits only as it is granted credits (decodeFrames$ honours `credits$`: when its own small
 * buffer is full it pauses ffmpeg's pipe, so ffmpeg blocks and stops decoding). A frame's credit comes
 * back when the last stage has emitted it, i.e. once the encoder has taken it.
 */
import { concat, defer, of, Subject, tap, type Observable, type OperatorFunction } from 'rxjs';
import { ConfigError } from '../../models/index.ts';

export interface OfflineQueueConfig {
  /**
   * Frames in flight at most (decoded and not yet through the last stage), an integer in [1, 1024].
   * Must be at least the inference batch. Default 8: enough to keep decode, inference and encode busy at
   * the same time, small enough that model-size frames cost little memory (8 x 150 kB at 224x224).
   */
  maxQueueFrames?: number;
}

export const DEFAULT_OFFLINE_QUEUE_CONFIG: Readonly<Required<OfflineQueueConfig>> = Object.freeze({ maxQueueFrames: 8 });

export function resolveOfflineQueueConfig(config: OfflineQueueConfig = {}): Required<OfflineQueueConfig> {
  const maxQueueFrames = config.maxQueueFrames ?? DEFAULT_OFFLINE_QUEUE_CONFIG.maxQueueFrames;
  if (!Number.isInteger(maxQueueFrames) || maxQueueFrames < 1 || maxQueueFrames > 1024) {
    throw new ConfigError(`maxQueueFrames must be an integer in [1, 1024], got ${String(maxQueueFrames)}`);
  }
  return { maxQueueFrames };
}

/**
 * Runs `stages` over the frames of a pulled source under the offline policy. Lossless.
 *
 * `open(credits$)` is called once per subscription and must return a cold source that emits one item per
 * credit granted on `credits$` (each emission of `credits$` grants that many). `maxQueueFrames` credits are
 * granted at once, then one per item `stages` emits, so `stages` must emit exactly one item per input, in
 * order (the pipeline's stages all do; a batching stage needs `maxQueueFrames` >= its batch, or it waits
 * for frames that can never come). Unsubscribing unsubscribes the source (which ends its ffmpeg).
 */
export function queueOffline<T, R>(
  open: (credits$: Observable<number>) => Observable<T>,
  stages: OperatorFunction<T, R>,
  config: OfflineQueueConfig = {},
): Observable<R> {
  const { maxQueueFrames } = resolveOfflineQueueConfig(config);
  return defer(() => {
    const returned = new Subject<number>();
    // The first grant reaches the source as soon as it subscribes to credits$; returns follow.
    const credits$ = concat(of(maxQueueFrames), returned);
    return open(credits$).pipe(
      stages,
      tap({
        next: () => returned.next(1),
        finalize: () => returned.complete(),
      }),
    );
  });
}
