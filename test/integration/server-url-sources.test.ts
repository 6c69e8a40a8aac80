/**
 * URL sources in the live server, against a real local HTTP server that counts and holds its connections:
 * off by default, loopback and private hosts refused unless allowed, and a cap on the sources being
 * probed and opened at once, server-wide and per remote address.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { CamModel } from '../../models/index.ts';
import { WS_PATH, type ServerMessage } from '../../protocol/index.ts';
import type { LiveServer } from '../../server/index.ts';
import { disposeAll, smallOnnxModel, startTestServer, tempDir } from './server-harness.ts';

let model: CamModel;

beforeAll(async () => {
  model = await smallOnnxModel(await tempDir());
});
afterAll(disposeAll);

/** An HTTP server that answers nothing: it holds each request, counting those open now and at most. */
interface HoldingServer {
  port: number;
  requests: string[];
  open: number;
  peak: number;
  /** Resolves once `n` requests have arrived in all. */
  arrived(n: number): Promise<void>;
  /** Ends every held request with 404. */
  releaseAll(): void;
  close(): Promise<void>;
}

async function holdingServer(): Promise<HoldingServer> {
  const held = new Set<ServerResponse>();
  const waiters: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    h.requests.push(req.url ?? '');
    h.open++;
    h.peak = Math.max(h.peak, h.open);
    held.add(res);
    res.once('close', () => {
      h.open--;
      held.delete(res);
    });
    for (const w of waiters.splice(0)) w();
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const h: HoldingServer = {
    port: (server.address() as AddressInfo).port,
    requests: [],
    open: 0,
    peak: 0,
    arrived: (n) =>
      new Promise<void>((resolve) => {
        const check = (): void => (h.requests.length >= n ? resolve() : void waiters.push(check));
        check();
      }),
    releaseAll: () => {
      for (const res of held) res.writeHead(404, { 'content-length': 0 }).end();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return h;
}

/** A viewer connected from `localAddress` that records control messages. */
async function viewerFrom(server: LiveServer, localAddress = '127.0.0.1') {
  const ws = new WebSocket(new URL(WS_PATH, server.url.replace(/^http/, 'ws')), { localAddress });
  const messages: ServerMessage[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data: Buffer, binary: boolean) => {
    if (binary) return;
    messages.push(JSON.parse(data.toString('utf8')) as ServerMessage);
    for (const w of waiters.splice(0)) w();
  });
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  /** The first message of `type` from message number `from` on (waiting for it if needed). */
  const next = <T extends ServerMessage['type']>(type: T, from = messages.length): Promise<ServerMessage & { type: T }> =>
    new Promise((resolve) => {
      const check = (): void => {
        const found = messages.slice(from).find((m): m is ServerMessage & { type: T } => m.type === type);
        if (found) resolve(found);
        else waiters.push(check);
      };
      check();
    });
  const nextError = (): Promise<ServerMessage & { type: 'error' }> => next('error');
  return {
    ws,
    messages,
    select: (url: string) => ws.send(JSON.stringify({ type: 'select', source: { kind: 'url', url } })),
    next,
    nextError,
    close: () => ws.terminate(),
  };
}

describe('URL sources in the live server', () => {
  let origin: HoldingServer;
  beforeAll(async () => {
    origin = await holdingServer();
  });
  afterAll(() => origin.close());

  it('are off by default: a URL is refused and never fetched', async () => {
    const server = await startTestServer({ model });
    const v = await viewerFrom(server);
    try {
      expect((await v.next('hello', 0)).sourceKinds).not.toContain('url');
      const err = v.nextError();
      v.select(`http://127.0.0.1:${origin.port}/default.mp4`);
      expect(await err).toMatchObject({ code: 'source-disabled', message: expect.stringMatching(/--allow-url-sources/) });
      expect(origin.requests).not.toContain('/default.mp4');
    } finally {
      v.close();
    }
  });

  it('refuse loopback hosts, by address or by name, IPv4, IPv6 and v4-mapped, unless private URLs are allowed', async () => {
    const server = await startTestServer({ model, sources: { urlSources: true } });
    const v = await viewerFrom(server);
    try {
      for (const url of [
        `http://127.0.0.1:${origin.port}/a.mp4`,
        `http://localhost:${origin.port}/b.mp4`,
        `http://[::1]:${origin.port}/c.mp4`,
        `http://[::ffff:127.0.0.1]:${origin.port}/d.mp4`,
        `http://2130706433:${origin.port}/e.mp4`,
        `rtsp://0x7f.1:${origin.port}/f`,
        `http://169.254.169.254/latest/meta-data/`,
        `http://10.1.2.3/g.mp4`,
      ]) {
        const err = v.nextError();
        v.select(url);
        expect(await err, url).toMatchObject({ code: 'forbidden-url', message: expect.stringMatching(/--allow-private-urls/) });
      }
      const bad = v.nextError();
      v.select(`http://evil.example\\@127.0.0.1:${origin.port}/h.mp4`);
      expect(await bad).toMatchObject({ code: 'bad-source' });
      expect(origin.requests.filter((r) => /^\/[a-h]\.mp4$/.test(r))).toEqual([]);
      expect(v.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      v.close();
    }
  });

  it('cap the sources being probed at once, per address and server-wide', async () => {
    const server = await startTestServer({ model, sources: { urlSources: true, privateUrls: true, maxOpening: 2, maxOpeningPerAddress: 1 } });
    const base = origin.requests.length;
    const a1 = await viewerFrom(server, '127.0.0.1');
    const a2 = await viewerFrom(server, '127.0.0.1');
    const b = await viewerFrom(server, '127.0.0.2');
    const c = await viewerFrom(server, '127.0.0.3');
    try {
      // a1 and b start probes the origin holds; a2 (same address as a1) and c (server full) are refused.
      a1.select(`http://127.0.0.1:${origin.port}/cap-a1.mp4`);
      b.select(`http://127.0.0.1:${origin.port}/cap-b.mp4`);
      await origin.arrived(base + 2);
      const a2Err = a2.nextError();
      a2.select(`http://127.0.0.1:${origin.port}/cap-a2.mp4`);
      expect(await a2Err).toMatchObject({ code: 'busy' });
      const cErr = c.nextError();
      c.select(`http://127.0.0.1:${origin.port}/cap-c.mp4`);
      expect(await cErr).toMatchObject({ code: 'busy' });
      expect(origin.open).toBe(2);
      // Thirty more viewers asking at once change nothing: still two probes.
      const crowd = await Promise.all(Array.from({ length: 30 }, (_, i) => viewerFrom(server, `127.0.1.${i + 1}`)));
      const refusals = crowd.map((v) => v.nextError());
      crowd.forEach((v, i) => v.select(`http://127.0.0.1:${origin.port}/crowd-${i}.mp4`));
      expect((await Promise.all(refusals)).map((e) => e.code)).toEqual(new Array(30).fill('busy'));
      for (const v of crowd) v.close();
      expect(origin.peak).toBeLessThanOrEqual(2);
      // Once the held probes fail, a new one may start.
      const failed = [a1.nextError(), b.nextError()];
      origin.releaseAll();
      expect((await Promise.all(failed)).map((e) => e.code)).toEqual(['bad-source', 'bad-source']);
      const before = origin.requests.length;
      a2.select(`http://127.0.0.1:${origin.port}/cap-a2-again.mp4`);
      await origin.arrived(before + 1);
      expect(origin.requests.at(-1)).toBe('/cap-a2-again.mp4');
    } finally {
      origin.releaseAll();
      for (const v of [a1, a2, b, c]) v.close();
    }
  });
});
