/**
 * Both engines on the same random weights: the spec written as a TF.js layers model (loaded by the TF.js
 * engine on the cpu backend) and as ONNX (loaded by the ONNX Runtime engine) give the same top-k ids, the
 * same scores and the same maps (within 1e-4 of each map's largest magnitude) for gap-dense and class-conv
 * heads, with frames at the model size and at another size (both engines resize with half-pixel centres).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { randomFrames, smallClassConvNet, smallGapDenseNet, type NetSpec, writeLayersModel, toOnnxModel } from '../../../lab/builders/index.ts';
import { loadOnnxModel } from '../../../models/onnx/index.ts';
import { loadTfjsModel } from '../../../models/tfjs/index.ts';
import type { CamResult, ModelFileConfig, ResolvedSource } from '../../../models/index.ts';
import { onnxSource, tempFolder } from './onnx-helpers.ts';

const tmp = tempFolder();
afterAll(() => tmp.cleanup());

function expectSameCam(a: CamResult, b: CamResult): void {
  expect(Array.from(a.ids)).toEqual(Array.from(b.ids));
  expect(a.mapSize).toEqual(b.mapSize);
  a.scores.forEach((s, j) => expect(Math.abs(s - b.scores[j]) / Math.max(Math.abs(b.scores[j]), 1)).toBeLessThanOrEqual(1e-4));
  a.probabilities.forEach((p, j) => expect(p).toBeCloseTo(b.probabilities[j], 5));
  const per = a.mapSize[0] * a.mapSize[1];
  for (let j = 0; j < a.ids.length; j++) {
    const mapA = a.maps.subarray(j * per, (j + 1) * per);
    const mapB = b.maps.subarray(j * per, (j + 1) * per);
    const scale = Math.max(...Array.from(mapB, Math.abs));
    mapA.forEach((v, i) => expect(Math.abs(v - mapB[i]) / scale).toBeLessThanOrEqual(1e-4));
  }
}

const cases: Array<[string, NetSpec, string, string]> = [
  ['gap-dense', smallGapDenseNet(71, { dropout: true }), 'gap-dense', 'onnx-gap-gemm'],
  ['class-conv', smallClassConvNet(72), 'class-conv-gap', 'onnx-class-conv-gap'],
];

describe.each(cases)('TF.js and ONNX engines agree on a %s head', (name, spec, tfjsHead, onnxHead) => {
  it.each<[string, ModelFileConfig]>([
    ['stretch', {}],
    ['letterbox, bgr, mean and std', { resize: 'letterbox', channelOrder: 'bgr', scale: 1, mean: [120, 110, 100], std: [60, 55, 50] }],
  ])('same ids, scores and maps (%s)', async (_, fileConfig) => {
    const folder = join(tmp.dir, `${name}-${Object.keys(fileConfig).length}`);
    mkdirSync(folder, { recursive: true });
    await writeLayersModel(spec, folder);
    const tfjsSource: ResolvedSource = { format: 'tfjs', path: folder, original: folder, fileConfig };
    const tfjsModel = await loadTfjsModel(tfjsSource, { backend: 'cpu' });
    const onnxModel = await loadOnnxModel(onnxSource(folder, 'model.onnx', toOnnxModel(spec), fileConfig), { threads: 1 });
    try {
      expect(tfjsModel.info.head).toBe(tfjsHead);
      expect(onnxModel.info.head).toBe(onnxHead);
      expect(onnxModel.info.featureShape).toEqual(tfjsModel.info.featureShape);
      expect(onnxModel.head().weights).toEqual(tfjsModel.head().weights);
      const [h, w] = spec.inputSize;
      const frames = [...randomFrames(73, 2, w, h), ...randomFrames(74, 1, 45, 20)];
      const [a, b] = await Promise.all([
        onnxModel.infer(frames, { topK: 4, features: true }),
        tfjsModel.infer(frames, { topK: 4, features: true }),
      ]);
      for (let i = 0; i < frames.length; i++) {
        expectSameCam(a[i], b[i]);
        a[i].features!.forEach((v, c) => expect(v).toBeCloseTo(b[i].features![c], 4));
      }
      const [ca] = await onnxModel.infer([frames[0]], { classes: [9, 2] });
      const [cb] = await tfjsModel.infer([frames[0]], { classes: [9, 2] });
      expectSameCam(ca, cb);
    } finally {
      await onnxModel.dispose();
      await tfjsModel.dispose();
    }
  });
});
