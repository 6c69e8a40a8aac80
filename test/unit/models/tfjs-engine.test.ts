import * as tf from '@tensorflow/tfjs-core';
import * as tfc from '@tensorflow/tfjs-converter';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomFrames, smallClassConvNet, smallGapDenseNet, createRandom, type NetSpec, toLayersModel, writeLayersModel, toTfGraphArtifacts, writeTfGraphModel } from '../../../lab/builders/index.ts';
import type { CamModel, Frame, HeadKind } from '../../../models/index.ts';
import { initTfjsBackend, loadTfjsModel, saveArtifactsToFolder } from '../../../models/tfjs/index.ts';
import { camIdentityError, tempFolders, tfjsSource, topIndices } from './tfjs-helpers.ts';

const TOL = 1e-4;
const folders = tempFolders();

interface Case {
  title: string;
  head: HeadKind;
  kind: 'layers' | 'graph';
  spec: NetSpec;
  fuseSoftmax?: boolean;
  /** Graph with the converter's fused ops. */
  fuse?: boolean;
  /** What the plain model outputs. */
  outputs: 'logits' | 'probs';
}

const CASES: Case[] = [
  { title: 'GAP -> dropout -> flatten -> Dense', head: 'gap-dense', kind: 'layers', spec: smallGapDenseNet(11, { dropout: true, flatten: true }), outputs: 'logits' },
  { title: 'GAP -> Dense(softmax)', head: 'gap-dense', kind: 'layers', spec: smallGapDenseNet(12, { softmax: true }), fuseSoftmax: true, outputs: 'probs' },
  { title: 'GAP -> Dense without bias -> Softmax layer', head: 'gap-dense', kind: 'layers', spec: smallGapDenseNet(13, { softmax: true, bias: false }), outputs: 'probs' },
  { title: 'linear 1x1 conv -> GAP -> Softmax', head: 'class-conv-gap', kind: 'layers', spec: smallClassConvNet(14, { softmax: true }), outputs: 'probs' },
  { title: 'linear 1x1 conv -> GAP', head: 'class-conv-gap', kind: 'layers', spec: smallClassConvNet(15), outputs: 'logits' },
  { title: 'graph Mean -> Identity -> MatMul -> BiasAdd -> Softmax', head: 'mean-matmul', kind: 'graph', spec: smallGapDenseNet(16, { dropout: true, softmax: true }), outputs: 'probs' },
  { title: 'graph 1x1 Conv2D -> BiasAdd -> Mean', head: 'class-conv-gap', kind: 'graph', spec: smallClassConvNet(17), outputs: 'logits' },
  { title: 'converter-style graph Mean -> _FusedMatMul', head: 'mean-matmul', kind: 'graph', spec: smallGapDenseNet(18), fuse: true, outputs: 'logits' },
  { title: 'converter-style graph 1x1 _FusedConv2D -> Mean -> Softmax', head: 'class-conv-gap', kind: 'graph', spec: smallClassConvNet(19, { softmax: true }), fuse: true, outputs: 'probs' },
];

/** Writes the case's model folder and returns it. */
async function writeCase(c: Case): Promise<string> {
  const dir = await folders.make();
  if (c.kind === 'layers') await writeLayersModel(c.spec, dir, { fuseSoftmax: c.fuseSoftmax });
  else await writeTfGraphModel(c.spec, dir, { fuse: c.fuse });
  return dir;
}

/** The same network built in memory (not through the files), for reference outputs. */
async function plainModel(c: Case): Promise<{ predict(x: tf.Tensor4D): tf.Tensor; dispose(): void }> {
  if (c.kind === 'layers') {
    const m: tfl.LayersModel = toLayersModel(c.spec, { fuseSoftmax: c.fuseSoftmax });
    return { predict: (x) => m.predict(x) as tf.Tensor, dispose: () => m.dispose() };
  }
  // The unfused graph as reference: fused and unfused must agree.
  const g = await tfc.loadGraphModel(tf.io.fromMemory(toTfGraphArtifacts(c.spec)));
  return { predict: (x) => g.predict(x) as tf.Tensor, dispose: () => g.dispose() };
}

