/**
 * Encoding raw frames from JS into a video file (H.264 MP4 by default), optionally with the audio of
 * another file. The encoder writes to `<out>.tmp-XXXXXXXX<ext>` beside the target (same folder, so the
 * final rename is atomic; same extension, so ffmpeg picks the muxer) and renames it to `out` only after
 * ffmpeg exits 0: a failed or aborted run never leaves a file that looks complete.
 */
import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { extname } from 'node:path';
import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import {
  ConfigError,
  InputError,
  type Frame,
} from '../../models/index.ts';
import { BYTES_PER_PIXEL, type PixFmt } from './decode.ts';
import { FfmpegError } from './errors.ts';
import { resolveInput, type InputScheme } from './input.ts';
import { locateFfmpeg, type FfmpegTools } from './locate.ts';
import { probeAudioCodec } from './probe.ts';
import { formatRational, toRational, type Rational } from './rational.ts';
import { registerCleanup, spawnFfmpeg, type FfmpegProcess } from './spawn.ts';

/** Audio to mux in, from a file or URL; `startSeconds`/`durationSeconds` cut it to the video's span. */
export interface AudioSource {
  input: string;
  startSeconds?: number;
  durationSeconds?: number;
}

/** An extra ffmpeg input for `filterComplex` (it becomes input 1, 2, ...; the frames are input 0). */
export interface EncodeInput {
  input: string;
  /** Input options placed before its `-i` (for example `['-ss', '2']`), as separate arguments. */
  options?: readonly string[];
}

export interface EncodeConfig {
  /** Output path; its extension picks the container (no extension: MP4). */
  out: string;
  /** Size of the frames written, pixels. */
  width: number;
  height: number;
  /** Frame rate of the frames written (exact rationals such as 30000/1001 keep durations exact). */
  fps: number | Rational;
  /** Layout of the frames written. Default `rgb24`. */
  inputPixFmt?: PixFmt;
  /** Video encoder. Default `libx264`. */
  codec?: string;
  /** x264 preset. Default `veryfast`. */
  preset?: string;
  /** Constant rate factor, 0 (lossless) to 51. Default 23. */
  crf?: number;
  /** Output pixel format. Default `yuv420p` (what players expect; odd sizes are padded by one pixel). */
  pixFmt?: string;
  /** Take the first audio stream of this input. Default: no audio. */
  audioFrom?: string | AudioSource;
  /**
   * `auto` (default): copy when the codec fits the container, else encode AAC; `copy`; `aac`.
   * An `audioFrom` without audio adds no track.
   */
  audioCodec?: 'auto' | 'copy' | 'aac';
  /** A trusted filter chain applied to the frames before encoding (`-vf`). */
  filter?: string;
  /** Extra inputs for `filterComplex`. */
  inputs?: readonly EncodeInput[];
  /**
   * A trusted filter graph over `[0:v]` (the frames) and `[1:v]`... (`inputs`) that ends in `[vout]`,
   * for compositing in ffmpeg (for example a low-resolution heatmap over the original video).
   */
  filterComplex?: string;
  /** Encoder threads; 0 lets ffmpeg choose. Default 0. */
  threads?: number;
  /** Move the MP4 index to the front (`-movflags +faststart`) for streaming. Default true. */
  faststart?: boolean;
  /** Schemes the audio/extra inputs may use. Default all of `INPUT_SCHEMES`. */
  schemes?: readonly InputScheme[];
  /** Default `locateFfmpeg()`. */
  tools?: FfmpegTools;
  /** SIGTERM-to-SIGKILL grace on abort, ms. Default 2000. */
  killGraceMs?: number;
}

export const DEFAULT_ENCODE_CONFIG = Object.freeze({
  inputPixFmt: 'rgb24' as PixFmt,
  codec: 'libx264',
  preset: 'veryfast',
  crf: 23,
  pixFmt: 'yuv420p',
  audioCodec: 'auto' as const,
  threads: 0,
  faststart: true,
  killGraceMs: 2000,
});

