/**
 * The live server exposed to hostile clients, over real sockets: requests that used to end the process,
 * the caps on WebSocket connections and on unfinished (fragmented) messages, listening on `[::1]`.
 */
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { writeGeneratedDataset } from '../../datasets/index.ts';
import type { CamModel } from '../../models/index.ts';
import { importForReview, ReviewStore } from '../../review/index.ts';
import { CloseCode, WS_PATH } from '../../protocol/index.ts';
import type { LiveServer } from '../../server/index.ts';
import { connectViewer, disposeAll, smallOnnxModel, startTestServer, tempDir } from './server-harness.ts';

let model: CamModel;
let dir: string;

beforeAll(async () => {
  dir = await tempDir();
  model = await smallOnnxModel(dir);
});
afterAll(disposeAll);

const TOKEN = 'exposure-token-1234';

/** A review store of its own (`<dir>/home-<name>/review.db`) holding a generated dataset of `n` scenes, imported as `name`. */
async function reviewStoreWith(name: string, n: number, seed: number): Promise<string> {
  const dbPath = join(dir, `home-${name}`, 'review.db');
  const store = ReviewStore.open(dbPath);
  try {
    await writeGeneratedDataset(join(dir, name), { layout: 'folders', n, seed });
    await importForReview(store, model, join(dir, name), { name });
  } finally {
    store.close();
  }
  return dbPath;
}

/** One raw HTTP request; resolves with the status, or 0 when the connection was dropped without one. */
function rawRequest(server: LiveServer, path: string, headers: Record<string, string>): Promise<number> {
  const { port } = new URL(server.url);
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** A WebSocket upgrade by hand at `path`: resolves with the status line's code (101 when accepted). */
function rawUpgrade(server: LiveServer, headers: Record<string, string>, path = WS_PATH): Promise<number> {
  const { port } = new URL(server.url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => {});
  return new Promise((resolve) => {
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n')) {
        socket.destroy();
        resolve(Number(head.split(' ')[1]));
      }
    });
    socket.on('close', () => resolve(0));
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
  });
}

/** Opens a `ws` client from `localAddress` (any 127.x address reaches a server on 127.0.0.1). */
function openFrom(server: LiveServer, localAddress: string): Promise<{ ws: WebSocket; status: number; closed: Promise<number> }> {
  const ws = new WebSocket(new URL(WS_PATH, server.url.replace(/^http/, 'ws')), { localAddress });
  ws.on('error', () => {});
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ ws, status: 101, closed }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ ws, status: res.statusCode ?? 0, closed });
      res.resume();
    });
  });
}

