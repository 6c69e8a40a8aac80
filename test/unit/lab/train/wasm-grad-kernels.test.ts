/**
 * The wasm gradient kernels against the cpu backend's: the filter and input gradients of a convolution
 * for several shapes, strides and paddings, and Tile. Both backends run in this process; every case
 * computes the same function on each and compares element-wise. The replacements made for speed alone
 * (per-channel Sum and Mean, Identity and Cast without a copy, the Mean gradient) must give the values
 * of the kernels they replace bit for bit: training stays reproducible to the byte.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerTrainingGradients, registerWasmGradKernels } from '../../../../lab/train/index.ts';
import { addColumns, castWasm, identityWasm, meanWasm, sumWasm } from '../../../../lab/train/wasm-grad-kernels.ts';
import { meanGradConfig } from '../../../../lab/train/gradients.ts';

type Pad = 'same' | 'valid';
interface ConvCase {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  stride: number;
  pad: Pad;
}

const CASES: ConvCase[] = [
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 4], stride: 1, pad: 'same' },
  { x: [2, 12, 12, 3], filter: [3, 3, 3, 5], stride: 2, pad: 'same' },
  { x: [2, 13, 11, 4], filter: [3, 3, 4, 6], stride: 2, pad: 'same' },
  { x: [1, 8, 7, 2], filter: [3, 3, 2, 5], stride: 1, pad: 'valid' },
  { x: [3, 10, 10, 4], filter: [5, 5, 4, 6], stride: 2, pad: 'valid' },
  { x: [2, 10, 10, 3], filter: [5, 5, 3, 2], stride: 3, pad: 'same' },
  { x: [2, 11, 11, 3], filter: [1, 1, 3, 8], stride: 1, pad: 'same' },
  { x: [1, 9, 9, 2], filter: [2, 2, 2, 3], stride: 2, pad: 'valid' },
];

/** Deterministic values in [-1, 1] so both backends see identical inputs. */
function values(n: number, phase: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + phase));
}

