/**
 * Faithful preprocessing (issue 16): the antialiased resize both engines do by default, compared on the
 * real fixture photos with a resize written out independently here; normalization presets on ONNX exports
 * built by lab/builders; the SqueezeNet-style activated class-conv head (conv -> ReLU -> GAP).
 *
 * How the preprocessed input is read back: a probe network whose features are its input (a 1x1 identity
 * conv, GAP, an identity dense layer). With the `raw` preset its class maps for classes 0, 1, 2 are the
 * resized R, G and B planes at the model input size, exactly what the engine fed the network.
 */
import { readdirSync } from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mobileNetV2Spec, resnet50Spec, toOnnxModel, writeLayersModel, createRandom, type NetSpec } from '../../lab/builders/index.ts';
import { ConfigError, NORMALIZATION_PRESETS, type CamModel, type Frame, type ModelFileConfig } from '../../models/index.ts';
import { discoverOnnxHead, GraphView, loadOnnxModel, parseOnnxModel } from '../../models/onnx/index.ts';
import { initTfjsBackend, loadTfjsModel } from '../../models/tfjs/index.ts';
import { fixture, fixturesPresent } from '../helpers/fixtures.ts';
import { filterResizeReference, onnxSource, preprocessReference, runPlain, tempFolder } from '../unit/models/onnx-helpers.ts';
import { tempFolders, tfjsSource } from '../unit/models/tfjs-helpers.ts';

const SIDE = 224;

/** Input -> identity 1x1 conv (the features) -> GAP -> identity dense: class maps are the input planes. */
function probeSpec(): NetSpec {
  const eye = Float32Array.from({ length: 9 }, (_, i) => (i % 4 === 0 ? 1 : 0));
  return {
    name: 'probe',
    inputSize: [SIDE, SIDE],
    nodes: [
      { op: 'conv', name: 'features', input: 'input', filters: 3, kernel: [1, 1], strides: 1, padding: 'valid', kernelWeights: eye },
      { op: 'gap', name: 'gap', input: 'features' },
      { op: 'dense', name: 'logits', input: 'gap', units: 3, kernelWeights: eye },
    ],
    output: 'logits',
  };
}

async function decode(path: string): Promise<Frame> {
  const { data, info } = await sharp(path).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

/** Largest |engine - reference| over the three planes, in pixel units (0-255). */
async function maxDiff(model: CamModel, frame: Frame, filter: 'triangle' | 'area'): Promise<number> {
  const [r] = await model.infer([frame], { classes: [0, 1, 2] });
  expect(r.mapSize).toEqual([SIDE, SIDE]);
  const ref = filterResizeReference(frame, SIDE, SIDE, filter);
  let worst = 0;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < SIDE * SIDE; i++) worst = Math.max(worst, Math.abs(r.maps[c * SIDE * SIDE + i] - ref[i * 3 + c]));
  }
  return worst;
}

const photos = fixturesPresent ? readdirSync(fixture('images')).filter((n) => /\.(jpe?g|png)$/i.test(n)).sort() : [];

