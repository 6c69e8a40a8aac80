/**
 * InferPool: a tfjs wasm model in worker threads (one wasm instance each). Real workers, real weights:
 * results equal the same model run in this thread, in order, through the pipeline's inferCams with several
 * batches in flight; teardown ends the workers and leaves no tensor behind in any of them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { from, lastValueFrom, toArray } from 'rxjs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load, type CamModel, type Frame } from '../../models/index.ts';
import { createRandom } from '../../lab/builders/index.ts';
import { openInferPool, type InferPool } from '../../models/index.ts';
import { inferCams } from '../../pipelines/index.ts';
import { writeRandomLayers } from './video-helpers.ts';

function frames(n: number): Frame[] {
  const r = createRandom(11);
  return Array.from({ length: n }, () => {
    const data = new Uint8Array(32 * 24 * 3);
    for (let i = 0; i < data.length; i++) data[i] = r.int(256);
    return { data, width: 32, height: 24 };
  });
}

describe('InferPool (tfjs wasm in worker threads)', () => {
  let dir: string;
  let folder: string;
  let local: CamModel;
  let pool: InferPool | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'camstream-pool-'));
    // Writing the model builds its weights on a backend; the models then load on wasm like a user's.
    await tf.setBackend('cpu');
    folder = await writeRandomLayers(dir);
    local = await load(folder, { engine: 'tfjs', backend: 'wasm' });
  }, 60_000);

  afterAll(async () => {
    await pool?.dispose();
    await local?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('gives the results of the same model in this thread, in frame order, through inferCams with batches in flight', async () => {
    pool = await openInferPool(folder, { workers: 2, load: { engine: 'tfjs', backend: 'wasm' } });
    expect(pool.parallelism).toBe(2);
    expect(pool.info).toMatchObject({ parallelism: 2, runsOnJsThread: false, runtime: local.info.runtime });
    expect(pool.info.numClasses).toBe(local.info.numClasses);
    const input = frames(13);
    const expected = await local.infer(input, { topK: 3 });
    const out = await lastValueFrom(
      from(input.map((pixels, index) => ({ index, pixels, ms: {} }))).pipe(inferCams(pool, { topK: 3, batchFrames: 2 }), toArray()),
    );
    expect(out.map((f) => f.index)).toEqual(input.map((_, i) => i));
    out.forEach((f, i) => {
      expect(Array.from(f.result.ids)).toEqual(Array.from(expected[i].ids));
      expect(Array.from(f.result.maps)).toEqual(Array.from(expected[i].maps).map((v) => expect.closeTo(v, 5)) as unknown as number[]);
    });
  }, 60_000);

  it('leaves no tensor in any worker and ends its workers on dispose; a disposed pool refuses work', async () => {
    const p = pool ?? (await openInferPool(folder, { workers: 2, load: { engine: 'tfjs', backend: 'wasm' } }));
    const steady = await p.tensorCounts();
    await Promise.all(Array.from({ length: 6 }, () => p.infer(frames(2), { topK: 2 })));
    expect(await p.tensorCounts()).toEqual(steady);
    const workers = (p as unknown as { slots: Array<{ worker: { threadId: number } }> }).slots.map((s) => s.worker);
    await p.dispose();
    pool = undefined;
    // A terminated Worker reports threadId -1.
    expect(workers.map((w) => w.threadId)).toEqual([-1, -1]);
    await expect(p.infer(frames(1))).rejects.toThrow(/disposed/);
  }, 60_000);

  it('rejects a bad worker count before starting any thread', async () => {
    await expect(openInferPool(folder, { workers: 0 })).rejects.toThrow(/workers must be an integer in \[1, 16\], got 0/);
  });
});
