import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { ConfigError, InputError } from '../../../common/index.ts';
import {
  applyColormap,
  colormapLut,
  COLORMAP_NAMES,
  dequantizeMap,
  normalizeMap,
  quantizeMap,
  resampleMap,
  upsampleBilinear,
} from '../../../models/index.ts';
// The seeded PRNG the builders use, so every run draws the same numbers and failures reproduce.
import { mulberry32 as rng } from '../../../common/index.ts';


function randomMap(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 4 - 1);
}

describe('upsampleBilinear', () => {
  it('uses half-pixel centres with clamped borders (worked 2x2 -> 4x4 example)', () => {
    // Output column j samples x = (j + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped 0, 0.25, 0.75, 1.
    const out = upsampleBilinear(Float32Array.from([0, 1, 2, 3]), [2, 2], [4, 4]);
    const expected = [
      [0, 0.25, 0.75, 1],
      [0.5, 0.75, 1.25, 1.5],
      [1.5, 1.75, 2.25, 2.5],
      [2, 2.25, 2.75, 3],
    ].flat();
    expect(Array.from(out)).toEqual(expected);
  });

  it('agrees with tf.image.resizeBilinear(halfPixelCenters=true) on random maps', async () => {
    await tf.setBackend('cpu');
    const cases: Array<[[number, number], [number, number]]> = [
      [[7, 7], [224, 224]],
      [[14, 14], [100, 37]],
      [[5, 9], [13, 13]],
      [[28, 28], [28, 28]],
    ];
    cases.forEach(([size, outSize], k) => {
      const map = randomMap(size[0] * size[1], 100 + k);
      const ours = upsampleBilinear(map, size, outSize);
      const ref = tf.tidy(() =>
        tf.image.resizeBilinear(tf.tensor4d(map, [1, size[0], size[1], 1]), outSize, false, true).dataSync(),
      );
      let maxErr = 0;
      for (let i = 0; i < ours.length; i++) maxErr = Math.max(maxErr, Math.abs(ours[i] - ref[i]));
      expect(maxErr, `case ${k}`).toBeLessThan(1e-5);
    });
  });

  it('is the identity at the same size and keeps a constant map constant', () => {
    const map = randomMap(6 * 5, 7);
    expect(Array.from(upsampleBilinear(map, [6, 5], [6, 5]))).toEqual(Array.from(map));
    const flat = upsampleBilinear(new Float32Array(9).fill(2.5), [3, 3], [31, 17]);
    expect(flat.every((v) => Math.abs(v - 2.5) < 1e-6)).toBe(true);
  });

  it('writes into a given buffer and rejects one of the wrong length', () => {
    const out = new Float32Array(16);
    expect(upsampleBilinear(Float32Array.from([0, 1, 2, 3]), [2, 2], [4, 4], out)).toBe(out);
    expect(() => upsampleBilinear(Float32Array.from([0, 1, 2, 3]), [2, 2], [4, 4], new Float32Array(15))).toThrow(
      InputError,
    );
  });

  it('names the bad size or length', () => {
    expect(() => upsampleBilinear(new Float32Array(10), [3, 3], [4, 4])).toThrow(/10 values.*\[3, 3\].*9/);
    expect(() => upsampleBilinear(new Float32Array(9), [3, 3], [0, 4])).toThrow(InputError);
    expect(() => upsampleBilinear(new Float32Array(9), [3, 3], [4, 2.5])).toThrow(/output size.*2\.5/);
  });
});

