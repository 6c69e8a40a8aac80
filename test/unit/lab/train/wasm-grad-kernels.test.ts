/**
 * The wasm gradient kernels against the cpu backend's: the filter and input gradients of a convolution
 * for several shapes, strides and paddings, and Tile. Both backends run in this process; every case
 * computes the same function on each and compares element-wise.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerTrainingGradients, registerWasmGradKernels } from '../../../../lab/train/index.ts';

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
