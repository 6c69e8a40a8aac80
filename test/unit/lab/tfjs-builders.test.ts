import * as tf from '@tensorflow/tfjs-core';
import * as tfc from '@tensorflow/tfjs-converter';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../../common/index.ts';
import { createRandom, smallClassConvNet, smallGapDenseNet, type NetSpec, toLayersModel, writeLayersModel, toTfGraphArtifacts, writeTfGraphModel } from '../../../lab/builders/index.ts';
import { folderLoadHandler, initTfjsBackend, readModelFolder } from '../../../models/tfjs/index.ts';
import { tempFolders } from '../models/tfjs-helpers.ts';

const folders = tempFolders();

beforeAll(async () => {
  await initTfjsBackend('cpu');
});
afterAll(async () => {
  await folders.cleanup();
});

/** A net touching every op both builders support: depthwise conv, relu6, leaky, add, maxpool, valid padding. */
function allOpsNet(seed: number): NetSpec {
  const r = createRandom(seed);
  const bn = (name: string, input: string, c: number) =>
    ({ op: 'batchnorm', name, input, gamma: r.uniformArray(c, 0.5, 1.5), beta: r.normalArray(c, 0.1), mean: r.normalArray(c, 0.1), variance: r.uniformArray(c, 0.5, 1.5), epsilon: 1e-3 }) as const;
  return {
    name: 'all-ops',
    inputSize: [13, 17],
    nodes: [
      { op: 'conv', name: 'c1', input: 'input', filters: 8, kernel: [3, 3], strides: 2, padding: 'same', activation: 'relu6', kernelWeights: r.normalArray(3 * 3 * 3 * 8, 0.4), bias: r.normalArray(8, 0.1) },
      bn('bn1', 'c1', 8),
      { op: 'leaky', name: 'lk', input: 'bn1', alpha: 0.2 },
      { op: 'conv', name: 'dw', input: 'lk', filters: 8, kernel: [3, 3], strides: 1, padding: 'same', depthwise: true, activation: 'leaky', kernelWeights: r.normalArray(3 * 3 * 8, 0.4) },
      { op: 'add', name: 'sum', inputs: ['lk', 'dw'] },
      { op: 'relu', name: 'r', input: 'sum' },
      { op: 'maxpool', name: 'pool', input: 'r', pool: 2, strides: 2, padding: 'same' },
      { op: 'conv', name: 'c2', input: 'pool', filters: 6, kernel: [2, 2], strides: 1, padding: 'valid', kernelWeights: r.normalArray(2 * 2 * 8 * 6, 0.4) },
      { op: 'relu6', name: 'r6', input: 'c2' },
      { op: 'flatten', name: 'flat', input: 'r6' },
      { op: 'dense', name: 'fc', input: 'flat', units: 5, kernelWeights: r.normalArray(3 * 4 * 6 * 5, 0.3), bias: r.normalArray(5, 0.1) },
      { op: 'softmax', name: 'probs', input: 'fc' },
    ],
    output: 'probs',
  };
}

describe('random NetSpec helpers', () => {
  it('are deterministic per seed and differ between seeds', () => {
    const a = smallGapDenseNet(5);
    const b = smallGapDenseNet(5);
    const c = smallGapDenseNet(6);
    const kernel = (s: NetSpec) => (s.nodes[0] as { kernelWeights: Float32Array }).kernelWeights;
    expect(Array.from(kernel(a))).toEqual(Array.from(kernel(b)));
    expect(Array.from(kernel(a))).not.toEqual(Array.from(kernel(c)));
    const next = mulberry32(1);
    const xs = Array.from({ length: 1000 }, next);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.reduce((s, x) => s + x, 0) / 1000).toBeCloseTo(0.5, 1);
  });

  it('draw He-scaled conv kernels and normal draws of the asked std', () => {
    const spec = smallClassConvNet(9, { width: 16 });
    const conv2 = spec.nodes.find((n) => n.name === 'conv2') as { kernelWeights: Float32Array };
    const w = conv2.kernelWeights;
    const std = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
    expect(std).toBeGreaterThan(0.8 * Math.sqrt(2 / (9 * 16)));
    expect(std).toBeLessThan(1.2 * Math.sqrt(2 / (9 * 16)));
    const n = createRandom(3).normalArray(20000, 2);
    const mean = n.reduce((s, x) => s + x, 0) / n.length;
    const sd = Math.sqrt(n.reduce((s, x) => s + (x - mean) ** 2, 0) / n.length);
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(sd).toBeGreaterThan(1.95);
    expect(sd).toBeLessThan(2.05);
  });

  it('give logits that are spread, not degenerate', () => {
    const spec = smallGapDenseNet(10);
    const model = toLayersModel(spec);
    const x = tf.randomUniform([8, ...spec.inputSize, 3], 0, 1, 'float32', 1);
    const y = model.predict(x) as tf.Tensor;
    const { variance } = tf.moments(y, 1);
    const v = variance.dataSync();
    tf.dispose([x, y, variance]);
    model.dispose();
    for (const vi of v) expect(vi).toBeGreaterThan(0.1);
  });
});

