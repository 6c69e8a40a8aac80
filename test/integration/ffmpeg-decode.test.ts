import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BehaviorSubject, lastValueFrom, take, tap, toArray, type Subscription } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { ConfigError } from '../../models/index.ts';
import {
  activeFfmpegPids,
  decodeFrames,
  decodeFrames$,
  FfmpegError,
  probeMedia,
  runFfmpeg,
  shutdownFfmpeg,
  type DecodeConfig,
  type DecodedFrame,
  type DecodeHandle,
  type FfmpegTools,
} from '../../pipelines/ffmpeg/index.ts';
import { fixture, fixturesPresent } from '../helpers/fixtures.ts';
import { alive, msUntilGone } from '../helpers/processes.ts';

let dir: string;
let tools: FfmpegTools;
/** 160x120, 25 fps, 50 frames, H.264. */
let clip: string;
/** 320x240, 25 fps, 400 frames, H.264: long enough that a run is still going when a test stops it. */
let longClip: string;

async function makeClip(name: string, args: string[]): Promise<string> {
  const out = join(dir, name);
  await runFfmpeg({ binary: tools.ffmpeg.path, args: ['-y', ...args, out], timeoutMs: 30_000 });
  return out;
}

/** ms until the ffmpeg child `pid` has exited and left the wrapper's registry, or -1 after `limitMs`. */
function waitGone(pid: number, limitMs = 5000): Promise<number> {
  return msUntilGone(pid, { limitMs, tracked: activeFfmpegPids });
}

/** Decodes to an array, capturing the handle the run reports. */
async function decodeAll(input: string, config: DecodeConfig = {}): Promise<{ frames: DecodedFrame[]; handle: DecodeHandle }> {
  let handle: DecodeHandle | undefined;
  const frames = await lastValueFrom(decodeFrames$(input, { tools, ...config, onStart: (h) => (handle = h) }).pipe(toArray()));
  return { frames, handle: handle! };
}

function expectIncreasing(frames: DecodedFrame[]): void {
  for (let i = 1; i < frames.length; i++) expect(frames[i].pts).toBeGreaterThan(frames[i - 1].pts);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-decode-'));
  tools = await testFfmpeg();
  // ffmpeg -f lavfi -i testsrc=size=160x120:rate=25 -frames:v 50 -c:v libx264 -preset ultrafast -pix_fmt yuv420p clip.mp4
  clip = await makeClip('clip.mp4', [
    '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-frames:v', '50', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
  ]);
  longClip = await makeClip('long.mp4', [
    '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-frames:v', '400', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
  ]);
});

