/**
 * Thread budgeting of the video pipeline: ONNX Runtime's spin-waiting switch (LoadOptions.spinWait) and
 * the lowered priority of the ffmpeg children (VideoConfig.ffmpegNice). Real sessions, real ffmpeg.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { ConfigError, load, type Frame } from '../../models/index.ts';
import { annotateVideo, type FfmpegTools } from '../../pipelines/index.ts';
import { makeClip, writeRandomOnnx } from './video-helpers.ts';

let dir: string;
let tools: FfmpegTools;
let onnx: string;
let clip: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-threads-'));
  tools = await testFfmpeg();
  onnx = await writeRandomOnnx(dir);
  clip = await makeClip(tools, dir, 'clip.mp4', ['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10:duration=1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p']);
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('spinWait (ONNX Runtime allow_spinning)', () => {
  it('gives the same maps with spinning threads and with sleeping ones', async () => {
    const spinning = await load(onnx, { engine: 'onnx', threads: 2, spinWait: true });
    const sleeping = await load(onnx, { engine: 'onnx', threads: 2, spinWait: false });
    try {
      const data = new Uint8Array(32 * 32 * 3).map((_, i) => (i * 37) % 256);
      const frame: Frame = { data, width: 32, height: 32 };
      const [a] = await spinning.infer([frame], { topK: 3 });
      const [b] = await sleeping.infer([frame], { topK: 3 });
      expect(Array.from(b.ids)).toEqual(Array.from(a.ids));
      expect(Array.from(b.maps)).toEqual(Array.from(a.maps));
    } finally {
      await spinning.dispose();
      await sleeping.dispose();
    }
  });

  it('rejects a spinWait that is not a boolean, naming the value', async () => {
    await expect(load(onnx, { engine: 'onnx', spinWait: 'no' as unknown as boolean })).rejects.toThrow(/spinWait must be true or false, got no/);
  });
});

describe('ffmpegNice', () => {
  it('runs both ffmpeg children at the asked nice value and still writes every frame', async () => {
    const model = await load(onnx, { engine: 'onnx', threads: 1 });
    const seen: number[] = [];
    try {
      const report = await annotateVideo(model, clip, { out: join(dir, 'nice.mp4'), manifest: false, tools, ffmpegNice: 7 }, {
        onDecodeStart: (h) => seen.push(getPriority(h.pid!)),
        onEncodeStart: (e) => seen.push(getPriority(e.pid!)),
      });
      expect(report.frames).toBe(10);
    } finally {
      await model.dispose();
    }
    // The hooks run after the pipeline lowered the priority.
    expect(seen).toEqual([7, 7]);
  });

  it('rejects a nice value outside [0, 19] before starting anything', async () => {
    const model = await load(onnx, { engine: 'onnx', threads: 1 });
    try {
      await expect(annotateVideo(model, clip, { out: join(dir, 'x.mp4'), tools, ffmpegNice: 25 })).rejects.toThrow(ConfigError);
      await expect(annotateVideo(model, clip, { out: join(dir, 'x.mp4'), tools, ffmpegNice: 25 })).rejects.toThrow(/ffmpegNice must be an integer in \[0, 19\], got 25/);
    } finally {
      await model.dispose();
    }
  });
});
