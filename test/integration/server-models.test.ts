/**
 * Models in the live server: a viewer switches its source between the server's own model and the others
 * it offers (by id, never by path), over the real WebSocket. The real Darknet Tiny ImageNet model
 * (../shared/fixtures) and the embedded model, both TF.js on wasm, so every tensor they make is counted:
 * tf.memory().numTensors is the same after five switches back and forth, and back to where it was once
 * the server (which loaded Darknet) is disposed. A model entry that is a corrupt file fails to load with
 * its error told to the viewers, while the old model keeps producing frames. A file source switches for
 * all its viewers and ffmpeg restarts at the new input size where the file was. The CLI's --models.
 */
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModelDir } from '../../cli/model.ts';
import { smallGapDenseNet, toOnnxModel } from '../../lab/builders/index.ts';
import { load, type CamModel } from '../../models/index.ts';
import { activeFfmpegPids } from '../../pipelines/index.ts';
import { encodeFrame, FrameEncoding, type ServerMessage } from '../../protocol/index.ts';
import type { LiveServer, ModelEntry } from '../../server/index.ts';
import { startCli } from '../helpers/cli-process.ts';
import { startStaticServer } from '../helpers/http-server.ts';
import { DARKNET_TINY, fixture, fixturesPresent } from '../helpers/fixtures.ts';
import { connectViewer, disposeAll, makeClip, startServerUntracked, startTestServer, tempDir, type Viewer } from './server-harness.ts';

const DARKNET_LABELS = 'imagenet1k_darknet_shortnames.txt';
const embeddedDir = defaultModelDir();

type ModelMessage = Extract<ServerMessage, { type: 'model' }>;
type ModelStatus = Extract<ServerMessage, { type: 'model-status' }>;
type Hello = Extract<ServerMessage, { type: 'hello' }>;

