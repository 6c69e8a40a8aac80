/**
 * Training really trains on the wasm backend: a small GAP network on small generated scenes for a few
 * hundred steps, seeded, and the loss falls clearly. Runs standard tfjs-layers training code, so it needs
 * the wasm gradient kernels (Conv2DBackpropFilter is missing from the wasm build).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { learningRateAt, trainGapNet, type TrainConfig } from '../../models/train/index.ts';

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

  it('decays the learning rate along a half cosine to 2% of the start', () => {
    expect(learningRateAt(0, 100, 0.01)).toBeCloseTo(0.01, 10);
    expect(learningRateAt(99, 100, 0.01)).toBeCloseTo(0.0002, 10);
    expect(learningRateAt(49.5, 100, 0.01)).toBeCloseTo(0.0051, 10);
  });
});
