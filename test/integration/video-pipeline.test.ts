/**
 * The offline video pipeline end to end with real ffmpeg and real engines: the fixture videos (three
 * codecs, one with audio) and generated clips, corrupt and truncated inputs, teardown.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { take, toArray, lastValueFrom } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { load, type CamModel } from '../../models/index.ts';
import {
  activeFfmpegPids,
  annotateVideo,
  composeVideoPipeline,
  FfmpegError,
  InterruptedError,
  probeMedia,
  resolveVideoConfig,
  settleVideoConfig,
  type FfmpegTools,
  type FrameLine,
  type MediaInfo,
} from '../../pipelines/index.ts';
import { DARKNET_TINY, fixture, fixturesPresent } from '../helpers/fixtures.ts';
import { makeClip, readJsonLines, waitGone, writeRandomOnnx } from './video-helpers.ts';

let dir: string;
let tools: FfmpegTools;
let onnx: CamModel;
/** 320x240 testsrc2 for 2 s, then 2 s of a different picture (a hard cut at frame 50), 25 fps, with a tone. */
let cutClip: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-video-'));
  tools = await testFfmpeg();
  onnx = await load(await writeRandomOnnx(dir), { threads: 1 });
  // ffmpeg -f lavfi -i testsrc2=size=320x240:rate=25:duration=2 -f lavfi -i mandelbrot=size=320x240:rate=25
  //   -f lavfi -i sine=frequency=440:duration=4 -filter_complex '[0:v][1:v]concat...' ...
  cutClip = await makeClip(tools, dir, 'cut.mp4', [
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=2',
    '-f', 'lavfi', '-i', 'mandelbrot=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:duration=4',
    '-filter_complex', '[1:v]trim=end_frame=50,setpts=PTS-STARTPTS[m];[0:v][m]concat=n=2:v=1:a=0[v]',
    '-map', '[v]', '-map', '2:a', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest',
  ]);
});

