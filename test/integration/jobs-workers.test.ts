/**
 * Jobs on BullMQ workers over a real Redis: two `camstream worker` processes spawned through the CLI, jobs
 * submitted with `camstream jobs submit`, real ffmpeg on generated clips (and fixture clips and photos when
 * present). What a queue must survive: a worker killed with SIGKILL mid-job, Redis restarted mid-run, a
 * worker asked to stop with SIGTERM; what it must refuse: corrupt input (no retry) and paths outside the roots.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeMedia, runFfmpeg, type FfmpegTools } from '../../pipelines/index.ts';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { CamQueue, redisConnection, type CamJobStatus } from '../../pipelines/jobs/index.ts';
import { runCli } from '../helpers/cli.ts';
import { startCli, type CliProcess } from '../helpers/cli-process.ts';
import { fixture, fixturesPresent } from '../helpers/fixtures.ts';
import { alive, childProcesses, waitGone } from '../helpers/processes.ts';
import { haveRedis, startRedis, type TestRedis } from '../helpers/redis.ts';
import { makeClip, writeRandomOnnx } from './video-helpers.ts';

let redis: TestRedis;
let tools: FfmpegTools;
let queue: CamQueue;
let dir: string;
let inRoot: string;
let outRoot: string;
let model: string;
/** Five short videos of different sizes, rates and audio, one of them a fixture clip when present. */
let clips: string[];
let images: string[];
/** 20 s, 320x240, 25 fps: long enough to be interrupted mid-job. */
let longClip: string;
const workers = new Map<string, CliProcess>();

const JOB_FLAGS = ['--top', '3', '--batch', '1', '--preset', 'ultrafast'];

function startWorker(name: string): CliProcess {
  const w = startCli(['worker', '--redis', redis.url, '--input-root', inRoot, '--out-root', outRoot, '--models', model, '--name', name, '--lock-ms', '3000', '--stalled-ms', '1000', '--progress-ms', '200']);
  workers.set(name, w);
  return w;
}

async function submit(inputs: string[], out: string, extra: string[] = []): Promise<string[]> {
  const run = await runCli(['jobs', 'submit', ...inputs, '--redis', redis.url, '--out', out, '--json', ...JOB_FLAGS, ...extra]);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return (JSON.parse(run.stdout) as { ids: string[] }).ids;
}

async function finished(ids: string[]): Promise<CamJobStatus[]> {
  return Promise.all(ids.map((id) => queue.waitUntilFinished(id, 300_000)));
}

