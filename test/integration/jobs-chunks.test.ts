/**
 * A long video split across workers: a 60 s clip (160x120, 10 fps, a keyframe every 2 s) submitted with
 * `--chunk-seconds 10` to two `camstream worker` processes over a real Redis. The six segments run in
 * parallel, the join job (a BullMQ flow parent) runs after them; the joined MP4 must have the input's
 * frame count, timestamps and duration, and the JSONL must match a single-process `camstream video` run.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeMedia, runFfmpeg, type FfmpegTools } from '../../pipelines/index.ts';
import { CamQueue, keyframeTimes, planChunks, redisConnection } from '../../pipelines/jobs/index.ts';
import { statusLine } from '../../cli/commands/jobs.ts';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { runCli } from '../helpers/cli.ts';
import { startCli, type CliProcess } from '../helpers/cli-process.ts';
import { haveRedis, startRedis, type TestRedis } from '../helpers/redis.ts';
import { childProcesses, waitGone } from '../helpers/processes.ts';
import { makeClip, readJsonLines, writeRandomOnnx } from './video-helpers.ts';

interface Line {
  index: number;
  pts: number;
  top: Array<{ index: number; score: number; box: number[] | null }>;
  cut: boolean;
}

let redis: TestRedis;
let tools: FfmpegTools;
let queue: CamQueue;
let dir: string;
let inRoot: string;
let outRoot: string;
let model: string;
let clip: string;
const workers: CliProcess[] = [];
/** The single-process run's JSONL (made by the split test, reused by the cold-start one). */
let singleJsonl: string | undefined;

/** Frames whose classes differ, the largest score difference and the largest box corner difference (px). */
function differences(a: Line[], b: Line[], only: (i: number) => boolean = () => true): { classes: number[]; worstScore: number; worstBox: number } {
  const classes: number[] = [];
  let worstScore = 0;
  let worstBox = 0;
  for (const [i, line] of a.entries()) {
    if (!only(i)) continue;
    if (line.top.map((t) => t.index).join() !== b[i].top.map((t) => t.index).join()) {
      classes.push(i);
      continue;
    }
    for (const [k, t] of line.top.entries()) {
      const u = b[i].top[k];
      worstScore = Math.max(worstScore, Math.abs(t.score - u.score));
      if ((t.box === null) !== (u.box === null)) worstBox = Infinity;
      else if (t.box && u.box) worstBox = Math.max(worstBox, ...t.box.map((v, j) => Math.abs(v - u.box![j])));
    }
  }
  return { classes, worstScore, worstBox };
}

const JOB_FLAGS = ['--top', '3', '--batch', '1', '--preset', 'ultrafast'];

