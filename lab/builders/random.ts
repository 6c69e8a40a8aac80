/**
 * Seeded randomness for tests and benches: a `Random` drawn from common's mulberry32, and small random
 * `NetSpec`s for each head type camstream turns into CAM. The same seed always gives the same network,
 * on every machine.
 */
import { ConfigError, mulberry32 } from '../../common/index.ts';
import type { NetNode, NetSpec } from './spec.ts';

/** A seeded source of random numbers. */
export interface Random {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal (mean 0, std 1). */
  normal(): number;
  /** `count` normal draws with the given std (mean 0). */
  normalArray(count: number, std: number): Float32Array;
  /** `count` uniform draws in [low, high). */
  uniformArray(count: number, low: number, high: number): Float32Array;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

/** A `Random` seeded with `seed` (any integer; the same seed gives the same sequence). */
export function createRandom(seed: number): Random {
  if (!Number.isInteger(seed)) throw new ConfigError(`random seed must be an integer, got ${seed}`);
  const next = mulberry32(seed);
  let spare: number | undefined;
  const normal = (): number => {
    // Box-Muller gives two independent normals per pair of uniforms; keep the second for the next call.
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = next();
    while (u <= 1e-12) u = next();
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  return {
    uniform: next,
    normal,
    normalArray(count: number, std: number): Float32Array {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = normal() * std;
      return out;
    },
    uniformArray(count: number, low: number, high: number): Float32Array {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = low + (high - low) * next();
      return out;
    },
    int(n: number): number {
      return Math.floor(next() * n);
    },
  };
}

/** Options of the small random nets. */
export interface SmallNetOptions {
  /** Input `[height, width]`; default [24, 32] (not square, so a swapped H/W shows). */
  inputSize?: [number, number];
  /** Classes; default 10. */
  numClasses?: number;
  /** Filters of the first conv; the second has twice as many (the feature channels k). Default 6. */
  width?: number;
  /** Dropout between GAP and the classifier (gap-dense only). Default false. */
  dropout?: boolean;
  /** Flatten between GAP and the classifier (gap-dense only). Default false. */
  flatten?: boolean;
  /** Softmax after the classifier (the model then outputs probabilities). Default false. */
  softmax?: boolean;
  /** Classifier bias. Default true. */
  bias?: boolean;
}

interface Backbone {
  nodes: NetNode[];
  features: string;
  channels: number;
}

function check(builder: string, seed: number, o: SmallNetOptions): Required<Pick<SmallNetOptions, 'inputSize' | 'numClasses' | 'width'>> {
  const inputSize = o.inputSize ?? [24, 32];
  const numClasses = o.numClasses ?? 10;
  const width = o.width ?? 6;
  if (!Number.isInteger(seed)) throw new ConfigError(`${builder}: seed must be an integer, got ${seed}`);
  if (!inputSize.every((s) => Number.isInteger(s) && s >= 2)) {
    throw new ConfigError(`${builder}: inputSize must be two integers >= 2, got ${JSON.stringify(inputSize)}`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new ConfigError(`${builder}: numClasses must be a positive integer, got ${numClasses}`);
  }
  if (!Number.isInteger(width) || width < 1) throw new ConfigError(`${builder}: width must be a positive integer, got ${width}`);
  return { inputSize, numClasses, width };
}

/**
 * conv 3x3 (stride 1, same, no bias) -> batchnorm -> relu -> conv 3x3 (stride 2, same, bias, relu).
 * He-normal kernels (std sqrt(2 / fan_in), He et al. 2015) keep activations near unit scale; batchnorm
 * statistics are drawn near identity so it changes the signal without blowing it up.
 */
function backbone(r: Random, width: number): Backbone {
  const bn = (name: string, input: string, c: number): NetNode => ({
    op: 'batchnorm',
    name,
    input,
    gamma: Float32Array.from({ length: c }, () => 1 + 0.2 * r.normal()),
    beta: r.normalArray(c, 0.1),
    mean: r.normalArray(c, 0.1),
    variance: Float32Array.from({ length: c }, () => 0.5 + r.uniform()),
    epsilon: 1e-3,
  });
  const k2 = 2 * width;
  return {
    nodes: [
      {
        op: 'conv',
        name: 'conv1',
        input: 'input',
        filters: width,
        kernel: [3, 3],
        strides: 1,
        padding: 'same',
        activation: 'linear',
        kernelWeights: r.normalArray(9 * 3 * width, Math.sqrt(2 / (9 * 3))),
      },
      bn('bn1', 'conv1', width),
      { op: 'relu', name: 'relu1', input: 'bn1' },
      {
        op: 'conv',
        name: 'conv2',
        input: 'relu1',
        filters: k2,
        kernel: [3, 3],
        strides: 2,
        padding: 'same',
        activation: 'relu',
        kernelWeights: r.normalArray(9 * width * k2, Math.sqrt(2 / (9 * width))),
        bias: r.normalArray(k2, 0.1),
      },
    ],
    features: 'conv2',
    channels: k2,
  };
}

/**
 * A small random network with a Keras-style head: backbone -> GlobalAveragePooling -> [dropout] ->
 * [flatten] -> dense `logits` -> [softmax `probs`]. Features are `conv2` ([ceil(H/2), ceil(W/2), 2*width]).
 * Head kind 'gap-dense'.
 */
export function smallGapDenseNet(seed: number, options: SmallNetOptions = {}): NetSpec {
  const { inputSize, numClasses, width } = check('smallGapDenseNet', seed, options);
  const r = createRandom(seed);
  const b = backbone(r, width);
  const nodes = [...b.nodes];
  nodes.push({ op: 'gap', name: 'gap', input: b.features });
  let last = 'gap';
  if (options.dropout) {
    nodes.push({ op: 'dropout', name: 'dropout', input: last, rate: 0.3 });
    last = 'dropout';
  }
  if (options.flatten) {
    nodes.push({ op: 'flatten', name: 'flatten', input: last });
    last = 'flatten';
  }
  nodes.push({
    op: 'dense',
    name: 'logits',
    input: last,
    units: numClasses,
    // Larger than He so the logits spread over several units and top-k orders are clear.
    kernelWeights: r.normalArray(b.channels * numClasses, 2 / Math.sqrt(b.channels)),
    bias: options.bias === false ? undefined : r.normalArray(numClasses, 0.3),
  });
  last = 'logits';
  if (options.softmax) {
    nodes.push({ op: 'softmax', name: 'probs', input: last });
    last = 'probs';
  }
  return { name: `small-gap-dense-${seed}`, inputSize, nodes, output: last };
}

/**
 * A small random network with a class-conv head (NIN / Darknet style): backbone -> 1x1 linear conv with
 * one filter per class `classconv` -> GlobalAveragePooling `gap` -> [softmax `probs`].
 * Head kind 'class-conv-gap'; features are `conv2`.
 */
export function smallClassConvNet(seed: number, options: SmallNetOptions = {}): NetSpec {
  const { inputSize, numClasses, width } = check('smallClassConvNet', seed, options);
  const r = createRandom(seed);
  const b = backbone(r, width);
  const nodes = [...b.nodes];
  nodes.push({
    op: 'conv',
    name: 'classconv',
    input: b.features,
    filters: numClasses,
    kernel: [1, 1],
    strides: 1,
    padding: 'same',
    activation: 'linear',
    kernelWeights: r.normalArray(b.channels * numClasses, 2 / Math.sqrt(b.channels)),
    bias: options.bias === false ? undefined : r.normalArray(numClasses, 0.3),
  });
  nodes.push({ op: 'gap', name: 'gap', input: 'classconv' });
  let last = 'gap';
  if (options.softmax) {
    nodes.push({ op: 'softmax', name: 'probs', input: last });
    last = 'probs';
  }
  return { name: `small-class-conv-${seed}`, inputSize, nodes, output: last };
}

/**
 * `count` random RGB frames of `width` x `height` (uniform bytes), for tests.
 */
export function randomFrames(seed: number, count: number, width: number, height: number): Array<{ data: Uint8Array; width: number; height: number }> {
  const r = createRandom(seed);
  return Array.from({ length: count }, () => {
    const data = new Uint8Array(width * height * 3);
    for (let i = 0; i < data.length; i++) data[i] = r.int(256);
    return { data, width, height };
  });
}
