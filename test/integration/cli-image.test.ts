/**
 * `camstream image` as a user runs it: a real process, the real Darknet Tiny ImageNet model, real photos, and
 * the hand-drawn boxes of ../shared/fixtures/annotations.json.
 */
import { cp, mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { crc32, deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iou, type Box } from '../../models/index.ts';
import '@tensorflow/tfjs-backend-cpu';
import { createRandom, smallGapDenseNet, toOnnxModel, writeLayersModel, type NetSpec } from '../../lab/builders/index.ts';
import { DEFAULT_MAX_IMAGE_PIXELS, readImageFrame } from '../../pipelines/index.ts';
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
      // These labels are the non-antialiased resize's; the default filter reads the orange as a lemon (issue 16).
      '--resize-filter', 'bilinear',
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

/** A PNG signature, an IHDR chunk for a `width` x `height` RGB image, one empty IDAT and IEND: a header, no pixels. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(0))), chunk('IEND', Buffer.alloc(0))]);
}

describe('camstream image limits', () => {
  let fourClasses: string;
  let photo: string;
  beforeAll(async () => {
    fourClasses = join(tmp, 'four-classes');
    await writeLayersModel(smallGapDenseNet(5, { inputSize: [24, 24], numClasses: 4, width: 4 }), fourClasses);
    photo = join(tmp, 'photo-300.png');
    await sharp({ create: { width: 300, height: 200, channels: 3, background: '#4080c0' } }).png().toFile(photo);
  });

  it('maps every class of a 4-class model when --top is not given, instead of failing on the default 5', async () => {
    const run = await runCli(['image', photo, '--model', fourClasses, '--backend', 'cpu', '--json', '-q']);
    expect(run.code, run.stderr).toBe(0);
    const [record] = JSON.parse(run.stdout) as JsonRecord[];
    expect(record.top.map((t) => t.index).sort()).toEqual([0, 1, 2, 3]);
  });

  it('still refuses an explicit --top above the class count, exit 2', async () => {
    const run = await runCli(['image', photo, '--model', fourClasses, '--backend', 'cpu', '--top', '5', '-q']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/top must be a whole number in \[1, 4\], got 5/);
  });

  it('refuses an image over the pixel budget before decoding it, naming the file, its size and the budget, exit 3', async () => {
    const run = await runCli(['image', photo, '--model', fourClasses, '--backend', 'cpu', '--max-megapixels', '0.05', '-q']);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(photo);
    expect(run.stderr).toMatch(/300x200 = 60000 pixels, over the budget of 50000 pixels/);
  });

  it('reads the image header, not the pixels, to apply the budget; default 64 MP', async () => {
    expect(DEFAULT_MAX_IMAGE_PIXELS).toBe(64_000_000);
    await expect(readImageFrame(photo, { maxPixels: 59_999 })).rejects.toThrow(/over the budget of 59999 pixels/);
    const frame = await readImageFrame(photo, { maxPixels: 60_000 });
    expect([frame.width, frame.height]).toEqual([300, 200]);
    // A file whose header claims 16000x16000 (the probe) and holds almost nothing: refused from the header alone.
    const header = join(tmp, 'claims-huge.png');
    await writeFile(header, pngHeaderOnly(16000, 16000));
    await expect(readImageFrame(header)).rejects.toThrow(/16000x16000 = 256000000 pixels, over the budget of 64000000 pixels/);
  });
});
