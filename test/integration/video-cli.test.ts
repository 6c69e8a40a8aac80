/**
 * `camstream video` as a user runs it: a real CLI process, real ffmpeg, a random ONNX model from disk.
 * Exit statuses, messages, outputs, and Ctrl-C (SIGINT) mid-run.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { probeMedia, type FfmpegTools } from '../../pipelines/index.ts';
import { runCli } from '../helpers/cli.ts';
import { ROOT } from '../helpers/fixtures.ts';
import { childProcesses, makeClip, readJsonLines, waitGone, writeRandomOnnx } from './video-helpers.ts';

let dir: string;
let tools: FfmpegTools;
let model: string;
/** 2 s, 160x120, 25 fps. */
let shortClip: string;
/** 40 s, 640x360, 25 fps: long enough to be interrupted mid-run. */
let longClip: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-video-cli-'));
  tools = await testFfmpeg();
  model = await writeRandomOnnx(dir, 5);
  shortClip = await makeClip(tools, dir, 'short.mp4', [
    '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25:duration=2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
  ]);
  longClip = await makeClip(tools, dir, 'long.mp4', [
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=40', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
  ]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fresh(name: string): Promise<string> {
  const d = join(dir, name);
  await rm(d, { recursive: true, force: true });
  await mkdir(d);
  return d;
}

describe('camstream video', () => {
  it('writes the MP4, the JSONL and the manifest, and prints the flicker figure', async () => {
    const d = await fresh('ok');
    const out = join(d, 'out.mp4');
    const run = await runCli(['video', shortClip, '-o', out, '--json', join(d, 'f.jsonl'), '-m', model, '--top', '3', '--smooth', '0.5', '--preset', 'ultrafast', '--quiet']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/50 frames \(50 inferred\)/);
    expect(run.stdout).toMatch(/flicker \d\.\d{4}/);
    const info = await probeMedia(out, { tools, countFrames: 'always' });
    expect(info.frameCount).toBe(50);
    const lines = readJsonLines<{ index: number; pts: number; top: Array<{ index: number; label: string; score: number; box: number[] | null }> }>(join(d, 'f.jsonl'));
    expect(lines.length).toBe(50);
    expect(lines[3].top.length).toBe(3);
    expect(Object.keys(lines[3]).slice(0, 3)).toEqual(['index', 'pts', 'top']);
    const manifest = JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8'));
    expect(manifest.smoothing.pastWeight).toBe(0.5);
    expect(manifest.thresholds).toEqual({ boxRule: 'paper', threshold: 0.2 });
    expect(manifest.model).toMatchObject({ engine: 'onnx', backend: 'cpu' });
    expect(manifest.versions.ffmpeg).toBe(tools.ffmpeg.version);
    expect(manifest.timings.fps).toBeGreaterThan(0);
    expect(Object.keys(manifest.timings.stages)).toEqual(['infer', 'smooth', 'localize', 'render', 'encode', 'json']);
    expect(readdirSync(d).sort()).toEqual(['f.jsonl', 'out.mp4', 'out.mp4.manifest.json']);
  });

  it('exits non-zero on a corrupt file, naming it and quoting ffmpeg, leaving no output', async () => {
    const d = await fresh('corrupt');
    const corrupt = join(d, 'broken.mov');
    await writeFile(corrupt, Buffer.from(Array.from({ length: 40_000 }, (_, i) => (i * 2246822519 + 7) >>> 24)));
    const run = await runCli(['video', corrupt, '-o', join(d, 'out.mp4'), '--json', join(d, 'f.jsonl'), '-m', model, '--quiet']);
    expect(run.code).toBe(5);
    expect(run.stderr).toMatch(/^camstream: .*broken\.mov.*(Invalid data found when processing input|moov atom not found)/);
    expect(run.stderr.trim().split('\n').length).toBe(1);
    expect(readdirSync(d)).toEqual(['broken.mov']);
  });

  it('rejects a URL scheme outside the whitelist with a usage error', async () => {
    const run = await runCli(['video', 'concat:a.mp4|b.mp4', '-o', join(dir, 'x.mp4'), '-m', model, '--quiet']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/scheme 'concat:'/);
  });

  it('on SIGINT mid-run exits promptly with 130, ends its ffmpeg children, and leaves no partial output', async () => {
    const d = await fresh('sigint');
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin', 'camstream.js'), 'video', longClip, '-o', join(d, 'out.mp4'), '--json', join(d, 'f.jsonl'), '-m', model, '--quiet', '--batch', '1'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.on('close', (code) => resolve({ code, at: performance.now() })));
    // Wait until both ffmpeg children run and the temporary outputs exist: the run is in full flight.
    let ffmpegs: Array<{ pid: number; comm: string }> = [];
    const t0 = performance.now();
    while (performance.now() - t0 < 60_000) {
      ffmpegs = childProcesses(child.pid!).filter((p) => p.comm === 'ffmpeg');
      const temps = readdirSync(d).filter((f) => f.includes('.tmp-'));
      if (ffmpegs.length === 2 && temps.length === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(ffmpegs.length).toBe(2);
    await new Promise((r) => setTimeout(r, 500));
    expect(readdirSync(d).filter((f) => f.includes('.tmp-')).length).toBe(2);
    const sentAt = performance.now();
    child.kill('SIGINT');
    const { code, at } = await exited;
    expect(at - sentAt).toBeLessThan(3000);
    expect(code).toBe(130);
    expect(stderr).toMatch(/camstream: interrupted/);
    for (const p of ffmpegs) expect(await waitGone(p.pid, 1000)).toBe(true);
    expect(readdirSync(d)).toEqual([]);
    expect(existsSync(join(d, 'out.mp4'))).toBe(false);
  });
});
