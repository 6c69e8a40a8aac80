/**
 * Decoding a video into raw frames in JS: a cold Observable per ffmpeg run.
 *
 * Timestamps. `-f rawvideo` carries no timestamps, so each run also inserts `showinfo` at the end of the
 * common filter chain and reads its per-frame line (`n: 12 pts: 1080000 pts_time:12 ...`) from stderr,
 * logged at info level with ffmpeg's `level` tag so those lines can be told from warnings and errors.
 * Frame timing is `passthrough` (`-fps_mode passthrough`, or `-vsync passthrough` before ffmpeg 5.1):
 * without it the rawvideo muxer would duplicate and drop frames to a constant rate, and the n-th
 * showinfo line would no longer be the n-th frame on the pipe. pts = integer pts x the filter time base
 * (from showinfo's `config in time_base` line), exact, not the 6-digit `pts_time`. The stderr line is
 * written before the frame reaches the pipe and stderr is never paused, so a frame waits at most a
 * few lines for its timestamp. `timestamps: 'rate'` skips showinfo and uses `index / rate`.
 * pts is in seconds from the start of the input (ffmpeg shifts the container start time to 0;
 * `startSeconds` is added back after a seek).
 *
 * Backpressure. Frames are emitted as consumers grant credits (`credits$`), unlimited without it.
 * When `maxBufferedFrames` frames wait undelivered, the stdout pipes are paused: ffmpeg then blocks on
 * its write and stops decoding. Lossless: every decoded frame is delivered.
 */
import { Observable, Subject, type Subscription } from 'rxjs';
import {
  ConfigError,
  type Frame,
} from '../../models/index.ts';
import { FfmpegError } from './errors.ts';
import { FrameAssembler } from './frame-assembler.ts';
import { resolveInput, type InputScheme, type ResolvedInput } from './input.ts';
import { locateFfmpeg, type FfmpegTools } from './locate.ts';
import { probeMedia, type MediaInfo } from './probe.ts';
import { formatRational, rationalValue, toRational, type Rational } from './rational.ts';
import { spawnFfmpeg, type FfmpegProcess, type LogLine } from './spawn.ts';

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
  /** Default `locateFfmpeg()`. */
  tools?: FfmpegTools;
  /** A probe of this input, when the caller has one (saves a run for full-size outputs). */
  probe?: MediaInfo;
  /** Called once the child runs: pid and live buffer figures, for tests, logs and progress. */
  onStart?: (handle: DecodeHandle) => void;
  /** ffmpeg's warnings and errors that did not end the run (damaged packets, concealed blocks). */
  onDiagnostic?: (message: string) => void;
  /** SIGTERM-to-SIGKILL grace on teardown, ms. Default 2000. */
  killGraceMs?: number;
}

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

export interface DecodeHandle {
  readonly pid: number | undefined;
  readonly commandLine: string;
  stats(): DecodeStats;
}

interface ResolvedOutput {
  width: number | undefined;
  height: number | undefined;
  pixFmt: PixFmt;
  fit: 'stretch' | 'pad';
  scaleFlags: string;
}

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
}

function checkInt(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${field} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
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
  };
}

/** An output with its size settled (full-size outputs take the probed display size). */
export interface SizedOutput extends ResolvedOutput {
  width: number;
  height: number;
}

function outputChain(o: SizedOutput, fullSize: boolean): string {
  if (fullSize) return `format=${o.pixFmt}`;
  if (o.fit === 'pad') {
    return `scale=${o.width}:${o.height}:force_original_aspect_ratio=decrease:flags=${o.scaleFlags},format=${o.pixFmt},pad=${o.width}:${o.height}:(ow-iw)/2:(oh-ih)/2`;
  }
  return `scale=${o.width}:${o.height}:flags=${o.scaleFlags},format=${o.pixFmt}`;
}

/**
 * The ffmpeg arguments of a decode run (after the house flags). Exported for tests and logs.
 * Equivalent command line, one scaled output, pts mode, ffmpeg 4.x:
 *   ffmpeg -hide_banner -loglevel level+info -nostats -nostdin -threads 0 -protocol_whitelist file -i in.mp4
 *     -vsync passthrough -filter_complex '[0:v:0]showinfo=checksum=0,scale=224:224:flags=bilinear,format=rgb24[o0]'
 *     -map '[o0]' -f rawvideo -pix_fmt rgb24 pipe:1
 * A second output adds `split=2[s0][s1];[s0]...[o0];[s1]...[o1]` and `-map '[o1]' ... pipe:3`.
 */
