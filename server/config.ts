/**
 * The live server's configuration: `ServerConfig` (every field optional for callers), the frozen defaults,
 * and `resolveServerConfig`, which validates and throws a ConfigError naming the field, the bad value and
 * the allowed range. Only the CLI reads argv and the environment; everything here receives values.
 */
import { isIP } from 'node:net';
import { ConfigError } from '../models/index.ts';
import type { FfmpegTools } from '../pipelines/index.ts';
import type { SourceSettings } from '../protocol/live.ts';

export interface ServerConfig {
  /** Interface to listen on. Default `127.0.0.1`. Anything but loopback requires `token`. */
  host?: string;
  /** TCP port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Shared secret checked on every HTTP request and WebSocket upgrade (constant-time). Default none. */
  token?: string;
  /** Folder whose video files viewers may open (paths confined to it, symlinks out refused). Default none. */
  mediaRoot?: string;
  /** The built web client (index.html and assets). Default `client/dist` in the project. */
  clientDir?: string;
  /** Viewers may open RTSP/HTTP(S) URLs as sources. Default true. */
  urlSources?: boolean;
  /** Viewers may open v4l2 camera devices (`/dev/videoN`). Default true. */
  deviceSources?: boolean;
  /** Settings a new source starts with. */
  settings?: Partial<SourceSettings>;
  /** Largest top-k a viewer may ask for. Default 10. */
  maxTopK?: number;
  /** Per-viewer backpressure: result messages skipped while this many sends are unfinished. Default 2. */
  maxPendingSends?: number;
  /** ...or while the socket holds more than this many unsent bytes. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** Largest JPEG a webcam frame may carry, bytes. Default 2 MiB. */
  maxJpegBytes?: number;
  /** Largest side of a webcam frame, pixels. Default 1920. */
  maxFrameSide?: number;
  /** Largest JSON control message, bytes. Default 4096. */
  maxControlBytes?: number;
  /** Side of the server-side frames sent to viewers (longer side, pixels). Default 640. */
  displaySide?: number;
  /** JPEG quality of those frames, 1-100. Default 75. */
  jpegQuality?: number;
  /** Keep-alive ping interval, ms; a client that misses a pong until the next ping is closed. Default 15000. */
  pingIntervalMs?: number;
  /** Restart policy of ffmpeg sources: first delay, ms. Default 250; doubles per attempt. */
  restartInitialDelayMs?: number;
  /** ...largest delay, ms. Default 8000. */
  restartMaxDelayMs?: number;
  /** ...attempts in a row before the source is given up (status `error`). Default 8. */
  restartMaxAttempts?: number;
  /** Size of device frames (v4l2 cannot be probed beforehand), `[width, height]`. Default [640, 480]. */
  deviceSize?: [number, number];
  /** Where `startServer` logs one-line events (the URL, a missing client build). Default: nothing. */
  log?: (line: string) => void;
  /** ffmpeg to use; default `locateFfmpeg()`. */
  tools?: FfmpegTools;
}

export const DEFAULT_SOURCE_SETTINGS: Readonly<SourceSettings> = Object.freeze({
  topK: 5,
  classes: null,
  smoothing: 0.7,
  boxRule: 'paper' as const,
  threshold: 0.2,
});

export const DEFAULT_SERVER_CONFIG = Object.freeze({
  host: '127.0.0.1',
  port: 8080,
  urlSources: true,
  deviceSources: true,
  maxTopK: 10,
  maxPendingSends: 2,
  maxBufferedBytes: 1 << 20,
  maxJpegBytes: 2 << 20,
  maxFrameSide: 1920,
  maxControlBytes: 4096,
  displaySide: 640,
  jpegQuality: 75,
  pingIntervalMs: 15_000,
  restartInitialDelayMs: 250,
  restartMaxDelayMs: 8000,
  restartMaxAttempts: 8,
  deviceSize: Object.freeze([640, 480]) as readonly [number, number],
});

export interface ResolvedServerConfig {
  host: string;
  port: number;
  token: string | undefined;
  mediaRoot: string | undefined;
  clientDir: string | undefined;
  urlSources: boolean;
  deviceSources: boolean;
  settings: SourceSettings;
  maxTopK: number;
  maxPendingSends: number;
  maxBufferedBytes: number;
  maxJpegBytes: number;
  maxFrameSide: number;
  maxControlBytes: number;
  displaySide: number;
  jpegQuality: number;
  pingIntervalMs: number;
  restartInitialDelayMs: number;
  restartMaxDelayMs: number;
  restartMaxAttempts: number;
  deviceSize: [number, number];
  log: (line: string) => void;
  tools: FfmpegTools | undefined;
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./i.test(h);
  return false;
}

