/**
 * What careless users and unlucky runs do to `camstream video`, with real ffmpeg and real processes: an
 * output that is the input through a link, a faststart MP4 cut in half, two runs on one output, a run
 * killed with SIGKILL (its temporary files), SIGTERM, and frames over the pixel budget.
 */
import { spawn } from 'node:child_process';
import { link, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, InputError, load, type CamModel } from '../../models/index.ts';
import { activeFfmpegPids, annotateVideo, FfmpegError, probeMedia, resolveVideoConfig, type FfmpegTools } from '../../pipelines/index.ts';
import { runCli } from '../helpers/cli.ts';
import { ffmpegEnv, testFfmpeg } from '../helpers/ffmpeg.ts';
import { ROOT } from '../helpers/fixtures.ts';
import { childProcesses, makeClip, waitGone, writeRandomOnnx } from './video-helpers.ts';

let dir: string;
let tools: FfmpegTools;
let modelPath: string;
let onnx: CamModel;
/** 2 s, 160x120, 25 fps. */
let shortClip: string;
/** 40 s, 640x360, 25 fps: still running when a test stops it. */
let longClip: string;
/** 100 frames (4 s) of 320x240 H.264 with an AAC track, moov first (faststart). */
let faststart: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-video-safety-'));
  tools = await testFfmpeg();
  modelPath = await writeRandomOnnx(dir, 5);
  onnx = await load(modelPath, { threads: 1 });
  shortClip = await makeClip(tools, dir, 'short.mp4', [
    '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25:duration=2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
  ]);
  longClip = await makeClip(tools, dir, 'long.mp4', [
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=40', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
  ]);
  // ffmpeg -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=440 -frames:v 100 -t 4
  //   -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -movflags +faststart faststart.mp4
  faststart = await makeClip(tools, dir, 'faststart.mp4', [
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-frames:v', '100', '-t', '4', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-movflags', '+faststart',
  ]);
});