/** Frames at the model's input size as the pixel/255 input tensor the engine should build. */
function scaledInput(frames: Frame[]): tf.Tensor4D {
  const { width, height } = frames[0];
  const buf = new Float32Array(frames.length * width * height * 3);
  frames.forEach((f, i) => buf.set(Array.from(f.data, (v) => v / 255), i * width * height * 3));
  return tf.tensor4d(buf, [frames.length, height, width, 3]);
}

beforeAll(async () => {
  await initTfjsBackend('cpu');
});

afterAll(async () => {
  await folders.cleanup();
});

describe.each(CASES)('tfjs engine, head $title', (c) => {
  let model: CamModel;
  let plain: Awaited<ReturnType<typeof plainModel>>;
  const [H, W] = c.spec.inputSize;

  beforeAll(async () => {
    model = await loadTfjsModel(tfjsSource(await writeCase(c)), { backend: 'cpu' });
    plain = await plainModel(c);
  });
  afterAll(async () => {
    await model.dispose();
    plain.dispose();
  });

  it(`is discovered as '${c.head}' with the conv2 feature map`, () => {
    expect(model.info.head).toBe(c.head);
    expect(model.info.featureShape).toEqual([Math.ceil(H / 2), Math.ceil(W / 2), 12]);
    expect(model.info.numClasses).toBe(10);
    expect(model.info.labels).toEqual(Array.from({ length: 10 }, (_, i) => `class_${i}`));
    expect(model.info.engine).toBe('tfjs');
    expect(model.info.backend).toBe('cpu');
    expect(model.info.threads).toBe(1);
    expect(model.info.runsOnJsThread).toBe(true);
    expect(model.info.parallelism).toBe(1);
    expect(model.info.runtime).toEqual({ package: '@tensorflow/tfjs-core', version: expect.stringMatching(/^\d+\.\d+/) });
  });

  it('keeps the CAM identity for the top-k classes, frames of mixed sizes in one batch', async () => {
    const frames = [...randomFrames(1, 2, W, H), ...randomFrames(2, 1, 45, 30), ...randomFrames(3, 1, 13, 17)];
    const results = await model.infer(frames, { topK: 4 });
    expect(results).toHaveLength(4);
    for (const r of results) {
      expect(r.ids).toHaveLength(4);
      expect(r.maps).toHaveLength(4 * r.mapSize[0] * r.mapSize[1]);
      for (let j = 1; j < 4; j++) expect(r.scores[j]).toBeLessThanOrEqual(r.scores[j - 1]);
    }
    expect(camIdentityError(results, model.head().bias)).toBeLessThanOrEqual(TOL);
  });

  it('keeps the CAM identity for explicitly requested classes, in the order asked', async () => {
    const frames = randomFrames(4, 2, W, H);
    const classes = [7, 0, 3, 9];
    const results = await model.infer(frames, { classes });
    for (const r of results) expect(Array.from(r.ids)).toEqual(classes);
    expect(camIdentityError(results, model.head().bias)).toBeLessThanOrEqual(TOL);
  });

  it('returns the true top-k of a plain predict on the same preprocessed input', async () => {
    const frames = randomFrames(5, 3, W, H);
    const results = await model.infer(frames, { topK: 5 });
    const x = scaledInput(frames);
    const y = plain.predict(x);
    const ref = (await y.array()) as number[][];
    tf.dispose([x, y]);
    results.forEach((r, i) => {
      expect(Array.from(r.ids)).toEqual(topIndices(ref[i], 5));
      for (let j = 0; j < 5; j++) {
        const want = ref[i][r.ids[j]];
        const got = c.outputs === 'logits' ? r.scores[j] : r.probabilities[j];
        expect(Math.abs(got - want)).toBeLessThanOrEqual(TOL * Math.max(1, Math.abs(want)));
      }
    });
  });
});