export function buildDecodeArgs(
  source: ResolvedInput,
  config: ResolvedDecodeConfig,
  outputs: readonly SizedOutput[],
  tools: Pick<FfmpegTools, 'passthroughArgs' | 'passthroughPerOutput'>,
): string[] {
  const args: string[] = [];
  if (config.strict) args.push('-xerror');
  args.push('-threads', String(config.threads));
  if (config.startSeconds > 0) args.push('-ss', String(config.startSeconds));
  if (config.durationSeconds !== undefined) args.push('-t', String(config.durationSeconds));
  args.push(...config.inputOptions, '-protocol_whitelist', source.protocolWhitelist, '-i', source.url);
  if (!tools.passthroughPerOutput) args.push(...tools.passthroughArgs);

  const common: string[] = [];
  if (config.filter) common.push(config.filter);
  if (config.fps) common.push(`fps=fps=${formatRational(config.fps)}`);
  // checksum=0: showinfo would otherwise hash every frame, which costs more than it tells us here.
  if (config.timestamps === 'pts') common.push('showinfo=checksum=0');
  const chains = outputs.map((o, i) => outputChain(o, config.outputs[i].width === undefined));
  let graph: string;
  if (outputs.length === 1) {
    graph = `[0:v:0]${[...common, chains[0]].join(',')}[o0]`;
  } else {
    const labels = outputs.map((_, i) => `[s${i}]`).join('');
    graph = `[0:v:0]${[...common, `split=${outputs.length}`].join(',')}${labels}`;
    graph += outputs.map((_, i) => `;[s${i}]${chains[i]}[o${i}]`).join('');
  }
  args.push('-filter_complex', graph);
  outputs.forEach((o, i) => {
    args.push('-map', `[o${i}]`);
    if (tools.passthroughPerOutput) args.push(...tools.passthroughArgs);
    if (config.maxFrames !== undefined) args.push('-frames:v', String(config.maxFrames));
    // stdout is fd 1; extra pipes start at fd 3.
    args.push('-f', 'rawvideo', '-pix_fmt', o.pixFmt, i === 0 ? 'pipe:1' : `pipe:${i + 2}`);
  });
  return args;
}

const SHOWINFO_CONTEXT = /^Parsed_showinfo_(\d+)$/;
const SHOWINFO_FRAME = /^n:\s*(\d+)\s+pts:\s*(-?\d+|NOPTS)\s+pts_time:\s*(\S+)/;
const SHOWINFO_TIMEBASE = /^config in time_base:\s*(\d+)\/(\d+)/;

/**
 * A cold Observable of the frames of `input` (a file path or a whitelisted URL). Nothing runs until
 * subscription; each subscription runs its own ffmpeg; unsubscribing ends that child (stdin closed,
 * pipes destroyed, SIGTERM, SIGKILL after the grace). Errors are FfmpegErrors naming the input and
 * quoting ffmpeg, or ConfigErrors for bad options or a scheme that is not allowed. Lossless.
 */
