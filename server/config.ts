/**
 * The live server's configuration, grouped by concern: `http` (where it listens, who may use it), `limits`
 * (what one connection may send and be sent), `sources` (which sources viewers may open and how ffmpeg
 * sources restart), `live` (what a new source starts with and what viewers see), `review` (the review page).
 * `ServerConfig` has every field optional, `DEFAULT_SERVER_CONFIG` is frozen, and `resolveServerConfig`
 * merges the two once, validates, and throws a ConfigError naming the field, the bad value and the allowed
 * range. Only the CLI reads argv and the environment; everything here receives values.
 */
import { isIP } from 'node:net';
import { checkInt, ConfigError } from '../common/index.ts';
import type { FfmpegTools, LiveSourceConfig } from '../pipelines/index.ts';
import type { SourceSettings } from '../protocol/index.ts';

/** Where the server listens and who may use it. */
export interface HttpConfig {
  /** Interface to listen on (an IPv6 address with or without brackets). Default `127.0.0.1`. Anything but loopback requires `token`. */
  host?: string;
  /** TCP port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Shared secret checked on every HTTP request and WebSocket upgrade (constant-time). Default none. */
  token?: string;
  /** The built web client (index.html and assets). Default `client/dist` in the project. */
  clientDir?: string;
}

/** What one connection may send and be sent. */
export interface LimitsConfig {
  /** Largest JSON control message, bytes. Default 4096. */
  maxControlBytes?: number;
  /** Largest JPEG a webcam frame may carry, bytes. Default 2 MiB. */
  maxJpegBytes?: number;
  /** Largest side of a webcam frame, pixels. Default 1920. */
  maxFrameSide?: number;
  /** Per-viewer backpressure: result messages skipped while this many sends are unfinished. Default 2. */
  maxPendingSends?: number;
  /** ...or while the socket holds more than this many unsent bytes. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** Keep-alive ping interval, ms; a client that misses a pong until the next ping is closed. Default 15000. */
  pingIntervalMs?: number;
  /** Open WebSocket connections, in all; more are refused at the upgrade with 503. Default 128. */
  maxConnections?: number;
  /** ...from one remote address. Default 64. */
  maxConnectionsPerAddress?: number;
  /**
   * Bytes of incoming messages still arriving (fragments and partial frames), summed over every
   * connection; a connection that would overdraw it is closed with 1013. Default 16 MiB.
   */
  maxPartialBytes?: number;
  /** Frames one incoming message may be split into; more closes the connection with 4003. Default 64. */
  maxMessageFragments?: number;
}

/** Which sources viewers may open, and how ffmpeg sources are run and restarted. */
export interface SourcesConfig {
  /** Folder whose video files viewers may open (paths confined to it, symlinks out refused). Default none. */
  mediaRoot?: string;
  /** Viewers may open RTSP/HTTP(S) URLs as sources. Default false (`--allow-url-sources`). */
  urlSources?: boolean;
  /**
   * ...including URLs whose host is (or resolves to) a loopback, private, link-local or other non-public
   * address, IPv4 or IPv6. Default false (`--allow-private-urls`).
   */
  privateUrls?: boolean;
  /** Sources being probed and opened at once, server-wide; a viewer asking for one more gets `busy`. Default 4. */
  maxOpening?: number;
  /** ...by the viewers of one remote address. Default 2. */
  maxOpeningPerAddress?: number;
  /** Viewers may open v4l2 camera devices (`/dev/videoN`). Default true. */
  deviceSources?: boolean;
  /** Size of device frames (v4l2 cannot be probed beforehand), `[width, height]`. Default [640, 480]. */
  deviceSize?: [number, number];
  /** Restart policy of ffmpeg sources: first delay, ms. Default 250; doubles per attempt. */
  restartInitialDelayMs?: number;
  /** ...largest delay, ms. Default 8000. */
  restartMaxDelayMs?: number;
  /** ...attempts in a row before the source is given up (status `error`). Default 8. */
  restartMaxAttempts?: number;
  /** ffmpeg to use; default `locateFfmpeg()`. */
  tools?: FfmpegTools;
}

