import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { ConfigError } from '../../models/index.ts';
import {
  decodeFrames$,
  FfmpegError,
  locateFfmpeg,
  probeMedia,
  runFfmpeg,
  type FfmpegTools,
  type MediaInfo,
} from '../../pipelines/ffmpeg/index.ts';
import { fixture, fixturesPresent } from '../helpers/fixtures.ts';

let dir: string;
let tools: FfmpegTools;
/** The same binaries with ffprobe withheld: probing must fall back to `ffmpeg -i`. */
let ffmpegOnly: FfmpegTools;

/** ffmpeg with lavfi sources writes a small clip; returns its path. */
async function makeClip(name: string, args: string[]): Promise<string> {
  const out = join(dir, name);
  await runFfmpeg({ binary: tools.ffmpeg.path, args: ['-y', ...args, out], timeoutMs: 30_000 });
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-probe-'));
  tools = await testFfmpeg();
  ffmpegOnly = { ...tools, ffprobe: undefined };
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('locateFfmpeg', () => {
  it('finds ffmpeg and ffprobe and reports where from and which version', async () => {
    // FFMPEG_PATH (the CI's second run) is an explicit option; otherwise PATH or the npm package.
    if (process.env.FFMPEG_PATH) expect(tools.ffmpeg.source).toBe('option');
    else expect(['path', 'npm']).toContain(tools.ffmpeg.source);
    expect(tools.ffmpeg.version.length).toBeGreaterThan(0);
    expect(tools.ffmpeg.libavformat?.[0]).toBeGreaterThanOrEqual(58);
    expect(tools.ffprobe?.kind).toBe('ffprobe');
    expect(tools.passthroughArgs[1]).toBe('passthrough');
  });

  it('uses an explicit path first', async () => {
    const t = await locateFfmpeg({ ffmpegPath: tools.ffmpeg.path, ffprobePath: false });
    expect(t.ffmpeg.source).toBe('option');
    expect(t.ffmpeg.path).toBe(tools.ffmpeg.path);
    expect(t.ffprobe).toBeUndefined();
  });

  it('finds ffmpeg on PATH before the npm package', async () => {
    const bin = join(dir, 'bin');
    await rm(bin, { recursive: true, force: true });
    await mkdir(bin);
    await symlink(tools.ffmpeg.path, join(bin, 'ffmpeg'));
    const t = await locateFfmpeg({ pathEnv: bin });
    expect(t.ffmpeg.source).toBe('path');
    expect(t.ffmpeg.path).toBe(join(bin, 'ffmpeg'));
    expect(t.ffmpeg.version).toBe(tools.ffmpeg.version);
  });

  it('falls back to the npm binary when PATH has no ffmpeg', async () => {
    const t = await locateFfmpeg({ pathEnv: join(dir, 'empty-path') });
    expect(t.ffmpeg.source).toBe('npm');
    expect(t.ffprobe?.source).toBe('npm');
  });

  it('says clearly when no ffmpeg exists anywhere it may look', async () => {
    await expect(locateFfmpeg({ pathEnv: join(dir, 'empty-path'), npm: false })).rejects.toThrow(FfmpegError);
    await expect(locateFfmpeg({ pathEnv: join(dir, 'empty-path'), npm: false })).rejects.toThrow(/ffmpeg not found: set FFMPEG_PATH/);
  });

  it('rejects an explicit path that is missing or is not ffmpeg, naming it', async () => {
    const missing = join(dir, 'no-such-ffmpeg');
    await expect(locateFfmpeg({ ffmpegPath: missing })).rejects.toThrow(ConfigError);
    await expect(locateFfmpeg({ ffmpegPath: missing })).rejects.toThrow(missing);
    const fake = join(dir, 'fake-ffmpeg');
    await writeFile(fake, '#!/bin/sh\necho hello\n', { mode: 0o755 });
    await expect(locateFfmpeg({ ffmpegPath: fake })).rejects.toThrow(/fake-ffmpeg' does not run as ffmpeg/);
  });
});

/** Fields both probers must agree on. */
function core(info: MediaInfo) {
  return {
    width: info.width,
    height: info.height,
    frameRate: info.frameRate,
    codec: info.codec,
    pixFmt: info.pixFmt,
    hasAudio: info.hasAudio,
    audioCodec: info.audioCodec,
    rotation: info.rotation,
  };
}

describe('probeMedia on generated clips', () => {
  it('an ffprobe that crashes (the npm build segfaults on every MPEG-TS file) leaves the answer to ffmpeg', async () => {
    const clip = await makeClip('crash.ts', ['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-frames:v', '20', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p']);
    // A stand-in that dies of SIGSEGV as that build does, whatever it is asked.
    const crashing = join(dir, 'ffprobe-segv');
    await writeFile(crashing, '#!/bin/sh\nkill -SEGV $$\n', { mode: 0o755 });
    const broken: FfmpegTools = { ...tools, ffprobe: { ...(tools.ffprobe ?? tools.ffmpeg), kind: 'ffprobe', path: crashing } };
    const info = await probeMedia(clip, { tools: broken, countFrames: 'always' });
    expect(info).toMatchObject({ prober: 'ffmpeg', width: 160, height: 120, fps: 25, codec: 'h264', frameCount: 20 });
    // A tool that fails in the usual way (an exit code) is still an error, in its words.
    const failing = join(dir, 'ffprobe-fails');
    await writeFile(failing, '#!/bin/sh\necho "crash.ts: Invalid data found when processing input" >&2\nexit 1\n', { mode: 0o755 });
    await expect(probeMedia(clip, { tools: { ...broken, ffprobe: { ...broken.ffprobe!, path: failing } } })).rejects.toThrow(/Invalid data/);
  });

  it('reads size, rate, duration, codec, pixel format and frame count, with ffprobe and with ffmpeg alone', async () => {
    // ffmpeg -f lavfi -i testsrc=size=160x120:rate=25 -frames:v 50 -c:v libx264 -preset ultrafast -pix_fmt yuv420p clip.mp4
    const clip = await makeClip('clip.mp4', [
      '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-frames:v', '50', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    ]);
    const a = await probeMedia(clip, { tools });
    expect(a).toMatchObject({
      prober: 'ffprobe',
      width: 160,
      height: 120,
      displayWidth: 160,
      displayHeight: 120,
      frameRate: { num: 25, den: 1 },
      fps: 25,
      frameCount: 50,
      frameCountSource: 'container',
      codec: 'h264',
      pixFmt: 'yuv420p',
      hasAudio: false,
      rotation: 0,
    });
    expect(a.duration).toBeCloseTo(2, 1);
    const b = await probeMedia(clip, { tools: ffmpegOnly, countFrames: 'if-missing' });
    expect(b.prober).toBe('ffmpeg');
    expect(core(b)).toEqual(core(a));
    expect(b.frameCount).toBe(50);
    expect(b.frameCountSource).toBe('counted');
    expect(b.duration).toBeCloseTo(2, 1);
  });

  it('recovers an NTSC rate as 30000/1001 and sees the audio track', async () => {
    // ffmpeg -f lavfi -i testsrc=size=128x96:rate=30000/1001 -f lavfi -i sine=frequency=440:sample_rate=44100
    //   -t 1 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac ntsc.mp4
    const clip = await makeClip('ntsc.mp4', [
      '-f', 'lavfi', '-i', 'testsrc=size=128x96:rate=30000/1001', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
      '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac',
    ]);
    for (const t of [tools, ffmpegOnly]) {
      const info = await probeMedia(clip, { tools: t });
      expect(info.frameRate).toEqual({ num: 30000, den: 1001 });
      expect(info.hasAudio).toBe(true);
      expect(info.audioCodec).toBe('aac');
    }
  });

  it('reports rotation, and decoded frames come out turned the way it says', async () => {
    const plain = await makeClip('plain.mp4', [
      '-f', 'lavfi', '-i', 'testsrc=size=96x64:rate=10', '-frames:v', '3', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    ]);
    // ffmpeg -i plain.mp4 -c copy -metadata:s:v:0 rotate=90 rotated.mp4 (a display matrix, same pixels)
    const rotated = await makeClip('rotated.mp4', ['-i', plain, '-c', 'copy', '-metadata:s:v:0', 'rotate=90']);
    const a = await probeMedia(rotated, { tools });
    const b = await probeMedia(rotated, { tools: ffmpegOnly });
    expect([90, 270]).toContain(a.rotation);
    expect(b.rotation).toBe(a.rotation);
    expect([a.displayWidth, a.displayHeight]).toEqual([64, 96]);

    const first = async (file: string) =>
      (await lastValueFrom(decodeFrames$(file, { tools, pixFmt: 'gray', maxFrames: 1 }).pipe(toArray())))[0];
    const src = await first(plain);
    const dst = await first(rotated);
    expect([dst.width, dst.height]).toEqual([64, 96]);
    const [W, H] = [96, 64];
    let mismatches = 0;
    for (let y = 0; y < W; y++) {
      for (let x = 0; x < H; x++) {
        // Clockwise 90: output (x, y) comes from source (y, H-1-x); clockwise 270: from (W-1-y, x).
        const from = a.rotation === 90 ? src.data[(H - 1 - x) * W + y] : src.data[x * W + (W - 1 - y)];
        if (dst.data[y * H + x] !== from) mismatches++;
      }
    }
    expect(mismatches).toBe(0);
  });

  it('names the file and quotes ffmpeg for a missing or corrupt input, with either prober', async () => {
    const missing = join(dir, 'missing.mp4');
    const corrupt = join(dir, 'corrupt.mp4');
    await writeFile(corrupt, Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 2654435761) >>> 24)));
    for (const t of [tools, ffmpegOnly]) {
      const e1 = await probeMedia(missing, { tools: t }).catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(FfmpegError);
      expect((e1 as Error).message).toContain('missing.mp4');
      expect((e1 as Error).message).toMatch(/No such file or directory/);
      const e2 = await probeMedia(corrupt, { tools: t }).catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(FfmpegError);
      expect((e2 as Error).message).toContain(basename(corrupt));
      expect((e2 as Error).message).toMatch(/Invalid data found when processing input/);
    }
  });

  it('refuses a scheme outside the whitelist before running anything', async () => {
    await expect(probeMedia('ftp://example.com/a.mp4', { tools })).rejects.toThrow(/'ftp:'/);
  });
});

describe.skipIf(!fixturesPresent)('probeMedia on the fixture videos', () => {
  const cases = [
    { file: 'opencv_vtest.avi', width: 768, height: 576, rate: { num: 10, den: 1 }, codec: 'msmpeg4v3', audio: false, duration: 79.5 },
    { file: 'kivy_cityCC0.mpg', width: 720, height: 405, rate: { num: 25, den: 1 }, codec: 'mpeg2video', audio: false, duration: 7.6 },
    { file: 'node-opencv_motion.mov', width: 568, height: 320, rate: { num: 30, den: 1 }, codec: 'h264', audio: true, duration: 8.04 },
  ];
  for (const c of cases) {
    it(`reads ${c.file} the same way with ffprobe and with ffmpeg alone`, async () => {
      const path = fixture('video', c.file);
      const a = await probeMedia(path, { tools });
      expect(a).toMatchObject({ width: c.width, height: c.height, frameRate: c.rate, codec: c.codec, hasAudio: c.audio });
      expect(a.duration).toBeCloseTo(c.duration, 1);
      const b = await probeMedia(path, { tools: ffmpegOnly });
      expect(core(b)).toEqual(core(a));
      expect(b.duration).toBeCloseTo(c.duration, 1);
    });
  }

  it('counts frames by decoding when the container does not say (MPEG-PS) or says too many (an edit list)', async () => {
    const mpg = await probeMedia(fixture('video', 'kivy_cityCC0.mpg'), { tools });
    expect(mpg.frameCount).toBeUndefined();
    expect(mpg.estimatedFrameCount).toBe(190);
    const counted = await probeMedia(fixture('video', 'kivy_cityCC0.mpg'), { tools, countFrames: 'if-missing' });
    expect(counted.frameCount).toBe(190);
    expect(counted.frameCountSource).toBe('counted');

    // The .mov lists 243 video packets, but its edit list discards the last one: 242 frames decode.
    const mov = fixture('video', 'node-opencv_motion.mov');
    const container = await probeMedia(mov, { tools });
    const decoded = await probeMedia(mov, { tools, countFrames: 'always' });
    const byFfmpeg = await probeMedia(mov, { tools: ffmpegOnly, countFrames: 'always' });
    expect(container.frameCountSource).toBe('container');
    expect(decoded.frameCount).toBe(byFfmpeg.frameCount);
    expect(container.frameCount! - decoded.frameCount!).toBe(1);
  });
});