export function decodeFrames$(input: string, config: DecodeConfig = {}): Observable<DecodedFrame> {
  return new Observable<DecodedFrame>((subscriber) => {
    const resolved = resolveDecodeConfig(config);
    const source = resolveInput(input, config.schemes);
    let closed = false;
    let proc: FfmpegProcess | undefined;
    let creditsSub: Subscription | undefined;
    let credits = config.credits$ ? 0 : Number.POSITIVE_INFINITY;

    const ready: DecodedFrame[] = [];
    let outQueues: Uint8Array[][] = [];
    let assemblers: FrameAssembler[] = [];
    let sized: SizedOutput[] = [];
    const ptsQueue: number[] = [];
    let nextIndex = 0;
    let emitted = 0;
    let decoded = 0;
    let paused = false;
    let ended = false;
    let delivering = false;
    let rate: Rational | undefined;
    let timeBase: Rational | undefined;
    let showinfoContext: string | undefined;
    let lastPts: number | undefined;

    const fail = (err: unknown): void => {
      if (closed) return;
      closed = true;
      creditsSub?.unsubscribe();
      void proc?.stop();
      subscriber.error(err);
    };

    const setPaused = (on: boolean): void => {
      if (!proc || paused === on) return;
      paused = on;
      for (const p of proc.pipes) {
        if (on) p.pause();
        else p.resume();
      }
    };

    const deliver = (): void => {
      if (delivering) return;
      delivering = true;
      try {
        while (!closed && ready.length > 0 && credits > 0) {
          credits--;
          emitted++;
          subscriber.next(ready.shift()!);
        }
        if (closed) return;
        if (paused && ready.length < resolved.maxBufferedFrames) setPaused(false);
        if (ended && ready.length === 0) {
          closed = true;
          creditsSub?.unsubscribe();
          subscriber.complete();
        }
      } finally {
        delivering = false;
      }
    };

    const estimatePts = (): number => {
      const step = rate ? 1 / rationalValue(rate) : 0;
      return lastPts === undefined ? resolved.startSeconds : lastPts + step;
    };

    const join = (final: boolean): void => {
      while (outQueues.every((q) => q.length > 0)) {
        let pts: number;
        if (resolved.timestamps === 'rate') {
          pts = resolved.startSeconds + nextIndex / rationalValue(rate!);
        } else if (ptsQueue.length > 0) {
          pts = ptsQueue.shift()!;
        } else if (final) {
          // Only reachable if ffmpeg wrote a frame whose showinfo line never arrived.
          pts = estimatePts();
        } else {
          // showinfo lines precede their frames by a few at most; a long wait means this ffmpeg
          // does not print them as expected, and frames would pile up here without a bound.
          if (outQueues[0].length > resolved.maxBufferedFrames + 32) {
            fail(new FfmpegError(
              `ffmpeg printed no frame timestamps (showinfo) for ${source.display}; decode with timestamps: 'rate' instead`,
              { file: source.display, command: proc?.commandLine },
            ));
          }
          break;
        }
        lastPts = pts;
        const images = outQueues.map((q, i) => ({ data: q.shift()!, width: sized[i].width, height: sized[i].height }));
        ready.push({
          index: nextIndex++,
          pts,
          pixFmt: sized[0].pixFmt,
          data: images[0].data,
          width: images[0].width,
          height: images[0].height,
          extra: images.slice(1),
        });
      }
      if (!paused && ready.length >= resolved.maxBufferedFrames) setPaused(true);
    };

    const onLog = (line: LogLine): void => {
      if (line.context && SHOWINFO_CONTEXT.test(line.context)) {
        // Only the last showinfo of the chain is ours (a caller's `filter` may hold another one).
        const tb = SHOWINFO_TIMEBASE.exec(line.message);
        if (tb) {
          const ours = showinfoContext === undefined || Number(SHOWINFO_CONTEXT.exec(line.context)![1]) >= Number(SHOWINFO_CONTEXT.exec(showinfoContext)![1]);
          if (ours) {
            showinfoContext = line.context;
            timeBase = { num: Number(tb[1]), den: Number(tb[2]) };
          }
          return;
        }
        const m = SHOWINFO_FRAME.exec(line.message);
        // Should a build not log its time base, the first frame line names our instance.
        if (m && showinfoContext === undefined) showinfoContext = line.context;
        if (m && line.context === showinfoContext) {
          decoded++;
          let pts: number;
          if (m[2] !== 'NOPTS' && timeBase && timeBase.den > 0) pts = (Number(m[2]) * timeBase.num) / timeBase.den;
          else if (m[3] !== 'NOPTS' && Number.isFinite(Number(m[3]))) pts = Number(m[3]);
          else pts = Number.NaN;
          ptsQueue.push(Number.isNaN(pts) ? Number.NaN : resolved.startSeconds + pts);
          fixNaN();
          join(false);
          deliver();
        }
        return;
      }
      if (line.level === 'warning' || line.level === 'error') config.onDiagnostic?.(line.context ? `[${line.context}] ${line.message}` : line.message);
    };

    // A missing timestamp takes its predecessor's plus one frame period.
    const fixNaN = (): void => {
      const i = ptsQueue.length - 1;
      if (Number.isNaN(ptsQueue[i])) {
        const prev = i > 0 ? ptsQueue[i - 1] : lastPts;
        ptsQueue[i] = prev === undefined ? resolved.startSeconds : prev + (rate ? 1 / rationalValue(rate) : 0);
      }
    };

    const start = async (): Promise<void> => {
      const tools = config.tools ?? (await locateFfmpeg());
      if (closed) return;
      const needProbe = resolved.outputs.some((o) => o.width === undefined) || (resolved.timestamps === 'rate' && !resolved.fps);
      const info = config.probe ?? (needProbe ? await probeMedia(input, { tools, schemes: config.schemes }) : undefined);
      if (closed) return;
      rate = resolved.fps ?? info?.frameRate;
      sized = resolved.outputs.map((o) => ({
        ...o,
        width: o.width ?? info!.displayWidth,
        height: o.height ?? info!.displayHeight,
      }));
      const args = buildDecodeArgs(source, resolved, sized, tools);
      assemblers = sized.map((o) => new FrameAssembler(o.width * o.height * BYTES_PER_PIXEL[o.pixFmt]));
      outQueues = sized.map(() => []);
      proc = spawnFfmpeg({
        binary: tools.ffmpeg.path,
        args,
        file: source.display,
        extraPipes: sized.length - 1,
        logLevel: resolved.timestamps === 'pts' ? 'info' : 'error',
        // showinfo's own warnings (unknown side data) are not errors of the run.
        keepInTail: (line) => !(line.context && SHOWINFO_CONTEXT.test(line.context)),
        onLog,
        killGraceMs: resolved.killGraceMs,
      });
      const running = proc;
      running.pipes.forEach((pipe, i) => {
        pipe.on('data', (chunk: Buffer) => {
          if (closed) return;
          const frames = assemblers[i].push(chunk);
          if (frames.length === 0) return;
          outQueues[i].push(...frames);
          if (resolved.timestamps === 'rate' && i === 0) decoded += frames.length;
          join(false);
          deliver();
        });
      });
      config.onStart?.({
        pid: running.pid,
        commandLine: running.commandLine,
        stats: () => ({
          framesDecoded: decoded,
          framesEmitted: emitted,
          bufferedFrames: ready.length,
          bufferedBytes:
            ready.reduce((s, f) => s + f.data.byteLength + f.extra.reduce((e, x) => e + x.data.byteLength, 0), 0) +
            outQueues.reduce((s, q) => s + q.reduce((t, d) => t + d.byteLength, 0), 0) +
            assemblers.reduce((s, a) => s + a.pendingBytes, 0) +
            running.pipes.reduce((s, p) => s + p.readableLength, 0),
          paused,
        }),
      });
      running.done.then(
        () => {
          if (closed || running.stopping) return;
          const partial = assemblers.findIndex((a) => a.pendingBytes > 0);
          if (partial >= 0) {
            fail(new FfmpegError(
              `ffmpeg ended ${source.display} in the middle of a frame (${assemblers[partial].pendingBytes} of ${assemblers[partial].frameBytes} bytes)`,
              { file: source.display, exitCode: 0, stderr: running.stderrTail(), command: running.commandLine },
            ));
            return;
          }
          join(true);
          ended = true;
          deliver();
        },
        (err: unknown) => fail(err),
      );
    };

    if (config.credits$) {
      creditsSub = config.credits$.subscribe({
        next: (n) => {
          if (!Number.isFinite(n) || n < 0) {
            fail(new ConfigError(`credits$ must emit non-negative numbers of frames, got ${n}`));
            return;
          }
          credits += n;
          deliver();
        },
        error: (err: unknown) => fail(err),
      });
    }
    start().catch(fail);

    return () => {
      closed = true;
      creditsSub?.unsubscribe();
      void proc?.stop();
    };
  });
}

