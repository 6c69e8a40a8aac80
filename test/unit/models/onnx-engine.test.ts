/**
 * The ONNX Runtime engine end to end on small random networks built with the ONNX builder: the CAM
 * identity against the unchanged model run in a plain session, top-k, explicit classes, features,
 * withHead, preprocessing (letterbox, bgr, other frame sizes), errors, threads and disposal.
 *
 * Tolerances: scores, logits and map means agree within 1e-4 relative (floor 1, so logits near 0 are
 * compared absolutely); float32 sums over a few hundred positions stay far inside that.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import * as ort from 'onnxruntime-node';
import { toOnnxModel, createRandom, randomFrames, smallClassConvNet, smallGapDenseNet, type NetSpec } from '../../../lab/builders/index.ts';
import { CamstreamError, ConfigError, InputError, ModelLoadError, NoGapHeadError } from '../../../common/index.ts';
import { load as loadModel } from '../../../models/load/index.ts';
import { availableOnnxProviders, int64Tensor, loadOnnxModel, valueInfo, type TensorProto } from '../../../models/onnx/index.ts';
import type { CamModel, ModelFileConfig } from '../../../models/index.ts';
import { asDecoded, editModel, expectIdentity, mapLogits, mean, onnxSource, reference, relErr, tempFolder, topK, withOutputs } from './onnx-helpers.ts';

const tmp = tempFolder();
afterAll(() => tmp.cleanup());
let fileCounter = 0;

async function load(bytes: Uint8Array, fileConfig: ModelFileConfig = {}, threads = 1, labels?: string[]): Promise<CamModel> {
  const source = onnxSource(tmp.dir, `m${fileCounter++}.onnx`, bytes, fileConfig);
  if (labels) source.labels = labels;
  return loadOnnxModel(source, { threads });
}

/** The gap -> Flatten of to-onnx replaced by gap -> Reshape([0, -1]), as older PyTorch exports write it. */
function flattenToReshape(bytes: Uint8Array): Uint8Array {
  return editModel(bytes, (model) => {
    const g = model.graph;
    const flat = g.node.find((n) => n.opType === 'Flatten' && n.input[0] === 'gap/pool')!;
    flat.opType = 'Reshape';
    flat.attribute = [];
    flat.input.push('shape_n_flat');
    g.initializer.push(asDecoded<TensorProto>(int64Tensor('shape_n_flat', [2], [0, -1])));
  });
}

const heads: Array<{ name: string; spec: NetSpec; make: (spec: NetSpec) => Uint8Array; kind: string }> = [
  {
    name: 'GlobalAveragePool -> Flatten -> Gemm',
    spec: smallGapDenseNet(11),
    make: (spec) => toOnnxModel(spec),
    kind: 'onnx-gap-gemm',
  },
  {
    name: 'ReduceMean -> Reshape -> MatMul + Add',
    spec: smallGapDenseNet(12, { numClasses: 7 }),
    make: (spec) => flattenToReshape(toOnnxModel(spec, { gap: 'reducemean', headStyle: 'matmul-add' })),
    kind: 'onnx-gap-gemm',
  },
  {
    name: 'ReduceMean with axes as an input (opset 18) -> Flatten -> MatMul + Add',
    spec: smallGapDenseNet(13),
    make: (spec) => toOnnxModel(spec, { gap: 'reducemean', headStyle: 'matmul-add', opset: 18 }),
    kind: 'onnx-gap-gemm',
  },
  {
    name: 'class conv 1x1 -> GlobalAveragePool',
    spec: smallClassConvNet(14),
    make: (spec) => toOnnxModel(spec),
    kind: 'onnx-class-conv-gap',
  },
];

describe.each(heads)('CAM identity for $name', ({ spec, make, kind }) => {
  it('mean of each map plus the bias equals the logit of the unchanged model, and ids are the true top-k', async () => {
    const bytes = make(spec);
    const model = await load(bytes);
    try {
      expect(model.info.head).toBe(kind);
      expect(model.info.engine).toBe('onnx');
      const frames = randomFrames(21, 3, spec.inputSize[1], spec.inputSize[0]);
      const results = await model.infer(frames, { topK: 4 });
      const { bias } = model.head();
      for (let i = 0; i < frames.length; i++) {
        const out = await reference(bytes, model, frames[i], ['logits']);
        const logits = out.logits.data;
        expect(Array.from(results[i].ids)).toEqual(topK(logits, 4));
        expectIdentity(results[i], bias, logits);
        // Probabilities are the softmax of all logits, gathered.
        const max = Math.max(...logits);
        const z = Array.from(logits).reduce((s, v) => s + Math.exp(v - max), 0);
        results[i].ids.forEach((id, j) => {
          expect(results[i].probabilities[j]).toBeCloseTo(Math.exp(logits[id] - max) / z, 5);
        });
      }
    } finally {
      await model.dispose();
    }
  });
});