/** Presentation times of every video frame, seconds. */
async function framePts(file: string): Promise<string[]> {
  // Seconds, not time-base units: a stream copy may pick another MP4 timescale (ffmpeg 5.1 does).
  const r = await runFfmpeg({ binary: tools.ffprobe!.path, kind: 'ffprobe', args: ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts_time', '-of', 'csv=p=0', file] });
  // csv prints a frame's side data (x264's SEI at the start of each encode) as extra fields and lines.
  return r.stdout
    .split('\n')
    .map((l) => l.split(',')[0])
    .filter((l) => l !== '');
}

beforeAll(async () => {
  if (!haveRedis) return;
  dir = await mkdtemp(join(tmpdir(), 'camstream-chunks-'));
  inRoot = join(dir, 'in');
  outRoot = join(dir, 'out');
  await mkdir(inRoot);
  await mkdir(outRoot);
  redis = await startRedis();
  tools = await testFfmpeg();
  queue = new CamQueue(redisConnection(redis.url));
  model = await writeRandomOnnx(dir, 7);
  clip = await makeClip(tools, inRoot, 'long.mp4', [
    '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10:duration=60',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-force_key_frames', 'expr:gte(t,n_forced*2)',
  ]);
  for (const name of ['wa', 'wb']) {
    workers.push(startCli(['worker', '--redis', redis.url, '--input-root', inRoot, '--out-root', outRoot, '--models', model, '--name', name, '--progress-ms', '200', '--lock-ms', '3000', '--stalled-ms', '1000']));
  }
  await Promise.all(workers.map((w) => w.waitFor(/ready/)));
}, 300_000);

afterAll(async () => {
  await queue?.close();
  await Promise.all(workers.map((w) => (w.child.kill('SIGKILL'), w.exited)));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!haveRedis)('long videos split across workers (jobs submit --chunk-seconds)', () => {
  it('plans segments on keyframes, at least chunkSeconds long', async () => {
    const keys = await keyframeTimes(clip, tools);
    expect(keys.slice(0, 4)).toEqual([0, 2, 4, 6]);
    expect(planChunks(keys, 10)).toEqual([0, 10, 20, 30, 40, 50].map((s) => ({ startSeconds: s, endSeconds: s === 50 ? null : s + 10 })));
    // Keyframes 3 s apart: a segment ends on the first keyframe at or after 10 s.
    expect(planChunks([0, 3, 6, 9, 12, 15, 18, 21], 10)).toEqual([
      { startSeconds: 0, endSeconds: 12 },
      { startSeconds: 12, endSeconds: null },
    ]);
    expect(() => planChunks(keys, 0)).toThrow(/chunk seconds must be a number > 0/);
  });

  it('runs a 60 s clip in 10 s chunks on two workers and joins it frame-exact, JSONL as a single run', async () => {
    const out = join(outRoot, 'split');
    await mkdir(out);
    const run = await runCli(['jobs', 'submit', clip, '--redis', redis.url, '--out', out, '--chunk-seconds', '10', '--json', ...JOB_FLAGS]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const { ids, chunks } = JSON.parse(run.stdout) as { ids: string[]; chunks: Record<string, string[]> };
    expect(ids).toHaveLength(1);
    expect(chunks[ids[0]]).toHaveLength(6);

    const status = await queue.waitUntilFinished(ids[0], 600_000);
    expect([status.state, status.error]).toEqual(['completed', null]);
    const parts = await queue.status(chunks[ids[0]]);
    expect(parts.map((p) => [p.state, p.parent])).toEqual(parts.map(() => ['completed', ids[0]]));
    // `jobs status` names each segment's join job.
    expect(parts.map((p) => statusLine(p).split('\t').slice(1, 3))).toEqual(parts.map(() => [`chunk of ${ids[0]}`, 'completed']));
    // The segments ran on both workers.
    expect(new Set(parts.map((p) => p.worker))).toEqual(new Set(['wa', 'wb']));

    const ref = join(dir, 'ref');
    await mkdir(ref, { recursive: true });
    const alone = await runCli(['video', clip, '-o', join(ref, 'ref.mp4'), '--json', join(ref, 'ref.jsonl'), '-m', model, ...JOB_FLAGS, '--quiet'], {}, 600_000);
    expect(alone.code).toBe(0);

    const [mp4, jsonl] = status.outputs;
    expect(mp4).toMatch(new RegExp(`long\\.${ids[0]}-[0-9a-f]{12}\\.cam\\.mp4$`));
    const [input, joined, single] = await Promise.all([clip, mp4, join(ref, 'ref.mp4')].map((f) => probeMedia(f, { tools, countFrames: 'always' })));
    expect(input.frameCount).toBe(600);
    expect(joined.frameCount).toBe(600);
    expect(joined.duration).toBeCloseTo(input.duration!, 2);
    // The input's own timestamps, frame for frame.
    expect(await framePts(mp4)).toEqual(await framePts(clip));
    expect(single.frameCount).toBe(600);

    const a = readJsonLines<Line>(jsonl);
    const b = readJsonLines<Line>(join(ref, 'ref.jsonl'));
    expect(a.map((l) => [l.index, l.pts])).toEqual(b.map((l) => [l.index, l.pts]));
    // After the warm-up each segment starts in the single run's smoothing state: same classes, same
    // scores within 1e-3, seams included.
    const d = differences(a, b);
    expect(d.classes).toEqual([]);
    expect(d.worstScore).toBeLessThan(1e-3);
    expect(d.worstBox).toBeLessThanOrEqual(1);
    // Nothing of the segments is left: only the outputs.
    expect((await readdir(out)).sort()).toEqual(status.outputs.map((f) => f.slice(out.length + 1)).sort());
    singleJsonl = join(ref, 'ref.jsonl');
  }, 900_000);

  it('without a warm-up the seams differ from a single run: the warm-up is what primes the smoothing', async () => {
    expect(singleJsonl).toBeDefined();
    const out = join(outRoot, 'cold');
    await mkdir(out);
    const run = await runCli(['jobs', 'submit', clip, '--redis', redis.url, '--out', out, '--chunk-seconds', '10', '--warmup-seconds', '0', '--json', ...JOB_FLAGS]);
    expect(run.code).toBe(0);
    const { ids } = JSON.parse(run.stdout) as { ids: string[] };
    const status = await queue.waitUntilFinished(ids[0], 600_000);
    expect(status.state).toBe('completed');
    const a = readJsonLines<Line>(status.outputs[1]);
    const b = readJsonLines<Line>(singleJsonl!);
    expect(a).toHaveLength(600);
    // Away from the seams (3 s after each) the smoothing has forgotten its start; at the seams it has not.
    const seams = [100, 200, 300, 400, 500];
    const far = (i: number): boolean => i < 100 || seams.every((s) => i < s || i >= s + 30);
    expect(differences(a, b, far).worstScore).toBeLessThan(1e-3);
    expect(differences(a, b, (i) => seams.includes(i)).worstScore).toBeGreaterThan(1e-3);
  }, 900_000);

  it('a worker stopped mid-segment (SIGTERM twice) ends its ffmpeg children; the segment is redone and the join is whole', async () => {
    const out = join(outRoot, 'stopped');
    await mkdir(out);
    const run = await runCli(['jobs', 'submit', clip, '--redis', redis.url, '--out', out, '--chunk-seconds', '10', '--json', ...JOB_FLAGS, '--backoff-ms', '100']);
    expect(run.code).toBe(0);
    const { ids, chunks } = JSON.parse(run.stdout) as { ids: string[]; chunks: Record<string, string[]> };
    const [victim] = workers;
    const running = await victim.waitFor(new RegExp(`job (${chunks[ids[0]].join('|')}): [1-9]\\d*/`), 300_000);
    const ffmpegs = childProcesses(victim.pid).filter((c) => c.comm.includes('ffmpeg'));
    expect(ffmpegs.length).toBeGreaterThan(0);
    victim.child.kill('SIGTERM');
    await victim.waitFor(/finishing current jobs/);
    victim.child.kill('SIGTERM');
    expect(await victim.exited).toBe(0);
    for (const c of ffmpegs) expect(await waitGone(c.pid)).toBe(true);

    const status = await queue.waitUntilFinished(ids[0], 600_000);
    expect([status.state, status.error]).toEqual(['completed', null]);
    const [stopped] = await queue.status([running[1]]);
    expect(stopped.state).toBe('completed');
    // Redone by the other worker (retried, or taken over at the stalled-job check).
    expect(stopped.worker).toBe('wb');
    const joined = await probeMedia(status.outputs[0], { tools, countFrames: 'always' });
    expect(joined.frameCount).toBe(600);
    expect(readJsonLines<Line>(status.outputs[1]).map((l) => l.index)).toEqual(Array.from({ length: 600 }, (_, i) => i));
    expect((await readdir(out)).sort()).toEqual(status.outputs.map((f) => f.slice(out.length + 1)).sort());
  }, 900_000);
});