afterEach(async () => {
  // Every test must leave no child behind; this also catches one that leaked.
  const left = activeFfmpegPids();
  await shutdownFfmpeg();
  expect(left).toEqual([]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('decodeFrames$ on a generated clip', () => {
  it('emits every frame, each exactly w*h*3 bytes, with the decoder timestamps', async () => {
    const info = await probeMedia(clip, { tools, countFrames: 'always' });
    const { frames, handle } = await decodeAll(clip, { width: 64, height: 48 });
    expect(frames).toHaveLength(info.frameCount!);
    frames.forEach((f, i) => {
      expect(f.index).toBe(i);
      expect(f.data.byteLength).toBe(64 * 48 * 3);
      expect([f.width, f.height, f.pixFmt]).toEqual([64, 48, 'rgb24']);
      // Exact pts (integer pts x time base), not the rounded pts_time.
      expect(f.pts).toBeCloseTo(i / 25, 9);
    });
    // testsrc draws a moving pattern: frames differ.
    expect(Buffer.from(frames[0].data).equals(Buffer.from(frames[10].data))).toBe(false);
    expect(await waitGone(handle.pid!)).toBeGreaterThanOrEqual(0);
  });

  it('is cold: nothing runs before subscription, and each subscription runs its own ffmpeg', async () => {
    const pids: number[] = [];
    const frames$ = decodeFrames$(clip, { tools, width: 32, height: 24, onStart: (h) => pids.push(h.pid!) });
    await new Promise((r) => setTimeout(r, 100));
    expect(pids).toEqual([]);
    const [a, b] = await Promise.all([lastValueFrom(frames$.pipe(toArray())), lastValueFrom(frames$.pipe(toArray()))]);
    expect(a.length).toBe(50);
    expect(b.length).toBe(50);
    expect(new Set(pids).size).toBe(2);
  });

  it('delivers a model-size and a full-size image of each frame from one run', async () => {
    const { frames } = await decodeAll(clip, { width: 32, height: 32, extraOutputs: [{}], maxFrames: 10 });
    const full = (await decodeAll(clip, { maxFrames: 10 })).frames;
    expect(frames).toHaveLength(10);
    frames.forEach((f, i) => {
      expect(f.data.byteLength).toBe(32 * 32 * 3);
      expect(f.extra).toHaveLength(1);
      expect([f.extra[0].width, f.extra[0].height]).toEqual([160, 120]);
      // The full-size branch is the same pixels a full-size-only run gives.
      expect(Buffer.from(f.extra[0].data).equals(Buffer.from(full[i].data))).toBe(true);
      expect(f.pts).toBe(full[i].pts);
    });
  });

  it('resamples with fps and seeks with startSeconds, timestamps following', async () => {
    const resampled = (await decodeAll(clip, { width: 16, height: 16, fps: 10 })).frames;
    expect(resampled).toHaveLength(20);
    resampled.forEach((f, i) => expect(f.pts).toBeCloseTo(i * 0.1, 6));

    const seeked = (await decodeAll(clip, { width: 16, height: 16, startSeconds: 1 })).frames;
    expect(seeked).toHaveLength(25);
    expect(seeked[0].pts).toBeCloseTo(1, 6);
    expectIncreasing(seeked);

    const byRate = (await decodeAll(clip, { width: 16, height: 16, timestamps: 'rate', maxFrames: 5 })).frames;
    expect(byRate.map((f) => f.pts)).toEqual([0, 0.04, 0.08, 0.12, 0.16]);
  });

  it('pulls frames on demand through the async iterator and ends the child on break', async () => {
    let pid = 0;
    const seen: number[] = [];
    for await (const frame of decodeFrames(longClip, { tools, width: 32, height: 32, onStart: (h) => (pid = h.pid!) })) {
      seen.push(frame.index);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual([0, 1, 2]);
    expect(await waitGone(pid)).toBeGreaterThanOrEqual(0);

    let count = 0;
    for await (const frame of decodeFrames(clip, { tools, width: 8, height: 8 })) count += frame.data.byteLength === 192 ? 1 : 0;
    expect(count).toBe(50);
  });
});

describe('decodeFrames$ teardown', () => {
  it('ends the ffmpeg child after an early unsubscribe (take(5))', async () => {
    let handle: DecodeHandle | undefined;
    let runningAtFifth = false;
    const frames = await lastValueFrom(
      decodeFrames$(longClip, { tools, onStart: (h) => (handle = h) }).pipe(
        take(5),
        tap((f) => {
          if (f.index === 4) runningAtFifth = alive(handle!.pid!);
        }),
        toArray(),
      ),
    );
    expect(frames).toHaveLength(5);
    // The run was cut short, not finished: 400 frames exist and ffmpeg was still alive.
    expect(runningAtFifth).toBe(true);
    const pid = handle!.pid!;
    const goneAfterMs = await waitGone(pid);
    expect(goneAfterMs).toBeGreaterThanOrEqual(0);
    // Closing the pipes makes ffmpeg quit on SIGTERM/EPIPE well before the 2 s SIGKILL grace.
    expect(goneAfterMs).toBeLessThan(1900);
  });

  it('ends a child that is blocked on a full pipe when unsubscribed', async () => {
    let handle: DecodeHandle | undefined;
    const got: DecodedFrame[] = [];
    // Two credits, never more: ffmpeg fills the buffers and blocks on its write.
    const sub: Subscription = decodeFrames$(longClip, {
      tools,
      credits$: new BehaviorSubject(2),
      maxBufferedFrames: 4,
      onStart: (h) => (handle = h),
    }).subscribe((f) => got.push(f));
    // Until ffmpeg runs (after a probe, slow on a busy machine) and the pipes are paused: no fixed sleep.
    const t0 = performance.now();
    while (!(handle?.stats().paused && got.length === 2) && performance.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 20));
    const stats = handle!.stats();
    expect(got).toHaveLength(2);
    expect(stats.paused).toBe(true);
    expect(alive(handle!.pid!)).toBe(true);
    sub.unsubscribe();
    expect(await waitGone(handle!.pid!)).toBeGreaterThanOrEqual(0);
  });
});

describe('decodeFrames$ teardown before ffmpeg starts', () => {
  it('ends the probe child at once when unsubscribed while it probes', async () => {
    // A FIFO nobody writes to: ffprobe blocks opening it, as on a slow disk or a stalled stream.
    const fifo = join(dir, 'stalled.mp4');
    execFileSync('mkfifo', [fifo]);
    const sub = decodeFrames$(fifo, { tools }).subscribe({ error: () => {} });
    const t0 = performance.now();
    while (activeFfmpegPids().length === 0 && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
    const [probePid] = activeFfmpegPids();
    expect(probePid).toBeGreaterThan(0);
    sub.unsubscribe();
    expect(await waitGone(probePid, 4000)).toBeGreaterThanOrEqual(0);
  });
});

describe('decodeFrames$ backpressure', () => {
  it('keeps JS-side buffering bounded and stops ffmpeg while a slow consumer lags', async () => {
    const frameBytes = 320 * 240 * 3;
    const maxBufferedFrames = 4;
    const credits = new BehaviorSubject(1);
    let handle: DecodeHandle | undefined;
    let maxBuffered = 0;
    let maxAhead = 0;
    const consumed: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const sub = decodeFrames$(longClip, { tools, credits$: credits, maxBufferedFrames, onStart: (h) => (handle = h) }).subscribe({
        next: (frame) => {
          consumed.push(frame.index);
          // A consumer that takes 25 ms per frame, ten times slower than ffmpeg decodes this clip.
          setTimeout(() => {
            const s = handle!.stats();
            maxBuffered = Math.max(maxBuffered, s.bufferedBytes);
            maxAhead = Math.max(maxAhead, s.framesDecoded - s.framesEmitted);
            if (consumed.length === 30) {
              sub.unsubscribe();
              resolve();
            } else credits.next(1);
          }, 25);
        },
        error: reject,
      });
    });
    // Waiting frames plus one partial frame plus the paused pipes' own buffers (64 KiB each, twice).
    const bound = (maxBufferedFrames + 1) * frameBytes + 256 * 1024;
    expect(maxBuffered).toBeLessThan(bound);
    // ffmpeg did not race ahead: it decoded only a few frames beyond what was consumed (400 exist).
    expect(maxAhead).toBeLessThan(maxBufferedFrames + 12);
    expect(handle!.stats().framesDecoded).toBeLessThan(30 + maxBufferedFrames + 12);
    expect(await waitGone(handle!.pid!)).toBeGreaterThanOrEqual(0);
  });
});

describe('decodeFrames$ on bad input', () => {
  it('fails on a corrupt file with an FfmpegError naming it and quoting ffmpeg, leaving no child', async () => {
    const corrupt = join(dir, 'random-bytes.mp4');
    await writeFile(corrupt, Buffer.from(Array.from({ length: 80_000 }, (_, i) => (i * 2654435761 + 12345) >>> 24)));
    let pid = 0;
    const err = await lastValueFrom(decodeFrames$(corrupt, { tools, width: 32, height: 32, onStart: (h) => (pid = h.pid!) })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FfmpegError);
    const e = err as FfmpegError;
    expect(e.message).toContain('random-bytes.mp4');
    expect(e.message).toMatch(/Invalid data found when processing input/);
    expect(e.exitCode).not.toBe(0);
    expect(e.file).toBe(corrupt);
    expect(e.stderr.length).toBeGreaterThan(0);
    expect(await waitGone(pid)).toBeGreaterThanOrEqual(0);
  });

  it('fails on a missing file with the name and "No such file or directory"', async () => {
    const missing = join(dir, 'nowhere.mp4');
    await expect(lastValueFrom(decodeFrames$(missing, { tools, width: 8, height: 8 }))).rejects.toThrow(/nowhere\.mp4.*No such file or directory/);
  });

  it('fails on an MP4 truncated to 30% (its index is at the end): "moov atom not found"', async () => {
    const whole = await readFile(clip);
    const truncated = join(dir, 'truncated.mp4');
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length * 0.3)));
    const err = await lastValueFrom(decodeFrames$(truncated, { tools, width: 8, height: 8 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FfmpegError);
    expect((err as Error).message).toMatch(/truncated\.mp4.*moov atom not found/);
  });

  it('decodes a truncated MPEG-2 stream cleanly to a shorter end, reporting the damage as diagnostics', async () => {
    // ffmpeg -f lavfi -i testsrc=size=160x120:rate=25 -frames:v 100 -c:v mpeg2video -q:v 4 gen.mpg
    const mpg = await makeClip('gen.mpg', ['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-frames:v', '100', '-c:v', 'mpeg2video', '-q:v', '4']);
    const whole = await readFile(mpg);
    const truncated = join(dir, 'truncated.mpg');
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length * 0.3)));
    const diagnostics: string[] = [];
    const { frames } = await decodeAll(truncated, { width: 40, height: 30, onDiagnostic: (m) => diagnostics.push(m) });
    // ffmpeg exits 0 here: the demuxer stops at the cut and the decoder conceals the damaged picture.
    expect(frames.length).toBeGreaterThan(10);
    expect(frames.length).toBeLessThan(100);
    frames.forEach((f) => expect(f.data.byteLength).toBe(40 * 30 * 3));
    expectIncreasing(frames);
    expect(diagnostics.join('\n')).toMatch(/mpeg2video/);
  });

  it('turns a damaged packet into an FfmpegError in strict mode (-xerror)', async () => {
    // ffmpeg -f lavfi -i testsrc=size=160x120:rate=25 -frames:v 100 -c:v msmpeg4v3 gen.avi
    const avi = await makeClip('gen.avi', ['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-frames:v', '100', '-c:v', 'msmpeg4v3']);
    const whole = await readFile(avi);
    const truncated = join(dir, 'truncated.avi');
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length * 0.3)));
    const lenient = (await decodeAll(truncated, { width: 16, height: 16 })).frames;
    expect(lenient.length).toBeGreaterThan(10);
    expect(lenient.length).toBeLessThan(100);
    const err = await lastValueFrom(decodeFrames$(truncated, { tools, width: 16, height: 16, strict: true })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FfmpegError);
    expect((err as Error).message).toMatch(/truncated\.avi.*corrupt input packet/);
  });

  it('rejects a scheme outside the whitelist with a ConfigError and starts nothing', async () => {
    let started = false;
    const err = await lastValueFrom(decodeFrames$('ftp://example.com/a.mp4', { tools, onStart: () => (started = true) })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain("'ftp:'");
    expect(started).toBe(false);
  });
});

