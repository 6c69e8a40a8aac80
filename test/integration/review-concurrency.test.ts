/**
 * Concurrent `camstream review import` processes (the real CLI) writing one CAMSTREAM_HOME: two imports
 * of one dataset name, from two versions of the dataset, and an import of another dataset, at once. Every
 * process must succeed and the store must hold each dataset whole, its images and its analysis from the
 * same import.
 *
 * The interleaving that broke the store is made certain rather than left to chance: the small version's
 * process is held at its read of `actions.txt` (a named pipe) until the big version's process reports the
 * last file of its first pass, so the small one replaces the dataset while the big one is still measuring
 * its maps. Before imports were one transaction, the big one then stored predictions for image rows the
 * other had deleted: `FOREIGN KEY constraint failed`.
 *
 * A second test saves imports while another connection (a worker thread, as another process would) keeps
 * writing: each save waits for the write lock instead of failing at once with "database is locked".
 */
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGeneratedDataset } from '../../datasets/index.ts';
import { smallGapDenseNet, writeLayersModel } from '../../lab/builders/index.ts';
import { ReviewStore, type ImageInput } from '../../review/index.ts';
import { startCli, type CliProcess } from '../helpers/cli-process.ts';
import { fifoGate } from '../helpers/fifo.ts';

let dir: string;
let modelDir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-review-concurrency-'));
  modelDir = join(dir, 'model');
  await writeLayersModel(smallGapDenseNet(3, { inputSize: [32, 32], numClasses: 10, width: 4 }), modelDir);
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * Appends to the last class's test split an entry whose image is not an image: it is the last file of
 * the import's first pass, so its "skipped" line marks the end of that pass. Returns its file name.
 */
async function markEndOfFirstPass(root: string): Promise<string> {
  const splits = join(root, 'ImageSplits');
  const lastClass = (await readFile(join(splits, 'actions.txt'), 'utf8')).trim().split('\n').at(-1)!.split(/\s+/)[0];
  const listed = (await readFile(join(splits, `${lastClass}_test.txt`), 'utf8')).trim().split('\n');
  const model = listed.at(-1)!.trim().replace(/\.jpg$/, '');
  const name = `${lastClass}_999`;
  const xml = await readFile(join(root, 'XMLAnnotations', `${model}.xml`), 'utf8');
  await writeFile(join(root, 'XMLAnnotations', `${name}.xml`), xml.replaceAll(model, name));
  await writeFile(join(root, 'JPEGImages', `${name}.jpg`), 'not a JPEG\n');
  await appendFile(join(splits, `${lastClass}_test.txt`), `${name}.jpg\n`);
  return `${name}.jpg`;
}

/** Turns `<root>/ImageSplits/actions.txt` into a gate: the importing process waits at it until released. */
async function gateActions(root: string): Promise<{ gate: ReturnType<typeof fifoGate>; text: string }> {
  const path = join(root, 'ImageSplits', 'actions.txt');
  const text = await readFile(path, 'utf8');
  await rm(path);
  return { gate: fifoGate(path), text };
}

/** The dataset's rows, images, predictions and maps all come from one import. */
function expectWhole(store: ReviewStore, name: string): void {
  const d = store.requireDataset(name);
  expect(d.summary, name).not.toBeNull();
  const images = store.images(d.id);
  expect(images.length, name).toBe(d.summary!.totalImages);
  for (const im of images) expect(im.path.startsWith(`${d.root}/`), im.path).toBe(true);
  const rows = store.rows(d.id, { split: 'all' });
  expect(rows.map((r) => r.id).sort()).toEqual(images.map((im) => im.id).sort());
  for (const r of rows) expect(store.maps(r.id).length, r.key).toBeGreaterThan(0);
}

function outcome(p: CliProcess, code: number | null): string {
  return `exit ${String(code)}\n${p.stdout()}${p.stderr()}`;
}