afterAll(async () => {
  await onnx?.dispose();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  // No test may leave an ffmpeg child behind.
  for (const pid of activeFfmpegPids()) expect(await waitGone(pid, 5000)).toBe(true);
  // The registry forgets a child once its pipes have closed, just after it exits.
  const t0 = Date.now();
  while (activeFfmpegPids().length > 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
  expect(activeFfmpegPids()).toEqual([]);
});

/**
 * An FfmpegError carries ffmpeg's own words, whatever the build: its stderr lines are not empty and the
 * message quotes the last of them (each build words a damaged packet differently).
 */
function expectFfmpegWords(err: FfmpegError): void {
  expect(err.stderr.length).toBeGreaterThan(0);
  expect(err.message).toContain(err.stderr.at(-1)!);
}

/** Files in `folder` other than `keep`. */
function leftovers(folder: string, keep: string[] = []): string[] {
  return readdirSync(folder).filter((f) => !keep.includes(f));
}

async function fresh(name: string): Promise<string> {
  const d = join(dir, name);
  await rm(d, { recursive: true, force: true });
  await import('node:fs/promises').then((fs) => fs.mkdir(d));
  return d;
}

/** Output and input agree on frame count (by decoding), rate and duration (within one frame period). */
async function expectSameTiming(input: MediaInfo, outPath: string, frames = input.frameCount!): Promise<MediaInfo> {
  const out = await probeMedia(outPath, { tools, countFrames: 'always' });
  expect(out.frameCount).toBe(frames);
  const expectedSeconds = frames === input.frameCount ? input.duration! : frames / input.fps;
  // Every ffmpeg: ffmpegs before 5.1 left the last frame without a duration, one frame period short, until
  // the encoder mended the MP4 (ffmpeg/mp4-last-duration.ts). The average rate is frames over duration, so
  // a last frame the input's edit list cuts short (node-opencv_motion.mov's lasts 10 ms) moves it a little.
  expect(Math.abs(out.duration! - expectedSeconds)).toBeLessThan(1 / input.fps);
  expect(Math.abs(out.fps - input.fps)).toBeLessThan(input.fps / frames);
  expect(out.codec).toBe('h264');
  expect([out.displayWidth, out.displayHeight]).toEqual([input.displayWidth + (input.displayWidth % 2), input.displayHeight + (input.displayHeight % 2)]);
  return out;
}

describe.skipIf(!fixturesPresent)('annotateVideo on the fixture videos (random ONNX model, whole clips)', () => {
  for (const [name, audio] of [
    ['node-opencv_motion.mov', true],
    ['kivy_cityCC0.mpg', false],
    ['opencv_vtest.avi', false],
  ] as const) {
    it(`${name}: every frame out, same rate and duration, one JSON line per frame${audio ? ', audio kept' : ''}`, async () => {
      const input = fixture('video', name);
      const d = await fresh(name);
      const info = await probeMedia(input, { tools, countFrames: 'always' });
      const report = await annotateVideo(onnx, input, {
        out: join(d, 'out.mp4'),
        json: join(d, 'frames.jsonl'),
        tools,
        encode: { preset: 'ultrafast' },
        infer: { batchFrames: 4 },
      });
      expect(report.frames).toBe(info.frameCount);
      const out = await expectSameTiming(info, report.out);
      expect(out.hasAudio).toBe(audio);
      if (audio) expect(out.audioCodec).toBe(info.audioCodec);
      const lines = readJsonLines<FrameLine>(join(d, 'frames.jsonl'));
      expect(lines.length).toBe(info.frameCount);
      lines.forEach((l, i) => {
        expect(l.index).toBe(i);
        expect(l.top.length).toBe(5);
        for (const t of l.top) {
          expect(t.score).toBeGreaterThanOrEqual(0);
          expect(t.score).toBeLessThanOrEqual(1);
          if (t.box) {
            expect(t.box[0]).toBeGreaterThanOrEqual(0);
            expect(t.box[2]).toBeLessThanOrEqual(info.displayWidth);
          }
        }
      });
      // Timestamps: increasing, starting at 0, one frame period apart for these constant-rate files.
      expect(lines[0].pts).toBe(0);
      for (let i = 1; i < lines.length; i++) expect(lines[i].pts - lines[i - 1].pts).toBeCloseTo(1 / info.fps, 3);
      const manifest = JSON.parse(readFileSync(join(d, 'out.mp4.manifest.json'), 'utf8'));
      expect(manifest.model.engine).toBe('onnx');
      expect(manifest.result.frames).toBe(info.frameCount);
      expect(manifest.versions.engine.version).toMatch(/^\d+\.\d+/);
      expect(leftovers(d).sort()).toEqual(['frames.jsonl', 'out.mp4', 'out.mp4.manifest.json']);
    });
  }

  it('with the real Darknet model on the first 2.4 s of the MPEG-2 clip: same frames, labels, boxes in frame pixels', async () => {
    const input = fixture('video', 'kivy_cityCC0.mpg');
    const d = await fresh('darknet');
    const model = await load(DARKNET_TINY, { config: { labels: 'imagenet1k_darknet_shortnames.txt' } });
    try {
      const info = await probeMedia(input, { tools, countFrames: 'always' });
      const report = await annotateVideo(model, input, { out: join(d, 'out.mp4'), json: join(d, 'f.jsonl'), tools, decode: { maxFrames: 60 }, infer: { batchFrames: 1 } });
      expect(report.frames).toBe(60);
      await expectSameTiming(info, report.out, 60);
      const lines = readJsonLines<FrameLine>(join(d, 'f.jsonl'));
      expect(lines.length).toBe(60);
      expect(lines[59].pts).toBeCloseTo(59 / 25, 6);
      // Real ImageNet labels, and boxes inside the 720x405 frame.
      expect(lines[10].top[0].label).not.toMatch(/^class_/);
      const box = lines[30].top[0].box!;
      expect(box[2]).toBeGreaterThan(box[0]);
      expect(box[2]).toBeLessThanOrEqual(720);
      expect(box[3]).toBeLessThanOrEqual(405);
    } finally {
      await model.dispose();
    }
  });
});

describe('annotateVideo on generated clips', () => {
  it('finds the hard cut of a generated clip at its frame, keeps the audio, and writes every frame', async () => {
    const d = await fresh('cut');
    const info = await probeMedia(cutClip, { tools, countFrames: 'always' });
    expect(info.frameCount).toBe(100);
    const report = await annotateVideo(onnx, cutClip, { out: join(d, 'out.mp4'), json: join(d, 'f.jsonl'), tools, encode: { preset: 'ultrafast' } });
    const out = await expectSameTiming(info, report.out);
    expect(out.hasAudio).toBe(true);
    const lines = readJsonLines<FrameLine>(join(d, 'f.jsonl'));
    expect(lines.filter((l) => l.cut).map((l) => l.index)).toEqual([50]);
    expect(report.smooth.cuts).toBe(1);
  });

  it('infers every n-th frame with everyFrames and still writes every frame', async () => {
    const d = await fresh('every');
    const report = await annotateVideo(onnx, cutClip, { out: join(d, 'out.mp4'), json: join(d, 'f.jsonl'), tools, encode: { preset: 'ultrafast' }, infer: { everyFrames: 3, batchFrames: 2 } });
    expect(report.frames).toBe(100);
    expect(report.inferredFrames).toBe(34);
    const lines = readJsonLines<FrameLine>(join(d, 'f.jsonl'));
    expect(lines.filter((l) => l.inferred).map((l) => l.index)).toEqual(Array.from({ length: 34 }, (_, i) => 3 * i));
    expect(lines[4].top).toEqual(lines[3].top);
  });

  it('smoothing lowers the flicker figure on the same clip', async () => {
    const d = await fresh('flicker');
    const run = (pastWeight: number) =>
      annotateVideo(onnx, cutClip, { out: join(d, `s${pastWeight}.mp4`), manifest: false, tools, encode: { preset: 'ultrafast' }, smooth: { pastWeight } });
    const off = await run(0);
    const on = await run(0.8);
    expect(on.smooth.flicker).toBeLessThan(off.smooth.flicker);
  });
});

describe('failures leave nothing behind', () => {
  it('a corrupt file: FfmpegError naming the file and quoting ffmpeg, no output', async () => {
    const d = await fresh('corrupt');
    const corrupt = join(d, 'corrupt.mp4');
    await writeFile(corrupt, Buffer.from(Array.from({ length: 60_000 }, (_, i) => (i * 2654435761 + 99) >>> 24)));
    const err = await annotateVideo(onnx, corrupt, { out: join(d, 'out.mp4'), json: join(d, 'f.jsonl'), tools }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FfmpegError);
    expect((err as Error).message).toContain(corrupt);
    expect((err as Error).message).toMatch(/Invalid data found when processing input|moov atom not found/);
    expect(leftovers(d)).toEqual(['corrupt.mp4']);
  });

  it('a truncated AVI: strict decoding fails with ffmpeg\'s words, no output (partial files deleted)', async () => {
    const d = await fresh('truncated');
    const whole = await readFile(fixture('video', 'opencv_vtest.avi'));
    const truncated = join(d, 'truncated.avi');
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length * 0.3)));
    const err = await annotateVideo(onnx, truncated, { out: join(d, 'out.mp4'), json: join(d, 'f.jsonl'), tools, encode: { preset: 'ultrafast' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FfmpegError);
    expect((err as Error).message).toContain(truncated);
    expectFfmpegWords(err as FfmpegError);
    // annotateVideo rejects only once the encoder is gone and its temporary file deleted.
    expect(leftovers(d)).toEqual(['truncated.avi']);
  });

  it('a truncated MPEG-2 stream (which ffmpeg decodes "cleanly" to a shorter end): fails on the damage it reports', async () => {
    const d = await fresh('truncated-mpg');
    const whole = await readFile(fixture('video', 'kivy_cityCC0.mpg'));
    const truncated = join(d, 'truncated.mpg');
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length * 0.5)));
    const err = await annotateVideo(onnx, truncated, { out: join(d, 'out.mp4'), json: join(d, 'f.jsonl'), tools, encode: { preset: 'ultrafast' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FfmpegError);
    expect((err as Error).message).toContain(truncated);
    expectFfmpegWords(err as FfmpegError);
    expect(leftovers(d)).toEqual(['truncated.mpg']);
    // Lenient decoding gives the shorter video instead.
    const report = await annotateVideo(onnx, truncated, { out: join(d, 'out.mp4'), manifest: false, tools, encode: { preset: 'ultrafast' }, decode: { strict: false } });
    expect(report.frames).toBeGreaterThan(50);
    expect(report.frames).toBeLessThan(190);
  });

  it('rejects an output in a missing folder and an output that is the input, before starting anything', async () => {
    expect(() => resolveVideoConfig(cutClip, { out: join(dir, 'nope', 'x.mp4') }, onnx)).toThrow(/folder .*nope.* does not exist/);
    expect(() => resolveVideoConfig(cutClip, { out: cutClip }, onnx)).toThrow(/is the input itself/);
    expect(() => resolveVideoConfig('ftp://example.com/a.mp4', { out: join(dir, 'x.mp4') }, onnx)).toThrow(/scheme 'ftp:'/);
    expect(() => resolveVideoConfig(cutClip, { out: join(dir, 'x.mp4'), infer: { topK: 13 } }, onnx)).toThrow(/topK must be an integer in \[1, 12\]/);
  });
});

