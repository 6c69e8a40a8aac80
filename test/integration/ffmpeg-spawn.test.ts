import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import {
  activeFfmpegPids,
  FfmpegError,
  runFfmpeg,
  shutdownFfmpeg,
  spawnFfmpeg,
  type FfmpegTools,
  type LogLine,
} from '../../pipelines/ffmpeg/index.ts';

let dir: string;
let tools: FfmpegTools;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-spawn-'));
  tools = await testFfmpeg();
});

afterEach(async () => {
  const left = activeFfmpegPids();
  await shutdownFfmpeg();
  expect(left).toEqual([]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('spawnFfmpeg', () => {
  it('turns a non-zero exit into an FfmpegError with the code, the file, the command and ffmpeg\'s last lines', async () => {
    const proc = spawnFfmpeg({ binary: tools.ffmpeg.path, args: ['-i', join(dir, 'absent.mkv'), '-f', 'null', '-'], file: 'absent.mkv' });
    const err = (await proc.done.catch((e: unknown) => e)) as FfmpegError;
    expect(err).toBeInstanceOf(FfmpegError);
    expect(err.code).toBe('FFMPEG');
    expect(err.exitCode).toBe(1);
    expect(err.signal).toBeNull();
    expect(err.file).toBe('absent.mkv');
    expect(err.message).toMatch(/^ffmpeg exited with code 1 on absent\.mkv: .*absent\.mkv: No such file or directory/);
    expect(err.stderr.some((l) => /No such file or directory/.test(l))).toBe(true);
    // The house flags are in front, and the command is shown shell-quoted.
    expect(err.command).toContain('-hide_banner -loglevel level+error -nostats -nostdin -i');
  });

  it('keeps only the last stderrTailLines lines, and only warnings or worse', async () => {
    // A truncated MPEG-2 stream: ffmpeg exits 0 but logs decoder errors between info-level showinfo lines.
    const mpg = join(dir, 'gen.mpg');
    await runFfmpeg({
      binary: tools.ffmpeg.path,
      args: ['-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-frames:v', '100', '-c:v', 'mpeg2video', '-q:v', '4', mpg],
    });
    const whole = await readFile(mpg);
    const truncated = join(dir, 'cut.mpg');
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length * 0.3)));
    const seen: LogLine[] = [];
    const proc = spawnFfmpeg({
      binary: tools.ffmpeg.path,
      args: ['-i', truncated, '-vf', 'showinfo=checksum=0', '-f', 'null', '-'],
      logLevel: 'info',
      stderrTailLines: 1,
      onLog: (l) => seen.push(l),
    });
    await proc.done;
    const bad = seen.filter((l) => l.level === 'warning' || l.level === 'error');
    expect(bad.length).toBeGreaterThanOrEqual(2);
    expect(seen.filter((l) => l.context?.startsWith('Parsed_showinfo')).length).toBeGreaterThan(10);
    expect(proc.stderrTail()).toEqual(bad.slice(-1).map((l) => (l.context ? `[${l.context}] ${l.message}` : l.message)));
  });

  it('never uses a shell: metacharacters in arguments reach ffmpeg literally', async () => {
    const name = 'x $(touch PWNED); y `touch PWNED2` & z.mp4';
    await runFfmpeg({
      binary: tools.ffmpeg.path,
      args: ['-y', '-f', 'lavfi', '-i', 'testsrc=size=16x16:rate=5', '-frames:v', '1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', join(dir, name)],
    });
    const files = await readdir(dir);
    expect(files).toContain(name);
    expect(files).not.toContain('PWNED');
    expect(files).not.toContain('PWNED2');
  });

  it('reports a binary that cannot start as an FfmpegError naming the path', async () => {
    const missing = join(dir, 'no-ffmpeg-here');
    const proc = spawnFfmpeg({ binary: missing, args: ['-version'] });
    await expect(proc.done).rejects.toThrow(FfmpegError);
    await expect(proc.done).rejects.toThrow(`could not start ffmpeg at ${missing}: spawn ${missing} ENOENT`);
  });

  it('escalates to SIGKILL after the grace when SIGTERM is ignored', async () => {
    // A stand-in child that ignores SIGTERM (ffmpeg itself honours it), run through the same wrapper.
    const proc = spawnFfmpeg({
      binary: '/bin/sh',
      kind: 'ffprobe',
      standardFlags: false,
      args: ['-c', 'trap "" TERM; echo ready; while true; do sleep 0.05; done'],
      killGraceMs: 300,
    });
    await new Promise<void>((resolve) => proc.pipes[0].once('data', () => resolve()));
    const t0 = performance.now();
    const exit = await proc.stop();
    const took = performance.now() - t0;
    expect(exit.signal).toBe('SIGKILL');
    expect(exit.stopped).toBe(true);
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2000);
    // Stopped on purpose: not an error.
    await expect(proc.done).resolves.toBeUndefined();
    expect(activeFfmpegPids()).not.toContain(proc.pid);
  });

  it('ends with SIGTERM well within the grace for ffmpeg itself', async () => {
    // ffmpeg -re -f lavfi -i testsrc -f null -   (would run for ever)
    const proc = spawnFfmpeg({ binary: tools.ffmpeg.path, args: ['-re', '-f', 'lavfi', '-i', 'testsrc=size=32x32:rate=10', '-f', 'null', '-'] });
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    const exit = await proc.stop();
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(exit.signal).not.toBe('SIGKILL');
  });
});
