/**
 * The options of a decode run (`DecodeConfig`), their defaults, their validation (`resolveDecodeConfig`),
 * and the shapes a run hands back: frames, stats and the handle given to `onStart`.
 */
import type { Readable } from 'node:stream';
import type { Observable } from 'rxjs';
import { checkInt } from '../../common/checks.ts';
import { ConfigError, type Frame } from '../../models/index.ts';
import type { InputScheme } from './input.ts';
import type { FfmpegTools } from './locate.ts';
import type { MediaInfo } from './probe.ts';
import { toRational, type Rational } from './rational.ts';
import type { CpuTime } from './spawn.ts';

/** Raw pixel layouts a decode can produce: packed RGB (the engines' `Frame`), RGBA, or one grey byte. */
export type PixFmt = 'rgb24' | 'rgba' | 'gray';
export const BYTES_PER_PIXEL: Readonly<Record<PixFmt, number>> = Object.freeze({ rgb24: 3, rgba: 4, gray: 1 });

/** One raw output of a decode run. Width and height both set: scaled; both unset: full (display) size. */
export interface DecodeOutputConfig {
  width?: number;
  height?: number;
  /** Default `rgb24`. */
  pixFmt?: PixFmt;
  /** `stretch` (default) ignores the aspect ratio; `pad` fits inside and pads with black. */
  fit?: 'stretch' | 'pad';
  /** swscale algorithm(s) for `scale` (`bilinear` default, `area`, `bicubic`, `lanczos`, `fast_bilinear`). */
  scaleFlags?: string;
}

/** Options of `decodeFrames$`: the first output's fields, then the run's. Every field is optional. */
export interface DecodeConfig extends DecodeOutputConfig {
  /** Resample to this constant rate (the `fps` filter). Default: keep every decoded frame. */
  fps?: number | Rational;
  /** Decoder threads (`-threads`); 0 lets ffmpeg choose. Default 0. */
  threads?: number;
  /** Seek before decoding, seconds. Default 0. */
  startSeconds?: number;
  /** Decode at most this much input, seconds. Default: to the end. */
  durationSeconds?: number;
  /** Stop after this many frames. Default: no limit. */
  maxFrames?: number;
  /** A trusted filter chain applied first (for example `yadif`, `crop=640:360`). Default none. */
  filter?: string;
  /**
   * Trusted input options placed before `-i`, one argument each (for example
   * `['-rtsp_transport', 'tcp']` for a camera behind a firewall). Default none.
   */
  inputOptions?: readonly string[];
  /** More outputs from the same run, each frame delivered alongside (`DecodedFrame.extra`). */
  extraOutputs?: readonly DecodeOutputConfig[];
  /** `pts` (default): the decoder's timestamps. `rate`: `index / rate`, no stderr parsing. */
  timestamps?: 'pts' | 'rate';
  /** Decoded frames held before ffmpeg is paused. Default 8. */
  maxBufferedFrames?: number;
  /**
   * Pull control: each emission grants that many more frames. Without it frames flow as fast as they
   * decode (a synchronous consumer still throttles, since the pipe is read on the same thread).
   * Example (at most 16 frames in flight):
   * `const credits = new BehaviorSubject(16); decodeFrames$(f, { credits$: credits }).pipe(
   *    concatMap(async (fr) => { await work(fr); credits.next(1); }))`.
   */
  credits$?: Observable<number>;
  /** Fail on the first decoding error (`-xerror`) instead of skipping damaged data. Default false. */
  strict?: boolean;
  /** Schemes the input may use. Default all of `INPUT_SCHEMES`. */
  schemes?: readonly InputScheme[];
  /** Refuse playlists and files that name other files (`-format_whitelist`, see confine.ts). Default false. */
  confine?: boolean;
  /** Default `locateFfmpeg()`. */
  tools?: FfmpegTools;
  /** A probe of this input, when the caller has one (saves a run for full-size outputs). */
  probe?: MediaInfo;
  /**
   * Also write the same frames at full size, with their timestamps, and the input's first audio stream,
   * as a NUT stream on one more pipe (`DecodeHandle.passthrough`): what a compositor needs, so the input
   * is read and decoded once. The consumer must read it to the end (or the run stalls). Default none.
   */
  passthrough?: PassthroughConfig;
  /** The run's own input listing, parsed (needs `timestamps: 'pts'`): a probe that costs no second connection. */
  onInputInfo?: (info: MediaInfo) => void;
  /** Have ffmpeg report its CPU time at exit (`DecodeHandle.cpu()`, needs `timestamps: 'pts'`). Default false. */
  measureCpu?: boolean;
  /** Called once the child runs: pid and live buffer figures, for tests, logs and progress. */
  onStart?: (handle: DecodeHandle) => void;
  /** ffmpeg's warnings and errors that did not end the run (damaged packets, concealed blocks). */
  onDiagnostic?: (message: string) => void;
  /** SIGTERM-to-SIGKILL grace on teardown, ms. Default 2000. */
  killGraceMs?: number;
}

