/**
 * Timing helpers for the benches. The machine may be shared with other work, so absolute times are noisy:
 * the things compared within one case are measured interleaved (A, B, C, A, B, C, ...) so that a burst of
 * outside load hits all of them alike and their ratios stay meaningful.
 */
import type { CamModel, Frame } from '../../models/index.ts';

/** How long to measure. */
export interface MeasurePlan {
  /** Untimed calls of each operation first (kernel compilation, allocator warm-up). */
  warmup: number;
  /** At least this many timed rounds... */
  minRuns: number;
  /** ...and at most this many... */
  maxRuns: number;
  /** ...stopping once this much wall time has gone into timed rounds (after `minRuns`). */
  budgetMs: number;
}

export const DEFAULT_PLAN: Readonly<MeasurePlan> = Object.freeze({ warmup: 3, minRuns: 10, maxRuns: 60, budgetMs: 15_000 });
export const QUICK_PLAN: Readonly<MeasurePlan> = Object.freeze({ warmup: 1, minRuns: 3, maxRuns: 10, budgetMs: 3_000 });

/** Summary of one operation's timed runs, in milliseconds. */
export interface Timing {
  medianMs: number;
  minMs: number;
  p90Ms: number;
  meanMs: number;
  runs: number;
  /** The very first call (cold: includes kernel compilation, first allocation). */
  firstMs: number;
}

export type Operation = () => Promise<unknown> | unknown;

function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarize(samples: readonly number[], firstMs: number): Timing {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    medianMs: quantile(sorted, 0.5),
    minMs: sorted[0],
    p90Ms: quantile(sorted, 0.9),
    meanMs: samples.reduce((a, b) => a + b, 0) / samples.length,
    runs: samples.length,
    firstMs,
  };
}

async function timeOnce(op: Operation): Promise<number> {
  const t0 = performance.now();
  await op();
  return performance.now() - t0;
}

/**
 * Times named operations interleaved: warm-up calls of each, then rounds in which each runs once, until
 * the plan says stop (`afterWarmup` is called in between). Returns one `Timing` per name.
 */
export async function measureInterleaved(
  ops: Record<string, Operation>,
  plan: MeasurePlan,
  afterWarmup?: () => void,
): Promise<Record<string, Timing>> {
  const names = Object.keys(ops);
  const first: Record<string, number> = {};
  const samples: Record<string, number[]> = {};
  for (const name of names) {
    first[name] = await timeOnce(ops[name]);
    for (let i = 1; i < plan.warmup; i++) await ops[name]();
    samples[name] = [];
  }
  afterWarmup?.();
  const start = performance.now();
  for (let round = 0; round < plan.maxRuns; round++) {
    if (round >= plan.minRuns && performance.now() - start > plan.budgetMs) break;
    for (const name of names) samples[name].push(await timeOnce(ops[name]));
  }
  return Object.fromEntries(names.map((n) => [n, summarize(samples[n], first[n])]));
}

/** Milliseconds of an async step, with its result. */
export async function timed<T>(step: () => Promise<T> | T): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await step();
  return { value, ms: performance.now() - t0 };
}

/** Peak resident set size of this process so far, in MiB. */
export function peakRssMiB(): number {
  // resourceUsage().maxRSS is in KiB on every platform Node supports.
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Model-only throughput: `infer()` (top-5) over `frames` in batches of `batch`, frames per second. A pool
 * runs `parallelism` calls at once, so that many are kept in flight, as inferCams does.
 */
export async function modelOnlyFps(model: CamModel, frames: readonly Frame[], batch: number): Promise<number> {
  const t0 = performance.now();
  const inFlight = (model as { parallelism?: number }).parallelism ?? 1;
  const calls: Array<Promise<unknown>> = [];
  for (let i = 0; i < frames.length; i += batch) {
    calls.push(model.infer(frames.slice(i, i + batch), { topK: 5 }));
    if (calls.length >= inFlight) await calls.shift();
  }
  await Promise.all(calls);
  return (frames.length * 1000) / (performance.now() - t0);
}
