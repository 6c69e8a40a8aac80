/**
 * What a hostile or broken model server can do to a URL load, against a real HTTP server on 127.0.0.1:
 * a camstream.json naming local files, a server that sends one byte at a time, a download cut half-way.
 * Nothing of the local disk may reach the model, no download may run past its deadline, and a failed
 * download leaves nothing in the cache.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import onnxProto from 'onnx-proto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { ConfigError, ModelLoadError, cacheEntryPath, resolveSource } from '../../models/index.ts';
import { type StaticServer, startStaticServer } from '../helpers/http-server.ts';
import { rejection } from '../helpers/rejection.ts';

const { onnx } = onnxProto;

/** A real (tiny) ONNX graph; resolution only stores its bytes. */
const ONNX_BYTES = onnx.ModelProto.encode({
  irVersion: 7,
  opsetImport: [{ version: 13 }],
  graph: { name: 'g', node: [{ opType: 'Identity', input: ['x'], output: ['y'] }] },
}).finish();

/** Every file under `dir`, recursively (none when it does not exist). */
async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((d) => !d.isDirectory()).map((d) => d.name);
}

let server: StaticServer;
let local: string;
let secret: string;
let cacheDir: string;
const url = () => `${server.url}m/net.onnx`;

beforeAll(async () => {
  local = await mkdtemp(join(tmpdir(), 'camstream-url-limits-'));
  secret = join(local, 'secret.txt');
  await writeFile(secret, 'root:x:0:0\ndaemon:x:1:1\nsecret-line\n');
  server = await startStaticServer({ root: local, mount: '/nothing-served-from-disk/' });
});
afterAll(async () => {
  await rm(local, { recursive: true, force: true });
});
beforeEach(async () => {
  server.fault = undefined;
  server.files.clear();
  server.files.set('/m/net.onnx', ONNX_BYTES);
  server.requests.length = 0;
  cacheDir = await mkdtemp(join(tmpdir(), 'camstream-url-limits-cache-'));
});
afterEach(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

describe('paths in the camstream.json of a URL model', () => {
  it.each([
    ['an existing absolute local file', () => secret],
    ['a missing absolute local file', () => join(local, 'no-such-file.txt')],
  ])('refuses labels naming %s, reading nothing and revealing nothing', async (_what, labels) => {
    server.files.set('/m/camstream.json', JSON.stringify({ labels: labels() }));
    const err = await rejection(resolveSource(url(), { cacheDir }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain("'labels'");
    expect(err.message).toContain('relative');
    // The same answer whether or not the file exists, and none of its lines.
    expect(err.message).not.toMatch(/not found|secret-line|root:x|lines?\b/);
    expect(existsSync(join(cacheEntryPath(cacheDir, url()), 'complete.json'))).toBe(false);
  });

  it('refuses labels that climb out of the model URL with ..', async () => {
    server.files.set('/m/camstream.json', JSON.stringify({ labels: '../secret.txt' }));
    const err = await rejection(resolveSource(url(), { cacheDir }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('../secret.txt');
    expect(server.requests).not.toContain('/secret.txt');
  });

  it('still reads a labels file the operator names by absolute path (LoadOptions.config)', async () => {
    const src = await resolveSource(url(), { cacheDir, config: { labels: secret } });
    expect(src.labels).toEqual(['root:x:0:0', 'daemon:x:1:1', 'secret-line']);
  });

  it('reads labels served beside the model', async () => {
    server.files.set('/m/camstream.json', JSON.stringify({ labels: 'names/classes.txt' }));
    server.files.set('/m/names/classes.txt', 'a\nb\n');
    const src = await resolveSource(url(), { cacheDir });
    expect(src.labels).toEqual(['a', 'b']);
  });
});

describe('download limits', () => {
  it('ends a download that trickles one byte at a time at its total deadline, leaving nothing cached', async () => {
    server.fault = (path) => (path === '/m/net.onnx' ? { kind: 'trickle', intervalMs: 40 } : undefined);
    // The idle timeout alone never fires: a byte arrives every 40 ms.
    const err = await rejection(resolveSource(url(), { cacheDir, timeoutMs: 5_000, deadlineMs: 400 }));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain(url());
    expect(err.message).toMatch(/deadline of 400 ms/);
    expect(await filesUnder(cacheDir)).toEqual([]);
  });

  it('leaves nothing in the cache when a later file of the model fails', async () => {
    server.files.set('/m/camstream.json', JSON.stringify({ layout: 'nchw' }));
    server.files.set('/m/labels.txt', 'a\nb\nc\nd\ne\nf\ng\nh\n');
    server.fault = (path) => (path === '/m/labels.txt' ? { kind: 'cut', afterBytes: 3 } : undefined);
    const err = await rejection(resolveSource(url(), { cacheDir }));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain(`${server.url}m/labels.txt`);
    expect(await filesUnder(cacheDir)).toEqual([]);

    server.fault = undefined;
    const src = await resolveSource(url(), { cacheDir });
    expect(src.labels).toHaveLength(8);
  });

  it('rejects a deadline that is not a positive number of milliseconds', async () => {
    const err = await rejection(resolveSource(url(), { cacheDir, deadlineMs: 0 }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('deadlineMs');
  });
});
