import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { dropLateFrames } from '../../../pipelines/sources/pace.ts';

/** Feeds `arrivals` ([wall seconds, pts]) through the stage on a fake clock; returns passed and dropped pts. */
function run(arrivals: ReadonlyArray<readonly [number, number]>): { passed: number[]; dropped: number[] } {
  let wall = 0;
  const passed: number[] = [];
  const dropped: number[] = [];
  const input = new Subject<{ pts: number }>();
  const sub = input.pipe(dropLateFrames({ onLate: (pts) => dropped.push(pts), now: () => wall * 1000 })).subscribe((f) => passed.push(f.pts));
  for (const [t, pts] of arrivals) {
    wall = t;
    input.next({ pts });
  }
  sub.unsubscribe();
  return { passed, dropped };
}

const frames = (n: number, fps: number, wallOf: (i: number) => number): Array<[number, number]> =>
  Array.from({ length: n }, (_, i) => [wallOf(i), i / fps]);

describe('dropLateFrames', () => {
  it('passes frames that arrive on the file schedule', () => {
    const { passed, dropped } = run(frames(50, 10, (i) => 5 + i / 10));
    expect(passed).toHaveLength(50);
    expect(dropped).toHaveLength(0);
  });

  it('drops the backlog a stall behind the model leaves, then follows the schedule again', () => {
    // 10 fps; the thread is held from 1.0 s to 2.0 s: frames 10-19 arrive together at 2.0 s, then ffmpeg
    // (reading at its own rate) delivers on time again.
    const arrivals = frames(40, 10, (i) => (i < 10 ? i / 10 : i < 20 ? 2.0 : i / 10));
    const { passed, dropped } = run(arrivals);
    // Frames 10-17 are more than 0.2 s late at 2.0 s; 18 and 19 are within the tolerance.
    expect(dropped).toEqual([10, 11, 12, 13, 14, 15, 16, 17].map((i) => i / 10));
    expect(passed).toHaveLength(40 - 8);
  });

  it('starts a new schedule when pts jump back (a loop)', () => {
    const first = frames(20, 10, (i) => i / 10);
    const second = frames(20, 10, (i) => 10 + i / 10); // the loop restarts 8 s later on the wall clock
    const { passed, dropped } = run([...first, ...second]);
    expect(dropped).toHaveLength(0);
    expect(passed).toHaveLength(40);
  });
});
