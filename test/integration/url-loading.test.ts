/**
 * URL loading against a real HTTP server on 127.0.0.1 serving the real fixture model: download, cache,
 * atomicity under cut connections, corruption after the fact, progress, camstream.json, errors.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import onnxProto from 'onnx-proto';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { ConfigError, ModelLoadError } from '../../models/index.ts';
import {
  type CacheManifest,
  type ProgressEvent,
  MANIFEST_FILE,
  cacheEntryPath,
  load,
  resolveSource,
} from '../../models/index.ts';
import { DARKNET_TINY, ROOT, fixturesPresent } from '../helpers/fixtures.ts';
import { type StaticServer, startStaticServer } from '../helpers/http-server.ts';
import { rejection } from '../helpers/rejection.ts';

const MOUNT = '/zoo/darknet/';
const tfjsPresent = existsSync(join(ROOT, 'models', 'tfjs', 'index.ts'));
const onnxPresent = existsSync(join(ROOT, 'models', 'onnx', 'index.ts'));

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Every temporary download name under `dir`, recursively. */
async function partFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { recursive: true })).filter((name) => name.includes('.part-'));
}

describe.skipIf(!fixturesPresent)('loading models from URLs', () => {
  let server: StaticServer;
  let cacheDir: string;
  let modelUrl: string;
  let shards: string[];
  /** sha256 and size of every fixture file the model needs (model.json and shards). */
  const originals = new Map<string, { sha256: string; bytes: number }>();

  beforeAll(async () => {
    server = await startStaticServer({ root: DARKNET_TINY, mount: MOUNT });
    modelUrl = `${server.url}${MOUNT.slice(1)}model.json`;
    const manifest = JSON.parse(await readFile(join(DARKNET_TINY, 'model.json'), 'utf8')) as {
      weightsManifest: Array<{ paths: string[] }>;
    };
    shards = manifest.weightsManifest.flatMap((g) => g.paths);
    for (const name of ['model.json', ...shards]) {
      const bytes = await readFile(join(DARKNET_TINY, name));
      originals.set(name, { sha256: sha256(bytes), bytes: bytes.length });
    }
  });

  beforeEach(async () => {
    server.fault = undefined;
    server.files.clear();
    server.requests.length = 0;
    cacheDir = await mkdtemp(join(tmpdir(), 'camstream-cache-'));
  });

  afterEach(async () => {
    await rm(cacheDir, { recursive: true, force: true });
  });

  /** Asserts the cached copy of every model file is byte-identical to the fixture. */
  async function expectCachedCopyIdentical(entry: string): Promise<void> {
    for (const [name, original] of originals) {
      expect(sha256(await readFile(join(entry, name))), name).toBe(original.sha256);
    }
  }

  async function readManifest(entry: string): Promise<CacheManifest> {
    return JSON.parse(await readFile(join(entry, MANIFEST_FILE), 'utf8')) as CacheManifest;
  }

  it('downloads model.json and all 31 shards once, commits complete.json, then loads with zero requests', async () => {
    expect(shards).toHaveLength(31);
    const src = await resolveSource(modelUrl, { cacheDir });
    const entry = cacheEntryPath(cacheDir, modelUrl);
    expect(src).toEqual({ format: 'tfjs', path: entry, original: modelUrl, fileConfig: {} });

    // Each model file exactly once, plus one look each for the optional camstream.json and labels.txt.
    for (const name of ['model.json', ...shards]) {
      expect(server.requests.filter((p) => p === MOUNT + name), name).toHaveLength(1);
    }
    expect(server.requests.sort()).toEqual(
      [...originals.keys(), 'camstream.json', 'labels.txt'].map((n) => MOUNT + n).sort(),
    );
    await expectCachedCopyIdentical(entry);

    const manifest = await readManifest(entry);
    expect(manifest.url).toBe(modelUrl);
    expect(manifest.files).toHaveLength(32);
    for (const file of manifest.files) {
      expect({ sha256: file.sha256, bytes: file.bytes }, file.path).toEqual(originals.get(file.path));
    }
    expect(manifest.absent.sort()).toEqual(['camstream.json', 'labels.txt']);
    expect(await partFiles(cacheDir)).toEqual([]);

    const before = server.requests.length;
    const again = await resolveSource(modelUrl, { cacheDir });
    expect(server.requests.length - before).toBe(0);
    expect(again).toEqual(src);
  });

  it('fails a download cut mid-body with an error naming the URL, leaves no complete.json nor part file, and recovers', async () => {
    const victim = 'group14-shard1of1';
    expect(originals.get(victim)?.bytes).toBe(4096);
    server.fault = (path) => (path === MOUNT + victim ? { kind: 'cut', afterBytes: 1500 } : undefined);

    const err = await rejection(resolveSource(modelUrl, { cacheDir }));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain(`${server.url}${MOUNT.slice(1)}${victim}`);
    expect(err.message).toContain('of 4096 bytes');
    const entry = cacheEntryPath(cacheDir, modelUrl);
    expect(existsSync(join(entry, MANIFEST_FILE))).toBe(false);
    expect(existsSync(join(entry, victim))).toBe(false);
    expect(await partFiles(cacheDir)).toEqual([]);

    server.fault = undefined;
    const src = await resolveSource(modelUrl, { cacheDir });
    expect(src.path).toBe(entry);
    await expectCachedCopyIdentical(entry);
    expect(existsSync(join(entry, MANIFEST_FILE))).toBe(true);
    expect(await partFiles(cacheDir)).toEqual([]);
  });

  it('detects a shard truncated or altered on disk after the commit and downloads it again', async () => {
    await resolveSource(modelUrl, { cacheDir });
    const entry = cacheEntryPath(cacheDir, modelUrl);

    await truncate(join(entry, 'group14-shard1of1'), 100);
    server.requests.length = 0;
    await resolveSource(modelUrl, { cacheDir });
    expect(server.requests).toContain(`${MOUNT}group14-shard1of1`);
    await expectCachedCopyIdentical(entry);

    // Same size, one byte different: only the sha256 can tell.
    const path = join(entry, 'group3-shard1of1');
    const bytes = await readFile(path);
    bytes[bytes.length >> 1] ^= 0xff;
    await writeFile(path, bytes);
    server.requests.length = 0;
    await resolveSource(modelUrl, { cacheDir });
    expect(server.requests).toContain(`${MOUNT}group3-shard1of1`);
    await expectCachedCopyIdentical(entry);

    // A damaged manifest is no manifest.
    await writeFile(join(entry, MANIFEST_FILE), '{"version": 1, "url"');
    server.requests.length = 0;
    await resolveSource(modelUrl, { cacheDir });
    expect(server.requests).toContain(`${MOUNT}model.json`);
    expect((await readManifest(entry)).files).toHaveLength(32);
  });

  it('removes part files of loaders that died mid-download and keeps those of live ones', async () => {
    await resolveSource(modelUrl, { cacheDir });
    const entry = cacheEntryPath(cacheDir, modelUrl);
    // Above any Linux pid_max: certainly not a running process.
    const dead = join(entry, 'group1-shard1of1.part-2147483646-0a1b2c');
    const live = join(entry, `group1-shard1of1.part-${process.ppid}-0a1b2c`);
    await writeFile(dead, 'half a shard');
    await writeFile(live, 'still being written');
    await truncate(join(entry, 'group1-shard1of1'), 0);
    await resolveSource(modelUrl, { cacheDir });
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    await expectCachedCopyIdentical(entry);
  });

  it('reports progress per file, monotonic, ending at the file size', async () => {
    const events: ProgressEvent[] = [];
    await resolveSource(modelUrl, { cacheDir, onProgress: (e) => events.push({ ...e }) });
    const byUrl = new Map<string, ProgressEvent[]>();
    for (const e of events) byUrl.set(e.url, [...(byUrl.get(e.url) ?? []), e]);
    expect([...byUrl.keys()].sort()).toEqual([...originals.keys()].map((n) => `${server.url}${MOUNT.slice(1)}${n}`).sort());
    for (const [url, list] of byUrl) {
      const size = originals.get(url.split('/').pop() ?? '')?.bytes;
      expect(list[0].loaded, url).toBe(0);
      for (let i = 1; i < list.length; i++) expect(list[i].loaded).toBeGreaterThanOrEqual(list[i - 1].loaded);
      expect(list.every((e) => e.total === size)).toBe(true);
      expect(list[list.length - 1].loaded).toBe(size);
    }
    // A file is finished before the next starts: events do not interleave.
    const order = events.map((e) => e.url).filter((u, i, all) => i === 0 || all[i - 1] !== u);
    expect(order).toHaveLength(byUrl.size);
  });

  it('reports an unknown total when the server sends no Content-Length, and still verifies the bytes', async () => {
    const chunked = await startStaticServer({ root: DARKNET_TINY, chunked: true });
    const url = `${chunked.url}model.json`;
    const events: ProgressEvent[] = [];
    const src = await resolveSource(url, { cacheDir, onProgress: (e) => events.push({ ...e }) });
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.total === undefined)).toBe(true);
    await expectCachedCopyIdentical(src.path);
    await chunked.close();
  });

  it('names the shard URL and status when a shard answers 404', async () => {
    server.fault = (path) => (path === `${MOUNT}group7-shard1of1` ? { kind: 'status', status: 404 } : undefined);
    const err = await rejection(resolveSource(modelUrl, { cacheDir }));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain(`${server.url}${MOUNT.slice(1)}group7-shard1of1`);
    expect(err.message).toContain('HTTP 404');
    expect(existsSync(join(cacheEntryPath(cacheDir, modelUrl), MANIFEST_FILE))).toBe(false);
  });

  it('names the URL and status when model.json answers 500', async () => {
    server.fault = (path) => (path.endsWith('model.json') ? { kind: 'status', status: 500 } : undefined);
    const err = await rejection(resolveSource(modelUrl, { cacheDir }));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toBe(`download of ${modelUrl} failed: HTTP 500 Internal Server Error`);
  });

  it('honours camstream.json served beside the model, LoadOptions.config winning, labels included', async () => {
    server.files.set(
      `${MOUNT}camstream.json`,
      JSON.stringify({ inputSize: [224, 224], scale: 1 / 255, labels: 'imagenet1k_darknet_shortnames.txt' }),
    );
    const src = await resolveSource(modelUrl, { cacheDir, config: { inputSize: [192, 192] } });
    expect(src.fileConfig).toEqual({ inputSize: [192, 192], scale: 1 / 255, labels: 'imagenet1k_darknet_shortnames.txt' });
    const lines = (await readFile(join(DARKNET_TINY, 'imagenet1k_darknet_shortnames.txt'), 'utf8')).trimEnd().split('\n');
    expect(src.labels).toEqual(lines);
    expect(server.requests).not.toContain(`${MOUNT}labels.txt`);

    const before = server.requests.length;
    const again = await resolveSource(modelUrl, { cacheDir });
    expect(server.requests.length).toBe(before);
    expect(again.fileConfig.inputSize).toEqual([224, 224]);
    expect(again.labels).toEqual(lines);
  });

  it('fetches a labels file named only by LoadOptions.config into an existing entry, once', async () => {
    await resolveSource(modelUrl, { cacheDir });
    server.requests.length = 0;
    const options = { cacheDir, config: { labels: 'imagenet1k_darknet_wnids.txt' } };
    const src = await resolveSource(modelUrl, options);
    expect(server.requests).toEqual([`${MOUNT}imagenet1k_darknet_wnids.txt`]);
    expect(src.labels).toHaveLength(1000);
    expect(src.labels?.[0]).toMatch(/^n\d{8}$/);
    await resolveSource(modelUrl, options);
    expect(server.requests).toHaveLength(1);
  });

  it('reports a configured labels file the server does not have', async () => {
    const err = await rejection(resolveSource(modelUrl, { cacheDir, config: { labels: 'names.txt' } }));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain(`${server.url}${MOUNT.slice(1)}names.txt`);
    expect(err.message).toContain('HTTP 404');
  });

  it.each([
    [{ scale: 'abc' }, 'scale', '"abc"'],
    [{ inputSize: [0, 224] }, 'inputSize', '[0,224]'],
  ])('rejects camstream.json %j with a ConfigError naming the field, before fetching any shard', async (raw, field, shown) => {
    server.files.set(`${MOUNT}camstream.json`, JSON.stringify(raw));
    const err = await rejection(resolveSource(modelUrl, { cacheDir }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(`'${field}'`);
    expect(err.message).toContain(shown);
    expect(err.message).toContain(`${server.url}${MOUNT.slice(1)}camstream.json`);
    expect(server.requests.some((p) => p.includes('shard'))).toBe(false);
    expect(existsSync(join(cacheEntryPath(cacheDir, modelUrl), MANIFEST_FILE))).toBe(false);
  });

  it('rejects a camstream.json that is not JSON', async () => {
    server.files.set(`${MOUNT}camstream.json`, '{ scale: 1 }');
    const err = await rejection(resolveSource(modelUrl, { cacheDir }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('not valid JSON');
  });

  it('follows redirects', async () => {
    const moved = 'group3-shard1of1';
    server.files.set(`/mirror/${moved}`, await readFile(join(DARKNET_TINY, moved)));
    server.fault = (path) => (path === MOUNT + moved ? { kind: 'redirect', location: `/mirror/${moved}` } : undefined);
    const src = await resolveSource(modelUrl, { cacheDir });
    expect(server.requests).toContain(`/mirror/${moved}`);
    await expectCachedCopyIdentical(src.path);
  });

  it('times out a stalled download with a clear message and no part file left', async () => {
    server.fault = (path) => (path === `${MOUNT}group2-shard1of1` ? { kind: 'stall' } : undefined);
    const started = Date.now();
    const err = await rejection(resolveSource(modelUrl, { cacheDir, timeoutMs: 300 }));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toBe(
      `download of ${server.url}${MOUNT.slice(1)}group2-shard1of1 timed out after 0 of ${originals.get('group2-shard1of1')?.bytes} bytes: no data for 300 ms`,
    );
    expect(await partFiles(cacheDir)).toEqual([]);
  });

  it('reports a cache folder that cannot be written as a ModelLoadError naming it', async () => {
    const blocker = join(cacheDir, 'a-file');
    await writeFile(blocker, 'not a folder');
    const err = await rejection(resolveSource(modelUrl, { cacheDir: join(blocker, 'cache') }));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain(join(blocker, 'cache'));
  });

  it('lets concurrent loaders of one URL share one entry without corrupting it', async () => {
    const results = await Promise.all([1, 2, 3].map(() => resolveSource(modelUrl, { cacheDir })));
    const entry = cacheEntryPath(cacheDir, modelUrl);
    expect(results.every((r) => r.path === entry)).toBe(true);
    await expectCachedCopyIdentical(entry);
    expect((await readManifest(entry)).files).toHaveLength(32);
    expect(await partFiles(cacheDir)).toEqual([]);
    const before = server.requests.length;
    await resolveSource(modelUrl, { cacheDir });
    expect(server.requests.length).toBe(before);
  });

  it('downloads a .onnx URL with its camstream.json and labels.txt', async () => {
    const { onnx } = onnxProto;
    const bytes = onnx.ModelProto.encode({
      irVersion: 7,
      opsetImport: [{ version: 13 }],
      graph: { name: 'g', node: [{ opType: 'Identity', input: ['x'], output: ['y'] }] },
    }).finish();
    server.files.set('/onnx/tiny net.onnx', bytes);
    server.files.set('/onnx/camstream.json', JSON.stringify({ layout: 'nchw' }));
    server.files.set('/onnx/labels.txt', 'a\nb\n');
    const url = `${server.url}onnx/tiny%20net.onnx`;
    const src = await resolveSource(url, { cacheDir });
    expect(src).toEqual({
      format: 'onnx',
      path: join(cacheEntryPath(cacheDir, url), 'tiny_net.onnx'),
      original: url,
      fileConfig: { layout: 'nchw' },
      labels: ['a', 'b'],
    });
    expect(sha256(await readFile(src.path))).toBe(sha256(bytes));
  });

  it.skipIf(!tfjsPresent)('loads the fixture model from its URL into a CamModel with a class-conv-gap head', async () => {
    const model = await load(modelUrl, {
      cacheDir,
      backend: 'cpu',
      config: { scale: 1 / 255, labels: 'imagenet1k_darknet_shortnames.txt' },
    });
    try {
      expect(model.info.engine).toBe('tfjs');
      expect(model.info.head).toBe('class-conv-gap');
      expect(model.info.numClasses).toBe(1000);
      expect(model.info.featureShape).toEqual([14, 14, 128]);
      expect(model.info.labels[0]).toBe('kit fox');
    } finally {
      await model.dispose();
    }
  });

  it.skipIf(!onnxPresent)('loads a .onnx URL on the onnx engine', async () => {
    const { toOnnxModel, smallGapDenseNet } = await import('../../lab/builders/index.ts');
    server.files.set('/onnx/small.onnx', toOnnxModel(smallGapDenseNet(7)));
    const url = `${server.url}onnx/small.onnx`;
    const model = await load(url, { cacheDir, backend: 'cpu', threads: 1 });
    try {
      expect(model.info.engine).toBe('onnx');
      expect(model.info.head).toBe('onnx-gap-gemm');
      expect(model.info.source).toBe(url);
    } finally {
      await model.dispose();
    }
    const err = await rejection(load(url, { cacheDir, engine: 'tfjs' }));
    expect(err).toBeInstanceOf(ConfigError);
  });
});
