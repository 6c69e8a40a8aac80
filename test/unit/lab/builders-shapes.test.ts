import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ConfigError } from '../../../common/index.ts';
import { countParameters, mobileNetV2Spec, createRandom, resnet50Spec, type NetNode, type NetSpec, toLayersModel, toOnnxModel } from '../../../lab/builders/index.ts';

// Small inputs keep the forward passes to about a second on the cpu backend; the topology is the same
// at any size (only the feature map shrinks: 64 / 32 = 2x2).
const SIZE = 64;
const BATCH = 2;

const builders = [
  { name: 'ResNet-50', make: resnet50Spec, params: 25_557_032, features: 'conv5_block3_out', featureChannels: 2048 },
  { name: 'MobileNetV2', make: mobileNetV2Spec, params: 3_504_872, features: 'out_relu', featureChannels: 1280 },
] as const;

function node(spec: NetSpec, name: string): NetNode {
  const found = spec.nodes.find((n) => n.name === name);
  if (!found) throw new Error(`${spec.name} has no node ${name}`);
  return found;
}

/** A seeded NHWC batch of unit-normal "preprocessed images". */
function randomInput(seed: number): Float32Array {
  return createRandom(seed).normalArray(BATCH * SIZE * SIZE * 3, 1);
}

/** NHWC -> NCHW for the ONNX form. */
function toNchw(x: Float32Array, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let n = 0; n < BATCH; n++) {
    for (let y = 0; y < h; y++) {
      for (let i = 0; i < w; i++) {
        for (let c = 0; c < 3; c++) out[((n * 3 + c) * h + y) * w + i] = x[((n * h + y) * w + i) * 3 + c];
      }
    }
  }
  return out;
}

