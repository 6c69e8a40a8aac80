import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomFrames, smallClassConvNet, smallGapDenseNet, writeLayersModel, writeTfGraphModel } from '../../../lab/builders/index.ts';
import { initTfjsBackend, loadTfjsModel } from '../../../models/tfjs/index.ts';
import { tempFolders, tfjsSource } from './tfjs-helpers.ts';

const folders = tempFolders();

beforeAll(async () => {
  await initTfjsBackend('cpu');
});
afterAll(async () => {
  await folders.cleanup();
});

describe('tfjs engine tensor ownership', () => {
  it('keeps tensor count and bytes flat over 1000 inferences and frees everything on dispose (layers)', async () => {
    const dir = await folders.make();
    // A tiny net so 1000 passes take about a second on the cpu backend.
    await writeLayersModel(smallGapDenseNet(1, { inputSize: [8, 10], width: 2, numClasses: 4, dropout: true }), dir);
    const start = tf.memory();
    const model = await loadTfjsModel(tfjsSource(dir), { backend: 'cpu' });
    const sameSize = randomFrames(2, 2, 10, 8);
    const mixed = [...randomFrames(3, 1, 13, 7), ...randomFrames(4, 1, 10, 8)];
    await model.infer(sameSize, { features: true });
    const loaded = tf.memory();
    for (let i = 0; i < 1000; i++) {
      const frames = i % 2 === 0 ? sameSize : mixed;
      const options = i % 3 === 0 ? { classes: [3, 1] } : { topK: 2, features: i % 5 === 0 };
      await model.infer(frames, options);
    }
    const after = tf.memory();
    expect(after.numTensors).toBe(loaded.numTensors);
    expect(after.numBytes).toBe(loaded.numBytes);
    // A failing call (validation) must not leak either.
    await expect(model.infer(sameSize, { classes: [9] })).rejects.toThrow();
    expect(tf.memory().numTensors).toBe(loaded.numTensors);

    // withHead: the derived model's head is freed on its dispose, the backbone stays.
    const k = model.info.featureShape[2];
    const derived = model.withHead({ weights: new Float32Array(k * 3).fill(0.5), bias: new Float32Array(3) });
    for (let i = 0; i < 50; i++) await derived.infer(mixed, { features: true });
    await derived.dispose();
    expect(tf.memory().numTensors).toBe(loaded.numTensors);
    expect(tf.memory().numBytes).toBe(loaded.numBytes);

    await model.dispose();
    await model.dispose(); // idempotent
    expect(tf.memory().numTensors).toBe(start.numTensors);
    expect(tf.memory().numBytes).toBe(start.numBytes);
  });

  it('frees a graph model and its head on dispose, with flat memory between', async () => {
    const dir = await folders.make();
    await writeTfGraphModel(smallClassConvNet(5, { inputSize: [8, 10], width: 2, numClasses: 4 }), dir);
    const start = tf.memory();
    const model = await loadTfjsModel(tfjsSource(dir), { backend: 'cpu' });
    const frames = randomFrames(6, 2, 10, 8);
    await model.infer(frames);
    const loaded = tf.memory();
    for (let i = 0; i < 200; i++) await model.infer(frames, { topK: 3, features: i % 2 === 0 });
    expect(tf.memory().numTensors).toBe(loaded.numTensors);
    expect(tf.memory().numBytes).toBe(loaded.numBytes);
    await model.dispose();
    expect(tf.memory().numTensors).toBe(start.numTensors);
    expect(tf.memory().numBytes).toBe(start.numBytes);
  });

  it('frees what it made when loading fails', async () => {
    const dir = await folders.make();
    await writeLayersModel(smallGapDenseNet(7, { inputSize: [8, 10], width: 2, numClasses: 4 }), dir);
    const start = tf.memory();
    await expect(loadTfjsModel(tfjsSource(dir, {}, ['only one label']), { backend: 'cpu' })).rejects.toThrow(/1 labels for 4 classes/);
    expect(tf.memory().numTensors).toBe(start.numTensors);
    expect(tf.memory().numBytes).toBe(start.numBytes);
  });
});
