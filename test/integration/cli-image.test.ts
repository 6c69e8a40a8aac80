/**
 * `camstream image` as a user runs it: a real process, the real Darknet Tiny ImageNet model, real photos, and
 * the hand-drawn boxes of ../shared/fixtures/annotations.json.
 */
import { cp, mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iou, type Box } from '../../models/index.ts';
import { createRandom, toOnnxModel, type NetSpec } from '../../lab/builders/index.ts';
import { runCli } from '../helpers/cli.ts';
import { DARKNET_TINY, fixture, fixturesPresent } from '../helpers/fixtures.ts';

const LABELS = join(DARKNET_TINY, 'imagenet1k_darknet_shortnames.txt');

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'camstream-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface JsonRecord {
  file: string;
  width: number;
  height: number;
  engine: string;
  backend: string;
  threads: number;
  top: Array<{ index: number; label: string; score: number; box: Box | null }>;
  overlay?: string;
}

describe.skipIf(!fixturesPresent)('camstream image on the real Darknet Tiny model', () => {
  const cases = [
    { image: 'opencv_squirrel_cls.jpg', label: 'fox squirrel' },
    { image: 'opencv_orange.jpg', label: 'orange' },
    { image: 'opencv_butterfly.jpg', label: 'monarch' },
  ];
  let records: JsonRecord[];
  let outDir: string;

  beforeAll(async () => {
    outDir = join(tmp, 'overlays');
    const run = await runCli([
      'image',
      ...cases.map((c) => fixture('images', c.image)),
      '--model', DARKNET_TINY,
      '--labels', LABELS,
      '--top', '3',
      '--json',
      '--out', outDir,
    ]);
    expect(run.stderr).toContain('tfjs/');
    expect(run.code, run.stderr).toBe(0);
    records = JSON.parse(run.stdout) as JsonRecord[];
  });

  it('gets the right top-1 class for the squirrel, orange and butterfly photos', () => {
    expect(records.map((r) => r.top[0].label)).toEqual(cases.map((c) => c.label));
  });

  it('puts the top-1 CAM box over the hand-drawn box', async () => {
    const annotations = JSON.parse(await readFile(fixture('annotations.json'), 'utf8')) as {
      images: Record<string, { objects: Array<{ box: Box }> }>;
    };
    const ious: Record<string, number> = {};
    for (const [i, c] of cases.entries()) {
      const truth = annotations.images[`images/${c.image}`].objects[0].box;
      const box = records[i].top[0].box;
      expect(box, c.image).not.toBeNull();
      ious[c.image] = iou(box!, truth);
    }
    console.log('top-1 CAM box IoU against the hand-drawn boxes:', ious);
    for (const value of Object.values(ious)) expect(value).toBeGreaterThan(0.3);
  });

  it('reports the engine and writes JSON in the documented shape', () => {
    for (const r of records) {
      expect(r).toMatchObject({ engine: 'tfjs', backend: 'wasm', threads: 1 });
      expect(r.top).toHaveLength(3);
      for (const t of r.top) {
        expect(t.score).toBeGreaterThanOrEqual(0);
        expect(t.score).toBeLessThanOrEqual(1);
        if (t.box) {
          const [x1, y1, x2, y2] = t.box;
          expect(x1).toBeGreaterThanOrEqual(0);
          expect(y1).toBeGreaterThanOrEqual(0);
          expect(x2).toBeLessThanOrEqual(r.width);
          expect(y2).toBeLessThanOrEqual(r.height);
          expect(x2).toBeGreaterThan(x1);
          expect(y2).toBeGreaterThan(y1);
        }
      }
      // Scores come best first.
      expect([...r.top].sort((a, b) => b.score - a.score)).toEqual(r.top);
    }
  });

  it('writes one full-resolution overlay per image and no temporary files', async () => {
    const files = (await readdir(outDir)).sort();
    expect(files).toEqual(['opencv_butterfly.cam.jpg', 'opencv_orange.cam.jpg', 'opencv_squirrel_cls.cam.jpg']);
    for (const r of records) {
      const meta = await sharp(r.overlay!).metadata();
      expect([meta.width, meta.height]).toEqual([r.width, r.height]);
    }
  });
});

describe('camstream image errors', () => {
  it('names a missing model path and exits 4', async () => {
    const run = await runCli(['image', 'x.jpg', '--model', join(tmp, 'no-such-model')]);
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/model not found: .*no-such-model/);
  });

  it.skipIf(!fixturesPresent)('names the missing shard of a model.json and exits 4', async () => {
    const broken = join(tmp, 'missing-shard');
    await cp(DARKNET_TINY, broken, { recursive: true });
    await rm(join(broken, 'group19-shard1of1'));
    const run = await runCli(['image', fixture('images', 'opencv_orange.jpg'), '--model', broken]);
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('group19-shard1of1');
  });

  it('says a model has no GAP head, naming its last layers, and exits 4', async () => {
    // conv -> flatten -> dense: a classifier, but not one CAM applies to.
    const r = createRandom(7);
    const spec: NetSpec = {
      name: 'no-gap',
      inputSize: [16, 16],
      nodes: [
        { op: 'conv', name: 'conv1', input: 'input', filters: 4, kernel: [3, 3], strides: 2, padding: 'same', activation: 'relu', kernelWeights: r.normalArray(3 * 3 * 3 * 4, 0.3), bias: new Float32Array(4) },
        { op: 'flatten', name: 'flat', input: 'conv1' },
        { op: 'dense', name: 'logits', input: 'flat', units: 5, kernelWeights: r.normalArray(8 * 8 * 4 * 5, 0.1), bias: new Float32Array(5) },
      ],
      output: 'logits',
    };
    const file = join(tmp, 'no-gap.onnx');
    await writeFile(file, toOnnxModel(spec));
    const image = join(tmp, 'grey.png');
    await sharp({ create: { width: 20, height: 20, channels: 3, background: '#808080' } }).png().toFile(image);
    const run = await runCli(['image', image, '--model', file]);
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/no global-average-pooling head/);
    expect(run.stderr).toMatch(/Gemm|logits/);
  });

  it.skipIf(!fixturesPresent)('names a file that is not an image and exits 3, writing nothing', async () => {
    const notImage = join(tmp, 'notes.jpg');
    await writeFile(notImage, 'these are not pixels\n');
    const out = join(tmp, 'no-output');
    await mkdir(out);
    const run = await runCli(['image', notImage, '--model', DARKNET_TINY, '--out', out]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`not an image camstream can read: ${notImage}`);
    expect(await readdir(out)).toEqual([]);
  });

  it('rejects a bad option value naming it, exit 2', async () => {
    const run = await runCli(['image', 'x.jpg', '--alpha', '3']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--alpha must be a number in [0, 1]');
  });
});