describe('onnx engine', () => {
  const spec = smallGapDenseNet(31, { numClasses: 9 });
  const bytes = toOnnxModel(spec);

  it('reports the engine, provider, threads, feature shape and the discovered head weights exactly', async () => {
    const model = await load(bytes, {}, 1);
    try {
      const dense = spec.nodes.find((n) => n.op === 'dense')!;
      expect(model.info).toMatchObject({
        engine: 'onnx',
        backend: 'cpu',
        threads: 1,
        runsOnJsThread: false,
        parallelism: 1,
        runtime: { package: 'onnxruntime-node', version: expect.stringMatching(/^\d+\.\d+/) },
        head: 'onnx-gap-gemm',
        numClasses: 9,
        featureShape: [12, 16, 12],
      });
      expect(model.info.labels[8]).toBe('class_8');
      const head = model.head();
      if (dense.op !== 'dense') throw new Error('unreachable');
      expect(head.weights).toEqual(dense.kernelWeights);
      expect(head.bias).toEqual(dense.bias);
    } finally {
      await model.dispose();
    }
  });

  it('uses at most the free cores and all of them by default', async () => {
    const many = await load(bytes, {}, 10_000);
    const byDefault = await loadOnnxModel(onnxSource(tmp.dir, 'threads.onnx', bytes), {});
    try {
      expect(many.info.threads).toBe(availableParallelism());
      expect(byDefault.info.threads).toBe(availableParallelism());
    } finally {
      await many.dispose();
      await byDefault.dispose();
    }
    await expect(load(bytes, {}, 0)).rejects.toThrow(ConfigError);
  });

  it('returns maps for explicit classes in the order asked', async () => {
    const model = await load(bytes);
    try {
      const [frame] = randomFrames(3, 1, 32, 24);
      const [r] = await model.infer([frame], { classes: [7, 0, 7, 3] });
      expect(Array.from(r.ids)).toEqual([7, 0, 7, 3]);
      const logits = (await reference(bytes, model, frame, ['logits'])).logits.data;
      expectIdentity(r, model.head().bias, logits);
      // More maps than classes: the same classes again.
      const [many] = await model.infer([frame], { classes: [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2] });
      expect(Array.from(many.ids)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2]);
      expectIdentity(many, model.head().bias, logits);
      // The same class asked twice gives the same map.
      const per = r.mapSize[0] * r.mapSize[1];
      expect(r.maps.subarray(0, per)).toEqual(r.maps.subarray(2 * per, 3 * per));
    } finally {
      await model.dispose();
    }
  });

  it('returns the GAP feature vector, the mean of the feature map, only when asked', async () => {
    const model = await load(bytes);
    try {
      const [frame] = randomFrames(4, 1, 32, 24);
      const [plain] = await model.infer([frame]);
      expect(plain.features).toBeUndefined();
      const [r] = await model.infer([frame], { features: true });
      const out = await reference(withOutputs(bytes, ['conv2']), model, frame, ['conv2', 'logits']);
      const [, k, h, w] = out.conv2.dims;
      expect(r.features).toHaveLength(k);
      for (let c = 0; c < k; c++) {
        expect(relErr(r.features![c], mean(out.conv2.data, c * h * w, h * w))).toBeLessThanOrEqual(1e-5);
      }
      // And features . W + b gives the logits.
      const { weights, bias } = model.head();
      for (let cls = 0; cls < 9; cls++) {
        let s = bias[cls];
        for (let c = 0; c < k; c++) s += r.features![c] * weights[c * 9 + cls];
        expect(relErr(s, out.logits.data[cls])).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      await model.dispose();
    }
  });

  it('computes CAM from another linear head with withHead, sharing the session', async () => {
    const model = await load(bytes);
    const r = createRandom(5);
    const custom = { weights: r.normalArray(12 * 4, 0.5), bias: r.normalArray(4, 0.2), labels: ['a', 'b', 'c', 'd'] };
    const derived = model.withHead(custom);
    try {
      expect(derived.info).toMatchObject({ head: 'custom-head', numClasses: 4, labels: ['a', 'b', 'c', 'd'] });
      const head = derived.head();
      expect(head.weights).toEqual(custom.weights);
      expect(head.bias).toEqual(custom.bias);
      const frames = randomFrames(6, 2, 32, 24);
      const results = await derived.infer(frames, { topK: 4, features: true });
      const out = await reference(withOutputs(bytes, ['conv2']), model, frames[1], ['conv2']);
      const [, k, h, w] = out.conv2.dims;
      const logits = new Float32Array(4);
      for (let cls = 0; cls < 4; cls++) {
        let s = custom.bias[cls];
        for (let c = 0; c < k; c++) s += mean(out.conv2.data, c * h * w, h * w) * custom.weights[c * 4 + cls];
        logits[cls] = s;
      }
      expect(Array.from(results[1].ids)).toEqual(topK(logits, 4));
      expectIdentity(results[1], custom.bias, logits);
      // The base model still uses its own head.
      const [base] = await model.infer([frames[1]], { topK: 9 });
      expect(base.ids).toHaveLength(9);
      // Changing the caller's arrays afterwards changes nothing.
      custom.weights.fill(0);
      const [again] = await derived.infer([frames[1]], { topK: 4 });
      expect(again.maps).toEqual(results[1].maps);
    } finally {
      await derived.dispose();
      await model.dispose();
    }
  });

  it('rejects a withHead whose sizes do not match the features', async () => {
    const model = await load(bytes);
    try {
      expect(() => model.withHead({ weights: new Float32Array(11 * 3), bias: new Float32Array(3) })).toThrow(/12 x 3/);
      expect(() => model.withHead({ weights: new Float32Array(12), bias: new Float32Array(1), labels: ['x', 'y'] })).toThrow(ConfigError);
    } finally {
      await model.dispose();
    }
  });

  it('letterboxes and swaps to bgr exactly as the JS reference of the preprocessing', async () => {
    const config: ModelFileConfig = {
      resize: 'letterbox',
      channelOrder: 'bgr',
      scale: 1,
      mean: [104, 117, 123],
      std: [58, 57, 59],
    };
    const model = await load(bytes, config);
    try {
      // 40x18 is wider than the 32x24 input: content 32x14, 5 rows of padding above and below.
      const frames = [...randomFrames(8, 1, 40, 18), ...randomFrames(9, 1, 13, 30)];
      const results = await model.infer(frames, { topK: 3 });
      for (let i = 0; i < frames.length; i++) {
        const logits = (await reference(bytes, model, frames[i], ['logits'])).logits.data;
        expect(Array.from(results[i].ids)).toEqual(topK(logits, 3));
        expectIdentity(results[i], model.head().bias, logits);
      }
    } finally {
      await model.dispose();
    }
  });

  it('stretches frames of another size (smaller and larger) like the JS reference', async () => {
    const model = await load(bytes, { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] });
    try {
      const frames = [...randomFrames(10, 1, 20, 10), ...randomFrames(12, 1, 97, 61)];
      const results = await model.infer(frames, { topK: 2 });
      for (let i = 0; i < frames.length; i++) {
        const logits = (await reference(bytes, model, frames[i], ['logits'])).logits.data;
        expect(Array.from(results[i].ids)).toEqual(topK(logits, 2));
        expectIdentity(results[i], model.head().bias, logits);
      }
    } finally {
      await model.dispose();
    }
  });

  it('runs a batch of mixed frame sizes in per-size groups and keeps the frame order', async () => {
    const model = await load(bytes);
    try {
      const a = randomFrames(13, 2, 32, 24);
      const b = randomFrames(14, 2, 50, 20);
      const batch = [a[0], b[0], a[1], b[1]];
      const together = await model.infer(batch, { topK: 3 });
      for (let i = 0; i < batch.length; i++) {
        const [alone] = await model.infer([batch[i]], { topK: 3 });
        expect(Array.from(together[i].ids)).toEqual(Array.from(alone.ids));
        together[i].maps.forEach((v, j) => expect(Math.abs(v - alone.maps[j])).toBeLessThan(1e-4));
      }
    } finally {
      await model.dispose();
    }
  });

  it('accepts frames that are views into a larger buffer', async () => {
    const model = await load(bytes);
    try {
      const [frame] = randomFrames(15, 1, 32, 24);
      const big = new Uint8Array(frame.data.length + 7);
      big.set(frame.data, 7);
      const view = { data: big.subarray(7), width: 32, height: 24 };
      const [a] = await model.infer([frame]);
      const [b] = await model.infer([view]);
      expect(b.maps).toEqual(a.maps);
    } finally {
      await model.dispose();
    }
  });

  it('runs models whose input fixes the batch to 1 one frame at a time', async () => {
    const fixed = editModel(bytes, (m) => {
      m.graph.input[0] = asDecoded(valueInfo('input', 1, [1, 3, 24, 32]));
    });
    const model = await load(fixed);
    try {
      const frames = randomFrames(16, 3, 32, 24);
      const results = await model.infer(frames, { topK: 2 });
      for (let i = 0; i < 3; i++) {
        const logits = (await reference(bytes, model, frames[i], ['logits'])).logits.data;
        expectIdentity(results[i], model.head().bias, logits);
      }
    } finally {
      await model.dispose();
    }
  });

  it('keeps CAM on the pre-softmax logits of a model that ends in Softmax', async () => {
    const soft = smallGapDenseNet(32, { softmax: true, dropout: true, flatten: true });
    const softBytes = toOnnxModel(soft);
    const model = await load(softBytes);
    try {
      const [frame] = randomFrames(17, 1, 32, 24);
      const [r] = await model.infer([frame], { topK: 3 });
      const probs = (await reference(softBytes, model, frame, ['probabilities'])).probabilities.data;
      expect(Array.from(r.ids)).toEqual(topK(probs, 3));
      r.ids.forEach((id, j) => expect(r.probabilities[j]).toBeCloseTo(probs[id], 5));
      // Scores are logits, not probabilities: they differ and mean(map) + b gives them back.
      const fromMaps = mapLogits(r, model.head().bias);
      r.ids.forEach((_, j) => expect(relErr(fromMaps[j], r.scores[j])).toBeLessThanOrEqual(1e-4));
      expect(r.scores[0]).not.toBeCloseTo(r.probabilities[0], 2);
    } finally {
      await model.dispose();
    }
  });

  it('uses the labels of the source and rejects a labels list of the wrong length', async () => {
    const labels = Array.from({ length: 9 }, (_, i) => `label ${i}`);
    const model = await load(bytes, {}, 1, labels);
    expect(model.info.labels).toEqual(labels);
    await model.dispose();
    await expect(load(bytes, {}, 1, labels.slice(1))).rejects.toThrow(/8 labels for 9 classes/);
  });
});

