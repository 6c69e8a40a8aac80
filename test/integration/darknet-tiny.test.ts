/**
 * The real Darknet Tiny ImageNet model (../shared/fixtures, see its README) through the TF.js engine on
 * wasm: head discovery on a Keras 2.1.6 export without a `format` key, a 1x1 class conv before GAP, and
 * top-1 classes on real photos.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CamModel, Frame } from '../../models/index.ts';
import { initTfjsBackend, loadTfjsModel } from '../../models/tfjs/index.ts';
import { DARKNET_TINY, fixture, fixturesPresent } from '../helpers/fixtures.ts';

async function decode(name: string): Promise<Frame> {
  const { data, info } = await sharp(fixture('images', name)).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

describe.skipIf(!fixturesPresent)('Darknet Tiny (real model) on the tfjs engine', () => {
  let model: CamModel;
  let labels: string[];

  beforeAll(async () => {
    await initTfjsBackend('wasm');
    const text = await readFile(join(DARKNET_TINY, 'imagenet1k_darknet_shortnames.txt'), 'utf8');
    labels = text.split(/\r?\n/);
    while (labels.length > 0 && labels[labels.length - 1] === '') labels.pop();
    // The top-1 labels below are those of the non-antialiased bilinear resize these expectations were
    // written for; with the default antialiased filter orange reads as lemon (as through PIL, issue 16).
    model = await loadTfjsModel(
      { format: 'tfjs', path: DARKNET_TINY, original: DARKNET_TINY, fileConfig: { resizeFilter: 'bilinear' }, labels },
      { backend: 'wasm' },
    );
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('finds the 1x1 class conv before GAP on the 14x14x128 features', () => {
    expect(model.info.head).toBe('class-conv-gap');
    expect(model.info.featureShape).toEqual([14, 14, 128]);
    expect(model.info.numClasses).toBe(1000);
    expect(model.info.labels[0]).toBe('kit fox');
    expect(model.info.backend).toBe('wasm');
    expect(model.info.preprocess).toMatchObject({ inputSize: [224, 224], scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'rgb' });
  });

  it.each([
    ['opencv_squirrel_cls.jpg', 'fox squirrel'],
    ['opencv_orange.jpg', 'orange'],
    ['opencv_butterfly.jpg', 'monarch'],
  ])('classifies %s as %s, with maps whose mean plus bias is the logit', async (file, label) => {
    const frame = await decode(file);
    const [r] = await model.infer([frame], { topK: 5 });
    expect(model.info.labels[r.ids[0]]).toBe(label);
    expect(r.mapSize).toEqual([14, 14]);
    const bias = model.head().bias;
    for (let j = 0; j < 5; j++) {
      const map = r.maps.subarray(j * 196, (j + 1) * 196);
      const mean = map.reduce((s, v) => s + v, 0) / 196;
      expect(Math.abs(mean + bias[r.ids[j]] - r.scores[j])).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(r.scores[j])));
    }
  });

  it('runs the three photos as one batch of different sizes with the same answers', async () => {
    const frames = await Promise.all(['opencv_squirrel_cls.jpg', 'opencv_orange.jpg', 'opencv_butterfly.jpg'].map(decode));
    expect(new Set(frames.map((f) => `${f.width}x${f.height}`)).size).toBe(3);
    const results = await model.infer(frames, { topK: 1 });
    expect(results.map((r) => model.info.labels[r.ids[0]])).toEqual(['fox squirrel', 'orange', 'monarch']);
    expect(results[2].probabilities[0]).toBeGreaterThan(0.5);
  });
});
