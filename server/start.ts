/**
 * `startServer`: the HTTP server (the built web client, token checks) and the WebSocket endpoint `/ws`
 * in front of the transport-free hub.
 */
import { realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { ConfigError, type CamModel } from '../models/index.ts';
import { activeFfmpegPids } from '../pipelines/index.ts';
import { resolveServerConfig, type ServerConfig } from './config.ts';
import { authorized, presentedToken, TOKEN_COOKIE } from './http/auth.ts';
import { Hub, type HubStats } from './core/hub.ts';
import { ReviewRoutes } from './http/review.ts';
import { clientBuilt, MISSING_BUILD_MESSAGE, sendText, serveStatic } from './http/static.ts';
import { adaptWebSocket } from './adapters/ws.ts';

/** Where `npm run build:client` writes the web client. */
export const DEFAULT_CLIENT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'client', 'dist');

/** Path of the WebSocket endpoint. */
export const WS_PATH = '/ws';

export interface StartServerOptions extends ServerConfig {
  /** The model every source uses. The caller owns it: `dispose()` does not dispose it. */
  model: CamModel;
  /** Serve the review UI at /review and its API at /api/review over this store file (`<home>/review.db`). */
  review?: { dbPath: string };
}

export interface LiveServer {
  /** `http://host:port/` (without the token). */
  readonly url: string;
  readonly port: number;
  /** Whether the web client build was found (the page says how to build it otherwise). */
  readonly clientBuilt: boolean;
  /** Sessions and sources with their counters, ffmpeg pids included. */
  stats(): HubStats;
  /** Closes every client (1001), ends every source and its ffmpeg, stops listening. */
  dispose(): Promise<void>;
}

function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Refuses cross-site WebSocket upgrades: a page elsewhere must not drive this server with the cookie. */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true; // not a browser
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** Starts listening; resolves once the port is bound. Errors: ConfigError (bad config, a missing media root). */
export async function startServer(options: StartServerOptions): Promise<LiveServer> {
  const { model, review, ...rest } = options;
  const config = resolveServerConfig(rest);
  let mediaRoot: string | undefined;
  if (config.mediaRoot !== undefined) {
    try {
      mediaRoot = await realpath(resolve(config.mediaRoot));
      if (!(await stat(mediaRoot)).isDirectory()) throw new Error('not a folder');
    } catch {
      throw new ConfigError(`media root '${config.mediaRoot}' is not an existing folder`);
    }
  }
  const clientDir = resolve(config.clientDir ?? DEFAULT_CLIENT_DIR);
  const built = await clientBuilt(clientDir);
  if (!built) config.log(`warning: ${MISSING_BUILD_MESSAGE} (looked in ${clientDir})`);

  const hub = new Hub(model, config, mediaRoot);
  const cookieHeader = (req: IncomingMessage): Record<string, string> =>
    config.token !== undefined && new URL(req.url ?? '/', 'http://localhost').searchParams.has('token')
      ? { 'set-cookie': `${TOKEN_COOKIE}=${encodeURIComponent(presentedToken(req) ?? '')}; HttpOnly; SameSite=Strict; Path=/` }
      : {};

  const reviewRoutes = review ? new ReviewRoutes({ dbPath: review.dbPath, clientDir }) : undefined;
  const http = createServer((req, res) => {
    if (!authorized(req, config.token)) return sendText(res, 401, 'unauthorized: open the URL camstream serve printed (it carries ?token=)');
    if (reviewRoutes?.handles(req)) return void reviewRoutes.handle(req, res, cookieHeader(req));
    void serveStatic(clientDir, req, res, cookieHeader(req)).catch(() => sendText(res, 500, 'internal error'));
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: hub.limits.maxPayload, perMessageDeflate: false });
  const sockets = new Set<Socket>();
  http.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  http.on('upgrade', (req, socket, head) => {
    const reject = (status: number, text: string): void => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== WS_PATH) return reject(404, 'Not Found');
    if (!authorized(req, config.token)) return reject(401, 'Unauthorized');
    if (!sameOrigin(req)) return reject(403, 'Forbidden');
    wss.handleUpgrade(req, socket, head, (ws) => {
      try {
        hub.connect(adaptWebSocket(ws, config.pingIntervalMs));
      } catch {
        ws.terminate();
      }
    });
  });

  await new Promise<void>((resolveListen, rejectListen) => {
    http.once('error', (err: NodeJS.ErrnoException) =>
      rejectListen(err.code === 'EADDRINUSE' ? new ConfigError(`port ${config.port} on ${config.host} is already in use; pass --port <n>`) : err),
    );
    http.listen(config.port, config.host, () => resolveListen());
  });
  const port = (http.address() as AddressInfo).port;
  const url = `http://${urlHost(config.host)}:${port}/`;

  let disposing: Promise<void> | undefined;
  return {
    url,
    port,
    clientBuilt: built,
    stats: () => hub.stats(),
    dispose: () => {
      disposing ??= (async () => {
        const pids = hub.stats().sources.map((s) => s.pid).filter((p): p is number => p !== undefined);
        hub.dispose();
        reviewRoutes?.dispose();
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        await new Promise<void>((r) => {
          http.close(() => r());
          http.closeAllConnections();
          for (const s of sockets) s.destroy();
        });
        // Each source's teardown stopped its ffmpeg (SIGTERM, then SIGKILL after its grace): wait for them.
        const deadline = Date.now() + 5000;
        while (Date.now() < deadline && activeFfmpegPids().some((p) => pids.includes(p))) await new Promise((r) => setTimeout(r, 25));
      })();
      return disposing;
    },
  };
}