describe('resampleMap', () => {
  it('equals per-pixel bilinear interpolation bit for bit, on random maps, grids and transforms', () => {
    const random = rng(11);
    const clampIndex = (p: number, last: number) => Math.min(last, Math.max(0, p));
    for (let trial = 0; trial < 200; trial++) {
      const h = 1 + Math.floor(random() * 12);
      const w = 1 + Math.floor(random() * 12);
      const outH = 1 + Math.floor(random() * 40);
      const outW = 1 + Math.floor(random() * 40);
      const t = { scaleX: (w / outW) * (0.5 + random()), offsetX: random() * 2 - 1, scaleY: (h / outH) * (0.5 + random()), offsetY: random() * 2 - 1 };
      const map = Float32Array.from({ length: h * w }, () => random() * 4 - 1);
      // The plain definition: each output pixel from its four neighbours, weights in float32 as the routine keeps them.
      const want = new Float32Array(outH * outW);
      for (let i = 0; i < outH; i++) {
        const py = clampIndex((i + 0.5) * t.scaleY + t.offsetY - 0.5, h - 1);
        const y0 = Math.floor(py);
        const y1 = y0 < h - 1 ? y0 + 1 : h - 1;
        const fy = Math.fround(py - y0);
        for (let j = 0; j < outW; j++) {
          const px = clampIndex((j + 0.5) * t.scaleX + t.offsetX - 0.5, w - 1);
          const x0 = Math.floor(px);
          const x1 = x0 < w - 1 ? x0 + 1 : w - 1;
          const fx = Math.fround(px - x0);
          const top = map[y0 * w + x0] + (map[y0 * w + x1] - map[y0 * w + x0]) * fx;
          const bottom = map[y1 * w + x0] + (map[y1 * w + x1] - map[y1 * w + x0]) * fx;
          want[i * outW + j] = top + (bottom - top) * fy;
        }
      }
      expect(Buffer.from(resampleMap(map, [h, w], [outH, outW], t).buffer).equals(Buffer.from(want.buffer))).toBe(true);
    }
  });

  it('reads a sub-window of the map when the grid covers part of it (the letterbox crop)', () => {
    // A 4-row map whose rows hold their index; a 2-row grid over map rows 1..3 (offset 1, 1 map px per row).
    const map = Float32Array.from([0, 0, 1, 1, 2, 2, 3, 3]);
    const out = resampleMap(map, [4, 2], [2, 2], { scaleX: 1, offsetX: 0, scaleY: 1, offsetY: 1 });
    // Grid row centres sit at map y = 1.5 and 2.5: the centres of map rows 1 and 2.
    expect(Array.from(out)).toEqual([1, 1, 2, 2]);
  });
});

describe('normalizeMap', () => {
  const raw = Float32Array.from([-2, 0, 2, 6]);

  it('minmax: maps min to 0 and max to 1', () => {
    expect(Array.from(normalizeMap(raw, 'minmax'))).toEqual([0, 0.25, 0.5, 1]);
  });

  it('minmax: a constant map becomes all zeros', () => {
    expect(Array.from(normalizeMap(new Float32Array(4).fill(3), 'minmax'))).toEqual([0, 0, 0, 0]);
  });

  it('fixed: divides by the scale, clamps to [0, 1], negatives to 0', () => {
    expect(Array.from(normalizeMap(raw, 'fixed', { scale: 4 }))).toEqual([0, 0, 0.5, 1]);
  });

  it('prob: scales the min-max map by the class probability', () => {
    const out = normalizeMap(raw, 'prob', { probability: 0.2 });
    expect(Array.from(out).map((v) => +v.toFixed(6))).toEqual([0, 0.05, 0.1, 0.2]);
  });

  it('works in place', () => {
    const m = Float32Array.from(raw);
    expect(normalizeMap(m, 'minmax', { out: m })).toBe(m);
    expect(Array.from(m)).toEqual([0, 0.25, 0.5, 1]);
  });

  it('rejects bad options with errors naming the value', () => {
    expect(() => normalizeMap(raw, 'fixed', {})).toThrow(ConfigError);
    expect(() => normalizeMap(raw, 'fixed', { scale: -1 })).toThrow(/scale.*-1/);
    expect(() => normalizeMap(raw, 'prob', { probability: 1.5 })).toThrow(/probability.*1\.5/);
    expect(() => normalizeMap(raw, 'softmax' as never)).toThrow(/"softmax"/);
    expect(() => normalizeMap(Float32Array.from([0, NaN]), 'minmax')).toThrow(/index 1 is NaN/);
    expect(() => normalizeMap(raw, 'minmax', { out: new Float32Array(3) })).toThrow(InputError);
  });
});