/** The defaults `resolveDecodeConfig` fills in. */
export const DEFAULT_DECODE_CONFIG = Object.freeze({
  pixFmt: 'rgb24' as PixFmt,
  fit: 'stretch' as const,
  scaleFlags: 'bilinear',
  threads: 0,
  startSeconds: 0,
  timestamps: 'pts' as const,
  maxBufferedFrames: 8,
  strict: false,
  killGraceMs: 2000,
});

/** A decoded frame. `data` is `height * width * bytesPerPixel` bytes; see FrameAssembler on views. */
export interface DecodedFrame extends Frame {
  /** 0-based position in this run's output. */
  index: number;
  /** Presentation time, seconds from the start of the input. */
  pts: number;
  pixFmt: PixFmt;
  /** The `extraOutputs` images of the same frame, in order; empty without extra outputs. */
  extra: Frame[];
}

/** Live figures of a run, read through `DecodeHandle.stats()`. */
export interface DecodeStats {
  /** Frames ffmpeg reported through showinfo (rate mode: frames assembled from the first pipe). */
  framesDecoded: number;
  framesEmitted: number;
  /** Frames assembled but not yet emitted. */
  bufferedFrames: number;
  /** Bytes held in JS for this run: waiting frames, partial frames and unread pipe buffers. */
  bufferedBytes: number;
  /** True while the pipes are paused for backpressure. */
  paused: boolean;
}

/** The full-size NUT stream of a decode run (`DecodeConfig.passthrough`). */
export interface PassthroughConfig {
  /** Pixel format of the full-size frames. Default `yuv420p` (what decoders give and x264 takes: no conversion). */
  pixFmt?: 'yuv420p';
  /** `copy` the first audio stream, convert it to `pcm` (for codecs NUT cannot carry), or `none`. Default `copy`. */
  audio?: 'copy' | 'pcm' | 'none';
  /** Stop the stream after this many seconds of input (the audio of a run limited by `maxFrames`). */
  durationSeconds?: number;
}

/** What `onStart` receives once the child runs. */
export interface DecodeHandle {
  readonly pid: number | undefined;
  readonly commandLine: string;
  stats(): DecodeStats;
  /** The NUT stream of `DecodeConfig.passthrough`, when asked for. */
  readonly passthrough?: Readable;
  /** CPU time ffmpeg reported at exit (`measureCpu`), once it has ended. */
  cpu(): CpuTime | undefined;
}

/** One output with its defaults applied; width and height stay unset for a full-size output. */
export interface ResolvedOutput {
  width: number | undefined;
  height: number | undefined;
  pixFmt: PixFmt;
  fit: 'stretch' | 'pad';
  scaleFlags: string;
}

/** A `DecodeConfig` with defaults applied and every field checked. */
export interface ResolvedDecodeConfig {
  outputs: ResolvedOutput[];
  fps: Rational | undefined;
  threads: number;
  startSeconds: number;
  durationSeconds: number | undefined;
  maxFrames: number | undefined;
  filter: string | undefined;
  inputOptions: readonly string[];
  timestamps: 'pts' | 'rate';
  maxBufferedFrames: number;
  strict: boolean;
  killGraceMs: number;
  passthrough: Required<Omit<PassthroughConfig, 'durationSeconds'>> & { durationSeconds: number | undefined } | undefined;
}

function checkSeconds(field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new ConfigError(`${field} must be a number of seconds >= ${min}, got ${String(value)}`);
  }
  return value;
}

function checkArgs(field: string, value: unknown): readonly string[] {
  if (!Array.isArray(value) || value.some((a) => typeof a !== 'string')) {
    throw new ConfigError(`${field} must be an array of separate string arguments, got ${JSON.stringify(value)}`);
  }
  return Object.freeze([...(value as string[])]);
}