/** A 224x224 JPEG of a real photo (Darknet reads the butterfly as a monarch). */
async function photoJpeg(): Promise<Uint8Array> {
  return new Uint8Array(await sharp(fixture('images', 'opencv_butterfly.jpg')).resize(224, 224, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer());
}

/** Sends one webcam frame and waits for its result (one at a time, so none is dropped). */
async function roundTrip(v: Viewer, jpeg: Uint8Array): Promise<void> {
  const before = v.results.length;
  v.ws.send(encodeFrame({ frameId: before, captureMs: performance.now(), encoding: FrameEncoding.Jpeg, width: 224, height: 224, payload: jpeg }));
  await v.waitForResults(before + 1, 60_000);
}

/** The model messages received so far. */
function modelMessages(v: Viewer): ModelMessage[] {
  return v.messages.filter((m): m is ModelMessage => m.type === 'model');
}

/** Asks for model `id` and resolves with the model message naming it (its n-th model message in all). */
async function switchTo(v: Viewer, id: string): Promise<ModelMessage> {
  const seen = modelMessages(v).length;
  v.send({ type: 'model', id });
  await v.waitFor(() => modelMessages(v).length > seen && modelMessages(v).at(-1)!.id === id, 120_000);
  return modelMessages(v).at(-1)!;
}

describe.skipIf(!fixturesPresent || !embeddedDir)('models in the live server', () => {
  let dir: string;
  let embedded: CamModel;
  let imagenet: string[];
  let entries: ModelEntry[];
  let server: LiveServer;
  let jpeg: Uint8Array;

  beforeAll(async () => {
    dir = await tempDir('camstream-models-');
    embedded = await load(embeddedDir!, { backend: 'wasm' });
    imagenet = (await import('node:fs/promises').then((fs) => fs.readFile(join(DARKNET_TINY, DARKNET_LABELS), 'utf8'))).trimEnd().split('\n');
    // A corrupt model: an .onnx file of noise (the loader accepts the name and size, the engine fails on it).
    const broken = join(dir, 'broken.onnx');
    await writeFile(broken, new Uint8Array(4096).map((_, i) => (i * 7919) % 251));
    entries = [
      { name: 'darknet', spec: DARKNET_TINY, options: { backend: 'wasm', config: { labels: DARKNET_LABELS } } },
      { name: 'broken', spec: broken },
    ];
    const media = join(dir, 'media');
    await mkdir(media);
    // Long enough (looping) that a switch never meets the loop point.
    await makeClip(media, 'clip.mp4', { seconds: 40, fps: 10, size: [160, 120] });
    await makeClip(media, 'other.mp4', { seconds: 2, fps: 10, size: [160, 120] });
    server = await startTestServer({ model: embedded, modelName: 'embedded', modelNote: 'a digits model', models: entries, sources: { mediaRoot: media } });
    jpeg = await photoJpeg();
  }, 120_000);

  afterAll(async () => {
    await disposeAll();
    await embedded?.dispose();
  });

  it('offers its models by id and name only, the server\'s own first', async () => {
    const v = await connectViewer(server);
    const hello = (await v.waitFor((m) => m.type === 'hello')) as Hello;
    expect(hello.models!.map((m) => m.name)).toEqual(['embedded', 'darknet', 'broken']);
    expect(hello.modelId).toBe(hello.models![0].id);
    expect(hello.models![0].note).toBe('a digits model');
    // No path, no spec: a viewer can only name an id.
    expect(JSON.stringify(hello.models)).not.toContain('/');
    // Nor does the running model's summary carry the server's paths: its source is a bare name.
    expect(hello.model.source).not.toContain('/');
    expect(hello.model.source.length).toBeGreaterThan(0);
    // A switch applies to a source: without one it is refused, and the connection stays open.
    v.send({ type: 'model', id: hello.models![1].id });
    await v.waitFor((m) => m.type === 'error' && m.code === 'no-source');
    v.send({ type: 'ping', t: 1 });
    await v.waitFor((m) => m.type === 'pong');
    v.close();
  });

  it('switches a webcam source to Darknet and back: labels, classes and maps follow the model', async () => {
    const v = await connectViewer(server);
    const hello = (await v.waitFor((m) => m.type === 'hello')) as Hello;
    await roundTrip(v, jpeg);
    const first = modelMessages(v)[0];
    expect(first.id).toBe(hello.modelId);
    expect(first.model.numClasses).toBe(embedded.info.numClasses);
    expect(embedded.info.labels).toContain(v.results.at(-1)!.labels[0]);

    const darknetId = hello.models!.find((m) => m.name === 'darknet')!.id;
    const shown = await switchTo(v, darknetId);
    expect(shown.model).toMatchObject({ name: 'darknet', engine: 'tfjs', numClasses: 1000, inputSize: [224, 224] });
    expect(shown.labels[0]).toBe('kit fox');
    expect(shown.noneClass).toBeNull();
    const states = v.messages.filter((m): m is ModelStatus => m.type === 'model-status' && m.id === darknetId).map((m) => m.state);
    expect(states[0]).toBe('loading');
    expect(states.at(-1)).toBe('ready');
    // The settings went back to top-k (class ids belong to a model).
    expect(v.messages.filter((m) => m.type === 'settings').at(-1)).toMatchObject({ settings: { classes: null } });
    // Results made after the switch come from Darknet: ImageNet labels, 14x14 maps, the butterfly a monarch.
    const from = v.results.length;
    for (let i = 0; i < 3; i++) await roundTrip(v, jpeg);
    const after = v.results.slice(from + 1);
    expect(after.every((r) => r.labels.every((l) => imagenet.includes(l)))).toBe(true);
    expect(after.at(-1)!.mapSize).toEqual([14, 14]);
    const r = after.at(-1)!;
    expect(r.labels[r.probabilities.indexOf(Math.max(...r.probabilities))]).toBe('monarch');

    const back = await switchTo(v, hello.modelId!);
    expect(back.model.numClasses).toBe(embedded.info.numClasses);
    const from2 = v.results.length;
    for (let i = 0; i < 2; i++) await roundTrip(v, jpeg);
    expect(v.results.slice(from2 + 1).every((x) => x.labels.every((l) => embedded.info.labels.includes(l)))).toBe(true);
    // A class id of Darknet's, sent as if the switch back had not happened yet: an error, not a closed socket.
    v.send({ type: 'settings', settings: { classes: [500] } });
    const bad = await v.waitFor((m) => m.type === 'error' && m.code === 'bad-settings');
    expect(bad).toMatchObject({ message: expect.stringContaining('class id 500') });
    await roundTrip(v, jpeg);
    v.close();
  }, 300_000);

  it('keeps the tensor count flat across 5 switches back and forth, and frees the models it loaded on dispose', async () => {
    const before = tf.memory().numTensors;
    const own = await startServerUntracked({ model: embedded, models: entries });
    try {
      const v = await connectViewer(own);
      const hello = (await v.waitFor((m) => m.type === 'hello')) as Hello;
      const darknetId = hello.models!.find((m) => m.name === 'darknet')!.id;
      await roundTrip(v, jpeg);
      // The first round loads Darknet (its weights are tensors); every later round must add nothing.
      await switchTo(v, darknetId);
      await roundTrip(v, jpeg);
      await switchTo(v, hello.modelId!);
      await roundTrip(v, jpeg);
      const settled = tf.memory().numTensors;
      expect(settled).toBeGreaterThan(before);
      const counts: number[] = [];
      for (let i = 0; i < 5; i++) {
        await switchTo(v, darknetId);
        await roundTrip(v, jpeg);
        await roundTrip(v, jpeg);
        await switchTo(v, hello.modelId!);
        await roundTrip(v, jpeg);
        await roundTrip(v, jpeg);
        counts.push(tf.memory().numTensors);
      }
      expect(counts).toEqual([settled, settled, settled, settled, settled]);
      // Only the first switch loaded Darknet.
      expect(v.messages.filter((m) => m.type === 'model-status' && m.state === 'ready')).toHaveLength(1);
      v.close();
    } finally {
      await own.dispose();
    }
    // Darknet was the server's to free; the embedded model is the caller's and stays.
    expect(tf.memory().numTensors).toBe(before);
    expect(embedded.info.numClasses).toBeGreaterThan(0);
    await embedded.infer([{ data: new Uint8Array(8 * 8 * 3), width: 8, height: 8 }]);
  }, 600_000);

  it('tells the viewers why a model failed to load, and the old model keeps producing frames', async () => {
    const v = await connectViewer(server);
    const hello = (await v.waitFor((m) => m.type === 'hello')) as Hello;
    await roundTrip(v, jpeg);
    const brokenId = hello.models!.find((m) => m.name === 'broken')!.id;
    v.send({ type: 'model', id: brokenId });
    const failed = (await v.waitFor((m) => m.type === 'model-status' && m.state === 'failed', 60_000)) as ModelStatus;
    expect(failed.name).toBe('broken');
    // The engine's own words for the corrupt file.
    expect(failed.message).toMatch(/not a valid ONNX model/);
    // Named by its name: the operator's path stays on the server.
    expect(failed.message).not.toContain(dir);
    expect(failed.message).toContain('broken');
    const from = v.results.length;
    for (let i = 0; i < 3; i++) await roundTrip(v, jpeg);
    expect(v.results.slice(from).every((r) => r.labels.every((l) => embedded.info.labels.includes(l)))).toBe(true);
    expect(modelMessages(v)).toHaveLength(1);
    // An id nobody offered, or a path, is refused; the connection stays open.
    v.send({ type: 'model', id: '/etc/passwd' });
    const refused = await v.waitFor((m) => m.type === 'error' && m.code === 'unknown-model');
    expect(refused).toMatchObject({ code: 'unknown-model' });
    await roundTrip(v, jpeg);
    v.close();
  }, 300_000);

  it('switches a shared file source for all its viewers; ffmpeg restarts at the new input size where the file was', async () => {
    const a = await connectViewer(server);
    const b = await connectViewer(server);
    const hello = (await a.waitFor((m) => m.type === 'hello')) as Hello;
    for (const v of [a, b]) v.send({ type: 'select', source: { kind: 'file', path: 'clip.mp4' } });
    await a.waitForResults(5, 120_000);
    const ptsBefore = a.results.at(-1)!.pts;
    const oldPid = server.stats().sources.find((s) => s.kind === 'file')!.pid!;
    expect(oldPid).toBeGreaterThan(0);
    const darknetId = hello.models!.find((m) => m.name === 'darknet')!.id;
    await switchTo(a, darknetId);
    // The other viewer hears it too.
    await b.waitFor(() => modelMessages(b).some((m) => m.id === darknetId));
    const from = a.results.length;
    await a.waitFor(() => a.results.slice(from).filter((r) => r.mapSize[0] === 14).length >= 3, 120_000);
    const after = a.results.slice(from).filter((r) => r.mapSize[0] === 14);
    // Where the file was, not from its start.
    expect(after[0].pts).toBeGreaterThanOrEqual(ptsBefore - 0.5);
    expect(after.every((r) => r.labels.every((l) => imagenet.includes(l)))).toBe(true);
    expect(server.stats().sources.filter((s) => s.kind === 'file')).toHaveLength(1);
    // A new ffmpeg decodes at Darknet's size; the old one is gone (SIGTERM, SIGKILL after its grace).
    expect(server.stats().sources.find((s) => s.kind === 'file')!.pid).not.toBe(oldPid);
    const deadline = Date.now() + 5000;
    while (activeFfmpegPids().includes(oldPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(activeFfmpegPids()).not.toContain(oldPid);
    a.close();
    b.close();
  }, 300_000);

  it('starts a source the viewer opens next on the model it picked last', async () => {
    const v = await connectViewer(server);
    const hello = (await v.waitFor((m) => m.type === 'hello')) as Hello;
    await roundTrip(v, jpeg);
    const darknetId = hello.models!.find((m) => m.name === 'darknet')!.id;
    await switchTo(v, darknetId);
    const seen = modelMessages(v).length;
    // A file nobody watches yet opens on Darknet.
    v.send({ type: 'select', source: { kind: 'file', path: 'other.mp4' } });
    await v.waitFor((m) => m.type === 'source' && m.kind === 'file');
    await v.waitFor(() => modelMessages(v).length > seen);
    expect(modelMessages(v)[seen].id).toBe(darknetId);
    const from = v.results.length;
    await v.waitForResults(from + 2, 120_000);
    expect(v.results.at(-1)!.mapSize).toEqual([14, 14]);
    v.close();
  }, 300_000);

  it('tells the viewers the bytes of a URL model while it downloads, then that it is ready', async () => {
    const remote = await startStaticServer({ root: DARKNET_TINY });
    const cacheDir = join(dir, 'cache');
    const own = await startServerUntracked({ model: embedded, models: [{ name: 'remote', spec: `${remote.url}model.json`, options: { backend: 'wasm', cacheDir } }] });
    try {
      const v = await connectViewer(own);
      const hello = (await v.waitFor((m) => m.type === 'hello')) as Hello;
      await roundTrip(v, jpeg);
      const shown = await switchTo(v, hello.models![1].id);
      expect(shown.model).toMatchObject({ name: 'remote', numClasses: 1000 });
      const loading = v.messages.filter((m): m is ModelStatus => m.type === 'model-status' && m.state === 'loading');
      const withBytes = loading.filter((m) => m.loaded !== undefined);
      expect(withBytes.length).toBeGreaterThan(0);
      expect(withBytes.every((m) => m.loaded! >= 0 && (m.total === undefined || m.loaded! <= m.total))).toBe(true);
      expect(Math.max(...withBytes.map((m) => m.loaded!))).toBeGreaterThan(100_000);
      expect(v.messages.some((m) => m.type === 'model-status' && m.state === 'ready')).toBe(true);
      v.close();
    } finally {
      await own.dispose();
    }
  }, 300_000);

  it('says which class means "no digit" and the low-confidence level', async () => {
    // The embedded model's labels with a `no digit` class: a head on its features with one more class.
    const k = embedded.info.featureShape[2];
    const labels = [...embedded.info.labels.filter((l) => l !== 'no digit'), 'no digit'];
    const withNone = embedded.withHead({ weights: new Float32Array(k * labels.length), bias: new Float32Array(labels.length), labels });
    const own = await startServerUntracked({ model: withNone, live: { lowConfidence: 0.8 } });
    try {
      const v = await connectViewer(own);
      await roundTrip(v, jpeg);
      expect(modelMessages(v)[0]).toMatchObject({ noneClass: labels.length - 1, lowConfidence: 0.8 });
      v.close();
    } finally {
      await own.dispose();
      await withNone.dispose();
    }
  }, 120_000);
});

describe.skipIf(!fixturesPresent || !embeddedDir)('camstream serve --models', () => {
  let dir: string;
  afterAll(disposeAll);
  beforeAll(async () => {
    dir = await tempDir('camstream-serve-models-');
  });

  it('offers --model, the embedded model and every model in a --models folder; refuses a missing one at start', async () => {
    // A copy of Darknet with its labels named in camstream.json, and a folder of models holding it and a corrupt one.
    const darknet = join(dir, 'darknet');
    await cp(DARKNET_TINY, darknet, { recursive: true });
    await writeFile(join(darknet, 'camstream.json'), JSON.stringify({ labels: DARKNET_LABELS }));
    const folder = join(dir, 'more');
    await mkdir(folder);
    await writeFile(join(folder, 'broken.onnx'), new Uint8Array(1024).fill(7));
    await writeFile(join(folder, 'small.onnx'), toOnnxModel(smallGapDenseNet(3, { inputSize: [32, 32], numClasses: 4, width: 4 })));
    await cp(darknet, join(folder, 'imagenet'), { recursive: true });

    const missing = startCli(['serve', '--port', '0', '--quiet', '--home', dir, '--models', join(dir, 'nothing-here')]);
    expect(await missing.exited).not.toBe(0);
    expect(missing.stderr()).toContain(`--models: '${join(dir, 'nothing-here')}' does not exist`);

    const serve = startCli(['serve', '--port', '0', '--quiet', '--home', dir, '--model', darknet, '--models', `${folder},tiny=${darknet}`]);
    const url = (await serve.waitFor(/camstream serve: (http:\S+)/, 180_000))[1];
    const v = await connectViewer({ url });
    const hello = (await v.waitFor((m) => m.type === 'hello')) as Hello;
    expect(hello.models!.map((m) => m.name)).toEqual(['darknet', 'digits-gap', 'broken', 'imagenet', 'small', 'tiny']);
    expect(hello.models![1].note).toMatch(/digits model/);
    expect(hello.model).toMatchObject({ name: 'darknet', numClasses: 1000 });
    v.close();
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(143);
  }, 300_000);
});
