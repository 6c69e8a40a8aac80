/**
 * A regular file is read twice: the decode run writes only model-size frames, and the compositor decodes
 * the file again for the full-size frames under the overlays (sinks/composite-video.ts). What must hold:
 * each overlay still lands on the frame it was made from, also when the container starts late (MPEG-TS
 * starts at 1.4 s, and the decode run's timestamps start at 0); a run cut at --max-frames stops both;
 * and what cannot be read twice (a named pipe) still goes through the decode run's full-size stream.
 * Frame n of the clip has luma 8n, so each frame's place can be read back from its pixels.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { load, type CamModel } from '../../models/index.ts';
import { activeFfmpegPids, annotateVideo, probeMedia, type FfmpegTools } from '../../pipelines/index.ts';
import { decodeFrames$, encodeVideo, type MediaInfo } from '../../pipelines/ffmpeg/index.ts';
import { baseInput } from '../../pipelines/sinks/composite-video.ts';
import { expectBlocksOnTheirFrames, writeBlocks, makeNumberedClip, meanOf, numberedLevel, waitGone, writeRandomOnnx } from './video-helpers.ts';

let FRAMES = 30;
let dir: string;
let tools: FfmpegTools;
let onnx: CamModel;
/** MPEG-TS, 160x120 at 25 fps, frame n of luma 8n, with an AAC tone; the container starts at 1.4 s. */
let clip: string;
let probe: MediaInfo;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-read-twice-'));
  tools = await testFfmpeg();
  onnx = await load(await writeRandomOnnx(dir), { threads: 1 });
  ({ clip, frames: FRAMES } = await makeNumberedClip(tools, dir, FRAMES));
  expect(FRAMES).toBeGreaterThanOrEqual(29);
  probe = await probeMedia(clip, { tools });
  // The point of the clip: a container that does not start at 0.
  expect(probe.startTime).toBeGreaterThan(0.5);
});

afterAll(async () => {
  await onnx?.dispose();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const pid of activeFfmpegPids()) expect(await waitGone(pid, 5000)).toBe(true);
});

const fullRange = numberedLevel;
const mean = meanOf;

async function outputFrames(path: string, width = 16, height = 12): Promise<Uint8Array[]> {
  return (await lastValueFrom(decodeFrames$(path, { tools, width, height, pixFmt: 'gray' }).pipe(toArray()))).map((f) => f.data);
}

describe('a regular file is decoded again by the compositor', () => {
  it('each overlay lands on the frame it was made from, though the container starts at 1.4 s', async () => {
    const out = join(dir, 'pairs.mp4');
    const W = 160;
    const H = 120;
    const base = await baseInput({ input: clip, base: { file: clip, startTime: probe.startTime, threads: 1 } }, 0);
    const encoder = encodeVideo({
      out, width: 80, height: H, fps: 25, inputPixFmt: 'rgba', frameTimestamps: true,
      inputs: [base], filterComplex: '[1:v:0][0:v]overlay=format=yuv420[vout]', preset: 'ultrafast', tools,
    });
    await writeBlocks(decodeFrames$(clip, { tools, width: 16, height: 12, pixFmt: 'gray' }), encoder, H);
    await expectBlocksOnTheirFrames(tools, out, FRAMES, W, H);
  });

  it('annotateVideo: the decode run writes no full-size stream, every frame is out in order, audio kept', async () => {
    const out = join(dir, 'file.mp4');
    let decodeLine = '';
    let encodeLine = '';
    const report = await annotateVideo(
      onnx,
      clip,
      { out, tools, manifest: false, overlay: { alpha: 0, labels: false, box: false }, encode: { preset: 'ultrafast' }, infer: { batchFrames: 4 } },
      { onDecodeStart: (h) => (decodeLine = h.commandLine), onEncodeStart: (e) => (encodeLine = e.commandLine) },
    );
    expect(report.frames).toBe(FRAMES);
    expect(decodeLine).not.toContain('nut');
    expect(encodeLine).toContain(clip);
    expect(encodeLine).toMatch(/-itsoffset -1\.4/);
    const frames = await outputFrames(out);
    expect(frames.length).toBe(FRAMES);
    frames.forEach((f, n) => expect(Math.abs(mean(f) - fullRange(n)), `output frame ${n}`).toBeLessThan(6));
    expect((await probeMedia(out, { tools })).audioCodec).toBe('aac');
  });

  it('maxFrames stops the compositor too: exactly that many frames, the first ones', async () => {
    const out = join(dir, 'first10.mp4');
    const report = await annotateVideo(onnx, clip, { out, tools, manifest: false, overlay: { alpha: 0, labels: false, box: false }, decode: { maxFrames: 10 }, encode: { preset: 'ultrafast' } });
    expect(report.frames).toBe(10);
    const frames = await outputFrames(out);
    expect(frames.length).toBe(10);
    frames.forEach((f, n) => expect(Math.abs(mean(f) - fullRange(n)), `output frame ${n}`).toBeLessThan(6));
  });

  it('a named pipe, which can be read once, goes through the decode run\'s full-size stream', async () => {
    const fifo = join(dir, 'camera.fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = createReadStream(clip).pipe(createWriteStream(fifo));
    const out = join(dir, 'fifo.mp4');
    let decodeLine = '';
    const report = await annotateVideo(
      onnx,
      fifo,
      { out, tools, manifest: false, overlay: { alpha: 0, labels: false, box: false }, encode: { preset: 'ultrafast' } },
      { onDecodeStart: (h) => (decodeLine = h.commandLine) },
    );
    if (!writer.writableFinished) await once(writer, 'finish');
    expect(decodeLine).toContain('nut');
    expect(report.frames).toBe(FRAMES);
    const frames = await outputFrames(out);
    expect(frames.length).toBe(FRAMES);
    frames.forEach((f, n) => expect(Math.abs(mean(f) - fullRange(n)), `output frame ${n}`).toBeLessThan(6));
  });
});
