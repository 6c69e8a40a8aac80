/**
 * The ONNX builder converts TF conventions exactly: a spec using every node kind (stride-2 `same` convs on
 * odd sizes, `valid` convs, depthwise, batchnorm, relu6, leaky, add, max pooling both ways, GAP, dropout,
 * flatten of a feature map, dense, softmax) gives the same outputs as the TF.js layers model of the same
 * spec (cpu backend), for every head style, pooling form and opset.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRandom, type NetNode, type NetSpec, toLayersModel, toOnnxModel, type ToOnnxOptions } from '../../../lab/builders/index.ts';
import { GraphView, parseOnnxModel } from '../../../models/onnx/index.ts';
import { runPlain } from '../models/onnx-helpers.ts';

const H = 13;
const W = 10;

/** A spec with every node kind; `flattenHead` ends in flatten of a 2x1 feature map instead of GAP. */
function everyOpSpec(seed: number, flattenHead: boolean): NetSpec {
  const r = createRandom(seed);
  const conv = (
    name: string,
    input: string,
    cin: number,
    filters: number,
    k: number,
    strides: number,
    padding: 'same' | 'valid',
    extra: Partial<Extract<NetNode, { op: 'conv' }>> = {},
  ): NetNode => ({
    op: 'conv',
    name,
    input,
    filters,
    kernel: [k, k],
    strides,
    padding,
    kernelWeights: r.normalArray(k * k * cin * (extra.depthwise ? 1 : filters), Math.sqrt(2 / (k * k * cin))),
    ...extra,
  });
  const nodes: NetNode[] = [
    conv('c1', 'input', 3, 4, 3, 2, 'same', { activation: 'relu6', bias: r.normalArray(4, 0.5) }), // 7x5
    {
      op: 'batchnorm',
      name: 'bn1',
      input: 'c1',
      gamma: r.uniformArray(4, 0.5, 1.5),
      beta: r.normalArray(4, 0.2),
      mean: r.uniformArray(4, 0, 1),
      variance: r.uniformArray(4, 0.5, 2),
      epsilon: 1e-3,
    },
    conv('dw', 'bn1', 4, 4, 3, 1, 'same', { depthwise: true, activation: 'leaky', bias: r.normalArray(4, 0.3) }),
    conv('c2', 'bn1', 4, 4, 1, 1, 'valid'),
    { op: 'add', name: 'sum', inputs: ['dw', 'c2'] },
    { op: 'leaky', name: 'lk', input: 'sum', alpha: 0.2 },
    { op: 'maxpool', name: 'mp', input: 'lk', pool: 3, strides: 2, padding: 'same' }, // 4x3
    conv('c3', 'mp', 4, 6, 2, 1, 'valid', { activation: 'relu', bias: r.normalArray(6, 0.2) }), // 3x2
    { op: 'relu6', name: 'r6', input: 'c3' },
    { op: 'maxpool', name: 'mp2', input: 'r6', pool: 2, strides: 1, padding: 'valid' }, // 2x1
  ];
  const features = flattenHead ? 12 : 6;
  if (flattenHead) {
    nodes.push({ op: 'flatten', name: 'flat', input: 'mp2' });
  } else {
    nodes.push({ op: 'gap', name: 'gap', input: 'mp2' }, { op: 'dropout', name: 'drop', input: 'gap', rate: 0.5 });
    nodes.push({ op: 'flatten', name: 'flat', input: 'drop' });
  }
  nodes.push(
    { op: 'dense', name: 'dense', input: 'flat', units: 5, kernelWeights: r.normalArray(features * 5, 1), bias: r.normalArray(5, 0.5) },
    { op: 'softmax', name: 'probs', input: 'dense' },
  );
  return { name: `every-op-${seed}`, inputSize: [H, W], nodes, output: flattenHead ? 'probs' : 'dense' };
}

/** Random preprocessed inputs in NHWC and the same values in NCHW. */
function inputs(seed: number, n: number): { nhwc: Float32Array; nchw: Float32Array } {
  const nhwc = createRandom(seed).normalArray(n * H * W * 3, 1);
  const nchw = new Float32Array(nhwc.length);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < H * W; i++) for (let c = 0; c < 3; c++) nchw[(b * 3 + c) * H * W + i] = nhwc[(b * H * W + i) * 3 + c];
  }
  return { nhwc, nchw };
}