afterAll(async () => {
  await onnx?.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function fresh(name: string): Promise<string> {
  const d = join(dir, name);
  await rm(d, { recursive: true, force: true });
  await mkdir(d);
  return d;
}

/** `camstream video` in the background, with the test's ffmpeg; resolves `exited` with its status. */
function startVideo(args: string[]) {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'camstream.js'), 'video', ...args, '-m', modelPath, '--quiet', '--batch', '1'], {
    cwd: ROOT,
    env: { ...process.env, CAMSTREAM_DEBUG: '', ...ffmpegEnv(tools) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, exited, stderr: () => stderr };
}

/** Waits until `pid` runs both of its ffmpeg children and `d` holds `temps` temporary files: the run is in full flight. */
async function inFlight(pid: number, d: string, temps: number): Promise<Array<{ pid: number; comm: string }>> {
  const t0 = performance.now();
  let ffmpegs: Array<{ pid: number; comm: string }> = [];
  while (performance.now() - t0 < 90_000) {
    ffmpegs = childProcesses(pid).filter((p) => p.comm === 'ffmpeg');
    const names = await readdir(d);
    if (ffmpegs.length === 2 && names.filter((f) => f.includes('.tmp-')).length === temps) return ffmpegs;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the run (pid ${pid}) never reached full flight in ${d}`);
}

describe('outputs that are the input', () => {
  it('refuses an output path that is a symlink to the input, leaving the input intact (CLI)', async () => {
    const d = await fresh('symlink');
    const target = join(d, 'target.mp4');
    await writeFile(target, await readFile(shortClip));
    await symlink(target, join(d, 'link.mp4'));
    const before = await readFile(target);
    const run = await runCli(['video', join(d, 'link.mp4'), '-o', target, '-m', modelPath, '--quiet'], ffmpegEnv(tools));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/is the input itself/);
    expect((await readFile(target)).equals(before)).toBe(true);
  });

  it('refuses a JSONL or manifest path that is a hard link to the input, and an output linked to the JSONL', async () => {
    const d = await fresh('hardlink');
    const input = join(d, 'in.mp4');
    await writeFile(input, await readFile(shortClip));
    await link(input, join(d, 'frames.jsonl'));
    await link(input, join(d, 'run.json'));
    expect(() => resolveVideoConfig(input, { out: join(d, 'o.mp4'), json: join(d, 'frames.jsonl') }, onnx)).toThrow(/JSONL path .* is the input itself/);
    expect(() => resolveVideoConfig(input, { out: join(d, 'o.mp4'), manifest: join(d, 'run.json') }, onnx)).toThrow(/manifest path .* is the input itself/);
    await writeFile(join(d, 'a.jsonl'), '');
    await symlink(join(d, 'a.jsonl'), join(d, 'b.mp4'));
    expect(() => resolveVideoConfig(input, { out: join(d, 'b.mp4'), json: join(d, 'a.jsonl') }, onnx)).toThrow(ConfigError);
  });
});

describe('a faststart MP4 with audio cut in half', () => {
  it('fails in strict mode (the default), naming the file, and gives the shorter video with lenient decoding', async () => {
    const d = await fresh('half');
    const half = join(d, 'half.mp4');
    const whole = await readFile(faststart);
    // head -c <half the size>
    await writeFile(half, whole.subarray(0, Math.floor(whole.length / 2)));
    const probe = await probeMedia(half, { tools });
    expect(probe.frameCount).toBe(100);
    const err = await annotateVideo(onnx, half, { out: join(d, 'out.mp4'), tools }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FfmpegError);
    expect((err as Error).message).toContain(half);
    expect((err as Error).message).toMatch(/truncated|damaged|corrupt|partial|of 100 frames/i);
    expect((await readdir(d)).sort()).toEqual(['half.mp4']);
    const report = await annotateVideo(onnx, half, { out: join(d, 'out.mp4'), manifest: false, tools, decode: { strict: false } });
    expect(report.frames).toBeGreaterThan(10);
    expect(report.frames).toBeLessThan(100);
  });
});

describe('the pixel budget', () => {
  it('refuses frames over the budget before decoding anything', async () => {
    const d = await fresh('budget');
    const spawned: number[] = [];
    const err = await annotateVideo(onnx, shortClip, { out: join(d, 'out.mp4'), tools, maxFramePixels: 160 * 120 - 1 }, {
      onDecodeStart: (h) => spawned.push(h.pid ?? -1),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(/160x120 \(19200 pixels\) exceed the pixel budget of 19199/);
    expect(spawned).toEqual([]);
    expect(activeFfmpegPids()).toEqual([]);
    expect(await readdir(d)).toEqual([]);
    // Exactly at the budget runs.
    const report = await annotateVideo(onnx, shortClip, { out: join(d, 'out.mp4'), tools, manifest: false, maxFramePixels: 160 * 120 });
    expect(report.frames).toBe(50);
  });
});

describe('one writer per output, and what SIGKILL and SIGTERM leave', () => {
  it('refuses a second run on the same output while the first lives; after SIGKILL the next run cleans up and succeeds', async () => {
    const d = await fresh('lock');
    const out = join(d, 'out.mp4');
    const first = startVideo([longClip, '-o', out, '--json', join(d, 'f.jsonl')]);
    const ffmpegs = await inFlight(first.child.pid!, d, 2);
    const second = await runCli(['video', shortClip, '-o', out, '-m', modelPath, '--quiet'], ffmpegEnv(tools));
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(new RegExp(`being written by another camstream run \\(pid ${first.child.pid}`));
    // SIGKILL: no cleanup at all; its temporary files and its lock stay behind.
    first.child.kill('SIGKILL');
    await first.exited;
    for (const p of ffmpegs) {
      process.kill(p.pid, 'SIGKILL');
      expect(await waitGone(p.pid, 5000)).toBe(true);
    }
    const left = await readdir(d);
    expect(left.filter((f) => f.includes('.tmp-')).length).toBe(2);
    expect(left).toContain('out.mp4.camstream-lock');
    // A stranger's file with a similar name is not ours to delete.
    await writeFile(join(d, 'out.mp4.tmp-notes.txt'), 'keep me');
    const third = await runCli(['video', shortClip, '-o', out, '--json', join(d, 'f.jsonl'), '-m', modelPath, '--quiet'], ffmpegEnv(tools));
    expect(third.stderr).not.toMatch(/^camstream: /m);
    expect(third.code).toBe(0);
    expect((await readdir(d)).sort()).toEqual(['f.jsonl', 'out.mp4', 'out.mp4.manifest.json', 'out.mp4.tmp-notes.txt']);
  });

  it('on SIGTERM mid-run exits 143 after ending its ffmpeg children and deleting its partial outputs', async () => {
    const d = await fresh('sigterm');
    const run = startVideo([longClip, '-o', join(d, 'out.mp4'), '--json', join(d, 'f.jsonl')]);
    const ffmpegs = await inFlight(run.child.pid!, d, 2);
    run.child.kill('SIGTERM');
    const { code } = await run.exited;
    expect(code).toBe(143);
    expect(run.stderr()).toMatch(/camstream: interrupted/);
    for (const p of ffmpegs) expect(await waitGone(p.pid, 1000)).toBe(true);
    expect(await readdir(d)).toEqual([]);
  });
});