describe('tfjs engine options and preprocessing', () => {
  const spec = smallGapDenseNet(21, { dropout: true });
  const [H, W] = spec.inputSize;
  let dir: string;
  let model: CamModel;
  let plain: tfl.LayersModel;

  beforeAll(async () => {
    dir = await folders.make();
    await writeLayersModel(spec, dir);
    model = await loadTfjsModel(tfjsSource(dir), { backend: 'cpu' });
    plain = toLayersModel(spec);
  });
  afterAll(async () => {
    await model.dispose();
    plain.dispose();
  });

  it('gives each frame of a mixed batch the result it gets alone', async () => {
    const frames = [...randomFrames(31, 1, 45, 30), ...randomFrames(32, 1, W, H), ...randomFrames(33, 1, 19, 61)];
    const batch = await model.infer(frames, { topK: 3 });
    for (let i = 0; i < frames.length; i++) {
      const [alone] = await model.infer([frames[i]], { topK: 3 });
      expect(Array.from(batch[i].ids)).toEqual(Array.from(alone.ids));
      for (let j = 0; j < 3; j++) expect(batch[i].scores[j]).toBeCloseTo(alone.scores[j], 4);
      expect(batch[i].mapSize).toEqual(alone.mapSize);
    }
  });

  it('clamps topK to the number of classes and its probabilities then sum to 1', async () => {
    const [r] = await model.infer(randomFrames(34, 1, W, H), { topK: 50 });
    expect(r.ids).toHaveLength(10);
    expect(new Set(r.ids).size).toBe(10);
    expect(r.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const [d] = await model.infer(randomFrames(34, 1, W, H));
    expect(d.ids).toHaveLength(5);
  });

  it('returns the GAP feature vector, from which W and b give the scores', async () => {
    const [r] = await model.infer(randomFrames(35, 1, 50, 40), { topK: 3, features: true });
    const head = model.head();
    const k = model.info.featureShape[2];
    const C = model.info.numClasses;
    expect(r.features).toHaveLength(k);
    expect(head.weights).toHaveLength(k * C);
    for (let j = 0; j < 3; j++) {
      const c = r.ids[j];
      let logit = head.bias[c];
      for (let i = 0; i < k; i++) logit += r.features![i] * head.weights[i * C + c];
      expect(logit).toBeCloseTo(r.scores[j], 4);
    }
    expect(r.features).toBeInstanceOf(Float32Array);
    const [plainR] = await model.infer(randomFrames(35, 1, 50, 40), { topK: 3 });
    expect(plainR.features).toBeUndefined();
  });

  it('head() returns copies: changing them changes nothing', async () => {
    const frames = randomFrames(36, 1, W, H);
    const [before] = await model.infer(frames, { topK: 2 });
    const h = model.head();
    h.weights.fill(0);
    h.bias.fill(100);
    const [after] = await model.infer(frames, { topK: 2 });
    expect(Array.from(after.scores)).toEqual(Array.from(before.scores));
    expect(model.head().bias[0]).not.toBe(100);
  });

  it('applies letterbox, BGR order, mean and std as models/preprocess.ts defines them', async () => {
    const pre = { resize: 'letterbox', channelOrder: 'bgr', scale: 1, mean: [10, 20, 30], std: [50, 60, 70] } as const;
    const m = await loadTfjsModel(tfjsSource(dir, { ...pre, mean: [...pre.mean], std: [...pre.std] }), { backend: 'cpu' });
    try {
      expect(m.info.preprocess).toMatchObject({ resize: 'letterbox', channelOrder: 'bgr', scale: 1 });
      // A 32x16 frame in a 24x32 input: letterbox needs no resampling (scale 1), 4 rows of padding above and below.
      const [frame] = randomFrames(37, 1, 32, 16);
      const x = new Float32Array(H * W * 3);
      for (let y = 0; y < H; y++) {
        for (let xx = 0; xx < W; xx++) {
          const inside = y >= 4 && y < 20;
          for (let ch = 0; ch < 3; ch++) {
            const pixel = inside ? frame.data[((y - 4) * 32 + xx) * 3 + (2 - ch)] : 0; // BGR: model channel ch = frame channel 2-ch
            x[(y * W + xx) * 3 + ch] = (pixel * pre.scale - pre.mean[ch]) / pre.std[ch];
          }
        }
      }
      const input = tf.tensor4d(x, [1, H, W, 3]);
      const y = plain.predict(input) as tf.Tensor;
      const ref = (await y.data()) as Float32Array;
      tf.dispose([input, y]);
      const [r] = await m.infer([frame], { topK: 10 });
      for (let j = 0; j < 10; j++) expect(r.scores[j]).toBeCloseTo(ref[r.ids[j]], 4);
    } finally {
      await m.dispose();
    }
  });

  it('uses labels from the source, and rejects a list of the wrong length', async () => {
    const labels = Array.from({ length: 10 }, (_, i) => `thing ${i}`);
    const m = await loadTfjsModel(tfjsSource(dir, {}, labels), { backend: 'cpu' });
    expect(m.info.labels).toEqual(labels);
    await m.dispose();
    await expect(loadTfjsModel(tfjsSource(dir, {}, labels.slice(1)), { backend: 'cpu' })).rejects.toThrow(/9 labels for 10 classes/);
  });

  it('takes the head from camstream.json names and gives the same maps as discovery', async () => {
    const m = await loadTfjsModel(tfjsSource(dir, { featureTensor: 'conv2', weights: 'logits/kernel', bias: 'logits/bias' }), { backend: 'cpu' });
    try {
      const frames = randomFrames(38, 2, W, H);
      const [a, b] = [await model.infer(frames, { topK: 3 }), await m.infer(frames, { topK: 3 })];
      expect(m.info.head).toBe('gap-dense');
      expect(camIdentityError(b, m.head().bias)).toBeLessThanOrEqual(TOL);
      for (let i = 0; i < 2; i++) {
        expect(Array.from(b[i].ids)).toEqual(Array.from(a[i].ids));
        b[i].maps.forEach((v, p) => expect(v).toBeCloseTo(a[i].maps[p], 4));
      }
    } finally {
      await m.dispose();
    }
  });

  it('rejects camstream.json names the model lacks, naming them', async () => {
    await expect(loadTfjsModel(tfjsSource(dir, { featureTensor: 'conv9', weights: 'logits/kernel' }), { backend: 'cpu' })).rejects.toThrow(
      /featureTensor.*conv9/,
    );
    await expect(loadTfjsModel(tfjsSource(dir, { featureTensor: 'conv2', weights: 'nope/kernel' }), { backend: 'cpu' })).rejects.toThrow(
      /weights.*nope\/kernel/,
    );
    await expect(loadTfjsModel(tfjsSource(dir, { featureTensor: 'conv2' }), { backend: 'cpu' })).rejects.toThrow(/both 'featureTensor' and 'weights'/);
  });
});

describe('tfjs engine withHead', () => {
  const spec = smallClassConvNet(41);
  const [H, W] = spec.inputSize;
  let model: CamModel;

  beforeAll(async () => {
    const dir = await folders.make();
    await writeLayersModel(spec, dir);
    model = await loadTfjsModel(tfjsSource(dir), { backend: 'cpu' });
  });
  afterAll(async () => {
    await model.dispose();
  });

  it('keeps the CAM identity with a random new head, whose logits are gap . W + b', async () => {
    const k = model.info.featureShape[2];
    const r = createRandom(42);
    const head = { weights: r.normalArray(k * 4, 1), bias: r.normalArray(4, 0.5), labels: ['a', 'b', 'c', 'd'] };
    const derived = model.withHead(head);
    try {
      expect(derived.info.head).toBe('custom-head');
      expect(derived.info.numClasses).toBe(4);
      expect(derived.info.labels).toEqual(['a', 'b', 'c', 'd']);
      expect(derived.info.featureShape).toEqual(model.info.featureShape);
      const results = await derived.infer([...randomFrames(43, 2, W, H), ...randomFrames(44, 1, 30, 30)], { topK: 4, features: true });
      expect(camIdentityError(results, head.bias)).toBeLessThanOrEqual(TOL);
      for (const res of results) {
        const logits = Array.from({ length: 4 }, (_, c) => {
          let s = head.bias[c];
          for (let i = 0; i < k; i++) s += res.features![i] * head.weights[i * 4 + c];
          return s;
        });
        expect(Array.from(res.ids)).toEqual(topIndices(logits, 4));
        res.scores.forEach((s, j) => expect(s).toBeCloseTo(logits[res.ids[j]], 4));
      }
      const back = derived.head();
      expect(Array.from(back.weights)).toEqual(Array.from(head.weights));
      expect(Array.from(back.bias)).toEqual(Array.from(head.bias));
    } finally {
      await derived.dispose();
    }
  });

  it('leaves the backbone working after the derived model is disposed', async () => {
    const frames = randomFrames(45, 1, W, H);
    const [before] = await model.infer(frames, { topK: 3 });
    const k = model.info.featureShape[2];
    const derived = model.withHead({ weights: new Float32Array(k * 2).fill(0.1), bias: new Float32Array(2) });
    await derived.infer(frames);
    await derived.dispose();
    await expect(derived.infer(frames)).rejects.toThrow(/disposed/);
    const [after] = await model.infer(frames, { topK: 3 });
    expect(Array.from(after.ids)).toEqual(Array.from(before.ids));
    expect(Array.from(after.scores)).toEqual(Array.from(before.scores));
  });

  it('rejects a head of the wrong size, naming the sizes', () => {
    const k = model.info.featureShape[2];
    expect(() => model.withHead({ weights: new Float32Array(k * 3 - 1), bias: new Float32Array(3) })).toThrow(
      new RegExp(`${k * 3 - 1} values; need ${k} x 3`),
    );
    expect(() => model.withHead({ weights: new Float32Array(k * 2), bias: new Float32Array(2), labels: ['x'] })).toThrow(/1 labels for 2 classes/);
  });
});

describe('tfjs engine, Keras MobileNet-style head (GAP -> Reshape -> Dropout -> 1x1 Conv2D -> Reshape -> softmax)', () => {
  let model: CamModel;
  let plain: tfl.LayersModel;

  beforeAll(async () => {
    // Built with tfjs-layers directly: the NetSpec has no reshape op, and this is the head Keras'
    // MobileNet (v1) ships: the classifier is a 1x1 conv applied to the pooled vector.
    const input = tfl.input({ shape: [20, 20, 3] });
    let x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'conv' }).apply(input) as tfl.SymbolicTensor;
    const features = x;
    x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reshape({ targetShape: [1, 1, 8], name: 'reshape_1' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.dropout({ rate: 0.5, name: 'dropout' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.conv2d({ filters: 6, kernelSize: 1, name: 'conv_preds' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reshape({ targetShape: [6], name: 'reshape_2' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.activation({ activation: 'softmax', name: 'act_softmax' }).apply(x) as tfl.SymbolicTensor;
    plain = tfl.model({ inputs: input, outputs: x });
    const r = createRandom(61);
    for (const layer of plain.layers) {
      const ws = layer.getWeights();
      if (ws.length === 0) continue;
      const fresh = ws.map((w) => tf.tensor(r.normalArray(w.size, 0.7), w.shape));
      layer.setWeights(fresh);
      tf.dispose(fresh);
    }
    expect(features.shape).toEqual([null, 10, 10, 8]);
    const dir = await folders.make();
    await plain.save(tf.io.withSaveHandler((a) => saveArtifactsToFolder(dir, a)));
    model = await loadTfjsModel(tfjsSource(dir), { backend: 'cpu' });
  });
  afterAll(async () => {
    await model.dispose();
    plain.dispose();
  });

  it('is read as gap-dense on the conv features and keeps the CAM identity and the true top-k', async () => {
    expect(model.info.head).toBe('gap-dense');
    expect(model.info.featureShape).toEqual([10, 10, 8]);
    const frames = randomFrames(62, 2, 20, 20);
    const results = await model.infer(frames, { topK: 6 });
    expect(camIdentityError(results, model.head().bias)).toBeLessThanOrEqual(TOL);
    const x = scaledInput(frames);
    const y = plain.predict(x) as tf.Tensor;
    const ref = (await y.array()) as number[][];
    tf.dispose([x, y]);
    results.forEach((r, i) => {
      expect(Array.from(r.ids)).toEqual(topIndices(ref[i], 6));
      r.probabilities.forEach((p, j) => expect(p).toBeCloseTo(ref[i][r.ids[j]], 5));
    });
  });
});