describe.skipIf(!fixturesPresent)('antialiased resize on the fixture photos, both engines', () => {
  const folders = tempFolders();
  const onnxDir = tempFolder();
  const models: CamModel[] = [];
  const open = async (engine: 'tfjs' | 'onnx', config: ModelFileConfig): Promise<CamModel> => {
    const m =
      engine === 'onnx'
        ? await loadOnnxModel(onnxSource(onnxDir.dir, `probe-${models.length}.onnx`, toOnnxModel(probeSpec()), config), {})
        : await loadTfjsModel(tfjsSource(tfjsProbe, config), { backend: 'wasm' });
    models.push(m);
    return m;
  };
  let tfjsProbe = '';

  beforeAll(async () => {
    await initTfjsBackend('wasm');
    tfjsProbe = await folders.make();
    await writeLayersModel(probeSpec(), tfjsProbe);
  });
  afterAll(async () => {
    await Promise.all(models.map((m) => m.dispose()));
    await folders.cleanup();
    onnxDir.cleanup();
  });

  it.each([
    ['tfjs', 'triangle'],
    ['onnx', 'triangle'],
    ['tfjs', 'area'],
    ['onnx', 'area'],
  ] as const)('%s with the %s filter matches the 2-D reference within 1/255 on all 16 photos', async (engine, filter) => {
    const model = await open(engine, { preset: 'raw', ...(filter === 'area' ? { resizeFilter: 'area' } : {}) });
    expect(model.info.preprocess.resizeFilter).toBe(filter);
    expect(photos.length).toBe(16);
    for (const name of photos) {
      const frame = await decode(fixture('images', name));
      const worst = await maxDiff(model, frame, filter);
      expect(worst, `${name}: max |engine - reference| in pixel units`).toBeLessThanOrEqual(1);
    }
  });

  it('keeps the old bilinear resize on --resize-filter bilinear, which does not match the antialiased reference', async () => {
    const model = await open('onnx', { preset: 'raw', resizeFilter: 'bilinear' });
    const frame = await decode(fixture('images', 'opencv_baboon.jpg'));
    expect(await maxDiff(model, frame, 'triangle')).toBeGreaterThan(20);
  });
});

describe('normalization presets on ONNX exports', () => {
  const dir = tempFolder();
  afterAll(() => dir.cleanup());
  const frame: Frame = { data: new Uint8Array(SIDE * SIDE * 3).map((_, i) => [200, 100, 30][i % 3]), width: SIDE, height: SIDE };

  it.each(['imagenet', 'torchvision', 'tf', 'raw'] as const)('the %s preset feeds the documented numbers', async (preset) => {
    const model = await loadOnnxModel(onnxSource(dir.dir, `p-${preset}.onnx`, toOnnxModel(probeSpec()), { preset }), {});
    try {
      const p = NORMALIZATION_PRESETS[preset];
      expect(model.info.preprocess).toMatchObject({ normalization: preset, scale: p.scale, mean: [...p.mean], std: [...p.std] });
      const [r] = await model.infer([frame], { classes: [0, 1, 2] });
      const documented = {
        imagenet: (v: number, c: number) => (v / 255 - [0.485, 0.456, 0.406][c]) / [0.229, 0.224, 0.225][c],
        torchvision: (v: number, c: number) => (v / 255 - [0.485, 0.456, 0.406][c]) / [0.229, 0.224, 0.225][c],
        tf: (v: number) => v / 127.5 - 1,
        raw: (v: number) => v,
      }[preset];
      for (let c = 0; c < 3; c++) expect(r.maps[c * SIDE * SIDE + 777]).toBeCloseTo(documented([200, 100, 30][c], c), 4);
    } finally {
      await model.dispose();
    }
  });

  it.each([
    ['resnet-like', () => resnet50Spec({ seed: 3, inputSize: [64, 64], numClasses: 10 })],
    ['mobilenet-like', () => mobileNetV2Spec({ seed: 4, inputSize: [64, 64], numClasses: 10 })],
  ])('a %s export with --preset imagenet equals the unchanged model on the imagenet-normalized input', async (_name, make) => {
    const bytes = toOnnxModel(make());
    const model = await loadOnnxModel(onnxSource(dir.dir, `${_name}.onnx`, bytes, { preset: 'imagenet' }), {});
    try {
      expect(model.info.preprocess.normalization).toBe('imagenet');
      const r = createRandom(5);
      const f: Frame = { data: Uint8Array.from({ length: 90 * 70 * 3 }, () => r.int(256)), width: 90, height: 70 };
      const [res] = await model.infer([f], { classes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] });
      const x = preprocessReference(f, model.info.preprocess);
      const plain = await runPlain(bytes, x.data, x.dims, ['logits']);
      for (let c = 0; c < 10; c++) expect(res.scores[c]).toBeCloseTo(plain.logits.data[c], 3);
    } finally {
      await model.dispose();
    }
  });

  it('warns once on stderr when an ONNX model runs on the default normalization', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const src = onnxSource(dir.dir, 'nopreset.onnx', toOnnxModel(probeSpec()));
      const a = await loadOnnxModel(src, {});
      const b = await loadOnnxModel(src, {});
      await Promise.all([a.dispose(), b.dispose()]);
      const calls = warn.mock.calls.filter((c) => String(c[0]).includes('default'));
      expect(calls.length).toBe(1);
      expect(String(calls[0][0])).toMatch(/--preset imagenet/);
    } finally {
      warn.mockRestore();
    }
  });
});

