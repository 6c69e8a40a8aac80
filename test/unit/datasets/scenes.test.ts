import { describe, expect, it } from 'vitest';
import {
  DIGIT_LABELS,
  fillBatch,
  generateScene,
  generateSceneLayers,
  generateScenes,
  resolveSceneConfig,
  sceneLabel,
} from '../../../datasets/index.ts';
import { ConfigError } from '../../../common/index.ts';

describe('scene generator', () => {
  it('gives the same bytes, label and box for the same seed and index', () => {
    for (const index of [0, 7, 1234]) {
      const a = generateScene(42, index);
      const b = generateScene(42, index);
      expect(Buffer.compare(Buffer.from(a.rgb), Buffer.from(b.rgb))).toBe(0);
      expect(a.label).toBe(b.label);
      expect(a.box).toEqual(b.box);
    }
  });

  it('gives different scenes for other seeds and indices', () => {
    const a = generateScene(1, 5);
    expect(Buffer.compare(Buffer.from(a.rgb), Buffer.from(generateScene(2, 5).rgb))).not.toBe(0);
    expect(Buffer.compare(Buffer.from(a.rgb), Buffer.from(generateScene(1, 6).rgb))).not.toBe(0);
  });

  it('does not depend on the order samples are made in', () => {
    const forward = [...generateScenes(9, 20)];
    const single = generateScene(9, 13);
    expect(Buffer.compare(Buffer.from(forward[13].rgb), Buffer.from(single.rgb))).toBe(0);
  });

  it('returns packed RGB of the configured size', () => {
    for (const size of [32, 56, 97]) {
      const s = generateScene(3, 0, { size });
      expect(s.width).toBe(size);
      expect(s.height).toBe(size);
      expect(s.rgb.length).toBe(size * size * 3);
    }
  });

  it('boxes the digit ink tightly: every inked pixel inside, each edge touching ink', () => {
    for (let index = 0; index < 200; index++) {
      const s = generateSceneLayers(11, index);
      const [x1, y1, x2, y2] = s.box;
      expect(0 <= x1 && x1 < x2 && x2 <= s.width && 0 <= y1 && y1 < y2 && y2 <= s.height).toBe(true);
      let touchesLeft = false;
      let touchesRight = false;
      let touchesTop = false;
      let touchesBottom = false;
      let inked = 0;
      for (let y = 0; y < s.height; y++) {
        for (let x = 0; x < s.width; x++) {
          if (s.ink[y * s.width + x] < 0.5) continue;
          inked++;
          expect(x >= x1 && x < x2 && y >= y1 && y < y2).toBe(true);
          touchesLeft ||= x === x1;
          touchesRight ||= x === x2 - 1;
          touchesTop ||= y === y1;
          touchesBottom ||= y === y2 - 1;
        }
      }
      expect(inked).toBeGreaterThan(10);
      expect([touchesLeft, touchesRight, touchesTop, touchesBottom]).toEqual([true, true, true, true]);
      // The digit is a sizeable object: its box is 36%-66% of the side tall, give or take the stroke.
      expect(y2 - y1).toBeGreaterThan(0.25 * s.height);
    }
  });

  it('draws the digit visibly: inked pixels differ from the pixels around the box', () => {
    // Without clutter, noise and blur, the mean colour under full ink differs from the mean colour of the
    // uninked pixels by at least the generator's minimum luma contrast, scaled by the lowest contrast.
    for (let index = 0; index < 50; index++) {
      const s = generateSceneLayers(5, index, { clutter: [0, 0], noise: [0, 0], blurProbability: 0 });
      const luma = (j: number): number => 0.299 * s.rgb[j * 3] + 0.587 * s.rgb[j * 3 + 1] + 0.114 * s.rgb[j * 3 + 2];
      let inkSum = 0;
      let inkN = 0;
      let bgSum = 0;
      let bgN = 0;
      for (let j = 0; j < s.ink.length; j++) {
        if (s.ink[j] >= 0.99) {
          inkSum += luma(j);
          inkN++;
        } else if (s.ink[j] === 0) {
          bgSum += luma(j);
          bgN++;
        }
      }
      expect(inkN).toBeGreaterThan(0);
      expect(Math.abs(inkSum / inkN - bgSum / bgN)).toBeGreaterThan(20);
    }
  });

  it('puts clutter in the scene when asked and none when not', () => {
    let withClutter = 0;
    for (let index = 0; index < 30; index++) {
      expect(generateSceneLayers(8, index, { clutter: [0, 0] }).clutter.some((v) => v > 0)).toBe(false);
      if (generateSceneLayers(8, index, { clutter: [3, 3] }).clutter.some((v) => v > 0.5)) withClutter++;
    }
    expect(withClutter).toBeGreaterThan(25);
  });

  it('balances the classes: each block of ten indices holds every digit once', () => {
    const counts = new Array(10).fill(0);
    for (let block = 0; block < 100; block++) {
      const seen = new Set<number>();
      for (let i = 0; i < 10; i++) seen.add(sceneLabel(3, block * 10 + i));
      expect(seen.size).toBe(10);
    }
    for (let i = 0; i < 1000; i++) counts[generateScene(3, i, { size: 24 }).label]++;
    expect(counts).toEqual(new Array(10).fill(100));
    expect(DIGIT_LABELS).toHaveLength(10);
  });

  it('fills a normalized batch matching the scenes', () => {
    const config = resolveSceneConfig({ size: 32 });
    const images = new Float32Array(4 * 32 * 32 * 3);
    const labels = new Int32Array(4);
    fillBatch(6, 10, 4, config, images, labels, { scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    for (let i = 0; i < 4; i++) {
      const s = generateScene(6, 10 + i, config);
      expect(labels[i]).toBe(s.label);
      for (const j of [0, 100, 3071]) expect(images[i * 3072 + j]).toBeCloseTo((s.rgb[j] / 255 - 0.5) / 0.25, 5);
    }
  });

  it('rejects bad settings with the field and value in the message', () => {
    expect(() => resolveSceneConfig({ size: 8 })).toThrow(ConfigError);
    expect(() => resolveSceneConfig({ size: 8 })).toThrow(/size.*8/);
    expect(() => resolveSceneConfig({ clutter: [4, 2] })).toThrow(/clutter/);
    expect(() => generateScene(1, -1)).toThrow(/index -1/);
  });
});
