/**
 * `startServer`: the HTTP server (the built web client, the review page, token checks) and the WebSocket
 * endpoint `WS_PATH` in front of the transport-free hub. Each step of starting is a function below:
 * resolve the config, check the media root and the client build, build the hub, the HTTP handler and the
 * upgrade handler, listen, and hand back a disposer that undoes them in reverse.
 */
import { realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { ConfigError } from '../common/index.ts';
import type { CamModel } from '../models/index.ts';
import { activeFfmpegPids } from '../pipelines/index.ts';
import { CloseCode, WS_PATH } from '../protocol/index.ts';
import { resolveServerConfig, type ResolvedServerConfig, type ServerConfig } from './config.ts';
import { authorized, sameOrigin, tokenCookieHeader } from './http/auth.ts';
import { Hub, type HubStats } from './core/hub.ts';
import { ModelRegistry, type ModelEntry } from './core/model-registry.ts';
import { ReviewRoutes } from './http/review.ts';
import { JobsRoutes } from './http/jobs.ts';
import { clientBuilt, MISSING_BUILD_MESSAGE, sendText, serveStatic } from './http/static.ts';
import { adaptWebSocket } from './adapters/ws.ts';
import { ConnectionLimiter, watchPartialMessages, type PartialBudget } from './adapters/ws-limits.ts';
import { guardRequest, guardUpgrade } from './http/guard.ts';
import { defaultModelName } from './core/model-names.ts';

/** The hub's figures plus the WebSocket endpoint's: open connections and bytes of unfinished messages. */
export interface ServerStats extends HubStats {
  connections: number;
  partialBytes: number;
}

/** What the upgrade handler shares across connections: the connection counts and the partial-message budget. */
interface Admission {
  limiter: ConnectionLimiter;
  budget: PartialBudget;
}

/** Where `npm run build:client` writes the web client. */
export const DEFAULT_CLIENT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'client', 'dist');

export interface StartServerOptions extends ServerConfig {
  /** The model every source starts on. The caller owns it: `dispose()` does not dispose it. */
  model: CamModel;
  /** Its name in the page's model list and header. Default: its folder or file name. */
  modelName?: string;
  /** What the model is for, in a few words the page shows (the CLI says so for its embedded digits model). */
  modelNote?: string;
  /**
   * Other models a viewer may switch its source to, by name (never by path): each is loaded on first use,
   * shared by every source that picks it, and disposed by `dispose()`. Default none.
   */
  models?: readonly ModelEntry[];
  /** Serve the job queue's page at /jobs and its API over this Redis (`redis://`, `rediss://`). Default: off. */
  redis?: string;
}

export interface LiveServer {
  /** `http://host:port/` (without the token). */
  readonly url: string;
  readonly port: number;
  /** Whether the web client build was found (the page says how to build it otherwise). */
  readonly clientBuilt: boolean;
  /** Sessions and sources with their counters (ffmpeg pids included), open connections, partial bytes. */
  stats(): ServerStats;
  /** Closes every client (1001), ends every source and its ffmpeg, stops listening. */
  dispose(): Promise<void>;
}

/** How long `dispose` waits for the sources' ffmpeg children to exit, ms. */
const FFMPEG_EXIT_WAIT_MS = 5000;

/** Starts listening; resolves once the port is bound. Errors: ConfigError (bad config, a missing media root). */
export async function startServer(options: StartServerOptions): Promise<LiveServer> {
  const { model, modelName, modelNote, models: entries, redis, ...rest } = options;
  const config = resolveServerConfig(rest);
  const mediaRoot = await realMediaRoot(config.sources.mediaRoot);
  const clientDir = resolve(config.http.clientDir ?? DEFAULT_CLIENT_DIR);
  const built = await clientBuilt(clientDir);
  if (!built) config.log(`warning: ${MISSING_BUILD_MESSAGE} (looked in ${clientDir})`);

  const models = new ModelRegistry({ model, name: modelName ?? defaultModelName(model.info.source), note: modelNote }, entries ?? []);
  const hub = new Hub(models, config, mediaRoot);
  const reviewRoutes = config.review ? new ReviewRoutes({ dbPath: config.review.dbPath, clientDir }) : undefined;
  const jobsRoutes = redis === undefined ? undefined : await JobsRoutes.open({ redisUrl: redis, clientDir });
  const http = createServer(guardRequest(httpHandler(config, clientDir, reviewRoutes, jobsRoutes), config.log));
  const sockets = trackConnections(http);
  const wss = new WebSocketServer({ noServer: true, maxPayload: hub.limits.maxPayload, perMessageDeflate: false });
  const admission: Admission = {
    limiter: new ConnectionLimiter(config.limits.maxConnections, config.limits.maxConnectionsPerAddress),
    budget: { used: 0, max: config.limits.maxPartialBytes },
  };
  http.on('upgrade', guardUpgrade(upgradeHandler(config, wss, hub, admission), config.log));
  let port: number;
  try {
    port = await listen(http, config);
  } catch (err) {
    // Nothing was served: undo what was opened (the review store, the jobs routes' Redis connection).
    await shutDown(hub, reviewRoutes, wss, http, sockets).catch(() => {});
    await jobsRoutes?.close().catch(() => {});
    throw err;
  }

  let disposing: Promise<void> | undefined;
  return {
    url: `http://${urlHost(config.http.host)}:${port}/`,
    port,
    clientBuilt: built,
    stats: () => ({ ...hub.stats(), connections: admission.limiter.open, partialBytes: admission.budget.used }),
    dispose: () => {
      disposing ??= shutDown(hub, reviewRoutes, wss, http, sockets).finally(() => Promise.all([models.dispose(), jobsRoutes?.close()]));
      return disposing;
    },
  };
}