/** What a new source starts with and what its viewers see. */
export interface LiveConfig {
  /** Settings a new source starts with; each missing field from `DEFAULT_SERVER_CONFIG.live.settings`. */
  settings?: Partial<SourceSettings>;
  /** Largest top-k a viewer may ask for. Default 10. */
  maxTopK?: number;
  /** Side of the server-side frames sent to viewers (longer side, pixels). Default 640. */
  displaySide?: number;
  /** JPEG quality of those frames, 1-100. Default 75. */
  jpegQuality?: number;
  /**
   * For a model with a `no digit` class: a top probability under this reads as "no digit" on the page,
   * not as a weak guess. In [0, 1]; 0 turns it off. Default 0.5.
   */
  lowConfidence?: number;
}

/** The review page (`/review`) and its API. */
export interface ReviewConfig {
  /** The review store file (`<home>/review.db`). */
  dbPath: string;
}

export interface ServerConfig {
  http?: HttpConfig;
  limits?: LimitsConfig;
  sources?: SourcesConfig;
  live?: LiveConfig;
  /** Serve the review UI at /review and its API at /api/review over this store. Default: off. */
  review?: ReviewConfig;
  /** Where `startServer` logs one-line events (the URL, a missing client build). Default: nothing. */
  log?: (line: string) => void;
}

/** Every default of `ServerConfig` (fields without one, like `token`, stay unset). Deeply frozen. */
export const DEFAULT_SERVER_CONFIG = Object.freeze({
  http: Object.freeze({ host: '127.0.0.1', port: 8080 }),
  limits: Object.freeze({
    maxControlBytes: 4096,
    maxJpegBytes: 2 << 20,
    maxFrameSide: 1920,
    maxPendingSends: 2,
    maxBufferedBytes: 1 << 20,
    pingIntervalMs: 15_000,
    maxConnections: 128,
    maxConnectionsPerAddress: 64,
    maxPartialBytes: 16 << 20,
    maxMessageFragments: 64,
  }),
  sources: Object.freeze({
    urlSources: false,
    privateUrls: false,
    maxOpening: 4,
    maxOpeningPerAddress: 2,
    deviceSources: true,
    deviceSize: Object.freeze([640, 480]) as readonly [number, number],
    restartInitialDelayMs: 250,
    restartMaxDelayMs: 8000,
    restartMaxAttempts: 8,
  }),
  live: Object.freeze({
    settings: Object.freeze({ topK: 5, classes: null, smoothing: 0.7, boxRule: 'paper' as const, threshold: 0.2 }) as Readonly<SourceSettings>,
    maxTopK: 10,
    displaySide: 640,
    jpegQuality: 75,
    lowConfidence: 0.5,
  }),
});

type Resolved<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

/** The configuration after `resolveServerConfig`: every field set (optional ones may be undefined). */
export interface ResolvedServerConfig {
  http: Resolved<Omit<HttpConfig, 'token' | 'clientDir'>> & { token: string | undefined; clientDir: string | undefined };
  limits: Resolved<LimitsConfig>;
  sources: Resolved<Omit<SourcesConfig, 'mediaRoot' | 'tools'>> & { mediaRoot: string | undefined; tools: FfmpegTools | undefined };
  live: Resolved<Omit<LiveConfig, 'settings'>> & { settings: SourceSettings };
  review: ReviewConfig | undefined;
  log: (line: string) => void;
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./i.test(h);
  return false;
}

