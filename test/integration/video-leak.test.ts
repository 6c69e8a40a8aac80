/**
 * The whole video pipeline with a TF.js model (cpu backend), 1200 frames: the engine's tensor count and
 * bytes stay flat frame after frame, return to their level after the run, and to the start after dispose.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { load } from '../../models/index.ts';
import { annotateVideo, probeMedia, type FfmpegTools } from '../../pipelines/index.ts';
import { makeClip, writeRandomLayers } from './video-helpers.ts';

let dir: string;
let tools: FfmpegTools;
let clip: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-video-leak-'));
  tools = await testFfmpeg();
  // 1200 frames of 96x64 at 50 fps (24 s): tiny frames keep ffmpeg's share small, the count is what matters.
  clip = await makeClip(tools, dir, 'long.mp4', [
    '-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=50:duration=24', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
  ]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('video pipeline tensor ownership (tfjs engine)', () => {
  it('keeps tf.memory() flat over 1200 frames and releases everything on dispose', async () => {
    const folder = await writeRandomLayers(dir);
    await tf.setBackend('cpu');
    const start = tf.memory();
    const model = await load(folder, { backend: 'cpu' });
    expect(model.info.engine).toBe('tfjs');
    const afterLoad = tf.memory();
    const samples: Array<{ frame: number; numTensors: number; numBytes: number }> = [];
    const report = await annotateVideo(
      model,
      clip,
      { out: join(dir, 'out.mp4'), manifest: false, tools, encode: { preset: 'ultrafast' }, infer: { batchFrames: 3 } },
      {
        onFrame: (f) => {
          if (f.index % 100 === 99) samples.push({ frame: f.index, ...tf.memory() });
        },
      },
    );
    expect(report.frames).toBe(1200);
    expect((await probeMedia(report.out, { tools, countFrames: 'always' })).frameCount).toBe(1200);
    expect(samples.length).toBe(12);
    // A sample may fall while the next batch is inside infer() (its input and outputs alive until the
    // read-back resolves), so the count moves between two levels; a leak would make it climb instead.
    const early = samples.slice(0, 4);
    const late = samples.slice(4);
    const max = (xs: typeof samples, k: 'numTensors' | 'numBytes') => Math.max(...xs.map((x) => x[k]));
    const min = (xs: typeof samples, k: 'numTensors' | 'numBytes') => Math.min(...xs.map((x) => x[k]));
    expect(max(late, 'numTensors')).toBeLessThanOrEqual(max(early, 'numTensors'));
    expect(max(late, 'numBytes')).toBeLessThanOrEqual(max(early, 'numBytes'));
    expect(min(late, 'numTensors')).toBe(afterLoad.numTensors);
    expect(min(late, 'numBytes')).toBe(afterLoad.numBytes);
    // At most one batch in flight: a handful of tensors, never one per frame.
    expect(max(samples, 'numTensors') - afterLoad.numTensors).toBeLessThanOrEqual(8);
    expect(tf.memory().numTensors).toBe(afterLoad.numTensors);
    await model.dispose();
    expect(tf.memory().numTensors).toBe(start.numTensors);
    expect(tf.memory().numBytes).toBe(start.numBytes);
  });
});
