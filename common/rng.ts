/**
 * camstream's seeded PRNGs, so generated data is the same on every machine and Node version
 * (`Math.random` cannot be seeded). Two generators, each kept bit-exact because saved outputs depend on
 * their sequences:
 * - `createRng`: sfc32 seeded through a splitmix32-style hash of any number of integers; the scene
 *   generator draws from it, so a scene is reproducible from (seed, index) alone.
 * - `mulberry32`: one 32-bit state; the review's train/validation splits and the builders' random
 *   weights and frames draw from it.
 * Neither is for cryptography.
 */

/**
 * mulberry32 (Tommy Ettinger's 32-bit state generator): uniform floats in [0, 1), the same sequence for
 * the same seed. Only the low 32 bits of `seed` count.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 32-bit integer hash of the given integers (splitmix32 steps); stable across platforms. */
export function hashInts(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const v of values) {
    h = Math.imul(h ^ (v | 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h + 0x7f4a7c15, 0xc2b2ae35);
    h ^= h >>> 16;
    // The high 32 bits of larger seeds still count.
    const high = Math.floor(v / 4294967296);
    if (high !== 0) h = Math.imul(h ^ high, 0x27d4eb2f);
  }
  return h >>> 0;
}

/** The generator `createRng` returns. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Integer uniform in [0, n). */
  int(n: number): number;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** True with probability p. */
  chance(p: number): boolean;
}

/** A PRNG seeded by any number of integers (for example seed and sample index). */
export function createRng(...seed: number[]): Rng {
  let a = hashInts(...seed, 1);
  let b = hashInts(...seed, 2);
  let c = hashInts(...seed, 3);
  let d = 1;
  const next = (): number => {
    // sfc32: small, fast, passes PractRand for the lengths used here.
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return {
    next,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    int: (n) => Math.floor(next() * n),
    normal: () => {
      const u = 1 - next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
    },
    chance: (p) => next() < p,
  };
}
