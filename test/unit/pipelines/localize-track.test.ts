/**
 * Boxes over time: the paper rule's regions with their heat, temporal association in `localizeCams`, and
 * the box flicker figure. Maps are plain arrays through the real smoother (no tensors on this path).
 */
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { paperBox, type Box, type CamResult, type FrameGeometry, type Preprocess } from '../../../models/index.ts';
import { paperComponents } from '../../../models/boxes/index.ts';
import { associatedBox, resolveLocalizeConfig } from '../../../pipelines/stages/localize.ts';
import { BoxFlicker, localizeCams, type LocalizeStats } from '../../../pipelines/stages/localize-cams.ts';
import { CamSmoother } from '../../../pipelines/stages/smooth.ts';

const PRE: Preprocess = { inputSize: [64, 64], channelOrder: 'rgb', layout: 'nhwc', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], resize: 'stretch', resizeFilter: 'triangle', normalization: 'default' };
const GEOMETRY: FrameGeometry = { frameWidth: 64, frameHeight: 64, inputWidth: 64, inputHeight: 64, resize: 'stretch' };
const N = 8;

/** An 8x8 map: a wide, faint strip along the bottom rows, and a small hot blob at (row 2, col `blobCol`). */
function stripAndBlob(stripLevel: number, blobLevel: number, blobCol = 2): Float32Array {
  const m = new Float32Array(N * N);
  for (let x = 0; x < N; x++) {
    m[7 * N + x] = stripLevel;
    m[6 * N + x] = stripLevel;
  }
  for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) m[(2 + dy) * N + blobCol + dx] = blobLevel;
  return m;
}

function result(map: Float32Array, id = 3): CamResult {
  return { ids: Int32Array.from([id]), scores: Float32Array.from([1]), probabilities: Float32Array.from([0.9]), maps: map, mapSize: [N, N] };
}

describe('paperComponents', () => {
  it('lists every region largest first, with its share of the heat and its peak; the first is the paper box', () => {
    const map = stripAndBlob(1, 4);
    const regions = paperComponents(map, [N, N], GEOMETRY, { threshold: 0.2 });
    expect(regions.length).toBe(2);
    expect(regions[0].cells).toBeGreaterThan(regions[1].cells);
    expect(regions[0].box).toEqual(paperBox(map, [N, N], GEOMETRY, { threshold: 0.2 }));
    // The strip is larger, the blob holds the peak.
    expect(regions[0].box[1]).toBeGreaterThan(32);
    expect(regions[1].peak).toBe(1);
    expect(regions[0].peak).toBeLessThan(regions[1].peak);
    expect(regions[0].mass + regions[1].mass).toBeCloseTo(1, 6);
    expect(paperComponents(new Float32Array(N * N).fill(-1), [N, N], GEOMETRY)).toEqual([]);
  });
});

describe('associatedBox', () => {
  const a: Box = [0, 0, 10, 10];
  const b: Box = [20, 20, 30, 30];
  it('takes the hottest region without a previous box', () => {
    expect(associatedBox([{ box: a, mass: 0.4 }, { box: b, mass: 0.6 }], undefined, 0.5)).toEqual(b);
    expect(associatedBox([], undefined, 0.5)).toBeNull();
  });
  it('keeps the region the box was on while it holds at least the ratio of the hottest heat', () => {
    expect(associatedBox([{ box: a, mass: 0.45 }, { box: b, mass: 0.55 }], [1, 1, 10, 10], 0.5)).toEqual(a);
    // Clearly outweighed: the box moves.
    expect(associatedBox([{ box: a, mass: 0.2 }, { box: b, mass: 0.8 }], [1, 1, 10, 10], 0.5)).toEqual(b);
    // A previous box overlapping nothing: the hottest.
    expect(associatedBox([{ box: a, mass: 0.45 }, { box: b, mass: 0.55 }], [50, 50, 60, 60], 0.5)).toEqual(b);
  });
  it('validates the ratio', () => {
    expect(() => resolveLocalizeConfig({ associate: 1.5 })).toThrow(/associate must be a number in \[0, 1\], got 1.5/);
    expect(resolveLocalizeConfig({}).associate).toBe(0.5);
  });
});

