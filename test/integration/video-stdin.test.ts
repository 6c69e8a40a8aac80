/**
 * `camstream video -` reads the video from standard input (issue 16, item 6, pipes): a stream that can be
 * read only once and not seeked, here a real pipe from another ffmpeg writing MPEG-TS. The decoding ffmpeg
 * reads it (`-i pipe:0`), its listing is the probe, and it feeds the model-size frames and, through Node,
 * the full-size frames and the audio the compositor encodes. Servers and jobs never take `-`.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../models/index.ts';
import { probeMedia, type FfmpegTools, type FrameLine } from '../../pipelines/index.ts';
import { decodeFrames$, resolveInput } from '../../pipelines/ffmpeg/index.ts';
import { runCli } from '../helpers/cli.ts';
import { processesMentioning } from '../helpers/processes.ts';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { makeClip, readJsonLines, writeRandomOnnx } from './video-helpers.ts';

let dir: string;
let tools: FfmpegTools;
let model: string;
/** MPEG-TS, 160x120 at 25 fps with an AAC tone. */
let clip: string;
let frames: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-stdin-'));
  tools = await testFfmpeg();
  model = await writeRandomOnnx(dir);
  clip = await makeClip(tools, dir, 'in.ts', [
    '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-frames:v', '40', '-shortest', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac',
  ]);
  // Counted by decoding (the npm build's ffprobe crashes counting MPEG-TS frames).
  frames = (await lastValueFrom(decodeFrames$(clip, { tools, width: 8, height: 8, pixFmt: 'gray' }).pipe(toArray()))).length;
  expect(frames).toBeGreaterThanOrEqual(39);
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('camstream video - (standard input)', () => {
  it('annotates an MPEG-TS stream piped in from another ffmpeg: every frame, one JSON line each, the audio kept', async () => {
    // The producer writes to a pipe: camstream gets a stream it cannot seek or open twice.
    const producer = spawn(tools.ffmpeg.path, ['-v', 'error', '-nostdin', '-i', clip, '-c', 'copy', '-f', 'mpegts', 'pipe:1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const producerExit = new Promise((done) => producer.once('exit', done));
    const out = join(dir, 'out.mp4');
    const json = join(dir, 'out.jsonl');
    const run = await runCli(['video', '-', '-o', out, '--json', json, '--model', model, '--top', '3', '--batch', '1', '--preset', 'ultrafast', '-q'], { FFMPEG_PATH: tools.ffmpeg.path, FFPROBE_PATH: tools.ffprobe!.path }, 180_000, producer.stdout);
    expect(run.code, run.stderr).toBe(0);
    expect(await producerExit).toBe(0);
    const lines = readJsonLines<FrameLine>(json);
    expect(lines).toHaveLength(frames);
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: frames }, (_, i) => i));
    const written = await probeMedia(out, { tools, countFrames: 'always' });
    expect(written.frameCount).toBe(frames);
    expect(written.hasAudio).toBe(true);
    expect(run.stdout).toMatch(new RegExp(`${frames} frames`));
    // Teardown: the compositor (whose command line names the output) is gone with the run.
    expect(processesMentioning(out)).toEqual([]);
  }, 300_000);

  it('says what is wrong when nothing video-like comes in, and writes nothing', async () => {
    const producer = spawn('printf', ['not a video'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = join(dir, 'none.mp4');
    const run = await runCli(['video', '-', '-o', out, '--model', model, '-q'], { FFMPEG_PATH: tools.ffmpeg.path, FFPROBE_PATH: tools.ffprobe!.path }, 180_000, producer.stdout);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/Invalid data|no video/i);
    expect(readdirSync(dir).filter((f) => f.startsWith('none'))).toEqual([]);
    expect(processesMentioning(out)).toEqual([]);
  }, 300_000);

  it('is never a default scheme: servers and jobs refuse `-` instead of reading their own stdin', () => {
    expect(() => resolveInput('-')).toThrow(ConfigError);
    expect(() => resolveInput('-')).toThrow(/standard input\) is not allowed here/);
    expect(resolveInput('-', ['file', 'stdin'])).toMatchObject({ url: 'pipe:0', scheme: 'stdin', protocolWhitelist: 'pipe' });
    // A file really called `-` is still reachable as ./-.
    expect(resolveInput('./-').scheme).toBe('file');
  });
});
