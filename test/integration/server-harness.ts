/**
 * Shared by the server tests, the e2e tests and the live benches: a small random ONNX model on disk, short
 * clips made by ffmpeg, a live server, and a Node WebSocket viewer that records what it receives. Every
 * server, client and model made here is disposed in `afterAll` of the test file that imported it (benches
 * call `disposeAll()` themselves).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';
import { smallGapDenseNet, toOnnxModel } from '../../lab/builders/index.ts';
import { load, type CamModel } from '../../models/index.ts';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { decodeResult, WS_PATH, type ResultMessage, type ServerMessage } from '../../protocol/index.ts';
import { startServer, type LiveServer, type StartServerOptions } from '../../server/index.ts';

const run = promisify(execFile);
const disposers: Array<() => Promise<void> | void> = [];

/** Runs every registered disposer (latest first). Test files call it in afterAll. */
export async function disposeAll(): Promise<void> {
  while (disposers.length > 0) {
    try {
      await disposers.pop()!();
    } catch {
      // keep disposing the rest
    }
  }
}

export async function tempDir(prefix = 'camstream-server-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  disposers.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A small random gap-dense ONNX model (fast: well under a millisecond per frame). */
export async function smallOnnxModel(dir: string, options: { inputSize?: [number, number]; numClasses?: number; seed?: number } = {}): Promise<CamModel> {
  const file = join(dir, `small-${options.seed ?? 5}.onnx`);
  await writeFile(file, toOnnxModel(smallGapDenseNet(options.seed ?? 5, { inputSize: options.inputSize ?? [48, 64], numClasses: options.numClasses ?? 12, width: 4 })));
  const model = await load(file, { engine: 'onnx', threads: 1 });
  disposers.push(() => model.dispose());
  return model;
}

/** A moving test pattern clip made by ffmpeg (`testsrc2`), MPEG-4 Part 2 in MP4 unless `name` says .y4m. */
export async function makeClip(dir: string, name: string, options: { seconds?: number; fps?: number; size?: [number, number] } = {}): Promise<string> {
  const { ffmpeg } = await testFfmpeg();
  const [w, h] = options.size ?? [320, 240];
  const out = join(dir, name);
  const codec = name.endsWith('.y4m') ? ['-pix_fmt', 'yuv420p'] : ['-c:v', 'mpeg4', '-q:v', '5', '-pix_fmt', 'yuv420p'];
  // ffmpeg -f lavfi -i testsrc2=size=WxH:rate=FPS:duration=S -c:v mpeg4 -q:v 5 -pix_fmt yuv420p out.mp4
  await run(ffmpeg.path, ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${w}x${h}:rate=${options.fps ?? 25}:duration=${options.seconds ?? 4}`, ...codec, out]);
  return out;
}

/** `options` listening on a free port unless they name one. */
function onAnyPort(options: StartServerOptions): StartServerOptions {
  return { ...options, http: { port: 0, ...options.http } };
}

/** `options` with the test run's ffmpeg (FFMPEG_PATH / FFPROBE_PATH, see helpers/ffmpeg.ts) unless they name one. */
async function withTestFfmpeg(options: StartServerOptions): Promise<StartServerOptions> {
  return { ...options, sources: { tools: await testFfmpeg(), ...options.sources } };
}

/** A server the caller disposes itself (tests of dispose). */
export async function startServerUntracked(options: StartServerOptions): Promise<LiveServer> {
  return startServer(onAnyPort(await withTestFfmpeg(options)));
}

export async function startTestServer(options: StartServerOptions): Promise<LiveServer> {
  const server = await startServer(onAnyPort(await withTestFfmpeg(options)));
  disposers.push(() => server.dispose());
  return server;
}

/** A Node viewer: records results and control messages, with waits. */
export interface Viewer {
  ws: WebSocket;
  results: Array<ResultMessage & { receivedAt: number }>;
  messages: ServerMessage[];
  closed: Promise<{ code: number; reason: string }>;
  send(message: unknown): void;
  /** Resolves with the first recorded control message matching `pred` (waiting for it if needed). */
  waitFor<T extends ServerMessage>(pred: (m: ServerMessage) => m is T, timeoutMs?: number): Promise<T>;
  waitFor(pred: (m: ServerMessage) => boolean, timeoutMs?: number): Promise<ServerMessage>;
  /** Resolves once `count` results have arrived. */
  waitForResults(count: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

export async function connectViewer(server: { url: string }, options: { token?: string; decode?: boolean } = {}): Promise<Viewer> {
  const url = new URL(WS_PATH, server.url.replace(/^http/, 'ws'));
  if (options.token) url.searchParams.set('token', options.token);
  const ws = new WebSocket(url);
  const results: Viewer['results'] = [];
  const messages: ServerMessage[] = [];
  const listeners = new Set<() => void>();
  const changed = (): void => {
    for (const l of [...listeners]) l();
  };
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      if (options.decode !== false) results.push({ ...decodeResult(new Uint8Array(data)), receivedAt: performance.now() });
      else results.push({ receivedAt: performance.now() } as Viewer['results'][number]);
    } else {
      messages.push(JSON.parse(data.toString('utf8')) as ServerMessage);
    }
    changed();
  });
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  const waitUntil = (ok: () => boolean, what: string, timeoutMs: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (ok()) return resolve();
      const check = (): void => {
        if (ok()) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${results.length} results and messages ${JSON.stringify(messages.map((m) => m.type === 'status' ? `${m.type}:${m.state}` : m.type))}`));
      }, timeoutMs);
      listeners.add(check);
    });
  const viewer: Viewer = {
    ws,
    results,
    messages,
    closed,
    send: (m) => ws.send(JSON.stringify(m)),
    waitFor: (async (pred: (m: ServerMessage) => boolean, timeoutMs = 20_000) => {
      await waitUntil(() => messages.some(pred), 'a message', timeoutMs);
      return messages.find(pred)!;
    }) as Viewer['waitFor'],
    waitForResults: (count, timeoutMs = 30_000) => waitUntil(() => results.length >= count, `${count} results`, timeoutMs),
    close: () => ws.close(),
  };
  disposers.push(() => {
    ws.terminate();
  });
  return viewer;
}
