import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concat, from, lastValueFrom, map, throwError, toArray } from 'rxjs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { InputError } from '../../models/index.ts';
import {
  activeFfmpegPids,
  decodeFrames$,
  encodeMp4,
  encodeVideo,
  FfmpegError,
  probeMedia,
  runFfmpeg,
  shutdownFfmpeg,
  type FfmpegTools,
} from '../../pipelines/ffmpeg/index.ts';
import { fixture, fixturesPresent } from '../helpers/fixtures.ts';
import { alive, waitGone as waitGoneAfter } from '../helpers/processes.ts';

let root: string;
let dir: string;
let tools: FfmpegTools;
let caseNo = 0;

/** Polls until the ffmpeg child `pid` has exited and left the wrapper's registry; false after `limitMs`. */
function waitGone(pid: number, limitMs = 5000): Promise<boolean> {
  return waitGoneAfter(pid, { limitMs, tracked: activeFfmpegPids });
}

/** Seeded pseudo-random frames (an LCG), so a lossless round trip has something to compare. */
function noiseFrames(count: number, width: number, height: number, seed: number): Uint8Array[] {
  let s = seed >>> 0;
  return Array.from({ length: count }, () => {
    const f = new Uint8Array(width * height * 3);
    for (let i = 0; i < f.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      f[i] = s >>> 24;
    }
    return f;
  });
}

/** Smooth moving gradients: cheap for x264, like real video. */
function gradientFrames(count: number, width: number, height: number): Uint8Array[] {
  return Array.from({ length: count }, (_, t) => {
    const f = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        f[i] = (x * 2 + t * 4) & 255;
        f[i + 1] = (y * 2) & 255;
        f[i + 2] = (x + y + t * 8) & 255;
      }
    }
    return f;
  });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'camstream-encode-'));
  tools = await testFfmpeg();
});

beforeEach(async () => {
  // One folder per test: "no file left" means the folder ends up with nothing but what the test made.
  dir = join(root, `case-${++caseNo}`);
  await mkdir(dir);
});