describe.skipIf(!fixturesPresent)('decodeFrames$ on the fixture videos', () => {
  for (const name of ['kivy_cityCC0.mpg', 'node-opencv_motion.mov', 'opencv_vtest.avi']) {
    it(`decodes every frame of ${name} at model size, as many as the probe counts`, async () => {
      const path = fixture('video', name);
      const info = await probeMedia(path, { tools, countFrames: 'always' });
      const { frames, handle } = await decodeAll(path, { width: 112, height: 112, scaleFlags: 'area' });
      expect(frames).toHaveLength(info.frameCount!);
      frames.forEach((f) => expect(f.data.byteLength).toBe(112 * 112 * 3));
      expectIncreasing(frames);
      expect(frames[0].pts).toBeCloseTo(0, 2);
      expect(frames.at(-1)!.pts).toBeCloseTo((info.frameCount! - 1) / info.fps, 2);
      expect(await waitGone(handle.pid!)).toBeGreaterThanOrEqual(0);
    });
  }

  it('decodes full-size frames at the probed display size', async () => {
    const path = fixture('video', 'node-opencv_motion.mov');
    const { frames } = await decodeAll(path, { maxFrames: 3 });
    expect(frames.map((f) => [f.width, f.height, f.data.byteLength])).toEqual(Array(3).fill([568, 320, 568 * 320 * 3]));
  });
});
