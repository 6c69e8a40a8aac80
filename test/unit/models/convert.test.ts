/**
 * TF.js layers -> ONNX (models/convert/): every layer type convert lists, in small random-weight
 * networks built with tfjs-layers, gives the same numbers on ONNX Runtime as `model.predict` in tfjs.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRandom } from '../../../lab/builders/index.ts';
import { CONVERTIBLE_LAYERS, convertTfjsToOnnx } from '../../../models/convert/index.ts';
import { saveArtifactsToFolder } from '../../../models/tfjs/index.ts';
import { tempFolder } from './onnx-helpers.ts';

const { dir, cleanup } = tempFolder();
beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => cleanup());

/** Seeded weights for every layer (variances positive), so batchnorm and biases are not identities. */
function randomizeWeights(model: tfl.LayersModel, seed: number): void {
  const r = createRandom(seed);
  for (const layer of model.layers) {
    const weights = layer.getWeights();
    if (weights.length === 0) continue;
    const fresh = weights.map((w, i) => {
      const values = r.normalArray(w.size, 0.4);
      const isVariance = layer.getClassName() === 'BatchNormalization' && i === weights.length - 1;
      return tf.tensor(isVariance ? values.map((v) => 0.5 + Math.abs(v)) : values, w.shape);
    });
    layer.setWeights(fresh);
    fresh.forEach((t) => t.dispose());
  }
}

/** Saves `model`, converts it, runs both on the same random input and returns the largest difference. */
async function maxDifference(model: tfl.LayersModel, name: string): Promise<{ diff: number; scale: number }> {
  const folder = join(dir, name);
  await model.save(tf.io.withSaveHandler((a) => saveArtifactsToFolder(folder, a)));
  const onnx = await convertTfjsToOnnx(folder);
  const [, h, w] = model.inputs[0].shape as number[];
  const r = createRandom(99);
  const nhwc = r.normalArray(2 * h * w * 3, 1);
  const expected = tf.tidy(() => (model.predict(tf.tensor4d(nhwc, [2, h, w, 3])) as tf.Tensor).dataSync() as Float32Array);
  const nchw = new Float32Array(nhwc.length);
  for (let n = 0; n < 2; n++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) {
    nchw[((n * 3 + c) * h + y) * w + x] = nhwc[((n * h + y) * w + x) * 3 + c];
  }
  const session = await ort.InferenceSession.create(onnx, { graphOptimizationLevel: 'disabled' });
  try {
    const out = await session.run({ input: new ort.Tensor('float32', nchw, [2, 3, h, w]) });
    const got = out[session.outputNames[0]].data as Float32Array;
    expect(got.length).toBe(expected.length);
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < got.length; i++) {
      diff = Math.max(diff, Math.abs(got[i] - expected[i]));
      scale = Math.max(scale, Math.abs(expected[i]));
    }
    return { diff, scale };
  } finally {
    await session.release();
  }
}

describe('convertTfjsToOnnx', () => {
  it('matches tfjs for a functional network with every 4-D layer type, GAP and a softmax Dense', async () => {
    const input = tfl.input({ shape: [21, 26, 3] });
    const padded = tfl.layers.zeroPadding2d({ padding: [[1, 0], [0, 2]] }).apply(input) as tfl.SymbolicTensor;
    const c1 = tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }).apply(padded) as tfl.SymbolicTensor;
    const bn = tfl.layers.batchNormalization({ epsilon: 1e-3 }).apply(c1) as tfl.SymbolicTensor;
    const leaky = tfl.layers.leakyReLU({ alpha: 0.2 }).apply(bn) as tfl.SymbolicTensor;
    const dw = tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'relu6' }).apply(leaky) as tfl.SymbolicTensor;
    const b1 = tfl.layers.conv2d({ filters: 6, kernelSize: 1, useBias: false }).apply(dw) as tfl.SymbolicTensor;
    const dil = tfl.layers.conv2d({ filters: 6, kernelSize: 3, dilationRate: 2, padding: 'same' }).apply(leaky) as tfl.SymbolicTensor;
    const b2 = tfl.layers.reLU({ maxValue: 6 }).apply(dil) as tfl.SymbolicTensor;
    const sum = tfl.layers.add().apply([b1, b2]) as tfl.SymbolicTensor;
    const relu = tfl.layers.reLU().apply(sum) as tfl.SymbolicTensor;
    const pooled = tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(relu) as tfl.SymbolicTensor;
    const avg = tfl.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same' }).apply(pooled) as tfl.SymbolicTensor;
    const cat = tfl.layers.concatenate().apply([pooled, avg]) as tfl.SymbolicTensor;
    const act = tfl.layers.activation({ activation: 'tanh' }).apply(cat) as tfl.SymbolicTensor;
    const gap = tfl.layers.globalAveragePooling2d({}).apply(act) as tfl.SymbolicTensor;
    const drop = tfl.layers.dropout({ rate: 0.5 }).apply(gap) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 7, activation: 'softmax' }).apply(drop) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    randomizeWeights(model, 11);
    const { diff, scale } = await maxDifference(model, 'functional');
    expect(scale).toBeGreaterThan(0.01);
    expect(diff).toBeLessThan(1e-5);
  });

  it('matches tfjs for a sequential network with valid padding, pooling, Flatten and a sigmoid Dense', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [17, 15, 3], filters: 4, kernelSize: [3, 2], strides: [2, 1], padding: 'valid' }),
        tfl.layers.activation({ activation: 'relu' }),
        tfl.layers.averagePooling2d({ poolSize: 2, padding: 'valid' }),
        tfl.layers.maxPooling2d({ poolSize: 2, strides: 1, padding: 'valid' }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 5, activation: 'sigmoid' }),
      ],
    });
    randomizeWeights(model, 12);
    const { diff, scale } = await maxDifference(model, 'sequential');
    expect(scale).toBeGreaterThan(0.01);
    expect(diff).toBeLessThan(1e-5);
  });

  it('names the layer it cannot convert and the ones it can', async () => {
    const model = tfl.sequential({ layers: [tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 2, kernelSize: 3 }), tfl.layers.upSampling2d({ size: [2, 2] })] });
    const folder = join(dir, 'unsupported');
    await model.save(tf.io.withSaveHandler((a) => saveArtifactsToFolder(folder, a)));
    await expect(convertTfjsToOnnx(folder)).rejects.toThrow(/UpSampling2D.*convert handles Conv2D/);
    expect(CONVERTIBLE_LAYERS).toEqual(expect.arrayContaining(['Conv2D', 'DepthwiseConv2D', 'BatchNormalization', 'ReLU', 'LeakyReLU', 'MaxPooling2D', 'AveragePooling2D', 'Add', 'Concatenate', 'GlobalAveragePooling2D', 'Dense', 'Activation', 'Dropout', 'Flatten', 'ZeroPadding2D']));
  });
});
