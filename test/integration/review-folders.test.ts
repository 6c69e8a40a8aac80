/**
 * The review import on a folder-per-class dataset made from the fixture photos, with the Darknet Tiny
 * backbone, through the library: seeded splits, stored maps that match a fresh CAM of the stored head, and
 * the three exports written.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load, type CamModel } from '../../models/index.ts';
import { readImageFrame } from '../../pipelines/index.ts';
import { dequantizeRawMap, importForReview, ReviewStore, writeExport, type ReviewImportResult } from '../../review/index.ts';
import { DARKNET_TINY, fixture, fixturesPresent } from '../helpers/fixtures.ts';

const CLASSES: Record<string, string[]> = {
  animal: ['darknet_dog.jpg', 'darknet_eagle.jpg', 'darknet_giraffe.jpg', 'darknet_horses.jpg', 'opencv_squirrel_cls.jpg'],
  fruit: ['opencv_apple.jpg', 'opencv_orange.jpg', 'opencv_fruits.jpg', 'opencv_butterfly.jpg'],
  scene: ['opencv_home.jpg', 'darknet_kite.jpg', 'opencv_basketball1.png', 'darknet_person.jpg'],
};

describe.skipIf(!fixturesPresent)('review import of a folder-per-class dataset', () => {
  let dir: string;
  let model: CamModel;
  let store: ReviewStore;
  let result: ReviewImportResult;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'camstream-review-folders-'));
    for (const [cls, files] of Object.entries(CLASSES)) {
      await mkdir(join(dir, 'photos', cls), { recursive: true });
      for (const f of files) await copyFile(fixture('images', f), join(dir, 'photos', cls, f));
    }
    await writeFile(join(dir, 'photos', 'scene', 'broken.jpg'), 'not a jpeg');
    model = await load(DARKNET_TINY, { backend: 'wasm' });
    store = ReviewStore.open(join(dir, 'home', 'review.db'));
    result = await importForReview(store, model, join(dir, 'photos'), { batchSize: 4 });
  }, 240_000);

  afterAll(async () => {
    store?.close();
    await model?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('imports every readable photo with seeded stratified splits and reports the broken one', () => {
    expect(result.name).toBe('photos');
    expect(result.issues).toEqual([expect.objectContaining({ path: join(dir, 'photos', 'scene', 'broken.jpg'), severity: 'skipped' })]);
    const s = result.summary;
    expect(s.classes).toEqual(['animal', 'fruit', 'scene']);
    expect(s.totalImages).toBe(13);
    expect(s.images + s.trainImages + s.validationImages).toBe(13);
    for (const c of s.perClass) expect(c.images).toBeGreaterThanOrEqual(1);
    expect(s.classifier.featureDims).toBe(128);
    // No boxes in this layout: localization figures are absent, not zero.
    expect(s.meanIoU).toBeNull();
    expect(s.pointingGame).toBeNull();
    expect(s.confusion.flat().reduce((a, b) => a + b, 0)).toBe(s.images);
  });

  it('stores predictions and maps that a fresh CAM of the stored head reproduces', async () => {
    const d = store.requireDataset('photos');
    const cam = model.withHead(d.head!);
    try {
      const rows = store.rows(d.id, { split: 'all' });
      let right = 0;
      for (const r of rows) {
        const frame = await readImageFrame(r.path);
        const [res] = await cam.infer([frame], { classes: [0, 1, 2] });
        const predicted = Array.from(res.scores).indexOf(Math.max(...res.scores));
        expect(r.predicted).toBe(predicted);
        if (r.split === 'test' && predicted === r.label) right++;
        for (const m of store.maps(r.id)) {
          const fresh = res.maps.subarray(m.classId * 196, (m.classId + 1) * 196);
          const back = dequantizeRawMap(m);
          const step = (m.max - m.min) / 255;
          for (let i = 0; i < 196; i++) expect(Math.abs(back[i] - fresh[i])).toBeLessThanOrEqual(step / 2 + 1e-4 * Math.abs(m.max));
        }
      }
      expect(result.summary.accuracy).toBeCloseTo(right / result.summary.images, 12);
    } finally {
      await cam.dispose();
    }
  }, 120_000);

  it('writes CSV, JSON and a self-contained HTML report', async () => {
    for (const format of ['csv', 'json', 'html'] as const) await writeExport(store, 'photos', format, join(dir, `out.${format}`));
    const csv = (await readFile(join(dir, 'out.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toMatch(/^key,split,class,predicted,correct,confidence,iou_paper/);
    expect(csv).toHaveLength(14);
    expect(JSON.parse(await readFile(join(dir, 'out.json'), 'utf8')).images).toHaveLength(13);
    const html = await readFile(join(dir, 'out.html'), 'utf8');
    expect(html).toMatch(/<svg/);
    expect(html).toMatch(/src="data:image\/jpeg;base64,/);
    expect(html).not.toMatch(/src="(?!data:)/); // nothing fetched from elsewhere
  }, 60_000);
});
