/**
 * `--int8` on `video` and `serve` (cli/model.ts, cli/int8.ts) with the real Darknet Tiny fixture converted
 * to ONNX: the first run quantizes on frames of its input (video) or of --int8-calibrate (serve) and caches
 * the int8 model; later runs reuse it without quantizing; the method is part of the cache key; a TF.js
 * model and a first serve run with nothing to calibrate on are refused with a clear message. Real ffmpeg
 * (FFMPEG_PATH / FFPROBE_PATH), real CLI processes. Skipped with a message without the fixtures.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FfmpegTools } from '../../pipelines/index.ts';
import { runCli } from '../helpers/cli.ts';
import { startCli } from '../helpers/cli-process.ts';
import { ffmpegEnv, testFfmpeg } from '../helpers/ffmpeg.ts';
import { DARKNET_TINY, fixture, fixturesPresent } from '../helpers/fixtures.ts';
import { makeClip, readJsonLines } from './video-helpers.ts';

let dir: string;
let tools: FfmpegTools;
let env: Record<string, string>;
let clip: string;
let onnx: string;
const cache = (): string => join(dir, 'cache');
const entries = (): string[] => (existsSync(join(cache(), 'int8')) ? readdirSync(join(cache(), 'int8')).sort() : []);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-video-int8-'));
  if (!fixturesPresent) return;
  tools = await testFfmpeg();
  env = { ...ffmpegEnv(tools), CAMSTREAM_CACHE: cache() };
  // 16 frames of the fixture's street scene, small, so calibration and the runs take seconds.
  clip = await makeClip(tools, dir, 'motion.mp4', [
    '-i', fixture('video', 'node-opencv_motion.mov'), '-frames:v', '16', '-an', '-vf', 'scale=160:-2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
  ]);
  onnx = join(dir, 'darknet.onnx');
  const converted = await runCli(['convert', DARKNET_TINY, '-o', onnx]);
  if (converted.code !== 0) throw new Error(`convert failed: ${converted.stderr}`);
}, 600_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The classes of each JSONL line, best first. */
const classes = (f: string): number[][] => readJsonLines<{ top: Array<{ index: number }> }>(join(dir, f)).map((l) => l.top.map((t) => t.index));

/** The pid of a process that has exited: its leftovers are stale. */
function deadPid(): Promise<number> {
  return new Promise((resolveDead, reject) => {
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', () => resolveDead(child.pid!));
  });
}