describe('onnx engine through the model loader', () => {
  it('reads camstream.json and the labels file beside the .onnx', async () => {
    const dir = join(tmp.dir, 'with-config');
    mkdirSync(dir);
    writeFileSync(join(dir, 'model.onnx'), toOnnxModel(smallClassConvNet(81, { numClasses: 3 })));
    writeFileSync(join(dir, 'camstream.json'), JSON.stringify({ resize: 'letterbox', channelOrder: 'bgr', labels: 'names.txt' }));
    writeFileSync(join(dir, 'names.txt'), 'cat\ndog\nbird\n');
    const model = await loadModel(join(dir, 'model.onnx'), { threads: 1 });
    try {
      expect(model.info).toMatchObject({ engine: 'onnx', head: 'onnx-class-conv-gap', labels: ['cat', 'dog', 'bird'] });
      expect(model.info.preprocess).toMatchObject({ resize: 'letterbox', channelOrder: 'bgr', inputSize: [24, 32] });
      const [r] = await model.infer(randomFrames(82, 1, 60, 20), { topK: 3 });
      expect(Array.from(r.ids).sort()).toEqual([0, 1, 2]);
    } finally {
      await model.dispose();
    }
  });
});

describe('onnx engine errors', () => {
  const spec = smallGapDenseNet(41);
  const bytes = toOnnxModel(spec);

  it('rejects bad frames and options with InputError naming the value', async () => {
    const model = await load(bytes);
    try {
      await expect(model.infer([])).rejects.toThrow(InputError);
      await expect(model.infer([{ data: new Uint8Array(10), width: 32, height: 24 }])).rejects.toThrow(/10 bytes, expected 2304/);
      await expect(model.infer([{ data: new Uint8Array(0), width: 0, height: 24 }])).rejects.toThrow(InputError);
      const [frame] = randomFrames(1, 1, 32, 24);
      await expect(model.infer([frame], { classes: [10] })).rejects.toThrow(/classes\[0\] = 10/);
      await expect(model.infer([frame], { topK: 0 })).rejects.toThrow(InputError);
      // topK above the class count is clamped.
      const [r] = await model.infer([frame], { topK: 50 });
      expect(r.ids).toHaveLength(10);
    } finally {
      await model.dispose();
    }
  });

  it('fails with ModelLoadError on a corrupt or missing file', async () => {
    const corrupt = bytes.slice(0, 1000);
    await expect(load(corrupt)).rejects.toThrow(ModelLoadError);
    await expect(load(new TextEncoder().encode('not a model at all'))).rejects.toThrow(ModelLoadError);
    const missing = { format: 'onnx' as const, path: `${tmp.dir}/nope.onnx`, original: 'nope.onnx', fileConfig: {} };
    await expect(loadOnnxModel(missing, {})).rejects.toThrow(/cannot read/);
  });

  it('names the last nodes and the camstream.json fields when there is no GAP head', async () => {
    const noGap: NetSpec = {
      ...spec,
      nodes: spec.nodes.map((n) => (n.op === 'gap' ? { op: 'flatten', name: 'flat', input: n.input } : n)),
    };
    // Dense now reads 12x16x12 flattened values.
    const dense = noGap.nodes.find((n) => n.op === 'dense')!;
    if (dense.op === 'dense') {
      dense.input = 'flat';
      dense.kernelWeights = createRandom(1).normalArray(12 * 16 * 12 * 10, 0.01);
    }
    const error = await load(toOnnxModel(noGap)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoGapHeadError);
    const message = (error as Error).message;
    expect(message).toMatch(/flat \(Flatten\)/);
    expect(message).toMatch(/logits \(Gemm\)/);
    expect(message).toMatch(/conv2\/relu \(Relu\)/);
    expect(message).toMatch(/featureTensor/);
  });

  it('rejects unknown and unavailable execution providers naming the available ones', async () => {
    await expect(loadOnnxModel(onnxSource(tmp.dir, 'p.onnx', bytes), { backend: 'tpu' })).rejects.toThrow(/allowed: cpu, cuda, tensorrt, webgpu/);
    if (!availableOnnxProviders().includes('cuda')) {
      await expect(loadOnnxModel(onnxSource(tmp.dir, 'p.onnx', bytes), { backend: 'cuda' })).rejects.toThrow(
        new RegExp(`'cuda' is not available.*available: ${availableOnnxProviders().join(', ')}`),
      );
    }
  });

  it('reports webgpu only when a session really runs on it', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const model = await loadOnnxModel(onnxSource(tmp.dir, 'gpu.onnx', bytes), { backend: 'webgpu', threads: 1 });
      try {
        expect(['webgpu', 'cpu']).toContain(model.info.backend);
        const [r] = await model.infer(randomFrames(2, 1, 32, 24));
        expect(r.ids).toHaveLength(5);
        // Warnings are emitted on the next tick.
        await new Promise((resolve) => setImmediate(resolve));
        if (model.info.backend === 'cpu') expect(warnings.join('\n')).toMatch(/WebGPU is not usable/);
      } finally {
        await model.dispose();
      }
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('onnx engine disposal', () => {
  const bytes = toOnnxModel(smallClassConvNet(51));

  it('releases its session once, waits for a run in flight, and refuses to run afterwards', async () => {
    // InferenceSession.create returns instances of this class; its prototype holds `release`.
    const sessionClass = ort.InferenceSession as unknown as { prototype: ort.InferenceSession };
    const release = vi.spyOn(sessionClass.prototype, 'release');
    try {
      const model = await load(bytes);
      const derived = model.withHead({ weights: new Float32Array(12 * 2), bias: new Float32Array(2) });
      await derived.dispose();
      expect(release).not.toHaveBeenCalled();
      await expect(derived.infer(randomFrames(1, 1, 32, 24))).rejects.toThrow(/disposed/);

      const running = model.infer(randomFrames(1, 1, 32, 24));
      const disposing = model.dispose();
      const [r] = await running;
      expect(r.ids).toHaveLength(5);
      await disposing;
      await model.dispose();
      expect(release).toHaveBeenCalledTimes(1);

      const error = await model.infer(randomFrames(1, 1, 32, 24)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CamstreamError);
      expect((error as CamstreamError).code).toBe('DISPOSED');
      expect(() => model.head()).toThrow(/disposed/);
      expect(() => model.withHead({ weights: new Float32Array(12), bias: new Float32Array(1) })).toThrow(/disposed/);
    } finally {
      release.mockRestore();
    }
  });

  it('makes derived models unusable once the loaded model is disposed', async () => {
    const model = await load(bytes);
    const derived = model.withHead({ weights: new Float32Array(12 * 2), bias: new Float32Array(2) });
    await model.dispose();
    await expect(derived.infer(randomFrames(1, 1, 32, 24))).rejects.toThrow(/session was released/);
    await derived.dispose();
  });
});
