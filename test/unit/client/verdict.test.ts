/**
 * What the live page says a result shows (client/camstream-app/internal/verdict.ts): the class on the map,
 * or "no digit" for a model with a `no digit` class when that class leads or is on the map, or when the
 * best probability is under the low-confidence level.
 */
import { describe, expect, it } from 'vitest';
import { NONE_TEXT, verdict } from '../../../client/camstream-app/internal/verdict.ts';

const labels = ['zero', 'one', 'no digit'];

function result(ids: number[], probabilities: number[], shown = 0) {
  return { ids: Int32Array.from(ids), probabilities: Float32Array.from(probabilities), labels: ids.map((i) => labels[i]), shown };
}

describe('the page\'s verdict', () => {
  const rule = { noneClass: 2, lowConfidence: 0.5 };

  it('names the class on the map, with its probability, when it is confident', () => {
    expect(verdict(result([1, 0, 2], [0.9, 0.06, 0.04]), rule)).toEqual({ text: 'one', probability: expect.closeTo(0.9, 5), none: false });
  });

  it('says "no digit" when the no-digit class leads, even while hysteresis holds a digit on the map', () => {
    expect(verdict(result([2, 1], [0.7, 0.3], 1), rule)).toMatchObject({ text: NONE_TEXT, none: true });
  });

  it('says "no digit" when the no-digit class is on the map', () => {
    expect(verdict(result([1, 2], [0.55, 0.45], 1), rule)).toMatchObject({ text: NONE_TEXT, none: true });
  });

  it('says "no digit" when the best probability is under the low-confidence level', () => {
    expect(verdict(result([0, 1, 2], [0.4, 0.35, 0.25]), rule)).toMatchObject({ text: NONE_TEXT, none: true, probability: expect.closeTo(0.4, 5) });
    expect(verdict(result([0, 1, 2], [0.4, 0.35, 0.25]), { ...rule, lowConfidence: 0.3 })).toMatchObject({ text: 'zero', none: false });
  });

  it('reads a model without a no-digit class as it is, however unsure', () => {
    expect(verdict(result([0, 1], [0.2, 0.1]), { noneClass: null, lowConfidence: 0.5 })).toMatchObject({ text: 'zero', none: false });
    expect(verdict(result([0, 1], [0.2, 0.1]), undefined)).toMatchObject({ text: 'zero', none: false });
  });

  it('has nothing to say about a result without classes', () => {
    expect(verdict(result([], []), rule)).toBeUndefined();
  });
});