export interface EncodeResult {
  out: string;
  /** Frames written to stdin. */
  frames: number;
  /** Size of the encoded frames without `filterComplex` (odd sizes padded to even); with it, the graph decides. */
  width: number;
  height: number;
  frameRate: Rational;
  audio: 'copy' | 'aac' | 'none';
  /** Wall time from start to rename, ms. */
  elapsedMs: number;
}

/** A running encoder. Call `finish()` or `abort()` exactly once at the end. */
export interface VideoEncoder {
  readonly pid: number | undefined;
  readonly commandLine: string;
  /** Where ffmpeg writes until the rename. */
  readonly tempPath: string;
  readonly out: string;
  /** Bytes each `write` must receive: `width * height * bytesPerPixel(inputPixFmt)`. */
  readonly frameBytes: number;
  readonly framesWritten: number;
  /**
   * Hands one frame to ffmpeg. Resolves at once while the pipe takes data, else after 'drain'
   * (`write() === false`). The encoder keeps a reference to `frame` until ffmpeg has read it: do not
   * modify it afterwards. Rejects with the FfmpegError when ffmpeg has failed.
   */
  write(frame: Uint8Array): Promise<void>;
  /** Ends stdin, awaits exit 0 and renames the temporary file to `out`. On failure deletes it and rejects. */
  finish(): Promise<EncodeResult>;
  /** Ends ffmpeg (stdin closed, SIGTERM, SIGKILL after the grace) and deletes the temporary file. */
  abort(): Promise<void>;
}

/** Audio codecs MP4/MOV hold without re-encoding (by ffmpeg's mp4 muxer without -strict). */
const MP4_AUDIO = new Set(['aac', 'mp3', 'ac3', 'eac3', 'alac']);