/** Gradients of sum(conv(x, f) * w) with respect to x and f (w fixes a non-trivial dy). */
async function convGrads(backend: string, c: ConvCase): Promise<[Float32Array, Float32Array]> {
  await tf.setBackend(backend);
  const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
  const x = tf.tensor4d(values(size(c.x), 0.1), c.x);
  const f = tf.tensor4d(values(size(c.filter), 1.3), c.filter);
  const yShape = tf.tidy(() => tf.conv2d(x, f, c.stride, c.pad).shape);
  const w = tf.tensor(values(size(yShape), 2.7), yShape);
  const [gx, gf] = tf.grads((...[a, b]: tf.Tensor[]) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), w)))([x, f]);
  const out: [Float32Array, Float32Array] = [(await gx.data()) as Float32Array, (await gf.data()) as Float32Array];
  tf.dispose([x, f, w, gx, gf]);
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('wasm gradient kernels', () => {
  beforeAll(async () => {
    registerTrainingGradients();
    registerWasmGradKernels();
    await tf.setBackend('wasm');
    await tf.ready();
  });

  it('registers Conv2DBackpropFilter for wasm, once', () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(registerWasmGradKernels()).toEqual([]);
    // The replacements are in place, so the bit-for-bit checks below test them, not the originals.
    for (const [name, fn] of [['Sum', sumWasm], ['Mean', meanWasm], ['Identity', identityWasm], ['Cast', castWasm]] as const) {
      expect(tf.getKernel(name, 'wasm')?.kernelFunc).toBe(fn);
    }
  });

  for (const c of CASES) {
    it(`matches the cpu backend's gradients for x ${c.x.join('x')}, filter ${c.filter.join('x')}, stride ${c.stride}, ${c.pad}`, async () => {
      const [cpuX, cpuF] = await convGrads('cpu', c);
      const [wasmX, wasmF] = await convGrads('wasm', c);
      expect(maxAbsDiff(cpuX, wasmX)).toBeLessThan(1e-4);
      expect(maxAbsDiff(cpuF, wasmF)).toBeLessThan(1e-4);
      // Not vacuous: the gradients are far from zero.
      expect(Math.max(...cpuF.map(Math.abs))).toBeGreaterThan(0.1);
      expect(Math.max(...cpuX.map(Math.abs))).toBeGreaterThan(0.1);
    });
  }

  it('matches the cpu backend for fused conv + bias + relu gradients (what tfjs-layers runs)', async () => {
    const run = async (backend: string): Promise<Float32Array[]> => {
      await tf.setBackend(backend);
      const x = tf.tensor4d(values(2 * 10 * 10 * 3, 0.5), [2, 10, 10, 3]);
      const f = tf.tensor4d(values(3 * 3 * 3 * 4, 0.9), [3, 3, 3, 4]);
      const b = tf.tensor1d(values(4, 0.2));
      const g = tf.grads((...[a, k, bias]: tf.Tensor[]) =>
        tf.sum(tf.square(tf.fused.conv2d({ x: a as tf.Tensor4D, filter: k as tf.Tensor4D, bias, strides: 2, pad: 'same', activation: 'relu' }))),
      )([x, f, b]);
      const out = await Promise.all(g.map(async (t) => (await t.data()) as Float32Array));
      tf.dispose([x, f, b, ...g]);
      return out;
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    cpu.forEach((c, i) => expect(maxAbsDiff(c, wasm[i]) / (1 + Math.max(...c.map(Math.abs)))).toBeLessThan(1e-4));
  });

  it('tiles like the cpu backend for every axis pattern and dtype', async () => {
    const cases: Array<[number[], number[], 'float32' | 'int32' | 'bool']> = [
      [[1, 1, 1, 16], [4, 5, 6, 1], 'float32'],
      [[2, 3], [3, 2], 'int32'],
      [[2, 1, 3], [1, 4, 2], 'float32'],
      [[5], [3], 'bool'],
      [[2, 2, 2, 2], [2, 1, 3, 2], 'float32'],
      [[3, 1], [1, 1], 'float32'],
    ];
    for (const [shape, reps, dtype] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const vals = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? i % 2 : i * 1.5 - 3));
      await tf.setBackend('cpu');
      const a = tf.tile(tf.tensor(vals, shape, dtype), reps);
      const expected = Array.from(await a.data());
      await tf.setBackend('wasm');
      const b = tf.tile(tf.tensor(vals, shape, dtype), reps);
      expect(b.shape).toEqual(a.shape);
      expect(Array.from(await b.data())).toEqual(expected);
      tf.dispose([a, b]);
    }
  });

  it('adds columns in float32, top to bottom, as a one-by-one float32 sum does', () => {
    for (const [rows, channels] of [[1, 1], [7, 3], [300, 8], [257, 13], [1000, 64], [129, 17]]) {
      const src = values(rows * channels, channels * 0.1).map((v, i) => v * (1 + (i % 7) * 1e3));
      const acc = new Float32Array(channels).fill(99);
      addColumns(src, rows, channels, acc);
      for (let c = 0; c < channels; c++) {
        const sum = new Float32Array(1);
        for (let r = 0; r < rows; r++) sum[0] += src[r * channels + c];
        expect(Object.is(acc[c], sum[0])).toBe(true);
      }
    }
  });

  it('sums and averages over all axes but the last bit for bit as the wasm kernels do on the transposed tensor', async () => {
    await tf.setBackend('wasm');
    const shapes: number[][] = [[64, 7], [4, 9, 9, 16], [3, 5, 7, 13], [2, 33, 31, 64], [6, 10, 3]];
    for (const shape of shapes) {
      const rank = shape.length;
      const n = shape.reduce((a, b) => a * b, 1);
      // Values of very different sizes make the float32 sums depend on their order.
      const x = tf.tensor(values(n, rank).map((v, i) => v * (1 + (i % 11) * 977)), shape);
      const axes = shape.slice(0, -1).map((_, i) => i);
      // Reducing innermost axes of the channels-first copy is the wasm kernels' own path (what they run
      // after their transpose); the replacement takes the other one.
      const channelsFirst = tf.transpose(x, [rank - 1, ...axes]);
      const inner = axes.map((a) => a + 1);
      for (const keepDims of [false, true]) {
        for (const op of ['sum', 'mean'] as const) {
          const got = tf[op](x, axes, keepDims);
          const want = tf[op](channelsFirst, inner);
          expect(got.shape).toEqual(keepDims ? [...axes.map(() => 1), shape[rank - 1]] : [shape[rank - 1]]);
          const g = (await got.data()) as Float32Array;
          const w = (await want.data()) as Float32Array;
          expect(Array.from(g).every((v, i) => Object.is(v, w[i]))).toBe(true);
          tf.dispose([got, want]);
        }
      }
      // Axis given negatively, and the axes the replacement leaves to the wasm kernels.
      const neg = tf.sum(x, axes.map((a) => a - rank));
      const pos = tf.sum(x, axes);
      expect(Array.from(await neg.data())).toEqual(Array.from(await pos.data()));
      if (rank > 2) {
        const partial = tf.mean(x, [1]);
        const partialRef = tf.mean(tf.transpose(x, [0, ...axes.slice(2), rank - 1, 1]), [rank - 1]);
        expect(Array.from(await partial.data())).toEqual(Array.from(await partialRef.data()));
        tf.dispose([partial, partialRef]);
      }
      const ints = tf.sum(tf.tensor(Array.from({ length: n }, (_, i) => i % 5), shape, 'int32'), axes);
      expect(ints.dtype).toBe('int32');
      expect((await ints.data())[0]).toBe(Array.from({ length: n / shape[rank - 1] }, (_, r) => (r * shape[rank - 1]) % 5).reduce((a, b) => a + b, 0));
      tf.dispose([x, channelsFirst, neg, pos, ints]);
    }
  });

  it('clones and casts to the same dtype without copying, and frees the data with its last reference', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const before = tf.memory().numTensors;
    const ids = backend.numDataIds();
    const x = tf.tensor(values(24, 0.3), [2, 3, 4]);
    const copy = tf.clone(x);
    const same = tf.cast(x, 'float32');
    expect([copy.dataId === x.dataId, same.dataId === x.dataId, backend.numDataIds()]).toEqual([true, true, ids + 1]);
    const floats = tf.tensor([1.7, -2.2, 3.5]);
    const ints = tf.cast(floats, 'int32');
    expect(Array.from(await ints.data())).toEqual([1, -2, 3]);
    const expected = Array.from(await x.data());
    x.dispose();
    expect(Array.from(await copy.data())).toEqual(expected);
    expect(Array.from(await same.data())).toEqual(expected);
    copy.dispose();
    same.dispose();
    tf.dispose([floats, ints]);
    expect(tf.memory().numTensors).toBe(before);
    expect(backend.numDataIds()).toBe(ids);
  });

  it("gives tfjs's Mean gradient bit for bit, without a full-size ones tensor", async () => {
    await tf.setBackend('wasm');
    const cases: Array<[number[], number[]]> = [[[4, 9, 9, 16], [0, 1, 2]], [[4, 9, 9, 16], [1, 2]], [[3, 7], [0]], [[3, 7], [1]], [[5, 6, 3], [0, 2]], [[2, 3, 4], [-1]]];
    for (const [shape, axis] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(values(n, 0.7), shape);
      const outShape = tf.mean(x, axis).shape;
      const dy = tf.tensor(values(outShape.reduce((a, b) => a * b, 1), 1.9).map((v) => v * 3.3), outShape);
      const got = (meanGradConfig.gradFunc(dy, [x], { axis, keepDims: false }) as { x: () => tf.Tensor }).x();
      // tfjs-core's own formula.
      const axes = axis.map((a) => (a < 0 ? a + shape.length : a));
      const count = axes.reduce((a, ax) => a * shape[ax], 1);
      const expandedShape = shape.map((s, i) => (axes.includes(i) ? 1 : s));
      const want = tf.div(tf.mul(tf.reshape(dy, expandedShape), tf.ones(shape)), count);
      expect(got.shape).toEqual(shape);
      const g = (await got.data()) as Float32Array;
      const w = (await want.data()) as Float32Array;
      expect(Array.from(g).every((v, i) => Object.is(v, w[i]))).toBe(true);
      expect(Math.max(...g.map(Math.abs))).toBeGreaterThan(0);
      tf.dispose([x, dy, got, want]);
    }
    expect(tf.getGradient('Mean')).toBe(meanGradConfig);
  });

  it('frees its intermediate buffers', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const c = CASES[2];
    await convGrads('wasm', c);
    const tensors = tf.memory().numTensors;
    const ids = backend.numDataIds();
    for (let i = 0; i < 5; i++) await convGrads('wasm', c);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(backend.numDataIds()).toBe(ids);
  });
});
