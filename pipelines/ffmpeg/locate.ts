/**
 * Finding ffmpeg and ffprobe. Order for ffmpeg: the explicit path (entry points pass FFMPEG_PATH), then
 * `ffmpeg` on PATH, then the binary shipped by the npm package `@ffmpeg-installer/ffmpeg`. ffprobe: the
 * explicit path, then `ffprobe` beside an explicit ffmpeg, then PATH, then `@ffprobe-installer/ffprobe`.
 * Without any ffprobe, probing falls back to parsing `ffmpeg -i` (see probe.ts).
 */
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { ConfigError } from '../../models/index.ts';
import { FfmpegError } from './errors.ts';
import { runFfmpeg, type ToolKind } from './spawn.ts';

/** Where a binary was found. */
export type ToolSource = 'option' | 'beside-ffmpeg' | 'path' | 'npm';

export interface ToolInfo {
  kind: ToolKind;
  /** Absolute path of the binary. */
  path: string;
  source: ToolSource;
  /** What `-version` says after "ffmpeg version" (`6.1.1`, `N-47683-g0e8eb07980-static`). */
  version: string;
  /** libavformat `[major, minor, micro]`, when `-version` lists it. */
  libavformat: [number, number, number] | undefined;
}

export interface FfmpegTools {
  ffmpeg: ToolInfo;
  /** Undefined when no ffprobe was found or `ffprobePath: false` was given. */
  ffprobe: ToolInfo | undefined;
  /**
   * How to ask for passthrough frame timing: `-fps_mode passthrough` (per output, ffmpeg >= 5.1) or the
   * older global `-vsync passthrough`.
   */
  passthroughArgs: readonly string[];
  /** True when passthroughArgs is per output (repeat it before each output). */
  passthroughPerOutput: boolean;
}

export interface LocateOptions {
  /** Explicit ffmpeg binary (FFMPEG_PATH or a CLI flag). A missing or broken one is a ConfigError. */
  ffmpegPath?: string;
  /** Explicit ffprobe binary, or `false` to probe with ffmpeg alone. */
  ffprobePath?: string | false;
  /** Look on PATH. Default true. */
  searchPath?: boolean;
  /** Use the binaries from the npm packages. Default true. */
  npm?: boolean;
  /**
   * The PATH string to search; default `process.env.PATH` (the one environment read below the entry
   * points: spawning by name would read it too).
   */
  pathEnv?: string;
}

const require = createRequire(import.meta.url);
const cache = new Map<string, Promise<FfmpegTools>>();

/**
 * Finds ffmpeg (and ffprobe), runs `-version` on each and reports which one, from where, which version.
 * Memoized per options. Throws ConfigError for a bad explicit path, FfmpegError when none is found.
 */
export function locateFfmpeg(options: LocateOptions = {}): Promise<FfmpegTools> {
  const key = JSON.stringify([options.ffmpegPath, options.ffprobePath, options.searchPath, options.npm, options.pathEnv]);
  let found = cache.get(key);
  if (!found) {
    found = locateUncached(options);
    cache.set(key, found);
    found.catch(() => cache.delete(key));
  }
  return found;
}

async function locateUncached(options: LocateOptions): Promise<FfmpegTools> {
  const ffmpeg = await findTool('ffmpeg', options.ffmpegPath, options, undefined);
  if (!ffmpeg) {
    throw new FfmpegError(
      'ffmpeg not found: set FFMPEG_PATH to an ffmpeg binary, put ffmpeg on PATH, or install the npm package @ffmpeg-installer/ffmpeg',
    );
  }
  if (ffmpeg.libavformat && ffmpeg.libavformat[0] < 58) {
    throw new FfmpegError(
      `ffmpeg at ${ffmpeg.path} is version ${ffmpeg.version} (libavformat ${ffmpeg.libavformat.join('.')}): camstream needs ffmpeg 4.0 or newer`,
    );
  }
  const ffprobe =
    options.ffprobePath === false
      ? undefined
      : await findTool('ffprobe', options.ffprobePath, options, ffmpeg.source === 'option' ? dirname(ffmpeg.path) : undefined);
  // -fps_mode arrived in ffmpeg 5.1 (libavformat 59.27); -vsync still works there but warns.
  const lavf = ffmpeg.libavformat;
  const fpsMode = lavf !== undefined && (lavf[0] > 59 || (lavf[0] === 59 && lavf[1] >= 27));
  return {
    ffmpeg,
    ffprobe,
    passthroughArgs: fpsMode ? ['-fps_mode', 'passthrough'] : ['-vsync', 'passthrough'],
    passthroughPerOutput: fpsMode,
  };
}

async function findTool(
  kind: ToolKind,
  explicit: string | undefined,
  options: LocateOptions,
  besideDir: string | undefined,
): Promise<ToolInfo | undefined> {
  const exe = process.platform === 'win32' ? `${kind}.exe` : kind;
  if (explicit !== undefined) {
    if (!(await isExecutable(explicit))) {
      throw new ConfigError(`${kind}Path '${explicit}' is not an executable file (set FFMPEG_PATH or the flag to an ${kind} binary)`);
    }
    try {
      return await describe(kind, explicit, 'option');
    } catch (err) {
      throw new ConfigError(`${kind}Path '${explicit}' does not run as ${kind}: ${(err as Error).message}`);
    }
  }
  if (besideDir !== undefined) {
    const candidate = join(besideDir, exe);
    if (await isExecutable(candidate)) {
      const info = await describe(kind, candidate, 'beside-ffmpeg').catch(() => undefined);
      if (info) return info;
    }
  }
  if (options.searchPath !== false) {
    for (const dir of (options.pathEnv ?? process.env.PATH ?? '').split(delimiter)) {
      if (!dir) continue;
      const candidate = join(dir, exe);
      if (await isExecutable(candidate)) {
        // A broken binary on PATH is skipped in favour of the next candidate, not fatal.
        const info = await describe(kind, candidate, 'path').catch(() => undefined);
        if (info) return info;
      }
    }
  }
  if (options.npm !== false) {
    const fromNpm = npmBinary(kind);
    if (fromNpm && (await isExecutable(fromNpm))) {
      const info = await describe(kind, fromNpm, 'npm').catch(() => undefined);
      if (info) return info;
    }
  }
  return undefined;
}

function npmBinary(kind: ToolKind): string | undefined {
  try {
    // Both installer packages resolve the platform package at require time and throw (a string, for
    // @ffmpeg-installer) when it is missing.
    const mod = require(kind === 'ffmpeg' ? '@ffmpeg-installer/ffmpeg' : '@ffprobe-installer/ffprobe') as { path?: unknown };
    return typeof mod.path === 'string' ? mod.path : undefined;
  } catch {
    return undefined;
  }
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    if (!s.isFile()) return false;
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Runs `<tool> -version` and reads the version and the libavformat version from it. */
async function describe(kind: ToolKind, path: string, source: ToolSource): Promise<ToolInfo> {
  const { stdout } = await runFfmpeg({ binary: path, kind, args: ['-version'], standardFlags: false, timeoutMs: 15_000 });
  const head = new RegExp(`^${kind} version (\\S+)`, 'm').exec(stdout);
  if (!head) throw new FfmpegError(`${path} -version does not print "${kind} version": is it ${kind}?`, { file: path });
  const lavf = /^libavformat\s+(\d+)\.\s*(\d+)\.\s*(\d+)/m.exec(stdout);
  return {
    kind,
    path,
    source,
    version: head[1],
    libavformat: lavf ? [Number(lavf[1]), Number(lavf[2]), Number(lavf[3])] : undefined,
  };
}
