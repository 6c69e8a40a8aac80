import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomFrames, smallClassConvNet, smallGapDenseNet, toLayersModel, writeLayersModel, writeTfGraphModel } from '../../../lab/builders/index.ts';
import { availableTfjsBackends, initTfjsBackend, loadTfjsModel } from '../../../models/tfjs/index.ts';
import { camIdentityError, tempFolders, tfjsSource, topIndices } from './tfjs-helpers.ts';

const folders = tempFolders();

afterAll(async () => {
  await folders.cleanup();
});

describe('tfjs engine on the wasm backend', () => {
  beforeAll(async () => {
    // This file runs in its own process (vitest forks): the first backend chosen here is the default one.
    const backend = await initTfjsBackend();
    expect(['tensorflow', 'wasm']).toContain(backend.name);
  });

  it('lists wasm and cpu as available and reports wasm as single-threaded in Node', async () => {
    const available = await availableTfjsBackends();
    expect(available).toEqual(expect.arrayContaining(['wasm', 'cpu']));
    const wasm = await initTfjsBackend('wasm');
    expect(wasm).toEqual({ name: 'wasm', threads: 1 });
    expect(tf.getBackend()).toBe('wasm');
  });

  it('keeps the CAM identity and the true top-k for a layers and a graph model', async () => {
    const dense = smallGapDenseNet(51, { dropout: true });
    const conv = smallClassConvNet(52);
    const [ld, gd] = [await folders.make(), await folders.make()];
    await writeLayersModel(dense, ld);
    await writeTfGraphModel(conv, gd);
    for (const [dir, spec] of [[ld, dense], [gd, conv]] as const) {
      const model = await loadTfjsModel(tfjsSource(dir), { backend: 'wasm' });
      try {
        expect(model.info.backend).toBe('wasm');
        const [H, W] = spec.inputSize;
        const frames = [...randomFrames(53, 2, W, H), ...randomFrames(54, 1, 41, 29)];
        const results = await model.infer(frames, { topK: 3 });
        expect(camIdentityError(results, model.head().bias)).toBeLessThanOrEqual(1e-4);
        const explicit = await model.infer(frames, { classes: [2, 8] });
        expect(camIdentityError(explicit, model.head().bias)).toBeLessThanOrEqual(1e-4);
        // True top-k against a plain predict of the same network (pixel / 255, no resize at the input size).
        const plain = toLayersModel(spec);
        const x = tf.tidy(() => tf.div(tf.tensor4d(Float32Array.from(frames[0].data), [1, H, W, 3]), 255));
        const y = plain.predict(x) as tf.Tensor;
        const logits = await y.data();
        tf.dispose([x, y]);
        plain.dispose();
        expect(Array.from(results[0].ids)).toEqual(topIndices(logits, 3));
      } finally {
        await model.dispose();
      }
    }
  });

  it('switches back to its own backend when another model moved the process to cpu', async () => {
    const dir = await folders.make();
    await writeLayersModel(smallGapDenseNet(55), dir);
    const onWasm = await loadTfjsModel(tfjsSource(dir), { backend: 'wasm' });
    const onCpu = await loadTfjsModel(tfjsSource(dir), { backend: 'cpu' });
    try {
      const frames = randomFrames(56, 1, 32, 24);
      const a = await onCpu.infer(frames);
      const b = await onWasm.infer(frames);
      expect(tf.getBackend()).toBe('wasm');
      expect(Array.from(b[0].ids)).toEqual(Array.from(a[0].ids));
      b[0].scores.forEach((s, j) => expect(s).toBeCloseTo(a[0].scores[j], 4));
    } finally {
      await onWasm.dispose();
      await onCpu.dispose();
    }
  });
});
