/**
 * The live server under abuse, over real sockets on 127.0.0.1: a thousand malformed or oversized messages,
 * a client that stops reading, paths out of the media root, and tokens.
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CamModel } from '../../models/index.ts';
import { CloseCode, encodeFrame, FrameEncoding } from '../../protocol/index.ts';
import type { LiveServer } from '../../server/index.ts';
import { connectViewer, disposeAll, makeClip, smallOnnxModel, startTestServer, tempDir } from './server-harness.ts';

let dir: string;
let media: string;
let model: CamModel;

beforeAll(async () => {
  dir = await tempDir();
  media = join(dir, 'media');
  await mkdir(media);
  model = await smallOnnxModel(dir);
  await makeClip(media, 'clip.mp4', { seconds: 4, fps: 25 });
  await makeClip(media, 'big.mp4', { seconds: 4, fps: 30, size: [960, 540] });
});
afterAll(disposeAll);

/** One malformed message per kind, and the close code it must get. */
const BAD: Array<{ name: string; code: number; send: (ws: WebSocket) => void }> = [
  { name: 'text that is not JSON', code: CloseCode.BadMessage, send: (ws) => ws.send('{"type": sel') },
  { name: 'an unknown type', code: CloseCode.BadMessage, send: (ws) => ws.send('{"type":"format-disk"}') },
  { name: 'a field out of range', code: CloseCode.BadMessage, send: (ws) => ws.send('{"type":"settings","settings":{"topK":0}}') },
  { name: 'an unknown field', code: CloseCode.BadMessage, send: (ws) => ws.send('{"type":"pause","paused":true,"x":1}') },
  { name: 'control over its limit', code: CloseCode.MessageTooLarge, send: (ws) => ws.send(JSON.stringify({ type: 'ping', t: 1, pad: 'x'.repeat(6000) })) },
  { name: 'a message over maxPayload', code: CloseCode.TooBig, send: (ws) => ws.send(new Uint8Array(70_000)) },
  { name: 'binary garbage', code: CloseCode.BadFrame, send: (ws) => ws.send(randomBytes(10)) },
  { name: 'a future protocol version', code: CloseCode.UnsupportedVersion, send: (ws) => { const b = encodeFrame({ frameId: 1, captureMs: 0, encoding: 1, width: 64, height: 48, payload: new Uint8Array(64 * 48 * 3) }); b[0] = 2; ws.send(b); } },
  { name: 'raw pixels of the wrong size', code: CloseCode.BadFrame, send: (ws) => ws.send(encodeFrame({ frameId: 1, captureMs: 0, encoding: 1, width: 64, height: 48, payload: new Uint8Array(100) })) },
  { name: 'a JPEG that does not decode', code: CloseCode.BadFrame, send: (ws) => ws.send(encodeFrame({ frameId: 1, captureMs: 0, encoding: 0, width: 64, height: 48, payload: Uint8Array.from([0xff, 0xd8, ...randomBytes(300)]) })) },
  { name: 'text that is not UTF-8', code: 1007, send: (ws) => ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false }) },
];

