/**
 * `camstream video`'s start-up breakdown (issue 16): one line on stderr, before the summary, saying what the
 * run cost before its first frame (process and modules, model load, ffmpeg located alongside, probe + batch
 * choice + first frame); none with -q. A real CLI process, real ffmpeg, a random ONNX model from disk.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { ffmpegEnv, testFfmpeg } from '../helpers/ffmpeg.ts';
import type { FfmpegTools } from '../../pipelines/index.ts';
import { makeClip, writeRandomOnnx } from './video-helpers.ts';

let dir: string;
let tools: FfmpegTools;
let model: string;
let clip: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-video-startup-'));
  tools = await testFfmpeg();
  model = await writeRandomOnnx(dir, 9);
  clip = await makeClip(tools, dir, 'clip.mp4', ['-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=10:duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p']);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const STARTUP =
  /^camstream: start-up (\d+\.\d) s: process and modules (\d+\.\d) s, model load (\d+\.\d) s \(engine, weights, warm-up; ffmpeg located alongside in (\d+\.\d) s\), probe \+ batch choice \+ first frame (\d+\.\d) s$/m;

describe('camstream video start-up', () => {
  it('prints one start-up line whose parts add up, before the summary on stdout', async () => {
    const run = await runCli(['video', clip, '-o', join(dir, 'out.mp4'), '-m', model, '--preset', 'ultrafast', '--no-manifest'], ffmpegEnv(tools));
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stderr.split('\n').filter((l) => l.includes('start-up'));
    expect(lines).toHaveLength(1);
    const m = STARTUP.exec(run.stderr);
    expect(m, run.stderr).not.toBeNull();
    const [total, processS, modelS, ffmpegS, pipelineS] = m!.slice(1).map(Number);
    // Model load and locating ffmpeg overlap: the total counts the longer of the two.
    expect(total).toBeCloseTo(processS + Math.max(modelS, ffmpegS) + pipelineS, 0);
    expect(processS).toBeGreaterThan(0);
    expect(pipelineS).toBeGreaterThan(0);
    expect(run.stdout).toMatch(/10 frames \(10 inferred\)/);
  });

  it('prints no start-up line with -q', async () => {
    const run = await runCli(['video', clip, '-o', join(dir, 'quiet.mp4'), '-m', model, '--preset', 'ultrafast', '--no-manifest', '-q'], ffmpegEnv(tools));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
  });
});