/** The media root's real path (symlinks resolved), or undefined without one; a ConfigError if it is no folder. */
async function realMediaRoot(mediaRoot: string | undefined): Promise<string | undefined> {
  if (mediaRoot === undefined) return undefined;
  try {
    const real = await realpath(resolve(mediaRoot));
    if (!(await stat(real)).isDirectory()) throw new Error('not a folder');
    return real;
  } catch {
    throw new ConfigError(`media root '${mediaRoot}' is not an existing folder`);
  }
}

/** Plain HTTP: the token check, then the review routes (when on), then the client's static files. */
function httpHandler(
  config: ResolvedServerConfig,
  clientDir: string,
  reviewRoutes: ReviewRoutes | undefined,
  jobsRoutes?: JobsRoutes,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> | void {
  // The returned promise goes to guardRequest, which answers for any throw or rejection.
  return (req, res) => {
    const { token } = config.http;
    if (!authorized(req, token)) return sendText(res, 401, 'unauthorized: open the URL camstream serve printed (it carries ?token=)');
    if (reviewRoutes?.handles(req)) return reviewRoutes.handle(req, res, tokenCookieHeader(req, token));
    if (jobsRoutes?.handles(req)) return jobsRoutes.handle(req, res, tokenCookieHeader(req, token));
    return serveStatic(clientDir, req, res, tokenCookieHeader(req, token));
  };
}

/**
 * WebSocket upgrades: only at `WS_PATH`, with the token, from the same origin, within the connection caps
 * (503 over them); each becomes a hub session whose unfinished incoming messages are metered.
 */
function upgradeHandler(config: ResolvedServerConfig, wss: WebSocketServer, hub: Hub, admission: Admission): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    const reject = (status: number, text: string, extra = ''): void => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${extra}Content-Length: 0\r\n\r\n`);
    };
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== WS_PATH) return reject(404, 'Not Found');
    if (!authorized(req, config.http.token)) return reject(401, 'Unauthorized');
    if (!sameOrigin(req)) return reject(403, 'Forbidden');
    const address = req.socket.remoteAddress ?? 'unknown';
    const refused = admission.limiter.admit(address);
    if (refused) return reject(503, 'Service Unavailable', 'Retry-After: 5\r\n');
    let stopMeter = (): void => {};
    socket.once('close', () => {
      admission.limiter.release(address);
      stopMeter();
    });
    wss.handleUpgrade(req, socket, head, (ws) => {
      try {
        const adapted = adaptWebSocket(ws, config.limits.pingIntervalMs, address);
        stopMeter = watchPartialMessages(socket, admission.budget, config.limits.maxMessageFragments, (why) => {
          // Stop reading what this client sends; the close handshake then ends in the adapter's grace.
          socket.pause();
          if (why === 'budget') adapted.close(CloseCode.TryAgainLater, 'server busy: too many unfinished messages, try again later');
          else adapted.close(CloseCode.MessageTooLarge, `a message split into more than ${config.limits.maxMessageFragments} fragments`);
        });
        hub.connect(adapted);
      } catch {
        ws.terminate();
      }
    });
  };
}

/** The open TCP connections of `http`, so that dispose can end the keep-alive ones too. */
function trackConnections(http: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  http.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return sockets;
}

/** Binds the port; resolves with the port bound (the free one picked for port 0). */
async function listen(http: Server, config: ResolvedServerConfig): Promise<number> {
  const { host, port } = config.http;
  await new Promise<void>((resolveListen, rejectListen) => {
    http.once('error', (err: NodeJS.ErrnoException) =>
      rejectListen(err.code === 'EADDRINUSE' ? new ConfigError(`port ${port} on ${host} is already in use; pass --port <n>`) : err),
    );
    http.listen(port, host, () => resolveListen());
  });
  return (http.address() as AddressInfo).port;
}

function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Closes the sessions and sources, the review store, the sockets and the listener; waits for ffmpeg to exit. */
async function shutDown(hub: Hub, reviewRoutes: ReviewRoutes | undefined, wss: WebSocketServer, http: Server, sockets: Set<Socket>): Promise<void> {
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
  // Inference already queued finishes before the models it runs on are freed.
  await hub.drain();
  // Each source's teardown stopped its ffmpeg (SIGTERM, then SIGKILL after its grace): wait for them.
  const deadline = Date.now() + FFMPEG_EXIT_WAIT_MS;
  while (Date.now() < deadline && activeFfmpegPids().some((p) => pids.includes(p))) await new Promise((r) => setTimeout(r, 25));
}