function resolveOutput(field: string, o: DecodeOutputConfig): ResolvedOutput {
  if ((o.width === undefined) !== (o.height === undefined)) {
    throw new ConfigError(`${field}.width and ${field}.height must be given together (got width ${o.width}, height ${o.height})`);
  }
  const pixFmt = o.pixFmt ?? DEFAULT_DECODE_CONFIG.pixFmt;
  if (!(pixFmt in BYTES_PER_PIXEL)) throw new ConfigError(`${field}.pixFmt must be one of rgb24, rgba, gray; got ${String(pixFmt)}`);
  const fit = o.fit ?? DEFAULT_DECODE_CONFIG.fit;
  if (fit !== 'stretch' && fit !== 'pad') throw new ConfigError(`${field}.fit must be stretch or pad, got ${String(fit)}`);
  const scaleFlags = o.scaleFlags ?? DEFAULT_DECODE_CONFIG.scaleFlags;
  // The flags go into a filter graph string: letters, '_' and '+' only, so they cannot escape it.
  if (typeof scaleFlags !== 'string' || !/^[a-z_]+(\+[a-z_]+)*$/.test(scaleFlags)) {
    throw new ConfigError(`${field}.scaleFlags must be swscale flag names joined by '+' (e.g. bilinear, area), got ${String(scaleFlags)}`);
  }
  return {
    width: o.width === undefined ? undefined : checkInt(`${field}.width`, o.width, 1, 16384),
    height: o.height === undefined ? undefined : checkInt(`${field}.height`, o.height, 1, 16384),
    pixFmt,
    fit,
    scaleFlags,
  };
}

/** Merges `config` over the defaults and validates it; ConfigError names the field, value and range. */
export function resolveDecodeConfig(config: DecodeConfig = {}): ResolvedDecodeConfig {
  const timestamps = config.timestamps ?? DEFAULT_DECODE_CONFIG.timestamps;
  if (timestamps !== 'pts' && timestamps !== 'rate') throw new ConfigError(`timestamps must be pts or rate, got ${String(timestamps)}`);
  if (config.filter !== undefined && (typeof config.filter !== 'string' || /[;[\]]/.test(config.filter) || config.filter.trim() === '')) {
    throw new ConfigError(`filter must be a non-empty single filter chain (no ';', '[' or ']'), got ${JSON.stringify(config.filter)}`);
  }
  return {
    outputs: [resolveOutput('decode', config), ...(config.extraOutputs ?? []).map((o, i) => resolveOutput(`extraOutputs[${i}]`, o))],
    fps: config.fps === undefined ? undefined : toRational(config.fps, 'fps'),
    threads: checkInt('threads', config.threads ?? DEFAULT_DECODE_CONFIG.threads, 0, 64),
    startSeconds: checkSeconds('startSeconds', config.startSeconds ?? DEFAULT_DECODE_CONFIG.startSeconds, 0),
    durationSeconds: config.durationSeconds === undefined ? undefined : checkSeconds('durationSeconds', config.durationSeconds, 0),
    maxFrames: config.maxFrames === undefined ? undefined : checkInt('maxFrames', config.maxFrames, 1, Number.MAX_SAFE_INTEGER),
    filter: config.filter,
    inputOptions: checkArgs('inputOptions', config.inputOptions ?? []),
    timestamps,
    maxBufferedFrames: checkInt('maxBufferedFrames', config.maxBufferedFrames ?? DEFAULT_DECODE_CONFIG.maxBufferedFrames, 1, 10_000),
    strict: config.strict ?? DEFAULT_DECODE_CONFIG.strict,
    killGraceMs: checkInt('killGraceMs', config.killGraceMs ?? DEFAULT_DECODE_CONFIG.killGraceMs, 0, 60_000),
    passthrough: resolvePassthrough(config.passthrough),
  };
}

function resolvePassthrough(p: PassthroughConfig | undefined): ResolvedDecodeConfig['passthrough'] {
  if (p === undefined) return undefined;
  const pixFmt = p.pixFmt ?? 'yuv420p';
  if (pixFmt !== 'yuv420p') throw new ConfigError(`passthrough.pixFmt must be yuv420p, got ${String(pixFmt)}`);
  const audio = p.audio ?? 'copy';
  if (!['copy', 'pcm', 'none'].includes(audio)) throw new ConfigError(`passthrough.audio must be copy, pcm or none; got ${String(audio)}`);
  const durationSeconds = p.durationSeconds === undefined ? undefined : checkSeconds('passthrough.durationSeconds', p.durationSeconds, 0);
  return { pixFmt, audio, durationSeconds };
}
