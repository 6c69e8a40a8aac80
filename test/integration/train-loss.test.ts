/**
 * Training really trains on the wasm backend: a small GAP network on small generated scenes for a few
 * hundred steps, seeded, and the loss falls clearly. Runs standard tfjs-layers training code, so it needs
 * the wasm gradient kernels (Conv2DBackpropFilter is missing from the wasm build).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { learningRateAt, trainGapNet, type TrainConfig } from '../../lab/train/index.ts';

// Small scenes without clutter, noise, blur or perspective, so that a few hundred steps of a small network
// show the fall (the full task needs ~400 steps just to leave the initial ln(10) plateau).
const SMALL: TrainConfig = {
  seed: 3,
  steps: 400,
  batchSize: 32,
  learningRate: 0.01,
  net: { inputSize: 32, widths: [16, 32, 32], strides: [2, 2, 1], kernels: [3, 3, 3] },
  scene: { clutter: [0, 0], noise: [0, 0], blurProbability: 0, perspective: 0, digitScale: [0.6, 0.85] },
};

const mean = (a: Float32Array): number => a.reduce((s, v) => s + v, 0) / a.length;

describe('GAP network training on wasm', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
  });
  afterAll(() => tf.disposeVariables());

  it('lowers the loss clearly within 400 steps, without leaking tensors', async () => {
    const before = tf.memory().numTensors;
    const steps: number[] = [];
    const result = await trainGapNet(SMALL, { onProgress: (p) => steps.push(p.step) });
    expect(result.backend).toBe('wasm');
    expect(steps).toHaveLength(400);
    const first = mean(result.losses.subarray(0, 50));
    const last = mean(result.losses.subarray(350));
    expect(first).toBeGreaterThan(1.9); // about ln(10) at the start: 10 balanced classes
    expect(last).toBeLessThan(0.6 * first);
    // Only the model's weights stay allocated after training.
    const weights = result.model.weights.length;
    expect(tf.memory().numTensors - before).toBe(weights);
    result.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is reproducible: the same seed gives the same losses', async () => {
    const a = await trainGapNet({ ...SMALL, steps: 5 });
    const b = await trainGapNet({ ...SMALL, steps: 5 });
    expect(Array.from(a.losses)).toEqual(Array.from(b.losses));
    a.model.dispose();
    b.model.dispose();
  });

  it('splits a batch over replicas in worker threads: without batchnorm, the same run as one replica', async () => {
    // Without batchnorm a shard's gradient does not depend on the other shards, so the mean of two
    // half-batch gradients is the full-batch gradient up to float rounding, and the two runs agree.
    const plain: TrainConfig = { ...SMALL, steps: 6, net: { ...SMALL.net, batchNorm: false } };
    const one = await trainGapNet({ ...plain, replicas: 1 });
    const two = await trainGapNet({ ...plain, replicas: 2 });
    expect(two.config.replicas).toBe(2);
    for (let i = 0; i < 6; i++) expect(two.losses[i]).toBeCloseTo(one.losses[i], 4);
    const [w1, w2] = [one.model.getWeights()[0].dataSync(), two.model.getWeights()[0].dataSync()];
    let worst = 0;
    for (let i = 0; i < w1.length; i++) worst = Math.max(worst, Math.abs(w1[i] - w2[i]));
    expect(worst).toBeLessThan(1e-4);
    one.model.dispose();
    two.model.dispose();
  });

  it('is reproducible with replicas too (batchnorm statistics averaged across them)', async () => {
    const a = await trainGapNet({ ...SMALL, steps: 4, replicas: 2 });
    const b = await trainGapNet({ ...SMALL, steps: 4, replicas: 2 });
    expect(Array.from(a.losses)).toEqual(Array.from(b.losses));
    // The moving statistics moved off their initial values (0 mean, 1 variance) and are the same in both runs.
    const stats = (m: typeof a.model): number[] => m.nonTrainableWeights.flatMap((w) => Array.from(w.read().dataSync()));
    const sa = stats(a.model);
    expect(sa.some((v) => v !== 0 && v !== 1)).toBe(true);
    expect(stats(b.model)).toEqual(sa);
    a.model.dispose();
    b.model.dispose();
  });

  it('rejects a batch that does not split evenly over the replicas', async () => {
    await expect(trainGapNet({ ...SMALL, batchSize: 30, replicas: 4 })).rejects.toThrow(/multiple of replicas/);
  });

  it('decays the learning rate along a half cosine to 2% of the start', () => {
    expect(learningRateAt(0, 100, 0.01)).toBeCloseTo(0.01, 10);
    expect(learningRateAt(99, 100, 0.01)).toBeCloseTo(0.0002, 10);
    expect(learningRateAt(49.5, 100, 0.01)).toBeCloseTo(0.0051, 10);
  });
});
