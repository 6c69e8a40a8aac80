import { describe, expect, it } from 'vitest';
import {
  CLUTTERED_RECIPES,
  generateClutteredLayers,
  generateMnistScene,
  generateWebcamLayers,
  loadMnistDigits,
  MNIST_RECIPES,
  MnistSampler,
  mnistSplitRange,
  NO_DIGIT,
} from '../../../datasets/index.ts';
import { createRng } from '../../../common/index.ts';

const digits = loadMnistDigits();
const train = new MnistSampler(digits, 'train');
const test = new MnistSampler(digits, 'test');

describe('MNIST digits and their fixed split', () => {
  it('reads 10,000 real digits, about 1,000 per class, with values in [0, 1]', () => {
    expect(digits.counts.reduce((a, b) => a + b, 0)).toBe(10_000);
    for (const [d, n] of digits.counts.entries()) {
      expect(n).toBeGreaterThan(800);
      expect(digits.pixels[d].length).toBe(n * 784);
    }
    expect(Math.max(...digits.pixels[3].subarray(0, 784))).toBeLessThanOrEqual(1);
  });

  it('splits each class file at floor(0.85 x count): the first part is train, the rest test', () => {
    expect(mnistSplitRange(1001, 'train')).toEqual([0, 850]);
    expect(mnistSplitRange(1001, 'test')).toEqual([850, 1001]);
    expect(mnistSplitRange(863, 'train')).toEqual([0, 733]);
  });

  it('never hands a test-split index to a train sampler, nor a train index to a test sampler', () => {
    const rng = createRng(5);
    for (let i = 0; i < 20_000; i++) {
      const d = train.pick(rng);
      expect(d.index).toBeLessThan(Math.floor(0.85 * digits.counts[d.label]));
      const t = test.pick(rng);
      expect(t.index).toBeGreaterThanOrEqual(Math.floor(0.85 * digits.counts[t.label]));
    }
    expect(() => train.get(4, Math.floor(0.85 * digits.counts[4]))).toThrow(/not in the train split/);
    expect(() => test.get(4, 0)).toThrow(/not in the test split/);
  });

  it('builds train-split scenes only from train-split digits (the digit and every clutter source), for every recipe', () => {
    for (const recipe of MNIST_RECIPES) {
      for (let i = 0; i < 60; i++) {
        const s = generateMnistScene(train, recipe, 1, i);
        for (const src of s.sources) expect(src.index).toBeLessThan(Math.floor(0.85 * digits.counts[src.label]));
        const t = generateMnistScene(test, recipe, 1, i);
        for (const src of t.sources) expect(src.index).toBeGreaterThanOrEqual(Math.floor(0.85 * digits.counts[src.label]));
      }
    }
  });
});

