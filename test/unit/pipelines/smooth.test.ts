import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { ConfigError, type CamResult, type Frame } from '../../../models/index.ts';
import { CamSmoother, resolveSmoothConfig, smoothCams, type SmoothedCams } from '../../../pipelines/index.ts';
import { createRandom } from '../../../lab/builders/index.ts';

const H = 4;
const W = 5;
const CELLS = H * W;

/** A CamResult for classes `ids` with these probabilities and maps (one per id, CELLS floats each). */
function result(ids: number[], probabilities: number[], maps: Float32Array[]): CamResult {
  const all = new Float32Array(ids.length * CELLS);
  maps.forEach((m, i) => all.set(m, i * CELLS));
  return {
    ids: Int32Array.from(ids),
    scores: Float32Array.from(probabilities, (p) => Math.log(p)),
    probabilities: Float32Array.from(probabilities),
    maps: all,
    mapSize: [H, W],
  };
}

/** A map with a bump of height `peak` at (row, col) over a floor `base`. */
function bump(peak: number, row: number, col: number, base = 0): Float32Array {
  const m = new Float32Array(CELLS).fill(base);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const d2 = (y - row) ** 2 + (x - col) ** 2;
      m[y * W + x] += peak * Math.exp(-d2 / 2);
    }
  }
  return m;
}

/** A flat grey 16x16 frame (the cut detector's input). */
function grey(level: number): Frame {
  return { data: new Uint8Array(16 * 16 * 3).fill(level), width: 16, height: 16 };
}

/** The class on screen (held by hysteresis), wherever it ranks in `ids`. */
function shownId(c: SmoothedCams): number {
  return c.ids[c.shown];
}

/** `ids` are in smoothed-probability order, best first. */
function expectByScore(c: SmoothedCams): void {
  const p = Array.from(c.probabilities);
  expect(p).toEqual([...p].sort((a, b) => b - a));
}

function mapOf(c: SmoothedCams, id: number, which: 'maps' | 'normalized' = 'maps'): Float32Array {
  const i = Array.from(c.ids).indexOf(id);
  if (i < 0) throw new Error(`class ${id} not in output ${Array.from(c.ids)}`);
  return c[which].subarray(i * CELLS, (i + 1) * CELLS);
}

