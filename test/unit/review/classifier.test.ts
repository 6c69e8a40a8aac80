import { describe, expect, it } from 'vitest';
import { fitLinearClassifier, headLogits, stratifiedSplit } from '../../../review/index.ts';

/** Gaussian-ish clusters from a seeded LCG: class c is centred at a class-specific point in d dims. */
function clusters(n: number, d: number, C: number, spread: number, seed: number) {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const centres = Array.from({ length: C }, () => Float32Array.from({ length: d }, () => rand() * 4 + 10));
  const features: Float32Array[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % C;
    features.push(Float32Array.from(centres[c], (v) => v + (rand() + rand() + rand() - 1.5) * spread));
    labels.push(c);
  }
  return { features, labels };
}

describe('the linear classifier on GAP features', () => {
  it('separates well-separated classes and its folded head gives logits in the raw feature space', () => {
    const { features, labels } = clusters(120, 16, 3, 0.8, 3);
    const fit = fitLinearClassifier({ features, labels, numClasses: 3 }, ['a', 'b', 'c']);
    expect(fit.trainAccuracy).toBe(1);
    expect(fit.chosenBy).toBe('validation');
    expect(fit.validation).toHaveLength(5);
    expect(fit.head.weights).toHaveLength(16 * 3);
    // The head works on RAW features (standardization folded in): argmax of f.W + b is the label.
    let right = 0;
    features.forEach((f, i) => {
      const z = headLogits(fit.head, f);
      const best = z.indexOf(Math.max(...z));
      if (best === labels[i]) right++;
    });
    expect(right).toBe(features.length);
  });

  it('is deterministic: the same data and seed give the same weights', () => {
    const { features, labels } = clusters(60, 8, 4, 2, 11);
    const a = fitLinearClassifier({ features, labels, numClasses: 4 }, ['a', 'b', 'c', 'd'], { seed: 5 });
    const b = fitLinearClassifier({ features, labels, numClasses: 4 }, ['a', 'b', 'c', 'd'], { seed: 5 });
    expect(Array.from(a.head.weights)).toEqual(Array.from(b.head.weights));
    expect(a.lambda).toBe(b.lambda);
  });

  it('shrinks the weights as lambda grows and reports each candidate on the validation split', () => {
    const data = { ...clusters(80, 32, 2, 3, 4), numClasses: 2 };
    const norm = (w: Float32Array) => Math.sqrt(w.reduce((s, v) => s + v * v, 0));
    const weak = fitLinearClassifier(data, ['a', 'b'], { lambdas: [1e-3] });
    const strong = fitLinearClassifier(data, ['a', 'b'], { lambdas: [10] });
    expect(norm(strong.head.weights)).toBeLessThan(norm(weak.head.weights));
    const both = fitLinearClassifier(data, ['a', 'b'], { lambdas: [1e-3, 10] });
    expect(both.validation.map((v) => v.lambda)).toEqual([1e-3, 10]);
    expect(both.validationIndices.length).toBe(20);
  });

  it('refuses a single class and mismatched rows with errors naming the problem', () => {
    expect(() => fitLinearClassifier({ features: [new Float32Array(2)], labels: [0], numClasses: 1 }, ['a'])).toThrow(/at least 2 classes/);
    expect(() => fitLinearClassifier({ features: [new Float32Array(2), new Float32Array(3)], labels: [0, 1], numClasses: 2 }, ['a', 'b'])).toThrow(/row 1 has length 3/);
    expect(() => fitLinearClassifier({ features: [new Float32Array(2)], labels: [0], numClasses: 2 }, ['a', 'b'], { lambdas: [-1] })).toThrow(/lambdas/);
  });
});

describe('stratifiedSplit', () => {
  it('holds out about the fraction of each class, never a whole class, and is seeded', () => {
    const labels = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2];
    const a = stratifiedSplit(labels, 0.25, 3);
    expect(a.second.filter((i) => labels[i] === 0)).toHaveLength(1);
    expect(a.second.filter((i) => labels[i] === 1)).toHaveLength(2);
    expect(a.second.filter((i) => labels[i] === 2)).toHaveLength(0);
    expect([...a.first, ...a.second].sort((x, y) => x - y)).toEqual(labels.map((_, i) => i));
    expect(stratifiedSplit(labels, 0.25, 3)).toEqual(a);
  });
});