function int(field: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new ConfigError(`${field} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}

/** Validates `config` over the defaults. A non-loopback host without a token is a ConfigError. */
export function resolveServerConfig(config: ServerConfig = {}): ResolvedServerConfig {
  const d = DEFAULT_SERVER_CONFIG;
  const host = config.host ?? d.host;
  if (typeof host !== 'string' || host.trim() === '') throw new ConfigError(`host must be an interface name or address, got ${JSON.stringify(host)}`);
  const token = config.token;
  if (token !== undefined && (typeof token !== 'string' || token.length < 8 || token.length > 256 || /[\s;,]/.test(token))) {
    throw new ConfigError('token must be 8 to 256 characters without spaces, commas or semicolons');
  }
  if (!isLoopbackHost(host) && token === undefined) {
    throw new ConfigError(
      `refusing to listen on ${host} without a token: anyone who can reach it could use the camera and the media folder; pass --token <secret> (at least 8 characters) or listen on 127.0.0.1`,
    );
  }
  const settings: SourceSettings = { ...DEFAULT_SOURCE_SETTINGS, ...config.settings };
  const maxTopK = int('maxTopK', config.maxTopK ?? d.maxTopK, 1, 255);
  int('settings.topK', settings.topK, 1, maxTopK);
  if (!(settings.smoothing >= 0 && settings.smoothing < 1)) throw new ConfigError(`settings.smoothing must be in [0, 1), got ${settings.smoothing}`);
  if (!(settings.threshold >= 0 && settings.threshold < 1)) throw new ConfigError(`settings.threshold must be in [0, 1), got ${settings.threshold}`);
  if (!['paper', 'official', 'off'].includes(settings.boxRule)) throw new ConfigError(`settings.boxRule must be paper, official or off, got ${String(settings.boxRule)}`);
  const deviceSize = config.deviceSize ?? [...d.deviceSize];
  int('deviceSize[0]', deviceSize[0], 16, 4096);
  int('deviceSize[1]', deviceSize[1], 16, 4096);
  const restartInitialDelayMs = int('restartInitialDelayMs', config.restartInitialDelayMs ?? d.restartInitialDelayMs, 1, 60_000);
  return {
    host,
    port: int('port', config.port ?? d.port, 0, 65535),
    token,
    mediaRoot: config.mediaRoot,
    clientDir: config.clientDir,
    urlSources: config.urlSources ?? d.urlSources,
    deviceSources: config.deviceSources ?? d.deviceSources,
    settings,
    maxTopK,
    maxPendingSends: int('maxPendingSends', config.maxPendingSends ?? d.maxPendingSends, 1, 64),
    maxBufferedBytes: int('maxBufferedBytes', config.maxBufferedBytes ?? d.maxBufferedBytes, 1024, 1 << 30),
    maxJpegBytes: int('maxJpegBytes', config.maxJpegBytes ?? d.maxJpegBytes, 1024, 64 << 20),
    maxFrameSide: int('maxFrameSide', config.maxFrameSide ?? d.maxFrameSide, 16, 8192),
    maxControlBytes: int('maxControlBytes', config.maxControlBytes ?? d.maxControlBytes, 256, 1 << 20),
    displaySide: int('displaySide', config.displaySide ?? d.displaySide, 16, 4096),
    jpegQuality: int('jpegQuality', config.jpegQuality ?? d.jpegQuality, 1, 100),
    pingIntervalMs: int('pingIntervalMs', config.pingIntervalMs ?? d.pingIntervalMs, 100, 3_600_000),
    restartInitialDelayMs,
    restartMaxDelayMs: int('restartMaxDelayMs', config.restartMaxDelayMs ?? d.restartMaxDelayMs, restartInitialDelayMs, 600_000),
    restartMaxAttempts: int('restartMaxAttempts', config.restartMaxAttempts ?? d.restartMaxAttempts, 1, 1_000_000),
    deviceSize: [deviceSize[0], deviceSize[1]],
    log: config.log ?? (() => {}),
    tools: config.tools,
  };
}
