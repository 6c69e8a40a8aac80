import { concatMap, delay, map, mergeMap, range, tap, throwError, of, zip, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../models/index.ts';
import { queueOffline, resolveOfflineQueueConfig } from '../../../pipelines/index.ts';

/**
 * A source honouring the credits contract of decodeFrames$: it emits one item per credit granted, holding
 * the rest (in the real decoder ffmpeg is paused instead). Here: each source value waits for a credit token.
 */
function pulled<T>(source: Observable<T>, credits$: Observable<number>): Observable<T> {
  return zip(source, credits$.pipe(mergeMap((n) => range(0, n)))).pipe(map(([v]) => v));
}

function scheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

describe('queueOffline (offline policy: lossless, bounded)', () => {
  it('lets at most maxQueueFrames frames into slow stages and keeps every frame in order', () => {
    const entered: Array<[string, number]> = [];
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('abcdef|');
      const result = queueOffline(
        (credits$) => pulled(source, credits$),
        (frames) =>
          frames.pipe(
            tap((v) => entered.push([v, 0])),
            // Each frame takes 3 frames of virtual time, one at a time.
            concatMap((v) => of(v).pipe(delay(3))),
          ),
        { maxQueueFrames: 2 },
      );
      expectObservable(result).toBe('---a--b--c--d--e--(f|)');
      expectSubscriptions(source.subscriptions).toBe('^-----!');
    });
    expect(entered.map(([v]) => v)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('admits frames only as earlier ones leave (entry times)', () => {
    const entries: Record<string, number> = {};
    const ts = scheduler();
    ts.run(({ cold, expectObservable }) => {
      const source = cold('abcdef|');
      const result = queueOffline(
        (credits$) => pulled(source, credits$),
        (frames) =>
          frames.pipe(
            tap((v) => (entries[v] = ts.now())),
            concatMap((v) => of(v).pipe(delay(3))),
          ),
        { maxQueueFrames: 2 },
      );
      expectObservable(result).toBe('---a--b--c--d--e--(f|)');
    });
    // a and b enter at once (2 credits); then each frame enters when one leaves, 3 frames apart.
    expect(entries).toEqual({ a: 0, b: 1, c: 3, d: 6, e: 9, f: 12 });
  });

  it('passes a slower source through untouched when the queue never fills', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('a---b---c---|');
      const result = queueOffline((credits$) => pulled(source, credits$), (frames) => frames.pipe(delay(1)), { maxQueueFrames: 2 });
      expectObservable(result).toBe('-a---b---c--|');
      expectSubscriptions(source.subscriptions).toBe('^-----------!');
    });
  });

  it('unsubscribes the source when the consumer unsubscribes early', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('abcdefgh');
      const result = queueOffline(
        (credits$) => pulled(source, credits$),
        (frames) => frames.pipe(concatMap((v) => of(v).pipe(delay(2)))),
        { maxQueueFrames: 1 },
      );
      expectObservable(result, '^------!').toBe('--a-b-c');
      expectSubscriptions(source.subscriptions).toBe('^------!');
    });
  });

  it('unsubscribes the source when a stage fails', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('abcdefgh');
      const result = queueOffline(
        (credits$) => pulled(source, credits$),
        (frames) => frames.pipe(concatMap((v) => (v === 'c' ? throwError(() => new Error('engine failed')) : of(v).pipe(delay(1))))),
        { maxQueueFrames: 2 },
      );
      expectObservable(result).toBe('-a(b#)', undefined, new Error('engine failed'));
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });

  it('runs each subscription with its own credits', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('abc|');
      const result = queueOffline((credits$) => pulled(source, credits$), (frames) => frames.pipe(concatMap((v) => of(v).pipe(delay(2)))), {
        maxQueueFrames: 1,
      });
      expectObservable(result).toBe('--a-b-(c|)');
      expectObservable(result).toBe('--a-b-(c|)');
    });
  });

  it('validates maxQueueFrames', () => {
    expect(() => resolveOfflineQueueConfig({ maxQueueFrames: 0 })).toThrow(ConfigError);
    expect(() => resolveOfflineQueueConfig({ maxQueueFrames: 2.5 })).toThrow(/maxQueueFrames must be an integer in \[1, 1024\], got 2.5/);
    expect(resolveOfflineQueueConfig().maxQueueFrames).toBe(8);
  });
});