describe('BoxFlicker', () => {
  it('averages 1 - IoU of consecutive boxes of one class, leaving out cuts, class changes and missing pairs', () => {
    const f = new BoxFlicker();
    f.add(1, [0, 0, 10, 10], false);
    f.add(1, [0, 0, 10, 10], false); // 0
    f.add(1, [0, 0, 10, 20], false); // 1 - 0.5
    f.add(2, [50, 50, 60, 60], false); // another class: left out
    f.add(2, [50, 50, 60, 60], true); // a cut: left out
    f.add(2, null, false); // vanished: 1
    f.add(2, null, false); // nothing on either side: left out
    expect(f.stats()).toEqual({ frames: 7, boxFlicker: (0 + 0.5 + 1) / 3 });
    expect(new BoxFlicker().stats().boxFlicker).toBe(0);
  });
});

/** An 8x8 map: blob A (rows 1-3, cols 0-2) and blob B (rows 1-3, cols 5-7), one of them a row taller. */
function twoBlobs(aLevel: number, bLevel: number, taller: 'a' | 'b'): Float32Array {
  const m = new Float32Array(N * N);
  for (let y = 1; y <= 4; y++) {
    for (let x = 0; x < 3; x++) {
      if (y < 4 || taller === 'a') m[y * N + x] = aLevel;
      if (y < 4 || taller === 'b') m[y * N + 5 + x] = bLevel;
    }
  }
  return m;
}

describe('localizeCams over a stream', () => {
  const onA = (b: Box) => b[2] <= 32;
  const onB = (b: Box) => b[0] >= 32;
  const run = async (associate: number, maps: Float32Array[], cutAt = -1) => {
    const smoother = new CamSmoother({ pastWeight: 0, cutMeanAbsDiff: Infinity });
    const items = maps.map((m, t) => ({ cams: { ...smoother.update(result(m)), cut: t === cutAt }, width: 64, height: 64 }));
    let stats: LocalizeStats | undefined;
    const op = localizeCams(PRE, { associate, gridMaxSide: 64 }, (s) => {
      stats = s;
    });
    const out = await lastValueFrom(from(items).pipe(op, toArray()));
    return { boxes: out.map((o) => o.boxes[o.cams.shown]!), stats: stats!, op, items };
  };
  // Two blobs of similar heat; which one is larger alternates every frame (noise in the map).
  const trading = Array.from({ length: 12 }, (_, t) => twoBlobs(1, 0.95, t % 2 ? 'b' : 'a'));

  it('without association the largest region alternates; with it the box stays on its region, and box flicker says so', async () => {
    const largest = await run(0, trading);
    const tracked = await run(0.5, trading);
    largest.boxes.forEach((b, t) => expect(t % 2 ? onB(b) : onA(b), `frame ${t}: ${JSON.stringify(b)}`).toBe(true));
    expect(largest.stats.frames).toBe(12);
    expect(largest.stats.boxFlicker).toBe(1);
    // Tracked: the hottest region at the start (A), kept although B is larger, and hotter, every other frame.
    for (const b of tracked.boxes) expect(onA(b), JSON.stringify(b)).toBe(true);
    // What is left is A's own height changing by a row every other frame.
    expect(tracked.stats.boxFlicker).toBeLessThan(0.3);
  });

  it('moves to a region that clearly outweighs the old one, and starts afresh at a cut', async () => {
    // Frame 0: A clearly hottest. Frames 1-3: B hotter, but A keeps over half its heat (kept) ... until the cut at 3.
    const maps = [twoBlobs(1, 0.3, 'a'), twoBlobs(0.8, 1, 'b'), twoBlobs(0.8, 1, 'b'), twoBlobs(0.8, 1, 'b'), twoBlobs(0.35, 1, 'b')];
    const { boxes } = await run(0.5, maps, 3);
    expect([onA(boxes[0]), onA(boxes[1]), onA(boxes[2]), onB(boxes[3]), onB(boxes[4])]).toEqual([true, true, true, true, true]);
    const noCut = await run(0.5, maps);
    expect(onA(noCut.boxes[3])).toBe(true);
    // A outweighed more than twofold: the box moves even without a cut.
    expect(onB(noCut.boxes[4])).toBe(true);
  });

  it('keeps previous boxes per subscription', async () => {
    const { op, items } = await run(0.5, trading);
    const first = await lastValueFrom(from(items).pipe(op, toArray()));
    const second = await lastValueFrom(from(items).pipe(op, toArray()));
    expect(second.map((o) => o.boxes)).toEqual(first.map((o) => o.boxes));
  });
});