/** Host and token: a non-loopback host without a token is refused. `[::1]` becomes `::1` (what listen takes). */
function resolveAccess(http: HttpConfig): { host: string; token: string | undefined } {
  const given = http.host ?? DEFAULT_SERVER_CONFIG.http.host;
  if (typeof given !== 'string' || given.trim() === '') throw new ConfigError(`host must be an interface name or address, got ${JSON.stringify(given)}`);
  const bracketed = /^\[(.*)\]$/.exec(given);
  if (bracketed && isIP(bracketed[1]) !== 6) throw new ConfigError(`host ${given} has brackets but no IPv6 address inside`);
  const host = bracketed ? bracketed[1] : given;
  const token = http.token;
  if (token !== undefined && (typeof token !== 'string' || token.length < 8 || token.length > 256 || /[\s;,]/.test(token))) {
    throw new ConfigError('token must be 8 to 256 characters without spaces, commas or semicolons');
  }
  if (!isLoopbackHost(host) && token === undefined) {
    throw new ConfigError(
      `refusing to listen on ${host} without a token: anyone who can reach it could use the camera and the media folder; pass --token <secret> (at least 8 characters) or listen on 127.0.0.1`,
    );
  }
  return { host, token };
}

/** A new source's settings over the defaults, each within its range. */
function resolveSettings(settings: Partial<SourceSettings> | undefined, maxTopK: number): SourceSettings {
  const s: SourceSettings = { ...DEFAULT_SERVER_CONFIG.live.settings, ...settings };
  checkInt('settings.topK', s.topK, 1, maxTopK);
  if (!(s.smoothing >= 0 && s.smoothing < 1)) throw new ConfigError(`settings.smoothing must be in [0, 1), got ${s.smoothing}`);
  if (!(s.threshold >= 0 && s.threshold < 1)) throw new ConfigError(`settings.threshold must be in [0, 1), got ${s.threshold}`);
  if (!['paper', 'official', 'off'].includes(s.boxRule)) throw new ConfigError(`settings.boxRule must be paper, official or off, got ${String(s.boxRule)}`);
  return s;
}

/**
 * Merges `config` over `DEFAULT_SERVER_CONFIG` and validates it; the result is a new object, the defaults
 * are never touched. Throws ConfigError naming the field, the value and the allowed range; a non-loopback
 * host without a token is refused.
 */