/**
 * The same frames as an async iterator: each `next()` pulls one frame, ffmpeg pauses when
 * `maxBufferedFrames` wait. Breaking out of `for await` (or `return()`) ends the child.
 */
export function decodeFrames(input: string, config: Omit<DecodeConfig, 'credits$'> = {}): AsyncIterableIterator<DecodedFrame> {
  const credits = new Subject<number>();
  const queue: DecodedFrame[] = [];
  let waiter: { resolve: (r: IteratorResult<DecodedFrame>) => void; reject: (e: unknown) => void } | undefined;
  let failure: { error: unknown } | undefined;
  let finished = false;
  let sub: Subscription | undefined;

  const settle = (): void => {
    if (!waiter) return;
    const w = waiter;
    if (queue.length > 0) {
      waiter = undefined;
      w.resolve({ value: queue.shift()!, done: false });
    } else if (failure) {
      waiter = undefined;
      w.reject(failure.error);
    } else if (finished) {
      waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  };

  const iterator: AsyncIterableIterator<DecodedFrame> = {
    next() {
      if (queue.length > 0) return Promise.resolve({ value: queue.shift()!, done: false });
      if (failure) return Promise.reject(failure.error);
      if (finished) return Promise.resolve({ value: undefined, done: true });
      sub ??= decodeFrames$(input, { ...config, credits$: credits }).subscribe({
        next: (frame) => {
          queue.push(frame);
          settle();
        },
        error: (error: unknown) => {
          failure = { error };
          settle();
        },
        complete: () => {
          finished = true;
          settle();
        },
      });
      return new Promise<IteratorResult<DecodedFrame>>((resolve, reject) => {
        waiter = { resolve, reject };
        // The subscription may already have failed synchronously (a bad option).
        settle();
        // One credit per waiting next(): at most one frame ever waits here.
        if (waiter) credits.next(1);
      });
    },
    return() {
      finished = true;
      sub?.unsubscribe();
      queue.length = 0;
      const w = waiter;
      waiter = undefined;
      w?.resolve({ value: undefined, done: true });
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