afterEach(async () => {
  const left = activeFfmpegPids();
  await shutdownFfmpeg();
  expect(left).toEqual([]);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('encodeVideo', () => {
  it('writes N frames into an H.264 MP4 with N frames, the size and the exact rate', async () => {
    const out = join(dir, 'out.mp4');
    const frames = gradientFrames(36, 96, 64);
    const encoder = await encodeVideo({ out, width: 96, height: 64, fps: { num: 30000, den: 1001 }, tools });
    expect(encoder.tempPath.startsWith(`${out}.tmp-`)).toBe(true);
    expect(encoder.tempPath.endsWith('.mp4')).toBe(true);
    for (const f of frames) await encoder.write(f);
    const result = await encoder.finish();
    expect(result).toMatchObject({ out, frames: 36, width: 96, height: 64, frameRate: { num: 30000, den: 1001 }, audio: 'none' });
    const info = await probeMedia(out, { tools, countFrames: 'always' });
    expect(info).toMatchObject({ width: 96, height: 64, codec: 'h264', pixFmt: 'yuv420p', frameCount: 36, hasAudio: false });
    expect(info.frameRate).toEqual({ num: 30000, den: 1001 });
    expect(info.duration).toBeCloseTo(36 / (30000 / 1001), 2);
    expect(await readdir(dir)).toEqual(['out.mp4']);
    expect(await waitGone(encoder.pid!)).toBe(true);
  });

  it('round-trips pixels exactly through a lossless codec, decode timestamps at i / rate', async () => {
    const out = join(dir, 'lossless.nut');
    const frames = noiseFrames(12, 40, 30, 42);
    const encoder = await encodeVideo({ out, width: 40, height: 30, fps: 12, codec: 'rawvideo', pixFmt: 'rgb24', tools });
    for (const f of frames) await encoder.write(f);
    await encoder.finish();
    const back = await lastValueFrom(decodeFrames$(out, { tools }).pipe(toArray()));
    expect(back).toHaveLength(12);
    back.forEach((f, i) => {
      expect(Buffer.from(f.data).equals(Buffer.from(frames[i]))).toBe(true);
      expect(f.pts).toBeCloseTo(i / 12, 9);
    });
  });

  it('reads timestamped frames in the pixel format given: rgb24 and rgba round-trip exactly, at their timestamps', async () => {
    // IVF names the format by a fourcc; one fixed fourcc would have ffmpeg read rgb24 bytes as rgba.
    for (const inputPixFmt of ['rgb24', 'rgba'] as const) {
      const out = join(dir, `timed-${inputPixFmt}.nut`);
      const bpp = inputPixFmt === 'rgb24' ? 3 : 4;
      const frames = noiseFrames(4, 40 * bpp, 30, 5).map((f) => f.subarray(0, 40 * 30 * bpp));
      const pts = [0, 0.1, 0.25, 0.3];
      const encoder = await encodeVideo({ out, width: 40, height: 30, fps: 10, inputPixFmt, frameTimestamps: true, codec: 'rawvideo', pixFmt: inputPixFmt, tools });
      for (const [i, f] of frames.entries()) await encoder.write(f, pts[i]);
      await encoder.finish();
      const back = await lastValueFrom(decodeFrames$(out, { tools, pixFmt: inputPixFmt }).pipe(toArray()));
      expect(back.map((f) => Math.round(f.pts * 100) / 100)).toEqual(pts);
      back.forEach((f, i) => expect(Buffer.from(f.data).equals(Buffer.from(frames[i]))).toBe(true));
    }
  });

  it('reads planar yuva420p frames (timestamped or not) exactly: each plane round-trips', async () => {
    const [w, h] = [40, 30];
    const frames = noiseFrames(3, w, h * 2.5, 11).map((f) => f.subarray(0, w * h * 2.5));
    for (const timed of [false, true]) {
      const out = join(dir, `yuva-${timed}.nut`);
      const encoder = await encodeVideo({ out, width: w, height: h, fps: 10, inputPixFmt: 'yuva420p', frameTimestamps: timed, codec: 'rawvideo', pixFmt: 'yuva420p', tools });
      for (const [i, f] of frames.entries()) await (timed ? encoder.write(f, i / 10) : encoder.write(f));
      await encoder.finish();
      const raw = join(dir, `yuva-${timed}.yuv`);
      await runFfmpeg({ binary: tools.ffmpeg.path, args: ['-y', '-i', out, '-f', 'rawvideo', '-pix_fmt', 'yuva420p', raw] });
      expect((await readFile(raw)).equals(Buffer.concat(frames))).toBe(true);
    }
  });

  it('refuses yuva420p frames of an odd size (its chroma planes need even sides)', async () => {
    await expect(encodeVideo({ out: join(dir, 'odd.mp4'), width: 41, height: 30, fps: 10, inputPixFmt: 'yuva420p', tools })).rejects.toThrow(/yuva420p.*even/);
  });

  it('calls onReleased once the pipe has a frame: one buffer refilled after each release round-trips exactly', async () => {
    // 230 KB frames, more than the 64 KiB pipe: a release before the bytes left would corrupt the output.
    const out = join(dir, 'reused.nut');
    const frames = noiseFrames(6, 320, 240, 7);
    const encoder = await encodeVideo({ out, width: 320, height: 240, fps: 10, codec: 'rawvideo', pixFmt: 'rgb24', tools });
    const buffer = new Uint8Array(frames[0].length);
    let releases = 0;
    const writes: Promise<void>[] = [];
    for (const f of frames) {
      buffer.set(f);
      // Refilled as soon as it is released, not when write() resolves.
      await new Promise<void>((resolve) => writes.push(encoder.write(buffer, undefined, () => (releases++, resolve()))));
    }
    await Promise.all(writes);
    await encoder.finish();
    expect(releases).toBe(6);
    const back = await lastValueFrom(decodeFrames$(out, { tools }).pipe(toArray()));
    expect(back).toHaveLength(6);
    back.forEach((f, i) => expect(Buffer.from(f.data).equals(Buffer.from(frames[i]))).toBe(true));
  });

  it('pads an odd size to even for 4:2:0 instead of failing', async () => {
    const out = join(dir, 'odd.mp4');
    const encoder = await encodeVideo({ out, width: 33, height: 21, fps: 10, tools });
    for (const f of noiseFrames(3, 33, 21, 1)) await encoder.write(f);
    const result = await encoder.finish();
    expect([result.width, result.height]).toEqual([34, 22]);
    const info = await probeMedia(out, { tools });
    expect([info.width, info.height]).toEqual([34, 22]);
  });

  it('rejects a frame of the wrong size with an InputError naming the sizes', async () => {
    const encoder = await encodeVideo({ out: join(dir, 'x.mp4'), width: 8, height: 8, fps: 5, tools });
    await expect(encoder.write(new Uint8Array(10))).rejects.toThrow(InputError);
    await expect(encoder.write(new Uint8Array(10))).rejects.toThrow(/must be 192 bytes \(8x8 rgb24\), got 10/);
    await encoder.abort();
    expect(await readdir(dir)).toEqual([]);
  });

  it('leaves no output and no temporary file when ffmpeg fails, and names the output and the cause', async () => {
    const out = join(dir, 'broken.mp4');
    const encoder = await encodeVideo({ out, width: 16, height: 16, fps: 10, filter: 'nosuchfilter=1', tools });
    const err = await (async () => {
      for (const f of noiseFrames(200, 16, 16, 3)) await encoder.write(f);
      return encoder.finish();
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FfmpegError);
    expect((err as Error).message).toContain('broken.mp4');
    expect((err as Error).message).toMatch(/No such filter: 'nosuchfilter'/);
    expect(await waitGone(encoder.pid!)).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });

  it('keeps an existing output untouched when a new encode of it fails', async () => {
    const out = join(dir, 'keep.mp4');
    await writeFile(out, 'previous result');
    const encoder = await encodeVideo({ out, width: 16, height: 16, fps: 10, tools });
    await encoder.write(noiseFrames(1, 16, 16, 9)[0]);
    // An encoder killed from outside (OOM killer, a stray signal) fails the run.
    process.kill(encoder.pid!, 'SIGKILL');
    await expect(encoder.finish()).rejects.toThrow(/keep\.mp4.*SIGKILL|killed/);
    expect(await readFile(out, 'utf8')).toBe('previous result');
    expect(await readdir(dir)).toEqual(['keep.mp4']);
  });

  it('abort() ends the child and deletes the temporary file', async () => {
    const out = join(dir, 'aborted.mp4');
    const encoder = await encodeVideo({ out, width: 64, height: 64, fps: 25, tools });
    for (const f of gradientFrames(20, 64, 64)) await encoder.write(f);
    expect(alive(encoder.pid!)).toBe(true);
    await encoder.abort();
    expect(await waitGone(encoder.pid!)).toBe(true);
    expect(await readdir(dir)).toEqual([]);
    await expect(encoder.write(new Uint8Array(64 * 64 * 3))).rejects.toThrow(/write after abort/);
  });

  it('shutdownFfmpeg() (the SIGINT path) kills running encoders and removes their temporary files', async () => {
    const encoder = await encodeVideo({ out: join(dir, 'interrupted.mp4'), width: 64, height: 64, fps: 25, tools });
    for (const f of gradientFrames(10, 64, 64)) await encoder.write(f);
    await shutdownFfmpeg();
    expect(await waitGone(encoder.pid!)).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });

  it('copies an AAC track, cut to the video span, and re-encodes PCM that MP4 cannot hold (with either prober)', async () => {
    // ffmpeg -f lavfi -i sine=frequency=440:sample_rate=48000 -t 3 -c:a aac tone.m4a   (and -c:a pcm_s16le tone.wav)
    const sine = ['-y', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '3'];
    const m4a = join(dir, 'tone.m4a');
    const wav = join(dir, 'tone.wav');
    await runFfmpeg({ binary: tools.ffmpeg.path, args: [...sine, '-c:a', 'aac', m4a] });
    await runFfmpeg({ binary: tools.ffmpeg.path, args: [...sine, '-c:a', 'pcm_s16le', wav] });
    const ffmpegOnly = { ...tools, ffprobe: undefined };
    for (const [t, audioFile, expected] of [
      [tools, m4a, 'copy'],
      [ffmpegOnly, m4a, 'copy'],
      [tools, wav, 'aac'],
    ] as const) {
      const out = join(dir, `with-audio-${expected}.mp4`);
      const encoder = await encodeVideo({ out, width: 32, height: 32, fps: 10, audioFrom: { input: audioFile, durationSeconds: 1 }, tools: t });
      for (const f of gradientFrames(10, 32, 32)) await encoder.write(f);
      const result = await encoder.finish();
      expect(result.audio).toBe(expected);
      const info = await probeMedia(out, { tools, countFrames: 'always' });
      expect(info.hasAudio).toBe(true);
      expect(info.audioCodec).toBe('aac');
      expect(info.frameCount).toBe(10);
      expect(info.duration).toBeCloseTo(1, 1);
    }
  });

  it('waits for drain when ffmpeg reads slower than frames come (write() === false)', async () => {
    // The realtime filter makes ffmpeg consume 10 frames/s; 230 KB frames overflow the 64 KiB pipe each time.
    const encoder = await encodeVideo({ out: join(dir, 'paced.mp4'), width: 320, height: 240, fps: 10, filter: 'realtime', tools });
    const frames = gradientFrames(8, 320, 240);
    const t0 = performance.now();
    for (const f of frames) await encoder.write(f);
    const writingMs = performance.now() - t0;
    await encoder.finish();
    // Had write() resolved without waiting, eight frames would be handed over in a few ms.
    expect(writingMs).toBeGreaterThan(350);
  });
});

describe('encodeVideo compositing in ffmpeg', () => {
  it('lays a low-resolution RGBA overlay over the original video without full-size pixels in JS', async () => {
    // ffmpeg -f lavfi -i color=c=gray:size=96x72:rate=15 -frames:v 30 -c:v libx264 -preset ultrafast -pix_fmt yuv420p grey.mp4
    const grey = join(dir, 'grey.mp4');
    await runFfmpeg({
      binary: tools.ffmpeg.path,
      args: ['-y', '-f', 'lavfi', '-i', 'color=c=gray:size=96x72:rate=15', '-frames:v', '30', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', grey],
    });
    const out = join(dir, 'overlay.mp4');
    const encoder = await encodeVideo({
      out,
      width: 6,
      height: 6,
      fps: 15,
      inputPixFmt: 'rgba',
      inputs: [{ input: grey }],
      filterComplex: '[0:v]scale=96:72[hm];[1:v][hm]overlay=format=auto:shortest=1[vout]',
      tools,
    });
    // Opaque red over the top half, transparent below.
    const overlay = new Uint8Array(6 * 6 * 4);
    for (let i = 0; i < 36; i++) [overlay[i * 4], overlay[i * 4 + 3]] = [255, i < 18 ? 255 : 0];
    for (let i = 0; i < 30; i++) await encoder.write(overlay);
    await encoder.finish();
    const info = await probeMedia(out, { tools, countFrames: 'always' });
    expect([info.width, info.height, info.frameCount]).toEqual([96, 72, 30]);
    const [frame] = await lastValueFrom(decodeFrames$(out, { tools, maxFrames: 1 }).pipe(toArray()));
    const at = (x: number, y: number) => [...frame.data.subarray((y * 96 + x) * 3, (y * 96 + x) * 3 + 3)];
    const [r, g, b] = at(48, 10);
    expect(r).toBeGreaterThan(230);
    expect(Math.max(g, b)).toBeLessThan(25);
    at(48, 60).forEach((c) => expect(Math.abs(c - 128)).toBeLessThan(10));
  });
});

describe('encodeMp4 operator', () => {
  it('encodes a decoded stream and emits one result when the file is in place', async () => {
    const src = join(dir, 'src.mp4');
    await runFfmpeg({
      binary: tools.ffmpeg.path,
      args: ['-y', '-f', 'lavfi', '-i', 'testsrc=size=96x72:rate=15', '-frames:v', '30', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', src],
    });
    const out = join(dir, 'piped.mp4');
    const written: number[] = [];
    const results = await lastValueFrom(
      decodeFrames$(src, { tools }).pipe(
        encodeMp4({ out, width: 96, height: 72, fps: 15, tools, onWritten: (n) => written.push(n) }),
        toArray(),
      ),
    );
    expect(results).toHaveLength(1);
    expect(results[0].frames).toBe(30);
    expect(written.at(-1)).toBe(30);
    const info = await probeMedia(out, { tools, countFrames: 'always' });
    expect(info.frameCount).toBe(30);
    expect(info.frameRate).toEqual({ num: 15, den: 1 });
  });

  it('aborts on a source error: the error passes through, no file and no child remain', async () => {
    const out = join(dir, 'failed.mp4');
    const source = concat(from(gradientFrames(5, 32, 32)), throwError(() => new Error('inference failed at frame 5')));
    await expect(lastValueFrom(source.pipe(encodeMp4({ out, width: 32, height: 32, fps: 10, tools })))).rejects.toThrow(
      'inference failed at frame 5',
    );
    // abort() runs in the teardown; give it the moment it needs to reap the child and delete the file.
    const t0 = performance.now();
    while ((activeFfmpegPids().length > 0 || (await readdir(dir)).length > 0) && performance.now() - t0 < 3000) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(activeFfmpegPids()).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  it('passes Frame objects through, checking their size', async () => {
    const out = join(dir, 'frames.mp4');
    const frames$ = from(gradientFrames(4, 32, 32)).pipe(map((data) => ({ data, width: 32, height: 32 })));
    const [result] = await lastValueFrom(frames$.pipe(encodeMp4({ out, width: 32, height: 32, fps: 4, tools }), toArray()));
    expect(result.frames).toBe(4);
  });
});

describe.skipIf(!fixturesPresent)('encode round trip on the fixture .mov (H.264 + AAC)', () => {
  it('N decoded frames in gives N frames out at the same size and rate, with the AAC track copied', async () => {
    const mov = fixture('video', 'node-opencv_motion.mov');
    const info = await probeMedia(mov, { tools });
    const n = 45;
    const frames = await lastValueFrom(decodeFrames$(mov, { tools, maxFrames: n, probe: info }).pipe(toArray()));
    expect(frames).toHaveLength(n);
    const out = join(dir, 'motion.mp4');
    const encoder = await encodeVideo({
      out,
      width: info.displayWidth,
      height: info.displayHeight,
      fps: info.frameRate,
      audioFrom: { input: mov, durationSeconds: n / info.fps },
      tools,
    });
    for (const f of frames) await encoder.write(f.data);
    const result = await encoder.finish();
    expect(result.audio).toBe('copy');
    const back = await probeMedia(out, { tools, countFrames: 'always' });
    expect(back).toMatchObject({ width: 568, height: 320, frameCount: n, hasAudio: true, audioCodec: 'aac' });
    expect(back.frameRate).toEqual(info.frameRate);
    expect(back.duration).toBeCloseTo(n / info.fps, 1);
    expect(await readdir(dir)).toEqual(['motion.mp4']);
  });
});