describe('CamSmoother', () => {
  it('converges to a constant input after a different start, maps, probabilities and scale alike', () => {
    const s = new CamSmoother({ pastWeight: 0.7 });
    const a = result([1, 2], [0.6, 0.3], [bump(8, 0, 0), bump(3, 3, 4)]);
    const b = result([1, 2], [0.5, 0.4], [bump(4, 2, 2), bump(2, 1, 1)]);
    for (let i = 0; i < 5; i++) s.update(a);
    let out!: SmoothedCams;
    const changes: number[] = [];
    for (let i = 0; i < 60; i++) {
      out = s.update(b);
      changes.push(out.change);
    }
    const target1 = bump(4, 2, 2);
    const got1 = mapOf(out, 1);
    for (let k = 0; k < CELLS; k++) expect(got1[k]).toBeCloseTo(target1[k], 5);
    expect(out.probabilities[Array.from(out.ids).indexOf(2)]).toBeCloseTo(0.4, 5);
    // The display change per frame shrinks: first the EMA settles, then only the slow scale decay is left.
    expect(changes[1]).toBeGreaterThan(changes[10]);
    expect(changes[changes.length - 1]).toBeLessThan(0.01);
    // The scale decays from a's peak towards b's and stops there (never below what is shown).
    for (let i = 0; i < 600; i++) out = s.update(b);
    expect(out.displayScale).toBeCloseTo(4, 4);
    expect(out.change).toBeLessThan(1e-6);
    expect(Math.max(...mapOf(out, 1, 'normalized'))).toBeCloseTo(1, 4);
  });

  it('keeps every smoothed value within the range of the inputs seen at that cell (random property)', () => {
    const r = createRandom(7);
    const s = new CamSmoother({ pastWeight: 0.8, cutMeanAbsDiff: Infinity });
    const lo = new Float32Array(CELLS).fill(Infinity);
    const hi = new Float32Array(CELLS).fill(-Infinity);
    for (let t = 0; t < 200; t++) {
      const m = r.normalArray(CELLS, 3);
      for (let k = 0; k < CELLS; k++) {
        lo[k] = Math.min(lo[k], m[k]);
        hi[k] = Math.max(hi[k], m[k]);
      }
      const out = s.update(result([3], [0.9], [m]));
      const got = mapOf(out, 3);
      for (let k = 0; k < CELLS; k++) {
        expect(got[k]).toBeGreaterThanOrEqual(lo[k] - 1e-5);
        expect(got[k]).toBeLessThanOrEqual(hi[k] + 1e-5);
      }
      const norm = out.normalized;
      for (const v of norm) expect(v >= 0 && v <= 1).toBe(true);
    }
  });

  it('keeps a class with weak evidence dim, where per-frame min-max makes it glow', () => {
    const r = createRandom(3);
    const strong = () => bump(10, 1, 1);
    const weak = () => Float32Array.from(r.uniformArray(CELLS, 0, 0.5));
    const smooth = new CamSmoother({ pastWeight: 0.7 });
    const off = new CamSmoother({ pastWeight: 0 });
    let s!: SmoothedCams;
    let o!: SmoothedCams;
    for (let t = 0; t < 30; t++) {
      const frame = result([1, 2], [0.9, 0.02], [strong(), weak()]);
      s = smooth.update(frame);
      o = off.update(frame);
    }
    expect(shownId(s)).toBe(1);
    expect(Math.max(...mapOf(s, 2, 'normalized'))).toBeLessThan(0.06);
    expect(Math.max(...mapOf(o, 2, 'normalized'))).toBeCloseTo(1, 5);
  });

  it('does not put a class on screen for one lucky frame, and fades a class that left the top-k', () => {
    const s = new CamSmoother({ pastWeight: 0.7 });
    const steady = () => result([1, 2], [0.5, 0.3], [bump(5, 1, 1), bump(2, 2, 2)]);
    for (let t = 0; t < 10; t++) s.update(steady());
    // Class 9 leads by far for a single frame.
    const lucky = s.update(result([9, 1, 4], [0.9, 0.05, 0.01], [bump(9, 3, 4), bump(5, 1, 1), bump(1, 0, 0)]));
    expect(shownId(lucky)).toBe(1);
    expect(lucky.probabilities[Array.from(lucky.ids).indexOf(9)]).toBeCloseTo(0.27, 5);
    // Class 2 is absent from that frame: its state decayed, it was not held at its old value.
    expect(lucky.probabilities[Array.from(lucky.ids).indexOf(2)]).toBeCloseTo(0.3 * 0.7, 5);
    const after = s.update(steady());
    expect(shownId(after)).toBe(1);
    expect(after.switched).toBe(false);
  });

  it('switches the shown class only after a challenger leads by the margin for switchFrames frames', () => {
    const s = new CamSmoother({ pastWeight: 0.5, switchMargin: 0.05, switchFrames: 3 });
    const m1 = bump(5, 1, 1);
    const m2 = bump(5, 2, 3);
    // Two classes trading a small lead every frame: never switches.
    const trading: number[] = [];
    for (let t = 0; t < 40; t++) {
      trading.push(shownId(s.update(t % 2 ? result([1, 2], [0.42, 0.4], [m1, m2]) : result([2, 1], [0.42, 0.4], [m2, m1]))));
    }
    expect(new Set(trading).size).toBe(1);
    const shown = shownId(s.update(result([1, 2], [0.41, 0.41], [m1, m2])));
    expect(shown).toBe(trading[0]);
    const other = shown === 1 ? 2 : 1;
    expect(s.stats().switches).toBe(0);
    // A sustained clear lead: the display follows after a few frames, not at once.
    const seq: number[] = [];
    const held: SmoothedCams[] = [];
    for (let t = 0; t < 10; t++) {
      const out = s.update(result([other, shown], [0.8, 0.1], [other === 1 ? m1 : m2, shown === 1 ? m1 : m2]));
      seq.push(shownId(out));
      // Listed by score all along: while the held class trails, the challenger is first and `shown` points past it.
      expectByScore(out);
      if (shownId(out) === shown && out.probabilities[out.shown] < out.probabilities[0]) held.push(out);
    }
    const firstSwitch = seq.indexOf(other);
    expect(firstSwitch).toBeGreaterThanOrEqual(2);
    expect(firstSwitch).toBeLessThanOrEqual(4);
    expect(seq.slice(firstSwitch).every((id) => id === other)).toBe(true);
    expect(s.stats().switches).toBe(1);
    expect(held.length).toBeGreaterThan(0);
    for (const out of held) {
      expect(out.ids[0]).toBe(other);
      expect(out.shown).toBeGreaterThan(0);
      // The heat and the change figure follow the held class's map, not the leader's.
      expect(Array.from(out.normalized.subarray(out.shown * CELLS, (out.shown + 1) * CELLS))).toEqual(Array.from(mapOf(out, shown, 'normalized')));
    }
  });

  it('with smoothing off shows the raw top class of every frame', () => {
    const s = new CamSmoother({ pastWeight: 0 });
    const m = bump(5, 1, 1);
    const shown: number[] = [];
    for (let t = 0; t < 6; t++) shown.push(shownId(s.update(t % 2 ? result([1, 2], [0.42, 0.4], [m, m]) : result([2, 1], [0.42, 0.4], [m, m]))));
    expect(shown).toEqual([2, 1, 2, 1, 2, 1]);
  });

  it('resets on a scene cut: the new scene shows at once, unmixed with the old one', () => {
    const scene1 = () => result([1, 2], [0.7, 0.2], [bump(6, 0, 0), bump(1, 3, 4)]);
    const scene2 = () => result([5, 1], [0.6, 0.1], [bump(3, 3, 4), bump(1, 0, 0)]);
    const run = (cutMeanAbsDiff: number) => {
      const s = new CamSmoother({ pastWeight: 0.8, cutMeanAbsDiff });
      const outs: SmoothedCams[] = [];
      for (let t = 0; t < 20; t++) outs.push(s.update(scene1(), grey(30 + (t % 3))));
      for (let t = 0; t < 3; t++) outs.push(s.update(scene2(), grey(200)));
      return { outs, stats: s.stats() };
    };
    const withCuts = run(40);
    const atCut = withCuts.outs[20];
    expect(withCuts.outs.slice(0, 20).some((o) => o.cut)).toBe(false);
    expect(atCut.cut).toBe(true);
    expect(shownId(atCut)).toBe(5);
    expect(Array.from(mapOf(atCut, 5))).toEqual(Array.from(bump(3, 3, 4)));
    expect(Number.isNaN(atCut.change)).toBe(true);
    expect(atCut.displayScale).toBeCloseTo(3, 5);
    expect(withCuts.stats.cuts).toBe(1);
    // Without the detector the old scene's class is still shown, and the new map is diluted.
    const noCuts = run(Infinity);
    expect(noCuts.outs[20].cut).toBe(false);
    expect(shownId(noCuts.outs[20])).toBe(1);
    for (const o of [...withCuts.outs, ...noCuts.outs]) expectByScore(o);
  });

  it('lowers the flicker figure against smoothing off on noisy maps', () => {
    const r = createRandom(11);
    const frames = Array.from({ length: 120 }, () => {
      const m1 = bump(5, 1, 2);
      const noise = r.normalArray(CELLS, 1);
      for (let k = 0; k < CELLS; k++) m1[k] += noise[k];
      return result([1, 2], [0.5 + 0.05 * r.normal(), 0.2], [m1, bump(1, 3, 3)]);
    });
    const flicker = (pastWeight: number) => {
      const s = new CamSmoother({ pastWeight });
      for (const f of frames) s.update(f);
      return s.stats().flicker;
    };
    const off = flicker(0);
    const on = flicker(0.7);
    expect(on).toBeLessThan(off * 0.6);
  });

  it('validates its configuration, naming the field and range', () => {
    expect(() => resolveSmoothConfig({ pastWeight: 1 })).toThrow(ConfigError);
    expect(() => resolveSmoothConfig({ pastWeight: 1 })).toThrow(/pastWeight must be a number in \[0, 1\), got 1/);
    expect(() => resolveSmoothConfig({ switchFrames: 1.5 })).toThrow(/switchFrames must be an integer >= 1, got 1.5/);
    expect(() => resolveSmoothConfig({ scaleDecayPerFrame: 0 })).toThrow(/scaleDecayPerFrame/);
    expect(resolveSmoothConfig({ cutMeanAbsDiff: Infinity }).cutMeanAbsDiff).toBe(Infinity);
  });
});

describe('smoothCams', () => {
  it('keeps state per subscription, repeats reused frames, and reports stats on completion', async () => {
    const m = bump(4, 1, 1);
    const items = [
      { result: result([1], [0.9], [m]), inferred: true },
      { result: result([1], [0.9], [bump(8, 2, 2)]), inferred: true },
      { result: result([1], [0.9], [bump(8, 2, 2)]), inferred: false },
    ];
    const stats: number[] = [];
    const op = smoothCams({ pastWeight: 0.5 }, (s) => stats.push(s.frames));
    const first = await lastValueFrom(from(items).pipe(op, toArray()));
    const second = await lastValueFrom(from(items).pipe(op, toArray()));
    // The second subscription starts fresh: same outputs as the first.
    expect(Array.from(second[1].cams.maps)).toEqual(Array.from(first[1].cams.maps));
    // The reused frame repeats the previous output (not smoothed a second time) with no change.
    expect(Array.from(first[2].cams.maps)).toEqual(Array.from(first[1].cams.maps));
    expect(first[2].cams.change).toBe(0);
    expect(stats).toEqual([3, 3]);
  });
});
