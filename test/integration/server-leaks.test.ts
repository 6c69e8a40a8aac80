/**
 * The live path holds no tensors: `tf.memory().numTensors` stays flat over hundreds of frames through the
 * server (webcam frames, raw and JPEG, and a server-side file) and returns to its start once the clients
 * and sources are gone. A TF.js model, so every tensor the engine makes is counted.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { smallGapDenseNet, writeLayersModel } from '../../lab/builders/index.ts';
import { load } from '../../models/index.ts';
import { encodeFrame, FrameEncoding } from '../../protocol/index.ts';
import { connectViewer, disposeAll, makeClip, startTestServer, tempDir } from './server-harness.ts';

afterAll(disposeAll);

describe('the live path', () => {
  it('keeps the tensor count flat over many frames and back to its start after teardown', async () => {
    const dir = await tempDir();
    const folder = join(dir, 'tfjs-small');
    await mkdir(folder);
    await writeLayersModel(smallGapDenseNet(11, { inputSize: [48, 64], numClasses: 12, width: 4 }), folder);
    const model = await load(folder, { backend: 'cpu' });
    const media = join(dir, 'media');
    await mkdir(media);
    await makeClip(media, 'clip.mp4', { seconds: 3 });
    try {
      const server = await startTestServer({ model, sources: { mediaRoot: media } });
      const atStart = tf.memory().numTensors;
      const cam = await connectViewer(server);
      const rgb = new Uint8Array(64 * 48 * 3).map((_, i) => (i * 13) % 256);
      const jpeg = new Uint8Array(await sharp(Buffer.from(rgb), { raw: { width: 64, height: 48, channels: 3 } }).jpeg().toBuffer());
      const counts: number[] = [];
      // One frame at a time (so none is dropped), alternating raw and JPEG.
      for (let i = 0; i < 300; i++) {
        const raw = i % 2 === 0;
        cam.ws.send(encodeFrame({ frameId: i, captureMs: performance.now(), encoding: raw ? FrameEncoding.Rgb : FrameEncoding.Jpeg, width: 64, height: 48, payload: raw ? rgb : jpeg }));
        await cam.waitForResults(i + 1);
        if (i % 50 === 49) counts.push(tf.memory().numTensors);
      }
      expect(new Set(counts).size).toBe(1);
      // A server-side file watched at the same time.
      const watcher = await connectViewer(server);
      watcher.send({ type: 'select', source: { kind: 'file', path: 'clip.mp4' } });
      await watcher.waitForResults(50);
      expect(tf.memory().numTensors).toBe(counts[0]);
      cam.close();
      watcher.close();
      await new Promise((r) => setTimeout(r, 300));
      expect(server.stats().sources).toHaveLength(0);
      expect(tf.memory().numTensors).toBe(atStart);
    } finally {
      await disposeAll();
      await model.dispose();
    }
  });
});