function stdOf(values: ArrayLike<number>): number {
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    sq += values[i] * values[i];
  }
  const mean = sum / values.length;
  return Math.sqrt(sq / values.length - mean * mean);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe.each(builders)('$name spec', ({ make, params, features, featureChannels }) => {
  const spec = make({ seed: 11, inputSize: [SIZE, SIZE] });
  let logits: Float32Array;
  const input = randomInput(5);

  afterAll(() => {
    expect(tf.memory().numTensors).toBe(0);
  });

  it('has the published parameter count for 1000 classes', () => {
    expect(countParameters(spec)).toBe(params);
    // The classifier reads the feature channels the CAM is computed from.
    const head = node(spec, 'predictions');
    expect(head.op === 'dense' && head.kernelWeights.length).toBe(featureChannels * 1000);
    expect(spec.output).toBe('predictions');
  });

  it('counts the classifier for other class counts', () => {
    const ten = make({ seed: 11, inputSize: [SIZE, SIZE], numClasses: 10 });
    expect(countParameters(ten)).toBe(params - 990 * (featureChannels + 1));
  });

  it('draws the same weights from the same seed and different ones from another seed', () => {
    const again = make({ seed: 11, inputSize: [SIZE, SIZE] });
    const other = make({ seed: 12, inputSize: [SIZE, SIZE] });
    // Byte comparison: deep equality over a million floats would take seconds.
    const w = (s: NetSpec) => {
      const n = node(s, features === 'out_relu' ? 'Conv_1' : 'conv5_block3_3_conv');
      return Buffer.from(n.op === 'conv' ? n.kernelWeights.buffer : new ArrayBuffer(0));
    };
    expect(w(spec).length).toBeGreaterThan(0);
    expect(w(again).equals(w(spec))).toBe(true);
    expect(w(other).equals(w(spec))).toBe(false);
  });

  it('runs as a tfjs layers model to 1000 finite logits with a sane spread', () => {
    const model = toLayersModel(spec);
    try {
      expect(model.getLayer(features).outputShape).toEqual([null, SIZE / 32, SIZE / 32, featureChannels]);
      logits = tf.tidy(() => {
        const out = model.predict(tf.tensor4d(input, [BATCH, SIZE, SIZE, 3])) as tf.Tensor;
        expect(out.shape).toEqual([BATCH, 1000]);
        return out.dataSync() as Float32Array;
      });
    } finally {
      model.dispose();
    }
    expect(logits.every(Number.isFinite)).toBe(true);
    // Calibrated batchnorm keeps the scale near unit: neither exploded (std in the hundreds) nor
    // vanished (all classes equal), and two different inputs give different logits.
    for (let b = 0; b < BATCH; b++) {
      const s = stdOf(logits.subarray(b * 1000, (b + 1) * 1000));
      expect(s).toBeGreaterThan(0.2);
      expect(s).toBeLessThan(20);
    }
    let diff = 0;
    for (let i = 0; i < 1000; i++) diff = Math.max(diff, Math.abs(logits[i] - logits[1000 + i]));
    expect(diff).toBeGreaterThan(0.05);
  });

  it('folding batchnorm into the convs computes the same function with fewer nodes', () => {
    const folded = make({ seed: 11, inputSize: [SIZE, SIZE], foldBatchNorm: true });
    expect(folded.nodes.some((n) => n.op === 'batchnorm')).toBe(false);
    expect(folded.nodes.length).toBeLessThan(spec.nodes.length);
    const model = toLayersModel(folded);
    try {
      const out = tf.tidy(
        () => (model.predict(tf.tensor4d(input, [BATCH, SIZE, SIZE, 3])) as tf.Tensor).dataSync() as Float32Array,
      );
      const scale = Math.max(1, ...Array.from(logits, Math.abs));
      for (let i = 0; i < out.length; i++) expect(Math.abs(out[i] - logits[i])).toBeLessThan(1e-3 * scale);
    } finally {
      model.dispose();
    }
  });

  it('loads as ONNX in an ORT session and gives the tfjs logits', async () => {
    const session = await ort.InferenceSession.create(toOnnxModel(spec), { intraOpNumThreads: 1 });
    try {
      const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', toNchw(input, SIZE, SIZE), [BATCH, 3, SIZE, SIZE]) };
      const result = await session.run(feeds);
      const out = result[session.outputNames[0]];
      expect(out.dims).toEqual([BATCH, 1000]);
      const values = out.data as Float32Array;
      const scale = Math.max(1, ...Array.from(logits, Math.abs));
      let worst = 0;
      for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(values[i] - logits[i]));
      // 50+ layers of float32 in two engines with different summation orders.
      expect(worst).toBeLessThan(1e-3 * scale);
    } finally {
      await session.release();
    }
  });
});

describe('builder options', () => {
  it('rejects input sizes the five stride-2 steps cannot take, naming the value', () => {
    expect(() => resnet50Spec({ seed: 1, inputSize: [16, 224] })).toThrow(ConfigError);
    expect(() => mobileNetV2Spec({ seed: 1, inputSize: [224, 16] })).toThrow(/\[224,16\]/);
  });

  it('rejects a non-integer seed and a zero class count', () => {
    expect(() => resnet50Spec({ seed: 0.5 })).toThrow(/seed must be an integer, got 0.5/);
    expect(() => mobileNetV2Spec({ seed: 1, numClasses: 0 })).toThrow(/numClasses must be a positive integer, got 0/);
  });

  it('halves the resolution five times: 224 -> 7x7 features with the default input', () => {
    // Shape bookkeeping without running anything: count the stride-2 nodes on the path to the features.
    for (const spec of [resnet50Spec({ seed: 1, numClasses: 2 }), mobileNetV2Spec({ seed: 1, numClasses: 2 })]) {
      expect(spec.inputSize).toEqual([224, 224]);
      const strided = spec.nodes.filter((n) => (n.op === 'conv' || n.op === 'maxpool') && n.strides === 2);
      // ResNet's projection shortcuts downsample in parallel with the 3x3 convs: count each stage once.
      const stages = new Set(strided.map((n) => n.name.replace(/_block1_[02]_conv$/, '')));
      expect(stages.size).toBe(5);
    }
  });
});
