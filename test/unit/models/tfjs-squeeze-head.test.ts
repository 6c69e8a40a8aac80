/**
 * SqueezeNet's activated class-conv head on TF.js (issue 16, item 3): 1x1 conv -> ReLU -> GAP is found (the
 * ReLU as the conv's activation or as its own layer), its maps are the post-ReLU conv outputs and
 * mean(M_c) = logit_c; a camstream.json override is checked against the graph (a ReLU right after the
 * class conv makes the head activated, any other non-linearity between the named tensors is refused).
 * Layers models built here (random weights, cpu backend), written to real folders, loaded through `load`.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, NoGapHeadError } from '../../../common/index.ts';
import { load, type CamModel } from '../../../models/index.ts';
import { readModelFolder, saveArtifactsToFolder } from '../../../models/tfjs/index.ts';
import { rejection } from '../../helpers/rejection.ts';
import { tempFolders } from './tfjs-helpers.ts';

const folders = tempFolders();
const CLASSES = 5;
const OVERRIDE = { featureTensor: 'features', weights: 'class_conv/kernel', bias: 'class_conv/bias' };

type Head = 'conv-relu' | 'conv-then-relu-layer' | 'tanh-between' | 'conv-elu' | 'linear';

/** input -> 3x3 conv (relu, 'features') -> [tanh] -> 1x1 class conv -> [ReLU] -> GAP -> softmax, in a folder. */
async function squeezeLike(head: Head, seed: number): Promise<string> {
  const input = tfl.input({ shape: [12, 12, 3] });
  const init = (s: number) => tfl.initializers.glorotUniform({ seed: s });
  const features = tfl.layers.conv2d({ name: 'features', filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(seed) }).apply(input) as tfl.SymbolicTensor;
  const toClassConv = head === 'tanh-between' ? (tfl.layers.activation({ name: 'squash', activation: 'tanh' }).apply(features) as tfl.SymbolicTensor) : features;
  let x = tfl.layers
    .conv2d({ name: 'class_conv', filters: CLASSES, kernelSize: 1, activation: head === 'conv-relu' ? 'relu' : head === 'conv-elu' ? 'elu' : 'linear', kernelInitializer: init(seed + 1), biasInitializer: tfl.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: seed + 2 }) })
    .apply(toClassConv) as tfl.SymbolicTensor;
  if (head === 'conv-then-relu-layer') x = tfl.layers.reLU({ name: 'class_relu' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: tfl.layers.softmax().apply(x) as tfl.SymbolicTensor });
  const dir = await folders.make(`squeeze-${head}`);
  await model.save(tf.io.withSaveHandler((artifacts) => saveArtifactsToFolder(dir, artifacts)));
  model.dispose();
  return dir;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(async () => {
  await folders.cleanup();
});


/** Frames with some structure (the ReLU must clip some cells and keep others). */
function frames(count: number): Array<{ data: Uint8Array; width: number; height: number }> {
  return Array.from({ length: count }, (_, f) => ({ data: new Uint8Array(12 * 12 * 3).map((_, i) => (i * (37 + f * 11) + f * 53) % 256), width: 12, height: 12 }));
}

/** Checks mean(M_c) + offset_c = logit_c for every class on a few frames; returns the share of zero cells. */
async function checkIdentity(model: CamModel, offset: (c: number) => number): Promise<number> {
  const [fh, fw] = model.info.featureShape;
  let zeros = 0;
  let cells = 0;
  for (const r of await model.infer(frames(3), { classes: [0, 1, 2, 3, 4] })) {
    for (let c = 0; c < CLASSES; c++) {
      const m = r.maps.subarray(c * fh * fw, (c + 1) * fh * fw);
      const mean = m.reduce((a, b) => a + b, 0) / m.length;
      expect(mean + offset(c)).toBeCloseTo(r.scores[c], 4);
      zeros += m.filter((v) => v === 0).length;
      cells += m.length;
    }
  }
  return zeros / cells;
}