describe('quantizeMap / dequantizeMap', () => {
  it('rounds to 0..255, clamps out-of-range values and maps NaN to 0', () => {
    const q = quantizeMap(Float32Array.from([0, 1, 0.5, 0.499 / 255, 0.501 / 255, -3, 7, NaN]));
    expect(Array.from(q)).toEqual([0, 255, 128, 0, 1, 0, 255, 0]);
  });

  it('round-trips within half a level', () => {
    const m = Float32Array.from({ length: 1000 }, (_, i) => i / 999);
    const back = dequantizeMap(quantizeMap(m));
    for (let i = 0; i < m.length; i++) expect(Math.abs(back[i] - m[i])).toBeLessThanOrEqual(0.5 / 255 + 1e-7);
  });
});

describe('colormaps', () => {
  it('are 256-entry RGB tables', () => {
    for (const name of COLORMAP_NAMES) expect(colormapLut(name).length).toBe(768);
  });

  it('jet runs dark blue -> cyan/yellow-green middle -> dark red, piecewise linear', () => {
    const lut = colormapLut('jet');
    const at = (i: number) => Array.from(lut.subarray(3 * i, 3 * i + 3));
    expect(at(0)).toEqual([0, 0, 128]);
    expect(at(255)).toEqual([128, 0, 0]);
    // x = 0.5: red and blue at half, green saturated.
    expect(at(128)).toEqual([130, 255, 126]);
    // Over the first eighth only blue rises, linearly from 0.5: b(x) = 0.5 + 4x.
    for (let i = 0; i < 32; i++) {
      expect(Math.abs(at(i)[2] - 255 * (0.5 + (4 * i) / 255))).toBeLessThanOrEqual(0.5 + 1e-9);
      expect(at(i).slice(0, 2)).toEqual([0, 0]);
    }
  });

  it('inferno follows matplotlib within 4 levels and gets brighter monotonically', () => {
    const lut = colormapLut('inferno');
    // Reference entries of matplotlib's 256-entry table (x 255, rounded).
    const ref: Record<number, [number, number, number]> = {
      0: [0, 0, 4],
      40: [47, 10, 91],
      100: [144, 37, 104],
      128: [188, 55, 84],
      200: [251, 157, 7],
      255: [252, 255, 164],
    };
    for (const [i, rgb] of Object.entries(ref)) {
      for (let c = 0; c < 3; c++) expect(Math.abs(lut[3 * +i + c] - rgb[c]), `entry ${i}`).toBeLessThanOrEqual(4);
    }
    let prev = -1;
    for (let i = 0; i < 256; i += 4) {
      const luma = 0.2126 * lut[3 * i] + 0.7152 * lut[3 * i + 1] + 0.0722 * lut[3 * i + 2];
      expect(luma).toBeGreaterThan(prev);
      prev = luma;
    }
  });

  it('turbo goes blue -> green -> red with dark ends', () => {
    const lut = colormapLut('turbo');
    const at = (x: number) => Array.from(lut.subarray(3 * Math.round(x * 255), 3 * Math.round(x * 255) + 3));
    const dominant = (rgb: number[]) => rgb.indexOf(Math.max(...rgb));
    expect(dominant(at(0.15))).toBe(2);
    expect(dominant(at(0.5))).toBe(1);
    expect(dominant(at(0.9))).toBe(0);
    const sum = (rgb: number[]) => rgb[0] + rgb[1] + rgb[2];
    expect(sum(at(0))).toBeLessThan(sum(at(0.5)) / 3);
    expect(sum(at(1))).toBeLessThan(sum(at(0.5)) / 3);
  });

  it('applyColormap looks values up with clamping, NaN as 0', () => {
    const lut = colormapLut('jet');
    const rgb = applyColormap(Float32Array.from([0, 1, 0.5, -1, 2, NaN]), 'jet');
    const entry = (i: number) => Array.from(lut.subarray(3 * i, 3 * i + 3));
    expect(Array.from(rgb)).toEqual([...entry(0), ...entry(255), ...entry(128), ...entry(0), ...entry(255), ...entry(0)]);
  });

  it('rejects an unknown colormap, naming it', () => {
    expect(() => applyColormap(new Float32Array(1), 'viridis' as never)).toThrow(/"viridis"/);
    expect(() => applyColormap(new Float32Array(2), 'jet', new Uint8Array(5))).toThrow(InputError);
  });
});