function tfjsOutput(spec: NetSpec, nhwc: Float32Array, n: number): Float32Array {
  const model = toLayersModel(spec);
  try {
    return tf.tidy(() => (model.predict(tf.tensor4d(nhwc, [n, H, W, 3])) as tf.Tensor).dataSync() as Float32Array);
  } finally {
    model.dispose();
  }
}

function expectClose(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  const scale = Math.max(...Array.from(expected, Math.abs), 1e-6);
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]) / scale).toBeLessThanOrEqual(1e-5));
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('toOnnxModel', () => {
  const variants: Array<[string, ToOnnxOptions]> = [
    ['Gemm, GlobalAveragePool, opset 13', {}],
    ['MatMul + Add, ReduceMean, opset 11', { headStyle: 'matmul-add', gap: 'reducemean', opset: 11 }],
    ['Gemm, ReduceMean with axes input, opset 18', { gap: 'reducemean', opset: 18 }],
  ];

  it.each(variants)('matches the TF.js layers model with a GAP head (%s)', async (_, options) => {
    const spec = everyOpSpec(1, false);
    const { nhwc, nchw } = inputs(2, 2);
    const out = await runPlain(toOnnxModel(spec, options), nchw, [2, 3, H, W]);
    expect(Object.keys(out)).toEqual(['logits']);
    expect(out.logits.dims).toEqual([2, 5]);
    expectClose(out.logits.data, tfjsOutput(spec, nhwc, 2));
  });

  it('matches the TF.js layers model when a feature map is flattened (NHWC order) and ends in softmax', async () => {
    const spec = everyOpSpec(3, true);
    const { nhwc, nchw } = inputs(4, 3);
    const out = await runPlain(toOnnxModel(spec), nchw, [3, 3, H, W]);
    expect(Object.keys(out)).toEqual(['probabilities']);
    expectClose(out.probabilities.data, tfjsOutput(spec, nhwc, 3));
  });

  it('writes the graph the options ask for', () => {
    const spec = everyOpSpec(5, false);
    const ops = (options: ToOnnxOptions) => new GraphView(parseOnnxModel(toOnnxModel(spec, options), 'x')).nodes.map((n) => n.opType);
    const gemm = ops({});
    expect(gemm).toContain('Gemm');
    expect(gemm).toContain('GlobalAveragePool');
    expect(gemm).not.toContain('MatMul');
    const matmul = ops({ headStyle: 'matmul-add', gap: 'reducemean' });
    expect(matmul).toEqual(expect.arrayContaining(['MatMul', 'Add', 'ReduceMean']));
    expect(matmul).not.toContain('Gemm');
    const view18 = new GraphView(parseOnnxModel(toOnnxModel(spec, { gap: 'reducemean', opset: 18 }), 'x'));
    expect(view18.opset).toBe(18);
    const reduce = view18.nodes.find((n) => n.opType === 'ReduceMean')!;
    expect(reduce.input).toHaveLength(2);
    expect(view18.intsAttr(reduce, 'axes')).toBeUndefined();
    // Explicit pads, as TF computes them: a 3x3 stride-2 `same` conv on 13 rows pads 1 above and 1 below,
    // on 10 columns 0 left and 1 right.
    const c1 = view18.nodes.find((n) => n.name === 'c1')!;
    expect(view18.intsAttr(c1, 'pads')).toEqual([1, 0, 1, 1]);
    const dw = view18.nodes.find((n) => n.name === 'dw')!;
    expect(view18.intAttr(dw, 'group', 1)).toBe(4);
  });

  it('rejects specs it cannot express', () => {
    const spec = everyOpSpec(6, false);
    expect(() => toOnnxModel(spec, { opset: 9 })).toThrow(/opset/);
    const broken: NetSpec = { ...spec, nodes: [...spec.nodes, { op: 'relu', name: 'x', input: 'missing' }] };
    expect(() => toOnnxModel(broken)).toThrow(/missing/);
  });
});
