/**
 * Encoding raw frames from JS into a video file (H.264 MP4 by default), optionally with the audio of
 * another file. The encoder writes to `<out>.tmp-<pid>-XXXXXXXX<ext>` (temp-files.ts) beside the target (same folder, so the
 * final rename is atomic; same extension, so ffmpeg picks the muxer) and renames it to `out` only after
 * ffmpeg exits 0: a failed or aborted run never leaves a file that looks complete.
 */
import { extname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import { checkInt } from '../../common/checks.ts';
import { ConfigError, type Frame } from '../../models/index.ts';
import { tempPathFor } from './temp-files.ts';
import { buildEncodeArgs, ENCODE_PIX_FMTS, rawFrameBytes, type EncodeAudioTrack, type EncodePixFmt } from './encode-args.ts';
import { EncodeRun, type EncodeResult, type VideoEncoder } from './encode-run.ts';
import { resolveInput, type InputScheme } from './input.ts';
import { locateFfmpeg, type FfmpegTools } from './locate.ts';
import { probeAudioCodec } from './probe.ts';
import { toRational, type Rational } from './rational.ts';
import { spawnFfmpeg } from './spawn.ts';
import { ivfHeader } from './ivf.ts';

/** Audio to mux in, from a file or URL; `startSeconds`/`durationSeconds` cut it to the video's span. */
export interface AudioSource {
  input: string;
  startSeconds?: number;
  durationSeconds?: number;
}

/** An extra ffmpeg input for `filterComplex` (it becomes input 1, 2, ...; the frames are input 0). */
export interface EncodeInput {
  /** File or URL; ignored (may be a label for messages) when `stream` is given. */
  input: string;
  /** Input options placed before its `-i` (for example `['-ss', '2']`), as separate arguments. */
  options?: readonly string[];
  /**
   * Read this input from a stream of this process instead (a decode run's `passthrough`), through a
   * pipe of the child. It is read to its end; the pipe's end closes when it ends.
   */
  stream?: Readable;
  /** Bytes of `stream` held in JS while ffmpeg does not read them, before `stream` is paused. Default 64 MiB. */
  streamBufferBytes?: number;
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
  inputPixFmt?: EncodePixFmt;
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
  /**
   * Every frame carries its own timestamp (`write(frame, ptsSeconds)`) and the output keeps it: no
   * constant-rate duplication or dropping; `fps` then only names the nominal rate. Timestamps are
   * copied as they are (`-copyts`): give the frames those of the input the graph composites them over.
   */
  frameTimestamps?: boolean;
  /**
   * With `frameTimestamps`: when the last frame ends, seconds on the frames' clock (the input's end).
   * Where ffmpeg cannot tell the last frame's duration (every ffmpeg for frames from JS alone; ffmpegs before
   * 5.1 also over a composited input) it writes that frame without one and the video comes out one frame
   * short: an MP4 is then mended to this before it is renamed into place (mp4-last-duration.ts).
   * Default: the last frame lasts as long as the one before it.
   */
  lastFrameEnds?: number;
  /** Take the audio (if any) of `inputs[input]` instead of `audioFrom`: `copy` or `aac`. */
  audioFromInput?: { input: number; codec: 'copy' | 'aac' };
  /** Have ffmpeg report its CPU time at exit (`VideoEncoder.cpu()`). Default false. */
  measureCpu?: boolean;
  /** Write at most this many video frames (`-frames:v`), whatever the inputs hold. Default: all. */
  maxFrames?: number;
  /** End the output with its shortest stream (`-shortest`). Default false. */
  shortest?: boolean;
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
  inputPixFmt: 'rgb24' as EncodePixFmt,
  codec: 'libx264',
  preset: 'veryfast',
  crf: 23,
  pixFmt: 'yuv420p',
  audioCodec: 'auto' as const,
  threads: 0,
  faststart: true,
  killGraceMs: 2000,
});

/** Audio codecs MP4/MOV hold without re-encoding (by ffmpeg's mp4 muxer without -strict). */
const MP4_AUDIO = new Set(['aac', 'mp3', 'ac3', 'eac3', 'alac']);