describe('a server exposed to hostile clients', () => {
  it('answers 401 to a token cookie with a bad percent-escape, on HTTP and on the upgrade, and keeps serving', async () => {
    const server = await startTestServer({ model, http: { token: TOKEN, clientDir: dir } });
    expect(await rawRequest(server, '/', { cookie: 'camstream_token=%zz' })).toBe(401);
    expect(await rawUpgrade(server, { cookie: 'camstream_token=%zz' })).toBe(401);
    expect(await rawRequest(server, '/', { cookie: 'other=1; camstream_token=%E0%A4%A' })).toBe(401);
    // Still alive, and the right token still works, by cookie too.
    expect(await rawRequest(server, '/', { cookie: `camstream_token=${TOKEN}` })).toBe(503);
    const v = await connectViewer(server, { token: TOKEN });
    expect(await v.waitFor((m) => m.type === 'hello')).toMatchObject({ type: 'hello' });
  });

  it('turns a failing request handler into a 400, logged once, and keeps serving', async () => {
    const lines: string[] = [];
    const server = await startTestServer({ model, http: { token: TOKEN, clientDir: dir }, log: (line) => lines.push(line) });
    // Node accepts this request target; `new URL` on it throws inside the token check.
    expect(await rawRequest(server, '//[', {})).toBe(400);
    expect(await rawUpgrade(server, {}, '//[')).toBe(400);
    const failures = lines.filter((l) => l.startsWith('error:'));
    expect(failures).toHaveLength(2);
    expect(failures[0]).toMatch(/GET "\/\/\[" failed: TypeError/);
    expect(failures[1]).toMatch(/upgrade GET "\/\/\[" failed: TypeError/);
    expect(await rawRequest(server, `/?token=${TOKEN}`, {})).toBe(503);
  });

  it('caps WebSocket connections in all and per address, with 503 over the cap', async () => {
    const server = await startTestServer({ model, limits: { maxConnections: 4, maxConnectionsPerAddress: 2 } });
    const a1 = await openFrom(server, '127.0.0.1');
    const a2 = await openFrom(server, '127.0.0.1');
    expect([a1.status, a2.status]).toEqual([101, 101]);
    expect((await openFrom(server, '127.0.0.1')).status).toBe(503);
    const b = await openFrom(server, '127.0.0.2');
    const c = await openFrom(server, '127.0.0.3');
    expect([b.status, c.status]).toEqual([101, 101]);
    expect((await openFrom(server, '127.0.0.4')).status).toBe(503);
    expect(server.stats().connections).toBe(4);
    // A closed connection frees its slot.
    a1.ws.close();
    await a1.closed;
    await until(() => server.stats().connections === 3);
    expect((await openFrom(server, '127.0.0.1')).status).toBe(101);
  });

  it('bounds the bytes of unfinished messages over all connections and closes whoever overdraws them', async () => {
    const server = await startTestServer({ model, limits: { maxPartialBytes: 256 * 1024 } });
    const chunk = Buffer.alloc(100 * 1024, 1);
    const clients = await Promise.all(['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'].map((a) => openFrom(server, a)));
    // The first two start a binary message and never finish it: 200 KiB held.
    clients[0].ws.send(chunk, { binary: true, fin: false });
    await until(() => server.stats().partialBytes === chunk.length);
    clients[1].ws.send(chunk, { binary: true, fin: false });
    await until(() => server.stats().partialBytes === 2 * chunk.length);
    // The next two would go past 256 KiB: each is closed, and what it sent is not counted.
    for (const c of clients.slice(2)) {
      c.ws.send(chunk, { binary: true, fin: false });
      expect(await c.closed).toBe(CloseCode.TryAgainLater);
      expect(server.stats().partialBytes).toBeLessThanOrEqual(256 * 1024);
    }
    await until(() => server.stats().partialBytes === 2 * chunk.length);
    expect(clients[0].ws.readyState).toBe(WebSocket.OPEN);
    // Finishing a message gives its bytes back (the message itself is then judged, and refused).
    clients[0].ws.send(Buffer.alloc(0), { binary: true, fin: true });
    await clients[0].closed;
    await until(() => server.stats().partialBytes === chunk.length);
  });

  it('closes a client that splits one message into too many fragments', async () => {
    const server = await startTestServer({ model, limits: { maxMessageFragments: 8 } });
    const c = await openFrom(server, '127.0.0.1');
    for (let i = 0; i < 20; i++) c.ws.send(Buffer.from([i]), { binary: true, fin: false });
    expect(await c.closed).toBe(CloseCode.MessageTooLarge);
    await until(() => server.stats().partialBytes === 0 && server.stats().connections === 0);
  });

  it('answers 400, not 404, to an overlay size out of range for an image that exists', async () => {
    const dbPath = await reviewStoreWith('scenes', 12, 3);
    const server = await startTestServer({ model, http: { clientDir: dir }, review: { dbPath } });
    const rows = (await (await fetch(new URL('/api/review/datasets/1/images?split=all', server.url))).json()) as Array<{ id: number }>;
    const overlay = (size: string): Promise<number> => fetch(new URL(`/api/review/images/${rows[0].id}/overlay.jpg?size=${size}`, server.url)).then((r) => r.status);
    expect(await overlay('64')).toBe(200);
    for (const size of ['0', '15', '2049']) expect(await overlay(size), size).toBe(400);
    expect(await overlay('x')).toBe(400);
  });

  it('answers 503 with Retry-After, not 400, when another process keeps the review store locked, and takes the decision once it lets go', async () => {
    const dbPath = await reviewStoreWith('busy', 6, 4);
    const server = await startTestServer({ model, http: { clientDir: dir }, review: { dbPath } });
    const rows = (await (await fetch(new URL('/api/review/datasets/1/images?split=all', server.url))).json()) as Array<{ id: number }>;
    const decide = (): Promise<Response> =>
      fetch(new URL(`/api/review/images/${rows[0].id}/decision`, server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'accepted' }) });
    // Another process (here another connection) holds the write lock past the store's busy timeout.
    const Database = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => { exec(sql: string): void; close(): void };
    const holder = new Database(dbPath);
    holder.exec('BEGIN IMMEDIATE');
    let busy: Response;
    try {
      busy = await decide();
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('2');
    expect(await busy.text()).toMatch(/locked/);
    const ok = await decide();
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'accepted' });
  }, 60_000);

  it('listens on [::1] when the machine has IPv6 loopback', async (ctx) => {
    if (!(await hasIpv6Loopback())) {
      console.warn('skipped: this machine has no IPv6 loopback (::1)');
      ctx.skip();
    }
    const server = await startTestServer({ model, http: { host: '[::1]', clientDir: dir } });
    expect(server.url).toMatch(/^http:\/\/\[::1\]:\d+\/$/);
    expect((await fetch(server.url)).status).toBe(503);
  });
});

/** Polls until `ok()` holds (no fixed sleep); fails after 10 s. */
async function until(ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('condition not met in 10 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function hasIpv6Loopback(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '::1', port: 9 });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
  });
}
