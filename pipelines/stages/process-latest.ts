/**
 * The `live` backpressure policy (STYLE.md sec. 6) as an operator: latest frame wins.
 */
import { from, Observable, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';

/**
 * Runs `step` on one item at a time. An item arriving while a step runs waits in a single slot; a newer
 * arrival replaces it, and the replaced item is dropped (`onDrop`, so its owner can count or free it).
 * Nothing queues beyond that one slot. Lossy. When the source completes, the running step and the waiting
 * item finish first. A step's error errors the output; unsubscribing unsubscribes the running step.
 * Each step should emit at most one value (every emission is passed on).
 */
export function processLatest<T, R>(
  step: (item: T) => ObservableInput<R>,
  onDrop?: (item: T) => void,
): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      let running: Subscription | undefined;
      let waiting: { item: T } | undefined;
      let sourceDone = false;

      const start = (item: T): void => {
        let finished = false;
        const inner = from(step(item)).subscribe({
          next: (r) => subscriber.next(r),
          error: (e: unknown) => subscriber.error(e),
          complete: () => {
            finished = true;
            running = undefined;
            const next = waiting;
            waiting = undefined;
            if (next) start(next.item);
            else if (sourceDone) subscriber.complete();
          },
        });
        // A synchronous step has finished (and maybe started the next) before `subscribe` returned.
        if (!finished) running = inner;
      };

      const sub = source.subscribe({
        next: (item) => {
          if (running) {
            if (waiting) onDrop?.(waiting.item);
            waiting = { item };
          } else {
            start(item);
          }
        },
        error: (e: unknown) => subscriber.error(e),
        complete: () => {
          sourceDone = true;
          if (!running && !waiting) subscriber.complete();
        },
      });
      return () => {
        sub.unsubscribe();
        running?.unsubscribe();
        running = undefined;
        if (waiting) onDrop?.(waiting.item);
        waiting = undefined;
      };
    });
}