describe('real-digit scene recipes', () => {
  it('dm100 follows DeepMind\'s recipe: 100x100, the 28x28 digit, 8 distractors of 8x8 from other digits, added, clamped', () => {
    expect(CLUTTERED_RECIPES.dm100).toEqual({ size: 100, distractors: 8, patch: 8 });
    let clamped = 0;
    for (let i = 0; i < 50; i++) {
      const s = generateClutteredLayers(test, 'dm100', 7, i);
      expect([s.width, s.height, s.rgb.length]).toEqual([100, 100, 100 * 100 * 3]);
      expect(s.distractors).toHaveLength(8);
      // The sum of the digit and the patches, recomputed here from the raw digits, then clamped.
      const sum = Float32Array.from(s.digit);
      for (const p of s.distractors) {
        expect(p.side).toBe(8);
        expect(p.sx >= 0 && p.sx <= 20 && p.sy >= 0 && p.sy <= 20 && p.dx >= 0 && p.dx <= 92 && p.dy >= 0 && p.dy <= 92).toBe(true);
        const src = test.get(p.label, p.index).pixels;
        for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) sum[(p.dy + y) * 100 + p.dx + x] += src[(p.sy + y) * 28 + p.sx + x];
      }
      let wrong = 0;
      for (let j = 0; j < sum.length; j++) {
        if (sum[j] > 1) clamped++;
        const want = Math.min(1, sum[j]);
        if (Math.abs(s.canvas[j] - want) > 1e-6 || s.rgb[j * 3] !== Math.round(want * 255) || s.rgb[j * 3 + 1] !== s.rgb[j * 3] || s.rgb[j * 3 + 2] !== s.rgb[j * 3]) wrong++;
      }
      expect(wrong).toBe(0);
      // The digit layer is one real digit, unscaled, at one place: exactly its 28x28 pixels.
      const d = test.get(s.sources[0].label, s.sources[0].index).pixels;
      expect(s.sources[0].label).toBe(s.label);
      const nonzero = s.digit.reduce((n, v) => n + (v > 0 ? 1 : 0), 0);
      expect(nonzero).toBe(d.reduce((n, v) => n + (v > 0 ? 1 : 0), 0));
    }
    expect(clamped).toBeGreaterThan(0); // overlaps happen, and the clamp holds them at 1
  });

  it('stn60 is 60x60 with 4 distractors of 6x6', () => {
    const s = generateClutteredLayers(test, 'stn60', 3, 4);
    expect([s.width, s.height]).toEqual([60, 60]);
    expect(s.distractors.map((p) => p.side)).toEqual([6, 6, 6, 6]);
  });

  it('boxes the digit\'s ink tightly: every ink cell inside, each edge touching ink', () => {
    for (const recipe of ['dm100', 'stn60'] as const) {
      for (let i = 0; i < 100; i++) {
        const s = generateClutteredLayers(test, recipe, 11, i);
        const [x1, y1, x2, y2] = s.box!;
        const edges = { l: false, r: false, t: false, b: false };
        for (let y = 0; y < s.height; y++) {
          for (let x = 0; x < s.width; x++) {
            if (s.digit[y * s.width + x] < 0.5) continue;
            expect(x >= x1 && x < x2 && y >= y1 && y < y2).toBe(true);
            edges.l ||= x === x1;
            edges.r ||= x === x2 - 1;
            edges.t ||= y === y1;
            edges.b ||= y === y2 - 1;
          }
        }
        expect(edges).toEqual({ l: true, r: true, t: true, b: true });
      }
    }
  });

  it('is seeded and reproducible, with balanced labels; none scenes carry no digit and no box', () => {
    for (const recipe of MNIST_RECIPES) {
      const a = generateMnistScene(train, recipe, 9, 17);
      const b = generateMnistScene(train, recipe, 9, 17);
      expect(Buffer.compare(Buffer.from(a.rgb), Buffer.from(b.rgb))).toBe(0);
      expect(Buffer.compare(Buffer.from(a.rgb), Buffer.from(generateMnistScene(train, recipe, 10, 17).rgb))).not.toBe(0);
    }
    const labels = Array.from({ length: 20 }, (_, i) => generateMnistScene(train, 'webcam', 2, i).label).sort((x, y) => x - y);
    expect(labels).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]);
    for (let i = 0; i < 30; i++) {
      const n = generateMnistScene(train, 'none', 4, i);
      expect(n.label).toBe(NO_DIGIT);
      expect(n.box).toBeNull();
    }
  });

  it('webcam clutter never touches the digit and comes from smaller digits, so every label can be read off its scene', () => {
    // Before this rule 60% of test scenes had clutter inside the digit's ink box, 17% had a tenth or more
    // of the digit's ink drawn over, and 7% a fragment taller than the digit.
    let fragments = 0;
    let strokes = 0;
    for (const size of [64, 100]) {
      for (let i = 0; i < 150; i++) {
        const s = generateWebcamLayers(test, 2016, i, size);
        const [x1, y1, x2, y2] = s.box!;
        let overDigit = 0;
        for (let y = Math.max(0, y1 - 1); y < Math.min(size, y2 + 1); y++) {
          for (let x = Math.max(0, x1 - 1); x < Math.min(size, x2 + 1); x++) overDigit += s.clutter[y * size + x];
        }
        expect(overDigit, `scene ${i} at ${size}px: clutter inside the digit's box`).toBe(0);
        for (const f of s.fragments) expect(f[3] - f[1], `scene ${i} at ${size}px: a fragment taller than the digit`).toBeLessThanOrEqual(y2 - y1);
        fragments += s.fragments.length;
        let outside = 0;
        for (let j = 0; j < s.clutter.length; j++) outside += s.clutter[j];
        if (outside > 0 && s.fragments.length === 0) strokes++;
      }
    }
    // The clutter is still there, beside the digit.
    expect(fragments).toBeGreaterThan(100);
    expect(strokes).toBeGreaterThan(10);
  });

  it('webcam digits span 15-70% of the frame height and come in both polarities', () => {
    let dark = 0;
    let light = 0;
    for (let i = 0; i < 80; i++) {
      const s = generateMnistScene(test, 'webcam', 21, i, { size: 96 });
      const h = (s.box![3] - s.box![1]) / s.height;
      expect(h).toBeGreaterThan(0.1);
      expect(h).toBeLessThan(0.8);
      // Mean brightness tells paper from a dark background.
      const mean = s.rgb.reduce((a, v) => a + v, 0) / s.rgb.length;
      if (mean > 110) light++;
      else dark++;
    }
    expect(light).toBeGreaterThan(30);
    expect(dark).toBeGreaterThan(5);
  });
});