describe('teardown', () => {
  it('unsubscribing early ends both ffmpeg children and deletes the temporary outputs', async () => {
    const d = await fresh('unsub');
    const { config } = await settleVideoConfig(onnx, resolveVideoConfig(cutClip, { out: join(d, 'out.mp4'), json: join(d, 'f.jsonl'), infer: { batchFrames: 1 }, queue: { maxQueueFrames: 2 } }, onnx));
    const info = await probeMedia(cutClip, { tools });
    const pids: number[] = [];
    const aborts: Array<Promise<void>> = [];
    const frames = await lastValueFrom(
      composeVideoPipeline(onnx, info, tools, config, {
        onDecodeStart: (h) => pids.push(h.pid!),
        onEncodeStart: (e) => pids.push(e.pid!),
        onEncodeAbort: (done) => aborts.push(done),
      }).pipe(take(5), toArray()),
    );
    expect(frames.map((f) => f.index)).toEqual([0, 1, 2, 3, 4]);
    expect(pids.length).toBe(2);
    expect(aborts.length).toBeGreaterThan(0);
    for (const pid of pids) expect(await waitGone(pid, 5000)).toBe(true);
    await Promise.all(aborts);
    expect(leftovers(d)).toEqual([]);
  });

  it('an aborted signal stops the run with InterruptedError and leaves no output', async () => {
    const d = await fresh('abort');
    const controller = new AbortController();
    const err = await annotateVideo(
      onnx,
      cutClip,
      { out: join(d, 'out.mp4'), json: join(d, 'f.jsonl'), tools, infer: { batchFrames: 1 } },
      { signal: controller.signal, onProgress: (p) => p.frames === 10 && controller.abort() },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    // Rejected only after teardown: nothing is left at that point.
    expect(leftovers(d)).toEqual([]);
    expect(activeFfmpegPids()).toEqual([]);
    expect(existsSync(join(d, 'out.mp4'))).toBe(false);
  });
});