export function resolveServerConfig(config: ServerConfig = {}): ResolvedServerConfig {
  const d = DEFAULT_SERVER_CONFIG;
  const http = config.http ?? {};
  const limits = config.limits ?? {};
  const sources = config.sources ?? {};
  const live = config.live ?? {};
  // Checked in this order so that, of several bad fields, the same one is named as before the grouping.
  const { host, token } = resolveAccess(http);
  const maxTopK = checkInt('maxTopK', live.maxTopK ?? d.live.maxTopK, 1, 255);
  const settings = resolveSettings(live.settings, maxTopK);
  const deviceSize = sources.deviceSize ?? d.sources.deviceSize;
  checkInt('deviceSize[0]', deviceSize[0], 16, 4096);
  checkInt('deviceSize[1]', deviceSize[1], 16, 4096);
  const restartInitialDelayMs = checkInt('restartInitialDelayMs', sources.restartInitialDelayMs ?? d.sources.restartInitialDelayMs, 1, 60_000);
  const port = checkInt('port', http.port ?? d.http.port, 0, 65535);
  const maxPendingSends = checkInt('maxPendingSends', limits.maxPendingSends ?? d.limits.maxPendingSends, 1, 64);
  const maxBufferedBytes = checkInt('maxBufferedBytes', limits.maxBufferedBytes ?? d.limits.maxBufferedBytes, 1024, 1 << 30);
  const maxJpegBytes = checkInt('maxJpegBytes', limits.maxJpegBytes ?? d.limits.maxJpegBytes, 1024, 64 << 20);
  const maxFrameSide = checkInt('maxFrameSide', limits.maxFrameSide ?? d.limits.maxFrameSide, 16, 8192);
  const maxControlBytes = checkInt('maxControlBytes', limits.maxControlBytes ?? d.limits.maxControlBytes, 256, 1 << 20);
  const displaySide = checkInt('displaySide', live.displaySide ?? d.live.displaySide, 16, 4096);
  const jpegQuality = checkInt('jpegQuality', live.jpegQuality ?? d.live.jpegQuality, 1, 100);
  const lowConfidence = live.lowConfidence ?? d.live.lowConfidence;
  if (typeof lowConfidence !== 'number' || !(lowConfidence >= 0 && lowConfidence <= 1)) throw new ConfigError(`lowConfidence must be a number in [0, 1], got ${String(lowConfidence)}`);
  const pingIntervalMs = checkInt('pingIntervalMs', limits.pingIntervalMs ?? d.limits.pingIntervalMs, 100, 3_600_000);
  return {
    http: { host, port, token, clientDir: http.clientDir },
    limits: { maxControlBytes, maxJpegBytes, maxFrameSide, maxPendingSends, maxBufferedBytes, pingIntervalMs, ...resolveConnectionLimits(limits) },
    sources: {
      mediaRoot: sources.mediaRoot,
      urlSources: sources.urlSources ?? d.sources.urlSources,
      privateUrls: sources.privateUrls ?? d.sources.privateUrls,
      maxOpening: checkInt('maxOpening', sources.maxOpening ?? d.sources.maxOpening, 1, 1024),
      maxOpeningPerAddress: checkInt('maxOpeningPerAddress', sources.maxOpeningPerAddress ?? d.sources.maxOpeningPerAddress, 1, 1024),
      deviceSources: sources.deviceSources ?? d.sources.deviceSources,
      deviceSize: [deviceSize[0], deviceSize[1]],
      restartInitialDelayMs,
      restartMaxDelayMs: checkInt('restartMaxDelayMs', sources.restartMaxDelayMs ?? d.sources.restartMaxDelayMs, restartInitialDelayMs, 600_000),
      restartMaxAttempts: checkInt('restartMaxAttempts', sources.restartMaxAttempts ?? d.sources.restartMaxAttempts, 1, 1_000_000),
      tools: sources.tools,
    },
    live: { settings, maxTopK, displaySide, jpegQuality, lowConfidence },
    review: config.review ? { dbPath: config.review.dbPath } : undefined,
    log: config.log ?? (() => {}),
  };
}

/** The connection caps of `limits` over the defaults, each within its range. */
function resolveConnectionLimits(limits: LimitsConfig): Pick<ResolvedServerConfig['limits'], 'maxConnections' | 'maxConnectionsPerAddress' | 'maxPartialBytes' | 'maxMessageFragments'> {
  const d = DEFAULT_SERVER_CONFIG.limits;
  return {
    maxConnections: checkInt('maxConnections', limits.maxConnections ?? d.maxConnections, 1, 100_000),
    maxConnectionsPerAddress: checkInt('maxConnectionsPerAddress', limits.maxConnectionsPerAddress ?? d.maxConnectionsPerAddress, 1, 100_000),
    maxPartialBytes: checkInt('maxPartialBytes', limits.maxPartialBytes ?? d.maxPartialBytes, 1024, 1 << 30),
    maxMessageFragments: checkInt('maxMessageFragments', limits.maxMessageFragments ?? d.maxMessageFragments, 1, 1 << 20),
  };
}

/** The flat view a live source reads (see `LiveSourceConfig`). */
export function liveSourceConfig(c: ResolvedServerConfig): LiveSourceConfig {
  return {
    settings: c.live.settings,
    maxFrameSide: c.limits.maxFrameSide,
    jpegQuality: c.live.jpegQuality,
    displaySide: c.live.displaySide,
    deviceSize: c.sources.deviceSize,
    tools: c.sources.tools,
    restartInitialDelayMs: c.sources.restartInitialDelayMs,
    restartMaxDelayMs: c.sources.restartMaxDelayMs,
    restartMaxAttempts: c.sources.restartMaxAttempts,
  };
}
