/**
 * The real Darknet Tiny fixture through `camstream convert` and `camstream quantize`: the converted fp32
 * ONNX model gives the tfjs model's maps (r >= 0.9999) through camstream's ORT engine, and the quantized
 * model's report lands on stdout (--json) and in camstream.json. Skipped with a message without the
 * fixtures (failed when CI=true, see helpers/fixtures.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { load, type CamModel } from '../../models/index.ts';
import { pearson } from '../../models/onnx/index.ts';
import { readImageFrame } from '../../pipelines/index.ts';
import { runCli } from '../helpers/cli.ts';
import { DARKNET_TINY, fixture, fixturesPresent } from '../helpers/fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'camstream-convert-'));
const models: CamModel[] = [];
afterAll(async () => {
  for (const m of models) await m.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const PHOTOS = ['darknet_dog.jpg', 'darknet_eagle.jpg', 'opencv_squirrel_cls.jpg', 'opencv_orange.jpg'];
const CALIBRATION = ['darknet_giraffe.jpg', 'darknet_horses.jpg', 'darknet_kite.jpg', 'darknet_person.jpg', 'opencv_apple.jpg', 'opencv_baboon.jpg', 'opencv_butterfly.jpg', 'opencv_fruits.jpg'];
const onnxPath = join(dir, 'darknet.onnx');

describe.skipIf(!fixturesPresent)('Darknet Tiny converted to ONNX and quantized', () => {
  it('converts with the same maps as tfjs through the ORT engine', async () => {
    const run = await runCli(['convert', DARKNET_TINY, '-o', onnxPath]);
    expect(run.code, run.stderr).toBe(0);
    const tfjs = await load(DARKNET_TINY, { engine: 'tfjs', threads: 1 });
    models.push(tfjs);
    const onnx = await load(onnxPath, { threads: 1 });
    models.push(onnx);
    expect(onnx.info.engine).toBe('onnx');
    for (const photo of PHOTOS) {
      const frame = await readImageFrame(fixture('images', photo));
      const [ref] = await tfjs.infer([frame], { topK: 1 });
      const [got] = await onnx.infer([frame], { topK: 1 });
      expect(got.ids[0], photo).toBe(ref.ids[0]);
      expect(pearson(ref.maps, got.maps), photo).toBeGreaterThanOrEqual(0.9999);
    }
  });

  it('quantizes with a fidelity report on stdout and in camstream.json', async () => {
    const out = join(dir, 'int8', 'darknet.int8.onnx');
    const photos = CALIBRATION.map((p) => fixture('images', p));
    const run = await runCli(['quantize', onnxPath, '-o', out, '--calibrate', ...photos, '--json', '--threads', '1', '--timing-runs', '3']);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as Record<string, number>;
    expect(Object.keys(report)).toEqual(expect.arrayContaining(['top1Agreement', 'top5Overlap', 'camR', 'camRWorst', 'speedup']));
    expect(report.frames).toBe(2);
    expect(report.camR).toBeGreaterThan(0.9);
    expect(report.camRWorst).toBeLessThanOrEqual(report.camR);
    const stored = JSON.parse(readFileSync(join(dir, 'int8', 'camstream.json'), 'utf8'));
    expect(stored.quantization).toMatchObject({ top1Agreement: report.top1Agreement, camR: report.camR, method: 'mse', calibrationFrames: 6 });
    const int8 = await load(out, { threads: 1 });
    models.push(int8);
    expect(int8.info.head).toBe('onnx-class-conv-gap');
  });

  it('image --int8 quantizes on first use with the input images, caches the model and reuses it', async () => {
    const cache = join(dir, 'cache');
    const photos = PHOTOS.slice(0, 3).map((p) => fixture('images', p));
    const args = ['image', ...photos, '--model', onnxPath, '--int8', '--json', '--threads', '1', '-k', '1'];
    const first = await runCli(args, { CAMSTREAM_CACHE: cache });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/int8 model cached at .*int8.*model\.int8\.onnx/);
    const records = JSON.parse(first.stdout) as Array<{ engine: string; top: Array<{ box: number[] | null }> }>;
    expect(records.map((r) => r.engine)).toEqual(['onnx', 'onnx', 'onnx']);
    const second = await runCli(args, { CAMSTREAM_CACHE: cache });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).not.toMatch(/cached at/);
    expect(JSON.parse(second.stdout)).toEqual(records);
  });
});