describe('the activated class-conv head (1x1 conv -> ReLU -> GAP) of a TF.js layers model', () => {
  for (const head of ['conv-relu', 'conv-then-relu-layer'] as const) {
    it(`is found with the ReLU ${head === 'conv-relu' ? "as the conv's activation" : 'as its own layer'}: post-ReLU maps whose mean is the logit`, async () => {
      const model = await load(await squeezeLike(head, 3), { backend: 'cpu' });
      try {
        expect(model.info.head).toBe('class-conv-relu-gap');
        const clipped = await checkIdentity(model, () => 0);
        // Post-ReLU: some cells clipped to exactly 0, none negative, some positive.
        expect(clipped).toBeGreaterThan(0);
        expect(clipped).toBeLessThan(1);
        const [r] = await model.infer(frames(1), { classes: [0, 1, 2, 3, 4] });
        expect(Math.min(...r.maps)).toBe(0);
      } finally {
        await model.dispose();
      }
    });
  }

  it('gives the probabilities the model itself outputs (softmax of the pooled post-ReLU maps)', async () => {
    const dir = await squeezeLike('conv-relu', 4);
    const model = await load(dir, { backend: 'cpu' });
    const own = await tfl.loadLayersModel(tf.io.fromMemory((await readModelFolder(dir)).artifacts));
    try {
      const f = frames(1)[0];
      const [r] = await model.infer([f], { classes: [0, 1, 2, 3, 4] });
      // camstream's default input: x / 255, at the model's own size (no resize).
      const x = tf.tidy(() => tf.div(tf.tensor4d(f.data, [1, 12, 12, 3], 'float32'), 255));
      const expected = (own.predict(x) as tf.Tensor).dataSync();
      x.dispose();
      for (let c = 0; c < CLASSES; c++) expect(r.probabilities[c]).toBeCloseTo(expected[c], 5);
    } finally {
      own.dispose();
      await model.dispose();
    }
  });

  it('keeps the tensor count flat over many inferences and back to the start after dispose', async () => {
    const before = tf.memory().numTensors;
    const model = await load(await squeezeLike('conv-relu', 6), { backend: 'cpu' });
    try {
      await model.infer(frames(2));
      const loaded = tf.memory().numTensors;
      for (let i = 0; i < 10; i++) await model.infer(frames(2), { topK: 3 });
      expect(tf.memory().numTensors).toBe(loaded);
    } finally {
      await model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('a camstream.json override on a TF.js layers model', () => {
  it('makes the head activated when a ReLU follows the named class conv, with the same results as discovery', async () => {
    const dir = await squeezeLike('conv-then-relu-layer', 3);
    const found = await load(dir, { backend: 'cpu' });
    await writeFile(join(dir, 'camstream.json'), JSON.stringify(OVERRIDE));
    const named = await load(dir, { backend: 'cpu' });
    try {
      expect(named.info.head).toBe('class-conv-relu-gap');
      await checkIdentity(named, () => 0);
      const [a] = await found.infer(frames(1), { topK: 5 });
      const [b] = await named.infer(frames(1), { topK: 5 });
      expect(Array.from(b.ids)).toEqual(Array.from(a.ids));
      for (let i = 0; i < a.maps.length; i++) expect(b.maps[i]).toBeCloseTo(a.maps[i], 5);
    } finally {
      await found.dispose();
      await named.dispose();
    }
  });

  it('is refused when the named class conv has a non-linearity other than ReLU (no silent linear head)', async () => {
    const dir = await squeezeLike('conv-elu', 5);
    const plain = await rejection(load(dir, { backend: 'cpu' }));
    expect(plain).toBeInstanceOf(NoGapHeadError);
    expect(plain.message).toContain("has activation 'elu', neither linear nor relu");
    await writeFile(join(dir, 'camstream.json'), JSON.stringify(OVERRIDE));
    const err = await rejection(load(dir, { backend: 'cpu' }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain("('class_conv', Conv2D, elu)");
  });

  it('is refused when a non-linear layer sits between the named features and the classifier', async () => {
    const dir = await squeezeLike('tanh-between', 7);
    await writeFile(join(dir, 'camstream.json'), JSON.stringify(OVERRIDE));
    const err = await rejection(load(dir, { backend: 'cpu' }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain("a non-linear layer sits between the feature layer and the classifier ('squash', Activation, tanh)");
  });

  it('loads a linear class conv named the same way, and mean(M_c) + b_c equals logit_c', async () => {
    const dir = await squeezeLike('linear', 9);
    await writeFile(join(dir, 'camstream.json'), JSON.stringify(OVERRIDE));
    const model = await load(dir, { backend: 'cpu' });
    try {
      expect(model.info.head).toBe('class-conv-gap');
      const { bias } = model.head();
      await checkIdentity(model, (c) => bias[c]);
      // No ReLU on the maps: negative values stay.
      const [r] = await model.infer(frames(1), { classes: [0, 1, 2, 3, 4] });
      expect(Math.min(...r.maps)).toBeLessThan(0);
    } finally {
      await model.dispose();
    }
  });
});