/** True when an MP4 can take audio of `codec` (ffmpeg's name) as it is. */
export function mp4CopiesAudio(codec: string | undefined): boolean {
  return codec !== undefined && MP4_AUDIO.has(codec);
}

function checkWord(field: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(value)) {
    throw new ConfigError(`${field} must be a plain name (letters, digits, _ . -), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The checked scalar options of an encode, defaults applied; errors come in the order of the fields. */
function checkEncodeConfig(config: EncodeConfig) {
  if (typeof config.out !== 'string' || config.out.trim() === '') throw new ConfigError(`out must be a file path, got ${JSON.stringify(config.out)}`);
  const width = checkInt('width', config.width, 1, 16384);
  const height = checkInt('height', config.height, 1, 16384);
  const rate = toRational(config.fps, 'fps');
  const inputPixFmt = config.inputPixFmt ?? DEFAULT_ENCODE_CONFIG.inputPixFmt;
  if (!ENCODE_PIX_FMTS.includes(inputPixFmt)) throw new ConfigError(`inputPixFmt must be one of ${ENCODE_PIX_FMTS.join(', ')}; got ${String(inputPixFmt)}`);
  if (inputPixFmt === 'yuva420p' && (width % 2 !== 0 || height % 2 !== 0)) {
    throw new ConfigError(`yuva420p frames need even sides (their chroma planes are half size), got ${width}x${height}`);
  }
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
  const maxFrames = config.maxFrames === undefined ? undefined : checkInt('maxFrames', config.maxFrames, 1, Number.MAX_SAFE_INTEGER);
  const killGraceMs = checkInt('killGraceMs', config.killGraceMs ?? DEFAULT_ENCODE_CONFIG.killGraceMs, 0, 60_000);
  return { width, height, rate, inputPixFmt, codec, preset, crf, pixFmt, threads, audioCodec, maxFrames, killGraceMs };
}

/**
 * The audio track of `config.audioFrom`, probed: copied when the codec fits the container (or as
 * `audioCodec` says), else AAC. Undefined without `audioFrom` or when it holds no audio.
 */
async function resolveAudioTrack(
  config: EncodeConfig,
  audioCodec: 'auto' | 'copy' | 'aac',
  container: string,
  tools: FfmpegTools,
): Promise<EncodeAudioTrack | undefined> {
  if (config.audioFrom === undefined) return undefined;
  const a: AudioSource = typeof config.audioFrom === 'string' ? { input: config.audioFrom } : config.audioFrom;
  const r = resolveInput(a.input, config.schemes);
  const sourceCodec = await probeAudioCodec(a.input, { tools, schemes: config.schemes });
  if (sourceCodec === undefined) return undefined;
  const copyable = container === 'mkv' || MP4_AUDIO.has(sourceCodec);
  const chosen = audioCodec === 'auto' ? (copyable ? 'copy' : 'aac') : audioCodec;
  return { url: r.url, whitelist: r.protocolWhitelist, startSeconds: a.startSeconds, durationSeconds: a.durationSeconds, codec: chosen };
}

/**
 * Starts an encoder (one ffmpeg reading raw frames on stdin). Validates the config (ConfigError naming
 * the field), locates ffmpeg and probes `audioFrom` before spawning.
 */
export async function encodeVideo(config: EncodeConfig): Promise<VideoEncoder> {
  const checked = checkEncodeConfig(config);
  const { width, height, pixFmt, inputPixFmt } = checked;

  const ext = extname(config.out);
  const container = ext.slice(1).toLowerCase();
  const tools = config.tools ?? (await locateFfmpeg());

  const streams: Array<{ stream: Readable; bufferBytes: number }> = [];
  const extraInputs = (config.inputs ?? []).map((x) => {
    if (x.stream) {
      // Writable pipes follow stdout and stderr: fd 3, 4, ...
      streams.push({ stream: x.stream, bufferBytes: x.streamBufferBytes ?? 64 * 1024 * 1024 });
      return { url: `pipe:${2 + streams.length}`, whitelist: 'pipe', options: [...(x.options ?? [])] };
    }
    const r = resolveInput(x.input, config.schemes);
    return { url: r.url, whitelist: r.protocolWhitelist, options: [...(x.options ?? [])] };
  });
  const fromInput = config.audioFromInput;
  if (fromInput && (!Number.isInteger(fromInput.input) || fromInput.input < 0 || fromInput.input >= extraInputs.length || !['copy', 'aac'].includes(fromInput.codec))) {
    throw new ConfigError(`audioFromInput must name one of inputs (0-${extraInputs.length - 1}) and copy or aac, got ${JSON.stringify(fromInput)}`);
  }
  const audio = fromInput ? undefined : await resolveAudioTrack(config, checked.audioCodec, container, tools);
  const timed = config.frameTimestamps === true;

  // 4:2:0 subsampling needs even sizes: pad odd ones by a black pixel rather than fail in x264.
  const needsEven = !config.filterComplex && /^yuv4[12]0/.test(pixFmt) && (width % 2 === 1 || height % 2 === 1);
  const vfParts = [config.filter, needsEven ? 'pad=ceil(iw/2)*2:ceil(ih/2)*2' : undefined].filter((x): x is string => !!x);

  const temp = tempPathFor(config.out, ext);
  // MP4 and its kin (no extension writes MP4).
  const mp4 = ['mp4', 'mov', 'm4v', ''].includes(container);
  const timedMp4 = timed && mp4;
  const faststart = (config.faststart ?? DEFAULT_ENCODE_CONFIG.faststart) && mp4;
  const args = buildEncodeArgs({
    ...checked,
    timed,
    passthroughArgs: tools.passthroughArgs,
    passthroughPerOutput: tools.passthroughPerOutput,
    audioFromInput: fromInput ? { index: fromInput.input + 1, codec: fromInput.codec } : undefined,
    shortest: config.shortest === true,
    vf: vfParts.length ? vfParts.join(',') : undefined,
    extraInputs,
    filterComplex: config.filterComplex,
    noEditList: timedMp4 && !tools.passthroughPerOutput,
    audio,
    faststart,
    format: ext === '' ? 'mp4' : undefined,
    temp,
  });

  const startedMs = performance.now();
  const proc = spawnFfmpeg({
    binary: tools.ffmpeg.path,
    args,
    file: config.out,
    stdin: true,
    inputPipes: streams.length,
    measureCpu: config.measureCpu,
    // -benchmark prints at info; the tail still keeps only warnings and errors.
    logLevel: config.measureCpu ? 'info' : 'error',
    killGraceMs: checked.killGraceMs,
  });
  streams.forEach((s, i) => feedPipe(s.stream, proc.inputs[i], s.bufferBytes));
  if (timed) proc.stdin!.write(ivfHeader(width, height, inputPixFmt));
  return new EncodeRun(proc, {
    timed,
    mendLastFrame: timedMp4 ? { endsAt: config.lastFrameEnds } : undefined,
    out: config.out,
    temp,
    width,
    height,
    inputPixFmt,
    frameBytes: rawFrameBytes(width, height, inputPixFmt),
    outWidth: needsEven ? width + (width % 2) : width,
    outHeight: needsEven ? height + (height % 2) : height,
    rate: checked.rate,
    audio: fromInput ? fromInput.codec : audio ? audio.codec : 'none',
    startedMs,
  });
}

/**
 * Copies `source` into the child's pipe `sink`, holding up to `maxBytes` in JS when ffmpeg reads slower
 * than the source writes (the source is paused beyond that). A source that writes ahead of the frames from
 * JS must not be stopped too early: ffmpeg may need JS's frames, which wait on that source's own process,
 * before it reads on. Once the pipe is gone the rest of `source` is drained and dropped.
 */
function feedPipe(source: Readable, sink: Writable, maxBytes: number): void {
  const onData = (chunk: Buffer): void => {
    sink.write(chunk);
    if (sink.writableLength > maxBytes) source.pause();
  };
  source.on('data', onData);
  sink.on('drain', () => source.resume());
  source.once('end', () => sink.end());
  sink.once('close', () => {
    source.off('data', onData);
    source.resume();
  });
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
