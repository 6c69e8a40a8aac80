import { describe, expect, it } from 'vitest';
import { createRng, mulberry32 } from '../../../common/index.ts';

const MASK = 0xffffffffn;
/** 32-bit multiply, wrapping, on unsigned BigInts. */
const mul = (a: bigint, b: bigint) => (a * b) & MASK;

/**
 * mulberry32 written again from its definition in unsigned BigInt arithmetic (no Math.imul, no `>>>`
 * tricks): add the Weyl increment 0x6D2B79F5 to the state, then mix with xorshift-multiply steps
 * (shifts 15, 7, 14; multipliers t|1 and t|61) and scale the 32-bit result to [0, 1).
 */
function mulberry32Reference(seed: number, count: number): number[] {
  let state = BigInt(seed) & MASK;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5n) & MASK;
    let t = mul(state ^ (state >> 15n), state | 1n);
    t = t ^ ((t + mul(t ^ (t >> 7n), t | 61n)) & MASK);
    out.push(Number(t ^ (t >> 14n)) / 2 ** 32);
  }
  return out;
}

const draw = (next: () => number, count: number) => Array.from({ length: count }, next);

describe('mulberry32', () => {
  it('gives the sequence of the algorithm\'s definition for seed 1', () => {
    const expected = mulberry32Reference(1, 1000);
    expect(draw(mulberry32(1), 1000)).toEqual(expected);
    // The reference is not degenerate: distinct values spread over [0, 1).
    expect(new Set(expected).size).toBe(1000);
    expect(Math.min(...expected)).toBeLessThan(0.01);
    expect(Math.max(...expected)).toBeGreaterThan(0.99);
  });

  it('matches the definition for other seeds, the largest 32-bit seed included', () => {
    for (const seed of [0, 2, 12345, 0x7fffffff, 0xffffffff]) {
      expect(draw(mulberry32(seed), 200)).toEqual(mulberry32Reference(seed, 200));
    }
  });

  it('uses only the low 32 bits of the seed', () => {
    expect(draw(mulberry32(1 + 2 ** 32), 50)).toEqual(draw(mulberry32(1), 50));
    expect(draw(mulberry32(-1), 50)).toEqual(draw(mulberry32(0xffffffff), 50));
  });
});

/** Every method of a createRng generator, interleaved, so a change to any of them shows. */
function drawAll(seed: number[], count: number): number[] {
  const rng = createRng(...seed);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(rng.next(), rng.uniform(-2, 3), rng.int(7), rng.normal(), rng.chance(0.3) ? 1 : 0);
  }
  return out;
}

describe('createRng', () => {
  it('gives the same sequence for the same seed integers', () => {
    expect(drawAll([1], 500)).toEqual(drawAll([1], 500));
    expect(drawAll([5, 17], 500)).toEqual(drawAll([5, 17], 500));
  });

  it('gives different sequences for different seeds, and the order of the seed integers counts', () => {
    const a = drawAll([5, 17], 20);
    expect(drawAll([5, 18], 20)).not.toEqual(a);
    expect(drawAll([17, 5], 20)).not.toEqual(a);
    expect(drawAll([5], 20)).not.toEqual(a);
    // Seeds past 32 bits still count (scene indices times large seeds).
    expect(drawAll([2 ** 32 + 5], 20)).not.toEqual(drawAll([5], 20));
  });

  it('keeps each method inside its range', () => {
    const rng = createRng(9);
    for (let i = 0; i < 2000; i++) {
      const x = rng.next();
      expect(x >= 0 && x < 1).toBe(true);
      const u = rng.uniform(-2, 3);
      expect(u >= -2 && u < 3).toBe(true);
      const k = rng.int(7);
      expect(Number.isInteger(k) && k >= 0 && k < 7).toBe(true);
      expect(Number.isFinite(rng.normal())).toBe(true);
    }
  });
});