describe('layers and graph builders', () => {
  const specs: NetSpec[] = [smallGapDenseNet(1, { dropout: true, flatten: true, softmax: true }), smallClassConvNet(2), allOpsNet(3)];

  it.each(specs.flatMap((s) => [[s.name, false, s], [s.name, true, s]] as const))('%s: the layers model and the graph model (fused ops: %s) compute the same function', async (_n, fuse, spec) => {
    const layers = toLayersModel(spec);
    const artifacts = toTfGraphArtifacts(spec, { fuse });
    const ops = new Set((artifacts.modelTopology as { node: Array<{ op: string }> }).node.map((n) => n.op));
    expect(ops.has('_FusedConv2D')).toBe(fuse);
    const graph = await tfc.loadGraphModel(tf.io.fromMemory(artifacts));
    const x = tf.randomNormal([3, ...spec.inputSize, 3], 0, 1, 'float32', 7);
    const a = layers.predict(x) as tf.Tensor;
    const b = graph.predict(x) as tf.Tensor;
    expect(b.shape).toEqual(a.shape);
    const diff = tf.max(tf.abs(tf.sub(a, b)));
    const scale = tf.max(tf.abs(a));
    expect(diff.dataSync()[0]).toBeLessThanOrEqual(1e-5 * Math.max(1, scale.dataSync()[0]));
    tf.dispose([x, a, b, diff, scale]);
    layers.dispose();
    graph.dispose();
  });

  it('writes folders the file loader reads back, layers and graph, to the same outputs', async () => {
    const spec = allOpsNet(4);
    const [ld, gd] = [await folders.make(), await folders.make()];
    await writeLayersModel(spec, ld);
    await writeTfGraphModel(spec, gd);
    expect((await readModelFolder(ld)).kind).toBe('layers');
    expect((await readModelFolder(gd)).kind).toBe('graph');
    const layers = await tfl.loadLayersModel(folderLoadHandler(ld));
    const graph = await tfc.loadGraphModel(folderLoadHandler(gd));
    const ref = toLayersModel(spec);
    const x = tf.randomNormal([2, ...spec.inputSize, 3], 0, 1, 'float32', 8);
    const [a, b, c] = [layers.predict(x), graph.predict(x), ref.predict(x)] as tf.Tensor[];
    const [da, db] = [tf.max(tf.abs(tf.sub(a, c))).dataSync()[0], tf.max(tf.abs(tf.sub(b, c))).dataSync()[0]];
    expect(da).toBe(0);
    expect(db).toBeLessThan(1e-5);
    tf.dispose([x, a, b, c]);
    layers.dispose();
    graph.dispose();
    ref.dispose();
  });

  it('rejects a spec whose weights do not fit its shapes, naming the node', () => {
    const spec = smallGapDenseNet(5);
    const bad: NetSpec = { ...spec, nodes: spec.nodes.map((n) => (n.op === 'dense' ? { ...n, kernelWeights: n.kernelWeights.subarray(1) } : n)) };
    expect(() => toTfGraphArtifacts(bad)).toThrow(/kernelWeights of 'logits'/);
    expect(() => toLayersModel(bad)).toThrow(/kernelWeights of 'logits'/);
  });
});