/** Presentation timestamps of every video frame, in the stream's time base. */
async function framePts(file: string): Promise<string[]> {
  const r = await runFfmpeg({ binary: tools.ffprobe!.path, kind: 'ffprobe', args: ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts', '-of', 'csv=p=0', file] });
  return r.stdout.trim().split('\n');
}

/** Every file name under `root`, hidden ones included, relative. */
async function allFiles(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String).sort();
}

/** The first worker whose log shows `jobId` making progress. */
async function workerRunning(jobId: string): Promise<[string, CliProcess]> {
  const re = new RegExp(`job ${jobId}: [1-9]\\d*/`);
  return Promise.race([...workers].map(async ([name, w]) => (await w.waitFor(re), [name, w] as [string, CliProcess])));
}

beforeAll(async () => {
  if (!haveRedis) return;
  dir = await mkdtemp(join(tmpdir(), 'camstream-jobs-'));
  inRoot = join(dir, 'in');
  outRoot = join(dir, 'out');
  await mkdir(inRoot);
  await mkdir(outRoot);
  redis = await startRedis({ appendOnly: true });
  tools = await testFfmpeg();
  queue = new CamQueue(redisConnection(redis.url));
  model = await writeRandomOnnx(dir, 5);
  const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];
  clips = [
    await makeClip(tools, inRoot, 'a.mp4', ['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25:duration=2', ...x264]),
    await makeClip(tools, inRoot, 'b.mp4', ['-f', 'lavfi', '-i', 'mandelbrot=size=192x144:rate=30', '-t', '1.5', ...x264]),
    await makeClip(tools, inRoot, 'c.mp4', ['-f', 'lavfi', '-i', 'testsrc=size=176x144:rate=24000/1001:duration=2', ...x264]),
    await makeClip(tools, inRoot, 'd.mp4', ['-f', 'lavfi', '-i', 'testsrc2=size=128x96:rate=25:duration=2', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-shortest', ...x264, '-c:a', 'aac']),
  ];
  if (fixturesPresent) {
    const motion = join(inRoot, 'motion.mov');
    await copyFile(fixture('video', 'node-opencv_motion.mov'), motion);
    clips.push(motion);
    images = [];
    for (const name of ['darknet_dog.jpg', 'opencv_apple.jpg', 'opencv_basketball1.png']) {
      await copyFile(fixture('images', name), join(inRoot, name));
      images.push(join(inRoot, name));
    }
  } else {
    clips.push(await makeClip(tools, inRoot, 'e.mp4', ['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=15:duration=3', ...x264]));
    images = [await makeClip(tools, inRoot, 'p1.png', ['-f', 'lavfi', '-i', 'testsrc2=size=200x150', '-frames:v', '1'])];
  }
  longClip = await makeClip(tools, inRoot, 'long.mp4', ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=20', ...x264]);
  startWorker('wa');
  startWorker('wb');
  await Promise.all([...workers.values()].map((w) => w.waitFor(/ready/)));
}, 300_000);

afterAll(async () => {
  await queue?.close();
  await Promise.all([...workers.values()].map((w) => (w.child.kill('SIGKILL'), w.exited)));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!haveRedis)('camstream worker and jobs', () => {
  it('runs six jobs on two workers, with outputs frame-exact and JSONL identical to camstream video alone', async () => {
    const out = join(outRoot, 'six');
    await mkdir(out);
    const ids = await submit([...clips, ...images], out);
    expect(ids).toHaveLength(6);
    const statuses = await finished(ids);
    expect(statuses.map((s) => [s.state, s.attempts, s.error])).toEqual(ids.map(() => ['completed', 1, null]));
    expect(new Set(statuses.map((s) => s.worker))).toEqual(new Set(['wa', 'wb']));

    const ref = join(dir, 'ref');
    await mkdir(ref, { recursive: true });
    for (const [i, clip] of clips.entries()) {
      const [mp4, jsonl] = statuses[i].outputs;
      expect(mp4).toMatch(new RegExp(`\\.${ids[i]}-[0-9a-f]{12}\\.cam\\.mp4$`));
      const alone = await runCli(['video', clip, '-o', join(ref, `${i}.mp4`), '--json', join(ref, `${i}.jsonl`), '-m', model, ...JOB_FLAGS, '--quiet']);
      expect(alone.code).toBe(0);
      const [job, single] = await Promise.all([mp4, join(ref, `${i}.mp4`)].map((f) => probeMedia(f, { tools, countFrames: 'always' })));
      expect(job.frameCount).toBe(single.frameCount);
      expect(await framePts(mp4)).toEqual(await framePts(join(ref, `${i}.mp4`)));
      expect(await readFile(jsonl, 'utf8')).toBe(await readFile(join(ref, `${i}.jsonl`), 'utf8'));
    }

    const [folder] = statuses[5].outputs;
    const records = (await readFile(join(folder, 'records.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const alone = await runCli(['image', ...images, '-m', model, '--top', '3', '--json', '--quiet']);
    expect(alone.code).toBe(0);
    const single = JSON.parse(alone.stdout) as Array<{ top: Array<{ index: number; score: number }> }>;
    expect(records.map((r) => r.top.map((t: { index: number }) => t.index))).toEqual(single.map((r) => r.top.map((t) => t.index)));
    expect((await readdir(folder)).filter((f) => f.includes('.cam.'))).toHaveLength(images.length);
    expect((await allFiles(out)).filter((f) => f.startsWith('.') || f.includes('.tmp'))).toEqual([]);
  }, 600_000);

  it('fails a corrupt input once, with ffmpeg\'s words, and does not retry it', async () => {
    const out = join(outRoot, 'corrupt');
    await mkdir(out);
    const corrupt = join(inRoot, 'broken.mov');
    await writeFile(corrupt, Buffer.from(Array.from({ length: 40_000 }, (_, i) => (i * 2246822519 + 7) >>> 24)));
    const [status] = await finished(await submit([corrupt], out, ['--attempts', '3', '--backoff-ms', '100']));
    expect(status.state).toBe('failed');
    expect(status.attempts).toBe(1);
    expect(status.error).toMatch(/broken\.mov.*(Invalid data found when processing input|moov atom not found)/);
    expect(await allFiles(out)).toEqual([]);
  }, 120_000);

  it('refuses inputs and output folders outside the worker\'s roots, symlinks included, without retrying', async () => {
    const out = join(outRoot, 'refused');
    await mkdir(out);
    const secret = join(dir, 'secret.mp4');
    await copyFile(clips[0], secret);
    await symlink(secret, join(inRoot, 'link.mp4'));
    const ids = [
      ...(await submit([secret], out)),
      ...(await submit([join(inRoot, 'link.mp4')], out)),
      ...(await submit([clips[0]], dir)),
    ];
    const statuses = await finished(ids);
    expect(statuses.map((s) => [s.state, s.attempts])).toEqual(ids.map(() => ['failed', 1]));
    expect(statuses[0].error).toMatch(/secret\.mp4' is outside the worker's root/);
    expect(statuses[1].error).toMatch(/link\.mp4' leads outside the worker's root .*symlink/);
    expect(statuses[2].error).toMatch(/output folder .* is outside the worker's root/);
    expect(await allFiles(out)).toEqual([]);
  }, 120_000);

  it('finishes a job on the other worker after kill -9 of the one running it: one whole output, no temp file', async () => {
    const out = join(outRoot, 'killed');
    await mkdir(out);
    const [id] = await submit([longClip], out);
    const [victimName, victim] = await workerRunning(id);
    const orphans = childProcesses(victim.pid).map((c) => c.pid);
    victim.child.kill('SIGKILL');
    await victim.exited;
    workers.delete(victimName);
    const status = await queue.waitUntilFinished(id, 300_000);
    expect(status.state).toBe('completed');
    expect(status.worker).not.toBe(victimName);
    for (const pid of orphans) expect(await waitGone(pid)).toBe(true);
    const input = await probeMedia(longClip, { tools, countFrames: 'always' });
    const output = await probeMedia(status.outputs[0], { tools, countFrames: 'always' });
    expect(output.frameCount).toBe(input.frameCount);
    expect(await allFiles(out)).toEqual(status.outputs.map((f) => f.slice(out.length + 1)).sort());
    await startWorker(`${victimName}2`).waitFor(/ready/);
  }, 600_000);

  it('keeps going through a Redis restart: the workers reconnect and the job completes', async () => {
    const out = join(outRoot, 'restart');
    await mkdir(out);
    const [id] = await submit([longClip], out);
    await workerRunning(id);
    const before = redis.pid;
    await redis.restart();
    expect(redis.pid).not.toBe(before);
    const status = await queue.waitUntilFinished(id, 300_000);
    expect(status.state).toBe('completed');
    const output = await probeMedia(status.outputs[0], { tools, countFrames: 'always' });
    expect(output.frameCount).toBe(500);
    expect([...workers.values()].every((w) => alive(w.pid))).toBe(true);
    expect((await allFiles(out)).filter((f) => f.startsWith('.'))).toEqual([]);
  }, 600_000);

  it('finishes its current job on SIGTERM, then exits 0', async () => {
    const out = join(outRoot, 'sigterm');
    await mkdir(out);
    const [id] = await submit([longClip], out);
    const [name, worker] = await workerRunning(id);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    workers.delete(name);
    const status = await queue.waitUntilFinished(id, 60_000);
    expect([status.state, status.worker, status.attempts]).toEqual(['completed', name, 1]);
    expect(worker.stderr()).toMatch(new RegExp(`job ${id}: done`));
  }, 600_000);

  it('stops its current job on a second SIGTERM sent right after the first is acknowledged, exits 0, and the job is redone elsewhere', async () => {
    startWorker('wc');
    await workers.get('wc')!.waitFor(/ready/);
    const out = join(outRoot, 'sigterm-twice');
    await mkdir(out);
    const [id] = await submit([longClip], out);
    const [name, worker] = await workerRunning(id);
    // The second as soon as the first is acknowledged: the worker must already listen again (it once
    // logged before it did, and a signal in that gap killed it by the default action).
    worker.child.kill('SIGTERM');
    await worker.waitFor(/finishing current jobs/);
    worker.child.kill('SIGTERM');
    expect(await worker.exited, worker.stderr()).toBe(0);
    workers.delete(name);
    expect(worker.stderr()).toMatch(/stopping current jobs; they will be retried/);
    expect(worker.stderr()).not.toMatch(new RegExp(`job ${id}: done`));
    const status = await queue.waitUntilFinished(id, 300_000);
    expect(status.state).toBe('completed');
    expect(status.worker).not.toBe(name);
  }, 600_000);
});