describe('concurrent review import processes on one CAMSTREAM_HOME', () => {
  it('all succeed, and each dataset is stored whole from one import', async () => {
    // The big version measures long (200 images, few of them training ones); the small version is
    // another edit of the same dataset; `other` is a second dataset imported at the same time.
    const big = join(dir, 'big');
    const small = join(dir, 'small');
    const other = join(dir, 'other');
    await writeGeneratedDataset(big, { layout: 'stanford40', n: 200, seed: 5, size: 48, trainFraction: 0.1 });
    await writeGeneratedDataset(small, { layout: 'stanford40', n: 40, seed: 9, size: 48 });
    await writeGeneratedDataset(other, { layout: 'folders', n: 30, seed: 3, size: 48 });
    const marker = await markEndOfFirstPass(big);
    const bigGate = await gateActions(big);
    const smallGate = await gateActions(small);

    const env = { CAMSTREAM_HOME: join(dir, 'home') };
    const importOf = (root: string, name: string) =>
      startCli(['review', 'import', root, '--name', name, '--model', modelDir, '--backend', 'cpu', '--batch', '4'], env);
    const bigRun = importOf(big, 'same');
    const smallRun = importOf(small, 'same');
    const otherRun = importOf(other, 'other');

    // Both imports of `same` are loaded and waiting at their dataset: let the big one go first ...
    await Promise.all([bigGate.gate.readerOpened, smallGate.gate.readerOpened]);
    await bigGate.gate.release(bigGate.text);
    // ... and the small one once the big one has read all its images, while it measures their maps.
    await bigRun.waitFor(new RegExp(`skipped: \\S*${marker}`));
    await smallGate.gate.release(smallGate.text);

    const codes = await Promise.all([bigRun.exited, smallRun.exited, otherRun.exited]);
    expect(outcome(bigRun, codes[0])).toMatch(/^exit 0\n[\s\S]*^imported 200 images as 'same'/m);
    expect(outcome(smallRun, codes[1])).toMatch(/^exit 0\n[\s\S]*^imported 40 images as 'same'/m);
    expect(outcome(otherRun, codes[2])).toMatch(/^exit 0\n[\s\S]*^imported 30 images as 'other'/m);

    const store = ReviewStore.open(join(env.CAMSTREAM_HOME, 'review.db'));
    try {
      expect(store.listDatasets().map((d) => d.name).sort()).toEqual(['other', 'same']);
      expectWhole(store, 'same');
      expectWhole(store, 'other');
    } finally {
      store.close();
    }
  }, 180_000);
});

/**
 * A second writer on the store file: a worker thread with its own connection that commits a small write
 * transaction every millisecond or so (as another import caching features does) until stopped.
 */
function startBusyWriter(db: string): { writing: Promise<void>; stop: () => Promise<number> } {
  const stopFlag = new Int32Array(new SharedArrayBuffer(4));
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
    const db = new (require(workerData.sqlite))(workerData.db, { timeout: 5000 });
    const put = db.prepare('INSERT OR REPLACE INTO features (model_key, sha256, vec) VALUES (?, ?, ?)');
    const batch = db.transaction((i) => { for (let j = 0; j < 200; j++) put.run('busy', String(i * 200 + j), Buffer.alloc(64)); });
    let i = 0;
    while (Atomics.load(workerData.stop, 0) === 0) {
      batch.immediate(i++);
      if (i === 1) parentPort.postMessage('writing');
      Atomics.wait(workerData.stop, 0, 0, 1); // the writer's own work between two batches
    }
    db.close();
    parentPort.postMessage(i);`,
    { eval: true, workerData: { sqlite, db, stop: stopFlag } },
  );
  const messages: unknown[] = [];
  const next = () => new Promise<unknown>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const writing = next().then((m) => void messages.push(m));
  return {
    writing,
    stop: async () => {
      Atomics.store(stopFlag, 0, 1);
      const batches = (await next()) as number;
      await worker.terminate();
      return batches;
    },
  };
}

describe('saving imports while another connection writes', () => {
  it('waits for the write lock instead of failing with "database is locked"', async () => {
    const db = join(dir, 'home-busy', 'review.db');
    const store = ReviewStore.open(db);
    const writer = startBusyWriter(db);
    const failures: string[] = [];
    let batches = 0;
    try {
      await writer.writing;
      for (let round = 0; round < 100; round++) {
        const images: ImageInput[] = Array.from({ length: 4 + (round % 3) }, (_, i) => ({
          key: `im${i}`,
          path: `/data/v${round}/im${i}.jpg`,
          sha256: `${round}-${i}`,
          width: 8,
          height: 8,
          label: i % 2,
          split: 'test',
          boxes: [[0, 0, 4, 4]],
        }));
        const prediction = (im: ImageInput) => ({
          imageKey: im.key,
          predicted: im.label,
          confidence: 0.9,
          top: [],
          mapClass: im.label,
          ...{ paperBox: null, officialBox: null, iouPaper: null, iouOfficial: null, insidePaper: null, insideOfficial: null },
          pointing: null,
          peak: { x: 0, y: 0 },
        });
        try {
          store.saveImport(
            { name: 'same', root: `/data/v${round}`, layout: 'folders', classes: ['a', 'b'], modelSource: 'm', modelKey: 'k', issues: [] },
            images,
            { head: { weights: new Float32Array(4), bias: new Float32Array(2), labels: ['a', 'b'] }, summary: { totalImages: images.length } as never, predictions: images.map(prediction), maps: [] },
          );
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    } finally {
      batches = await writer.stop();
      store.close();
    }
    expect(batches).toBeGreaterThan(1);
    expect(failures).toEqual([]);
  }, 60_000);
});