function checkInt(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${field} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function checkWord(field: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(value)) {
    throw new ConfigError(`${field} must be a plain name (letters, digits, _ . -), got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * The arguments of an encode run, built from resolved parts. Equivalent command line (ffmpeg 4+), with
 * audio copied from the source:
 *   ffmpeg -hide_banner -loglevel level+error -nostats -y
 *     -f rawvideo -pix_fmt rgb24 -video_size 568x320 -framerate 30/1 -i pipe:0
 *     -protocol_whitelist file -i in.mov
 *     -map 0:v:0 -c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p -threads 0
 *     -map 1:a:0 -c:a copy -movflags +faststart out.mp4.tmp-1a2b3c4d.mp4
 */
function buildEncodeArgs(parts: {
  width: number;
  height: number;
  rate: Rational;
  inputPixFmt: PixFmt;
  codec: string;
  preset: string;
  crf: number;
  pixFmt: string;
  threads: number;
  vf: string | undefined;
  extraInputs: ReadonlyArray<{ url: string; whitelist: string; options: readonly string[] }>;
  filterComplex: string | undefined;
  audio: { url: string; whitelist: string; startSeconds?: number; durationSeconds?: number; codec: 'copy' | 'aac' } | undefined;
  faststart: boolean;
  format: string | undefined;
  temp: string;
}): string[] {
  const args = [
    '-y',
    '-f', 'rawvideo', '-pix_fmt', parts.inputPixFmt, '-video_size', `${parts.width}x${parts.height}`,
    '-framerate', formatRational(parts.rate), '-i', 'pipe:0',
  ];
  for (const x of parts.extraInputs) args.push(...x.options, '-protocol_whitelist', x.whitelist, '-i', x.url);
  const audioIndex = 1 + parts.extraInputs.length;
  if (parts.audio) {
    if (parts.audio.startSeconds) args.push('-ss', String(parts.audio.startSeconds));
    if (parts.audio.durationSeconds !== undefined) args.push('-t', String(parts.audio.durationSeconds));
    args.push('-protocol_whitelist', parts.audio.whitelist, '-i', parts.audio.url);
  }
  if (parts.filterComplex) args.push('-filter_complex', parts.filterComplex, '-map', '[vout]');
  else args.push('-map', '0:v:0');
  if (parts.vf) args.push('-vf', parts.vf);
  args.push('-c:v', parts.codec);
  if (parts.codec === 'libx264' || parts.codec === 'libx265') args.push('-preset', parts.preset, '-crf', String(parts.crf));
  args.push('-pix_fmt', parts.pixFmt, '-threads', String(parts.threads));
  if (parts.audio) {
    args.push('-map', `${audioIndex}:a:0`);
    if (parts.audio.codec === 'copy') args.push('-c:a', 'copy');
    else args.push('-c:a', 'aac', '-b:a', '128k');
  }
  if (parts.faststart) args.push('-movflags', '+faststart');
  if (parts.format) args.push('-f', parts.format);
  args.push(parts.temp);
  return args;
}

/**
 * Starts an encoder (one ffmpeg reading raw frames on stdin). Validates the config (ConfigError naming
 * the field), locates ffmpeg and probes `audioFrom` before spawning.
 */
export async function encodeVideo(config: EncodeConfig): Promise<VideoEncoder> {
  if (typeof config.out !== 'string' || config.out.trim() === '') throw new ConfigError(`out must be a file path, got ${JSON.stringify(config.out)}`);
  const width = checkInt('width', config.width, 1, 16384);
  const height = checkInt('height', config.height, 1, 16384);
  const rate = toRational(config.fps, 'fps');
  const inputPixFmt = config.inputPixFmt ?? DEFAULT_ENCODE_CONFIG.inputPixFmt;
  if (!(inputPixFmt in BYTES_PER_PIXEL)) throw new ConfigError(`inputPixFmt must be one of rgb24, rgba, gray; got ${String(inputPixFmt)}`);
  const codec = checkWord('codec', config.codec ?? DEFAULT_ENCODE_CONFIG.codec);
  const preset = checkWord('preset', config.preset ?? DEFAULT_ENCODE_CONFIG.preset);
  const crf = checkInt('crf', config.crf ?? DEFAULT_ENCODE_CONFIG.crf, 0, 51);
  const pixFmt = checkWord('pixFmt', config.pixFmt ?? DEFAULT_ENCODE_CONFIG.pixFmt);
  const threads = checkInt('threads', config.threads ?? DEFAULT_ENCODE_CONFIG.threads, 0, 64);
  const audioCodec = config.audioCodec ?? DEFAULT_ENCODE_CONFIG.audioCodec;
  if (!['auto', 'copy', 'aac'].includes(audioCodec)) throw new ConfigError(`audioCodec must be auto, copy or aac; got ${String(audioCodec)}`);
  if (config.filterComplex !== undefined && !/\[vout\]/.test(config.filterComplex)) {
    throw new ConfigError(`filterComplex must produce the label [vout], got ${JSON.stringify(config.filterComplex)}`);
  }
  if (config.inputs?.length && config.filterComplex === undefined) throw new ConfigError('inputs need a filterComplex that uses them');
  if (config.filter !== undefined && config.filterComplex !== undefined) {
    throw new ConfigError('give either filter or filterComplex, not both (put the filter inside the graph)');
  }
  const killGraceMs = checkInt('killGraceMs', config.killGraceMs ?? DEFAULT_ENCODE_CONFIG.killGraceMs, 0, 60_000);

  const ext = extname(config.out);
  const container = ext.slice(1).toLowerCase();
  const tools = config.tools ?? (await locateFfmpeg());

  const extraInputs = (config.inputs ?? []).map((x) => {
    const r = resolveInput(x.input, config.schemes);
    return { url: r.url, whitelist: r.protocolWhitelist, options: [...(x.options ?? [])] };
  });

  let audio: Parameters<typeof buildEncodeArgs>[0]['audio'];
  if (config.audioFrom !== undefined) {
    const a: AudioSource = typeof config.audioFrom === 'string' ? { input: config.audioFrom } : config.audioFrom;
    const r = resolveInput(a.input, config.schemes);
    const sourceCodec = await probeAudioCodec(a.input, { tools, schemes: config.schemes });
    if (sourceCodec !== undefined) {
      const copyable = container === 'mkv' || MP4_AUDIO.has(sourceCodec);
      const chosen = audioCodec === 'auto' ? (copyable ? 'copy' : 'aac') : audioCodec;
      audio = { url: r.url, whitelist: r.protocolWhitelist, startSeconds: a.startSeconds, durationSeconds: a.durationSeconds, codec: chosen };
    }
  }

  // 4:2:0 subsampling needs even sizes: pad odd ones by a black pixel rather than fail in x264.
  const needsEven = !config.filterComplex && /^yuv4[12]0/.test(pixFmt) && (width % 2 === 1 || height % 2 === 1);
  const vfParts = [config.filter, needsEven ? 'pad=ceil(iw/2)*2:ceil(ih/2)*2' : undefined].filter((x): x is string => !!x);
  const outWidth = needsEven ? width + (width % 2) : width;
  const outHeight = needsEven ? height + (height % 2) : height;

  const temp = `${config.out}.tmp-${randomBytes(4).toString('hex')}${ext}`;
  const faststart = (config.faststart ?? DEFAULT_ENCODE_CONFIG.faststart) && ['mp4', 'mov', 'm4v', ''].includes(container);
  const args = buildEncodeArgs({
    width, height, rate, inputPixFmt, codec, preset, crf, pixFmt, threads,
    vf: vfParts.length ? vfParts.join(',') : undefined,
    extraInputs,
    filterComplex: config.filterComplex,
    audio,
    faststart,
    format: ext === '' ? 'mp4' : undefined,
    temp,
  });

  const started = performance.now();
  const proc: FfmpegProcess = spawnFfmpeg({ binary: tools.ffmpeg.path, args, file: config.out, stdin: true, killGraceMs });
  const removeTemp = (): Promise<void> => rm(temp, { force: true });
  const unregister = registerCleanup(removeTemp);
  const stdin = proc.stdin!;
  const frameBytes = width * height * BYTES_PER_PIXEL[inputPixFmt];
  let framesWritten = 0;
  let state: 'open' | 'finishing' | 'finished' | 'aborted' | 'failed' = 'open';

  // Waiters for 'drain' that must also wake when ffmpeg exits (one listener each, removed when settled).
  const exitWaiters = new Set<(err: unknown) => void>();
  const exitError = async (): Promise<unknown> => {
    if (state === 'aborted') return new FfmpegError(`encoding ${config.out} was aborted`, { file: config.out });
    try {
      await proc.done;
    } catch (err) {
      return err;
    }
    return new FfmpegError(`ffmpeg stopped reading frames for ${config.out} after ${framesWritten} (exit code 0)`, {
      file: config.out,
      exitCode: 0,
      command: proc.commandLine,
    });
  };
  void proc.closed.then(async () => {
    if (state === 'open') {
      // ffmpeg died while frames were still coming: nothing will be renamed, drop the partial file.
      state = 'failed';
      await removeTemp();
      unregister();
    }
    if (exitWaiters.size === 0) return;
    const err = await exitError();
    for (const w of exitWaiters) w(err);
    exitWaiters.clear();
  }).catch(() => {
    // Removing the temp file failed (permissions): finish()/abort() try again and report it.
  });

  const encoder: VideoEncoder = {
    pid: proc.pid,
    commandLine: proc.commandLine,
    tempPath: temp,
    out: config.out,
    frameBytes,
    get framesWritten() {
      return framesWritten;
    },
    async write(frame: Uint8Array): Promise<void> {
      if (state === 'failed') throw await exitError();
      if (state !== 'open') throw new FfmpegError(`write after ${state === 'aborted' ? 'abort' : 'finish'} on the encoder for ${config.out}`, { file: config.out });
      if (!(frame instanceof Uint8Array) || frame.byteLength !== frameBytes) {
        throw new InputError(`a frame for ${config.out} must be ${frameBytes} bytes (${width}x${height} ${inputPixFmt}), got ${frame?.byteLength}`);
      }
      if (proc.exited) throw await exitError();
      framesWritten++;
      if (stdin.write(frame)) return;
      await new Promise<void>((resolve, reject) => {
        const onExit = (err: unknown): void => {
          stdin.off('drain', onDrain);
          reject(err);
        };
        const onDrain = (): void => {
          exitWaiters.delete(onExit);
          resolve();
        };
        stdin.once('drain', onDrain);
        exitWaiters.add(onExit);
      });
    },
    async finish(): Promise<EncodeResult> {
      if (state === 'failed') throw await exitError();
      if (state !== 'open') throw new FfmpegError(`finish after ${state} on the encoder for ${config.out}`, { file: config.out });
      state = 'finishing';
      stdin.end();
      try {
        await proc.done;
        if (proc.stopping) throw new FfmpegError(`encoding ${config.out} was aborted`, { file: config.out });
        await rename(temp, config.out);
      } catch (err) {
        if (state === 'finishing') state = 'failed';
        await removeTemp();
        unregister();
        throw err;
      }
      state = 'finished';
      unregister();
      return {
        out: config.out,
        frames: framesWritten,
        width: outWidth,
        height: outHeight,
        frameRate: rate,
        audio: audio ? audio.codec : 'none',
        elapsedMs: performance.now() - started,
      };
    },
    async abort(): Promise<void> {
      if (state === 'finished' || state === 'aborted') return;
      state = 'aborted';
      await proc.stop();
      await removeTemp();
      unregister();
    },
  };
  return encoder;
}

/** Options of the `encodeMp4` operator: an encoder's, plus a callback after each frame is taken. */
export interface EncodeMp4Config extends EncodeConfig {
  /** Called after each frame was handed to ffmpeg, with the count so far (for credits and progress). */
  onWritten?: (framesWritten: number) => void;
}

/**
 * Sink operator: writes every frame (a `Frame` or its bytes) in order and emits one `EncodeResult` when
 * the source completes and the file is in place. Lossless; frames wait in order for the encoder, so
 * gate a fast source (decode credits from `onWritten`). Error or unsubscribe aborts: no file is left.
 */
export function encodeMp4(config: EncodeMp4Config): OperatorFunction<Frame | Uint8Array, EncodeResult> {
  return (source) =>
    new Observable<EncodeResult>((subscriber) => {
      let encoder: VideoEncoder | undefined;
      let closed = false;
      let finished = false;
      let chain: Promise<void> = Promise.resolve();
      let sourceSub: Subscription | undefined;

      const failWith = (err: unknown): void => {
        if (closed) return;
        closed = true;
        sourceSub?.unsubscribe();
        void encoder?.abort();
        subscriber.error(err);
      };

      encodeVideo(config).then((enc) => {
        if (closed) {
          void enc.abort();
          return;
        }
        encoder = enc;
        sourceSub = source.subscribe({
          next: (frame) => {
            const bytes = frame instanceof Uint8Array ? frame : frame.data;
            chain = chain.then(async () => {
              if (closed) return;
              await enc.write(bytes);
              config.onWritten?.(enc.framesWritten);
            });
            chain.catch(failWith);
          },
          error: failWith,
          complete: () => {
            chain
              .then(() => enc.finish())
              .then((result) => {
                finished = true;
                if (closed) return;
                subscriber.next(result);
                subscriber.complete();
              })
              .catch(failWith);
          },
        });
      }, failWith);

      return () => {
        closed = true;
        sourceSub?.unsubscribe();
        if (!finished) void encoder?.abort();
      };
    });
}