function openRaw(server: LiveServer): Promise<WebSocket> {
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}ws`);
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

describe('the live server', () => {
  it('closes 1000 malformed or oversized messages with typed codes while the server and other clients carry on', async () => {
    const server = await startTestServer({ model, sources: { mediaRoot: media }, limits: { maxJpegBytes: 64 * 1024 } });
    const watcher = await connectViewer(server);
    watcher.send({ type: 'select', source: { kind: 'file', path: 'clip.mp4' } });
    await watcher.waitForResults(5);
    // A webcam client keeps sending good frames through the storm.
    const cam = await connectViewer(server);
    let frameId = 0;
    const pixels = new Uint8Array(64 * 48 * 3).map((_, i) => (i * 7) % 251);
    const feeder = setInterval(() => cam.ws.send(encodeFrame({ frameId: frameId++, captureMs: performance.now(), encoding: FrameEncoding.Rgb, width: 64, height: 48, payload: pixels })), 20);
    try {
      await cam.waitForResults(3);
      const before = { watcher: watcher.results.length, cam: cam.results.length };
      const got = new Map<string, number[]>();
      const batch = 25;
      for (let i = 0; i < 1000; i += batch) {
        await Promise.all(
          Array.from({ length: batch }, async (_, j) => {
            const bad = BAD[(i + j) % BAD.length];
            const ws = await openRaw(server);
            const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
            bad.send(ws);
            const code = await closed;
            got.set(bad.name, [...(got.get(bad.name) ?? []), code]);
          }),
        );
      }
      for (const bad of BAD) {
        const codes = got.get(bad.name)!;
        expect(codes.length, bad.name).toBeGreaterThanOrEqual(90);
        expect(new Set(codes), bad.name).toEqual(new Set([bad.code]));
      }
      // Both good clients kept receiving during the storm, and still do.
      expect(watcher.results.length).toBeGreaterThan(before.watcher);
      expect(cam.results.length).toBeGreaterThan(before.cam);
      const mid = { watcher: watcher.results.length, cam: cam.results.length };
      await watcher.waitForResults(mid.watcher + 5);
      await cam.waitForResults(mid.cam + 3);
      expect(watcher.ws.readyState).toBe(WebSocket.OPEN);
      expect(cam.ws.readyState).toBe(WebSocket.OPEN);
      // Every bad session is gone; a new client is served.
      await new Promise((r) => setTimeout(r, 200));
      expect(server.stats().sessions).toHaveLength(2);
      const late = await connectViewer(server);
      late.send({ type: 'select', source: { kind: 'file', path: 'clip.mp4' } });
      await late.waitForResults(3);
    } finally {
      clearInterval(feeder);
    }
  });

  it('skips frames for a client that stopped reading without slowing the others', async () => {
    const server = await startTestServer({ model, sources: { mediaRoot: media }, live: { displaySide: 960, jpegQuality: 95 } });
    const good = await connectViewer(server, { decode: false });
    good.send({ type: 'select', source: { kind: 'file', path: 'big.mp4' } });
    await good.waitForResults(5);
    const stalled = await stallingClient(server, { type: 'select', source: { kind: 'file', path: 'big.mp4' } });
    try {
      // Let the stalled socket's buffers fill, then measure the good viewer against the source.
      await new Promise((r) => setTimeout(r, 2500));
      const src0 = server.stats().sources.find((s) => s.kind === 'file')!;
      const good0 = good.results.length;
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 3000));
      const src1 = server.stats().sources.find((s) => s.kind === 'file')!;
      const processed = src1.processed - src0.processed;
      const received = good.results.length - good0;
      const seconds = (performance.now() - t0) / 1000;
      expect(src1.viewers).toBe(2);
      // The good viewer got (nearly) every processed frame: at most a couple in flight at either end.
      expect(received).toBeGreaterThanOrEqual(processed - 3);
      expect(processed / seconds).toBeGreaterThan(5);
      const sessions = server.stats().sessions;
      const goodStats = sessions.find((s) => s.sent >= good.results.length - 2 && s.skipped === 0);
      expect(goodStats).toBeDefined();
      // The stalled one is skipped, and what was sent to it is bounded.
      const stalledStats = sessions.filter((s) => s.skipped > 0);
      expect(stalledStats).toHaveLength(1);
      expect(stalledStats[0].skipped).toBeGreaterThan(processed / 2);
    } finally {
      stalled.destroy();
    }
  });

  it('refuses media paths outside the root, with the connection kept open', async () => {
    await writeFile(join(dir, 'outside.mp4'), 'not media');
    await symlink(join(dir, 'outside.mp4'), join(media, 'escape.mp4')).catch(() => {});
    const server = await startTestServer({ model, sources: { mediaRoot: media } });
    const v = await connectViewer(server);
    const cases: Array<[string, string]> = [
      ['../outside.mp4', 'forbidden-path'],
      ['/etc/passwd', 'forbidden-path'],
      ['escape.mp4', 'forbidden-path'],
      ['nope.mp4', 'not-found'],
    ];
    for (const [path, code] of cases) {
      const seen = v.messages.length;
      v.send({ type: 'select', source: { kind: 'file', path } });
      const err = await v.waitFor((m) => m.type === 'error' && v.messages.indexOf(m) >= seen);
      expect(err, path).toMatchObject({ type: 'error', code });
    }
    const devices = v.messages.length;
    v.send({ type: 'select', source: { kind: 'device', path: '/etc/shadow' } });
    expect(await v.waitFor((m) => m.type === 'error' && v.messages.indexOf(m) >= devices)).toMatchObject({ code: 'forbidden-path' });
    expect(v.ws.readyState).toBe(WebSocket.OPEN);
    expect(server.stats().sources).toHaveLength(0);
    v.send({ type: 'select', source: { kind: 'file', path: 'clip.mp4' } });
    await v.waitForResults(2);
  });

  it('refuses file sources when no media root is set', async () => {
    const server = await startTestServer({ model });
    const v = await connectViewer(server);
    v.send({ type: 'select', source: { kind: 'file', path: 'clip.mp4' } });
    expect(await v.waitFor((m) => m.type === 'error')).toMatchObject({ code: 'source-disabled' });
  });

  it('checks the token on HTTP requests and WebSocket upgrades', async () => {
    const token = 'tok-' + randomBytes(8).toString('hex');
    const server = await startTestServer({ model, http: { token, clientDir: join(dir, 'no-client') } });
    expect((await fetch(server.url)).status).toBe(401);
    expect((await fetch(`${server.url}?token=wrong-token-123`)).status).toBe(401);
    const ok = await fetch(`${server.url}?token=${token}`);
    // No client build in that folder: the page says how to build it.
    expect(ok.status).toBe(503);
    expect(await ok.text()).toMatch(/npm run build:client/);
    const cookie = ok.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect((await fetch(server.url, { headers: { cookie: cookie.split(';')[0] } })).status).toBe(503);
    expect((await fetch(server.url, { headers: { authorization: `Bearer ${token}` } })).status).toBe(503);
    await expect(connectViewer(server)).rejects.toThrow(/401/);
    await expect(connectViewer(server, { token: 'wrong-token-123' })).rejects.toThrow(/401/);
    const v = await connectViewer(server, { token });
    expect(await v.waitFor((m) => m.type === 'hello')).toMatchObject({ protocol: 1 });
    // A page on another origin cannot open the socket with the cookie.
    const cross = new WebSocket(`${server.url.replace(/^http/, 'ws')}ws?token=${token}`, { headers: { origin: 'http://evil.example' } });
    const status = await new Promise<number>((resolve) => {
      cross.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      cross.once('open', () => resolve(101));
      cross.on('error', () => {});
    });
    expect(status).toBe(403);
  });
});

/**
 * A client that completes the WebSocket handshake, sends one control message, then never reads again:
 * its receive buffer fills and the server's writes to it stall.
 */
async function stallingClient(server: LiveServer, message: unknown): Promise<Socket> {
  const { port } = new URL(server.url);
  const socket = connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  socket.on('error', () => {});
  const key = randomBytes(16).toString('base64');
  socket.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await new Promise<void>((resolve, reject) => {
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        socket.off('data', onData);
        if (head.startsWith('HTTP/1.1 101')) resolve();
        else reject(new Error(head.split('\r\n')[0]));
      }
    };
    socket.on('data', onData);
  });
  // One masked text frame (client frames must be masked), payload < 126 bytes.
  const payload = Buffer.from(JSON.stringify(message));
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
  // Never read again.
  socket.pause();
  return socket;
}

