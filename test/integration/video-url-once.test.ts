/**
 * A URL is read once (issue 16, item 6): many IP cameras serve one client at a time, as an ffmpeg
 * `-listen 1` HTTP server does. The decoding ffmpeg is the only client: its own listing is the probe, it
 * feeds the model-size frames and the full-size frames and audio the compositor encodes. Frame n of the
 * served clip has luma 8n, so each frame's place can be read back from its pixels.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { load, type CamModel } from '../../models/index.ts';
import {
  activeFfmpegPids,
  annotateVideo,
  InterruptedError,
  probeMedia,
  type FfmpegTools,
  type FrameLine,
} from '../../pipelines/index.ts';
import { decodeFrames$, encodeVideo, spawnFfmpeg, type FfmpegProcess } from '../../pipelines/ffmpeg/index.ts';
import { alive, expectBlocksOnTheirFrames, writeBlocks, makeNumberedClip, meanOf, numberedLevel, readJsonLines, waitGone, writeRandomOnnx } from './video-helpers.ts';

/** Frames of the served clip (asked 30; counted, as an ffmpeg may end it a frame early). */
let FRAMES = 30;
let dir: string;
let tools: FfmpegTools;
let onnx: CamModel;
/** MPEG-TS, 160x120 at 25 fps, frame n of luma 8n, with an AAC tone. */
let clip: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-url-once-'));
  tools = await testFfmpeg();
  onnx = await load(await writeRandomOnnx(dir), { threads: 1 });
  ({ clip, frames: FRAMES } = await makeNumberedClip(tools, dir, FRAMES));
  expect(FRAMES).toBeGreaterThanOrEqual(29);
});

afterAll(async () => {
  await onnx?.dispose();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const pid of activeFfmpegPids()) expect(await waitGone(pid, 5000)).toBe(true);
});

/** A loopback port nobody listens on now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** True once a socket listens on 127.0.0.1:`port` (from /proc/net/tcp: no connection is made). */
function listening(port: number): boolean {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .some((line) => {
      const f = line.trim().split(/\s+/);
      return f[1] === hex && f[3] === '0A';
    });
}

/**
 * An ffmpeg serving `clip` over HTTP to exactly one client (`-listen 1`), as a camera that takes one
 * connection; resolves once it listens. A second client would be refused.
 */
async function singleClientServer(): Promise<{ url: string; server: FfmpegProcess }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/cam.ts`;
  const server = spawnFfmpeg({ binary: tools.ffmpeg.path, args: ['-re', '-i', clip, '-c', 'copy', '-f', 'mpegts', '-listen', '1', url], file: url });
  const t0 = Date.now();
  // Waits for a state of the system (the listening socket), checked every 20 ms.
  while (!listening(port)) {
    if (server.exited) throw new Error(`the test server ended: ${server.stderrTail().join(' | ')}`);
    if (Date.now() - t0 > 60_000) throw new Error('the test server did not listen within 60 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  return { url, server };
}

const fullRange = numberedLevel;
const mean = meanOf;

describe('a single-client HTTP source is read once', () => {
  it('annotateVideo: every served frame decoded, annotated and encoded in place, audio kept; the server served one client', async () => {
    const { url, server } = await singleClientServer();
    const out = join(dir, 'url.mp4');
    const json = join(dir, 'url.jsonl');
    const modelMeans: number[] = [];
    const report = await annotateVideo(
      onnx,
      url,
      // No heat, labels or box: the output frames are the served frames, so their order can be read back.
      { out, json, tools, manifest: false, overlay: { alpha: 0, labels: false, box: false }, encode: { preset: 'ultrafast' }, infer: { batchFrames: 4 } },
      { onFrame: (f) => modelMeans.push(mean(f.pixels.data)) },
    );
    await server.done;
    expect(report.frames).toBe(FRAMES);
    expect(report.probe.prober).toBe('ffmpeg');
    expect([report.probe.displayWidth, report.probe.displayHeight]).toEqual([160, 120]);
    // The model saw frame n as frame n (rgb24 of a grey frame: every channel is the luma, full range).
    modelMeans.forEach((m, n) => expect(Math.abs(m - fullRange(n)), `model frame ${n}: ${m}`).toBeLessThan(6));
    expect(readJsonLines<FrameLine>(json).length).toBe(FRAMES);
    const info = await probeMedia(out, { tools, countFrames: 'always' });
    expect(info.frameCount).toBe(FRAMES);
    expect(info.audioCodec).toBe('aac');
    const outFrames = await lastValueFrom(decodeFrames$(out, { tools, width: 16, height: 12, pixFmt: 'gray' }).pipe(toArray()));
    expect(outFrames.length).toBe(FRAMES);
    outFrames.forEach((f, n) => expect(Math.abs(mean(f.data) - fullRange(n)), `output frame ${n}: ${mean(f.data)}`).toBeLessThan(6));
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('decode + timed compositor: each overlay lands on the frame it was made from', async () => {
    const { url, server } = await singleClientServer();
    const out = join(dir, 'pairs.mp4');
    let resolveBase!: (r: Readable) => void;
    const base = new Promise<Readable>((r) => (resolveBase = r));
    const frames$ = decodeFrames$(url, {
      tools,
      width: 16,
      height: 12,
      pixFmt: 'gray',
      passthrough: { audio: 'none' },
      onStart: (h) => resolveBase(h.passthrough!),
    });
    // The overlay: an opaque 80x120 block on the left, as bright as the model-size frame it was made from.
    const W = 160;
    const H = 120;
    const encoder = base.then((stream) =>
      encodeVideo({
        out,
        width: 80,
        height: H,
        fps: 25,
        inputPixFmt: 'rgba',
        frameTimestamps: true,
        inputs: [{ input: url, stream, options: ['-f', 'nut'] }],
        filterComplex: '[1:v:0][0:v]overlay=format=yuv420[vout]',
        preset: 'ultrafast',
        tools,
      }),
    );
    await writeBlocks(frames$, encoder, H);
    await server.done;
    await expectBlocksOnTheirFrames(tools, out, FRAMES, W, H);
  });

  it('teardown: a run stopped midway leaves no child (decoder, compositor), no output and frees the server', async () => {
    const { url, server } = await singleClientServer();
    const out = join(dir, 'stopped.mp4');
    const stop = new AbortController();
    const pids: number[] = [];
    let seen = 0;
    const run = annotateVideo(onnx, url, { out, tools, manifest: false, encode: { preset: 'ultrafast' }, infer: { batchFrames: 1 } }, {
      signal: stop.signal,
      onDecodeStart: (h) => pids.push(h.pid!),
      onEncodeStart: (e) => pids.push(e.pid!),
      onFrame: () => {
        if (++seen === 5) stop.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(InterruptedError);
    expect(pids.length).toBe(2);
    for (const pid of pids) expect(await waitGone(pid, 5000)).toBe(true);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('stopped'))).toEqual([]);
    // The server loses its one client and ends (with -re it would otherwise still be sending).
    await server.closed;
  });
});
