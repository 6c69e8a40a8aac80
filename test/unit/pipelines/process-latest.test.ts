import { of } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { ModelLock } from '../../../models/index.ts';
import { processLatest } from '../../../pipelines/index.ts';

function scheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

describe('processLatest (the live policy)', () => {
  it('drops frames while a step is busy and runs the latest one next', () => {
    const dropped: string[] = [];
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      // Each step takes 3 frames of time and emits the item, upper-cased.
      const source = hot('a-bcd-----e--|');
      const out = source.pipe(processLatest((x: string) => cold('---(y|)', { y: x.toUpperCase() }), (x) => dropped.push(x)));
      // a runs 0-3 (b arrives, then c replaces it); c runs 3-6 (d waits); d runs 6-9; e runs 10-13.
      expectObservable(out).toBe('---A--C--D---(E|)', { A: 'A', C: 'C', D: 'D', E: 'E' });
      expectSubscriptions(source.subscriptions).toBe('^------------!');
    });
    expect(dropped).toEqual(['b']);
  });

  it('finishes the running and the waiting item before completing', () => {
    scheduler().run(({ cold, hot, expectObservable }) => {
      const source = hot('ab|');
      expectObservable(source.pipe(processLatest((x: string) => cold('--(y|)', { y: x })))).toBe('--a-(b|)');
    });
  });

  it('passes a step error on and unsubscribes the source', () => {
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const source = hot('a--b---');
      expectObservable(source.pipe(processLatest(() => cold('-#', undefined, new Error('engine failed'))))).toBe('-#', undefined, new Error('engine failed'));
      expectSubscriptions(source.subscriptions).toBe('^!');
    });
  });

  it('unsubscribes the running step on teardown and drops the waiting item', () => {
    const dropped: string[] = [];
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const step = cold('-----(y|)', { y: 1 });
      const source = hot('ab----');
      expectObservable(source.pipe(processLatest(() => step, (x) => dropped.push(x))), '---!').toBe('----');
      expectSubscriptions(step.subscriptions).toBe('^--!');
    });
    expect(dropped).toEqual(['b']);
  });

  it('runs synchronous steps inline without dropping', () => {
    const out: number[] = [];
    of(1, 2, 3).pipe(processLatest((x: number) => of(x * 10))).subscribe((v) => out.push(v));
    expect(out).toEqual([10, 20, 30]);
  });
});

describe('ModelLock', () => {
  it('runs calls one at a time in arrival order, failures included', async () => {
    const lock = new ModelLock();
    const log: string[] = [];
    let inside = 0;
    const work = (name: string, ms: number, fail = false) =>
      lock.run(async () => {
        inside++;
        expect(inside).toBe(1);
        log.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`end ${name}`);
        inside--;
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([work('a', 20), work('b', 5, true), work('c', 1)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(lock.depth).toBe(0);
  });
});
