/**
 * `camstream jobs status / cancel / retry` against a real Redis, with an in-process worker, and the test
 * Redis helper's own teardown.
 */
import { connect } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load, type CamModel } from '../../models/index.ts';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { CamQueue, redisConnection, startCamWorker, type CamJobStatus, type CamWorker } from '../../pipelines/jobs/index.ts';
import { runCli } from '../helpers/cli.ts';
import { waitGone } from '../helpers/processes.ts';
import { haveRedis, startRedis, type TestRedis } from '../helpers/redis.ts';
import { makeClip, writeRandomOnnx } from './video-helpers.ts';

let redis: TestRedis;
let dir: string;
let queue: CamQueue;
let model: CamModel;
let worker: CamWorker | undefined;
/** Set to make the next engine call throw a plain Error (a transient failure, not bad input). */
let failNextInfer = false;

/** The model, with an engine call that can be made to fail once. */
function flaky(inner: CamModel): CamModel {
  return {
    info: inner.info,
    head: () => inner.head(),
    withHead: (h) => inner.withHead(h),
    dispose: () => inner.dispose(),
    infer: (frames, options) => {
      if (!failNextInfer) return inner.infer(frames, options);
      failNextInfer = false;
      return Promise.reject(new Error('engine hiccup'));
    },
  };
}

beforeAll(async () => {
  if (!haveRedis) return;
  dir = await mkdtemp(join(tmpdir(), 'camstream-jobs-queue-'));
  await mkdir(join(dir, 'in'));
  await mkdir(join(dir, 'out'));
  redis = await startRedis();
  queue = new CamQueue(redisConnection(redis.url));
  model = await load(await writeRandomOnnx(dir, 3));
}, 120_000);

afterAll(async () => {
  await worker?.close(true);
  await queue?.close();
  await model?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number | null; json: unknown }> {
  const run = await runCli(['jobs', ...args, '--redis', redis.url, '--json']);
  expect(run.stderr).toBe('');
  return { code: run.code, json: JSON.parse(run.stdout) };
}

describe.skipIf(!haveRedis)('camstream jobs', () => {
  it('cancels a job no worker has taken, and reports unknown ids', async () => {
    const { json } = await cli(['submit', join(dir, 'in', 'x.mp4'), '--out', join(dir, 'out')]);
    const [id] = (json as { ids: string[] }).ids;
    const before = (await cli(['status', id])).json as CamJobStatus[];
    expect(before.map((s) => [s.id, s.state, s.kind, s.attempts])).toEqual([[id, 'waiting', 'video', 0]]);
    const cancel = await cli(['cancel', id, '999']);
    expect(cancel.code).toBe(1);
    expect(cancel.json).toEqual([
      { id, ok: true, note: 'removed (was waiting)' },
      { id: '999', ok: false, note: 'no such job' },
    ]);
    expect(((await cli(['status', id])).json as CamJobStatus[])[0].state).toBe('unknown');
  }, 120_000);

  it('retries a failed job: it runs again and fails again with its error kept', async () => {
    const { json } = await cli(['submit', join(dir, 'missing.mp4'), '--out', join(dir, 'out')]);
    const [id] = (json as { ids: string[] }).ids;
    worker = await startCamWorker(redisConnection(redis.url), {
      inputRoot: join(dir, 'in'),
      outRoot: join(dir, 'out'),
      models: new Map([['random', flaky(model)]]),
      tools: await testFfmpeg(),
      name: 'in-process',
    });
    const first = await queue.waitUntilFinished(id, 60_000);
    expect([first.state, first.attempts, first.worker]).toEqual(['failed', 1, 'in-process']);
    expect(first.error).toMatch(/missing\.mp4' is outside the worker's root/);
    const retry = await cli(['retry', id]);
    expect(retry).toEqual({ code: 0, json: [{ id, ok: true, note: 'queued again (was failed)' }] });
    const second = await queue.waitUntilFinished(id, 60_000);
    expect([second.state, second.attempts]).toEqual(['failed', 1]);
    expect(second.error).toBe(first.error);
    expect(await queue.counts()).toMatchObject({ failed: 1, waiting: 0, active: 0 });
  }, 120_000);
  it('refuses a playlist under the input root that names a file outside it, without retrying', async () => {
    const clip = await makeClip(await testFfmpeg(), dir, 'outside.mp4', ['-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=25:duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p']);
    const playlist = join(dir, 'in', 'playlist.m3u8');
    await writeFile(playlist, `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n${clip}\n#EXT-X-ENDLIST\n`);
    const { json } = await cli(['submit', playlist, '--out', join(dir, 'out'), '--attempts', '3', '--backoff-ms', '100']);
    const [id] = (json as { ids: string[] }).ids;
    const status = await queue.waitUntilFinished(id, 60_000);
    expect([status.state, status.attempts]).toEqual(['failed', 1]);
    expect(status.error).toMatch(/playlist\.m3u8 is a hls file \(a playlist or list of other files\), refused/);
  }, 120_000);

  it('retries a transient failure after its backoff, and the retry completes', async () => {
    const clip = await makeClip(await testFfmpeg(), join(dir, 'in'), 'ok.mp4', ['-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=25:duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p']);
    failNextInfer = true;
    const { json } = await cli(['submit', clip, '--out', join(dir, 'out'), '--batch', '1', '--preset', 'ultrafast', '--attempts', '3', '--backoff-ms', '1500']);
    const [id] = (json as { ids: string[] }).ids;
    const status = await queue.waitUntilFinished(id, 120_000);
    expect([status.state, status.attempts, status.error, failNextInfer]).toEqual(['completed', 2, 'engine hiccup', false]);
    expect(status.finishedAt! - status.createdAt).toBeGreaterThanOrEqual(1500);
    expect(status.outputs).toHaveLength(3);
    const watch = await runCli(['jobs', 'status', id, '--watch', '--redis', redis.url]);
    expect(watch.code).toBe(0);
    expect(watch.stdout).toBe(`${id}\tvideo\tcompleted\t25/25\tin-process\tattempts 2\terror: engine hiccup\n`);
  }, 120_000);
});

describe.skipIf(!haveRedis)('the test Redis helper', () => {
  it('stops its server: the process is gone and the port refuses connections', async () => {
    const extra = await startRedis();
    const pid = extra.pid!;
    await extra.stop();
    expect(await waitGone(pid)).toBe(true);
    const refused = await new Promise<string>((done) => {
      const socket = connect(extra.port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), done('connected')));
      socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});