/** SqueezeNet's head: features -> 1x1 class conv -> ReLU -> GAP -> softmax. */
function squeezeLikeSpec(): NetSpec {
  const r = createRandom(11);
  return {
    name: 'squeeze-like',
    inputSize: [48, 48],
    nodes: [
      { op: 'conv', name: 'features', input: 'input', filters: 8, kernel: [3, 3], strides: 2, padding: 'same', activation: 'relu', kernelWeights: r.normalArray(3 * 3 * 3 * 8, 0.5), bias: r.normalArray(8, 0.1) },
      { op: 'conv', name: 'classes', input: 'features', filters: 6, kernel: [1, 1], strides: 1, padding: 'valid', activation: 'relu', kernelWeights: r.normalArray(8 * 6, 0.8), bias: r.normalArray(6, 0.3) },
      { op: 'gap', name: 'gap', input: 'classes' },
      { op: 'softmax', name: 'probs', input: 'gap' },
    ],
    output: 'probs',
  };
}

describe('the activated class-conv head (SqueezeNet)', () => {
  const dir = tempFolder();
  afterAll(() => dir.cleanup());
  const bytes = toOnnxModel(squeezeLikeSpec());
  const frame: Frame = (() => {
    const r = createRandom(12);
    return { data: Uint8Array.from({ length: 40 * 56 * 3 }, () => r.int(256)), width: 56, height: 40 };
  })();

  it('loads with post-ReLU class maps whose mean is the logit, and the model\'s own probabilities', async () => {
    const model = await loadOnnxModel(onnxSource(dir.dir, 'squeeze.onnx', bytes, { preset: 'imagenet' }), {});
    try {
      expect(model.info.head).toBe('onnx-class-conv-relu-gap');
      const [r] = await model.infer([frame], { topK: 6 });
      const cells = r.mapSize[0] * r.mapSize[1];
      for (let j = 0; j < 6; j++) {
        const map = r.maps.subarray(j * cells, (j + 1) * cells);
        expect(Math.min(...map)).toBeGreaterThanOrEqual(0);
        expect(map.reduce((s, v) => s + v, 0) / cells + 0).toBeCloseTo(r.scores[j], 4);
      }
      const x = preprocessReference(frame, model.info.preprocess);
      const plain = await runPlain(bytes, x.data, x.dims, ['probabilities']);
      for (let j = 0; j < 6; j++) expect(r.probabilities[j]).toBeCloseTo(plain.probabilities.data[r.ids[j]], 5);
    } finally {
      await model.dispose();
    }
  });

  it('reads an override of the class conv as the activated head, not a linear one', () => {
    const view = new GraphView(parseOnnxModel(bytes, 'squeeze.onnx'));
    const head = discoverOnnxHead(view, { featureTensor: 'features', weights: 'classes/kernel', bias: 'classes/bias' }, 'squeeze.onnx');
    expect(head).toMatchObject({ kind: 'onnx-class-conv-relu-gap', activation: 'relu' });
  });

  it('refuses an override whose named tensors have a non-linearity between them', () => {
    const view = new GraphView(parseOnnxModel(bytes, 'squeeze.onnx'));
    // The input of the first conv, whose ReLU then sits between these "features" and the class conv.
    expect(() => discoverOnnxHead(view, { featureTensor: 'input', weights: 'classes/kernel' }, 'squeeze.onnx')).toThrow(ConfigError);
    expect(() => discoverOnnxHead(view, { featureTensor: 'input', weights: 'classes/kernel' }, 'squeeze.onnx')).toThrow(/Relu/);
  });
});