describe.skipIf(!fixturesPresent)('--int8 on video and serve', () => {
  it('video quantizes on frames of its input on first use, then reuses the cached model', async () => {
    // A half-built entry of a run that was killed: removed when the next entry is built.
    const stale = join(cache(), 'int8', `0123456789abcdef-minmax.part-${await deadPid()}-00c0ffee`);
    mkdirSync(stale, { recursive: true });
    const args = (out: string) => ['video', clip, '-o', join(dir, out), '--json', join(dir, `${out}.jsonl`), '--model', onnx, '--int8', '--int8-method', 'minmax', '--threads', '1', '-k', '3', '--no-manifest'];
    const first = await runCli(args('first.mp4'), env, 600_000);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/int8 model cached at .*int8.*-minmax.model\.int8\.onnx; fidelity on 4 held-out frames/);
    // What runs is the cached int8 model (the start-up line names it).
    expect(first.stderr).toMatch(/camstream: \S+-minmax.model\.int8\.onnx: onnx\/cpu/);
    expect(existsSync(stale)).toBe(false);
    expect(entries()).toHaveLength(1);
    expect(entries()[0]).toMatch(/^[0-9a-f]{16}-minmax$/);
    const second = await runCli(args('second.mp4'), env, 600_000);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).not.toMatch(/cached at|calibrating/);
    expect(second.stderr).toMatch(/int8: reusing \S+-minmax.model\.int8\.onnx/);
    expect(entries()).toHaveLength(1);
    // What the first run warned about its int8 form (slower, or answers that differ), the reuse repeats
    // from the report stored beside the cached model.
    const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('camstream: warning: int8'));
    expect(warnings(second.stderr)).toEqual(warnings(first.stderr));
    // Same int8 model, same frames: the same classes frame by frame.
    const firstClasses = classes('first.mp4.jsonl');
    expect(firstClasses).toHaveLength(16);
    expect(classes('second.mp4.jsonl')).toEqual(firstClasses);
  }, 900_000);

  it('video runs the int8 model as one 1-thread session per core by default, with the same answers', async () => {
    const cores = availableParallelism();
    const args = (out: string) => ['video', clip, '-o', join(dir, out), '--json', join(dir, `${out}.jsonl`), '--model', onnx, '--int8', '--int8-method', 'minmax', '-k', '3', '--no-manifest'];
    const pooled = await runCli(args('pooled.mp4'), env, 600_000);
    expect(pooled.code, pooled.stderr).toBe(0);
    expect(pooled.stderr).toMatch(cores > 1 ? new RegExp(`\\.onnx: onnx/cpu, ${cores} workers x 1 thread, `) : /\.onnx: onnx\/cpu, 1 thread, /);
    const two = await runCli([...args('two.mp4'), '--workers', '2'], env, 600_000);
    expect(two.code, two.stderr).toBe(0);
    expect(two.stderr).toMatch(new RegExp(`\\.onnx: onnx/cpu, 2 workers x ${Math.max(1, Math.floor(cores / 2))} thread`));
    const single = await runCli([...args('single.mp4'), '--threads', '1'], env, 600_000);
    expect(single.stderr).toMatch(/\.onnx: onnx\/cpu, 1 thread, /);
    // Sessions in workers see the same frames in the same order out: every line's classes and scores agree.
    const scores = (f: string) => readJsonLines<{ index: number; top: Array<{ index: number; score: number }> }>(join(dir, f)).map((l) => [l.index, ...l.top.flatMap((t) => [t.index, Number(t.score.toFixed(4))])]);
    expect(scores('pooled.mp4.jsonl')).toHaveLength(16);
    expect(scores('pooled.mp4.jsonl')).toEqual(scores('single.mp4.jsonl'));
    expect(scores('two.mp4.jsonl')).toEqual(scores('single.mp4.jsonl'));
  }, 900_000);

  it('serve with nothing cached and nothing to calibrate on says what to pass', async () => {
    const run = await runCli(['serve', '--port', '0', '--model', onnx, '--int8', '--threads', '1'], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--int8: no quantized form of .*darknet\.onnx is cached yet .*pass --int8-calibrate/);
    expect(entries().some((e) => e.endsWith('-mse'))).toBe(false);
  });

  it('serve calibrates on --int8-calibrate; another method is another cache entry; the cached one needs no calibration set', async () => {
    const server = startCli(['serve', '--port', '0', '--model', onnx, '--int8', '--int8-method', 'percentile', '--int8-calibrate', clip, '--threads', '1'], env);
    // The review line comes last, after which serve handles SIGTERM.
    await server.waitFor(/camstream serve: review http\S+\n/, 600_000);
    expect(server.stderr()).toMatch(/int8 model cached at \S+-percentile.model\.int8\.onnx/);
    expect(server.stderr()).toMatch(/camstream: \S+-percentile.model\.int8\.onnx: onnx\/cpu/);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(143);
    const keys = entries();
    expect(keys).toHaveLength(2);
    // Same model bytes, another method: the hash part is shared, the method part differs.
    expect(new Set(keys.map((k) => k.split('-')[0])).size).toBe(1);
    expect(keys.map((k) => k.split('-')[1]).sort()).toEqual(['minmax', 'percentile']);

    // What `video` cached (minmax) is reused by serve without any calibration set.
    const again = startCli(['serve', '--port', '0', '--model', onnx, '--int8', '--int8-method', 'minmax', '--threads', '1'], env);
    await again.waitFor(/camstream serve: review http\S+\n/, 600_000);
    expect(again.stderr()).toMatch(/int8: reusing \S+-minmax.model\.int8\.onnx/);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(143);
  }, 900_000);

  it('refuses a TF.js model, naming camstream convert', async () => {
    const run = await runCli(['video', clip, '-o', join(dir, 'tfjs.mp4'), '--model', DARKNET_TINY, '--int8'], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--int8 needs an ONNX model and .*darknet_tiny_ml5 is TF\.js: run 'camstream convert/);
    expect(existsSync(join(dir, 'tfjs.mp4'))).toBe(false);
  });

  it('refuses --int8-calibrate without --int8', async () => {
    const run = await runCli(['video', clip, '-o', join(dir, 'plain.mp4'), '--model', onnx, '--int8-calibrate', clip], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--int8-calibrate is only used with --int8/);
  });
});
