/**
 * `probeMedia`: what a video is (size, rate, duration, frame count, codecs, audio, rotation), from
 * ffprobe's JSON when an ffprobe exists, else from the stream lines `ffmpeg -i` prints.
 */
import { ConfigError } from '../../models/index.ts';
import { confineInput, referenceRefusal } from './confine.ts';
import { FfmpegError } from './errors.ts';
import { resolveInput, type InputScheme, type ResolvedInput } from './input.ts';
import { locateFfmpeg, type FfmpegTools } from './locate.ts';
import { parseRational, rationalFromDecimal, rationalValue, type Rational } from './rational.ts';
import { runFfmpeg } from './spawn.ts';

/**
 * When to count frames by decoding: `never` (default; the container's nb_frames or undefined),
 * `if-missing` (count when the container does not say), `always` (count even when it says: an edit
 * list can hide packets, so the container's figure can differ from what decoding yields).
 */
export type FrameCountMode = 'never' | 'if-missing' | 'always';

export interface ProbeConfig {
  /** Tools to use; default `locateFfmpeg()`. */
  tools?: FfmpegTools;
  /** Default `never`. */
  countFrames?: FrameCountMode;
  /** Schemes the input may use; default all of `INPUT_SCHEMES`. */
  schemes?: readonly InputScheme[];
  /** Time limit for each probe command, ms. Default 60 000. */
  timeoutMs?: number;
  /**
   * Confine a file to itself: refuse playlists and other files that name further files (HLS, ffconcat,
   * DASH...; see confine.ts) before anything they name is opened. Default false.
   */
  confine?: boolean;
  /** Aborting ends the probe's child at once and rejects (a decode unsubscribed while probing). */
  signal?: AbortSignal;
}

export interface MediaInfo {
  /** The input as given. */
  input: string;
  /** Container format (`mov,mp4,m4a,3gp,3g2,mj2`, `avi`, `mpeg`). */
  format: string;
  /** Coded size of the first video stream, pixels. */
  width: number;
  height: number;
  /** Clockwise rotation the player applies (from the display matrix or `rotate` tag): 0, 90, 180 or 270. */
  rotation: 0 | 90 | 180 | 270;
  /** Size of decoded frames: ffmpeg auto-rotates, so 90/270 swap width and height. */
  displayWidth: number;
  displayHeight: number;
  /** Average frame rate (the real base rate when the average is unknown). */
  frameRate: Rational;
  /** `frameRate` as a number, frames per second. */
  fps: number;
  /** Seconds; the video stream's duration, else the container's. Undefined for live streams. */
  duration: number | undefined;
  /** Container start time, seconds (ffmpeg shifts decoded timestamps so the first frame is near 0). */
  startTime: number | undefined;
  /**
   * When the video stream's last frame ends, seconds on the decoded frames' clock (where the container
   * starts at 0). From ffprobe's stream start and duration; undefined without them (ffmpeg's listing gives
   * only the container's, which may be the audio's).
   */
  videoEnd: number | undefined;
  /** See `countFrames`; undefined when unknown. */
  frameCount: number | undefined;
  frameCountSource: 'container' | 'counted' | 'unknown';
  /** `round(duration * fps)`, for progress bars when the count is unknown. */
  estimatedFrameCount: number | undefined;
  /** Video codec name (`h264`, `mpeg2video`, `msmpeg4v3`). */
  codec: string;
  /** Decoder pixel format (`yuv420p`). */
  pixFmt: string;
  hasAudio: boolean;
  /** First audio stream's codec, when there is one. */
  audioCodec: string | undefined;
  /** Which tool answered. */
  prober: 'ffprobe' | 'ffmpeg';
}

/**
 * Probes `input` (a file path or a whitelisted URL). Errors are FfmpegErrors naming the file and
 * quoting ffmpeg ("No such file or directory", "Invalid data found when processing input"), or a
 * ConfigError for a scheme that is not allowed.
 */
export async function probeMedia(input: string, config: ProbeConfig = {}): Promise<MediaInfo> {
  const countMode = config.countFrames ?? 'never';
  if (!['never', 'if-missing', 'always'].includes(countMode)) {
    throw new ConfigError(`countFrames must be one of never, if-missing, always; got ${String(countMode)}`);
  }
  const tools = config.tools ?? (await locateFfmpeg());
  const prober = tools.ffprobe ?? tools.ffmpeg;
  const resolved = resolveInput(input, config.schemes);
  const source = config.confine ? await confineInput(resolved, prober.path, prober.kind) : resolved;
  const limits: RunLimits = { timeoutMs: config.timeoutMs ?? 60_000, signal: config.signal };
  let info: MediaInfo;
  // Some static ffprobe builds crash on whole formats (the npm package's segfaults on every MPEG-TS file):
  // then ffmpeg's own input listing answers, as it does where there is no ffprobe.
  /** The input as ffmpeg opens it (confined with ffmpeg's own demuxer list); set when ffmpeg is the tool that answers. */
  let ffmpegSource = tools.ffprobe ? undefined : source;
  const byFfmpeg = async (): Promise<MediaInfo> => {
    ffmpegSource ??= config.confine ? await confineInput(resolved, tools.ffmpeg.path, 'ffmpeg') : resolved;
    return probeWithFfmpeg(ffmpegSource, tools, limits);
  };
  try {
    if (tools.ffprobe) {
      try {
        info = await probeWithFfprobe(source, tools, limits);
      } catch (err) {
        if (!crashed(err)) throw err;
        info = await byFfmpeg();
      }
    } else {
      info = await byFfmpeg();
    }
  } catch (err) {
    throw (config.confine ? referenceRefusal(source.display, undefined, err) : undefined) ?? err;
  }
  const refused = config.confine ? referenceRefusal(source.display, info.format) : undefined;
  if (refused) throw refused;
  if (countMode === 'always' || (countMode === 'if-missing' && info.frameCount === undefined)) {
    // Counted by the tool that answered.
    info.frameCount = ffmpegSource ? await countWithFfmpeg(ffmpegSource, tools, limits) : await countWithFfprobe(source, tools, limits);
    info.frameCountSource = 'counted';
  }
  return info;
}

/** True when a tool died of a fault of its own (not a timeout or an abort, which end it with SIGTERM/SIGKILL). */
function crashed(err: unknown): boolean {
  return err instanceof FfmpegError && ['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGABRT', 'SIGFPE'].includes(err.signal ?? '');
}

/** Per command: the time limit and the caller's abort signal. */
interface RunLimits {
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  pix_fmt?: string;
  r_frame_rate?: string;
  avg_frame_rate?: string;
  nb_frames?: string;
  duration?: string;
  start_time?: string;
  tags?: Record<string, string>;
  side_data_list?: Array<{ side_data_type?: string; rotation?: number }>;
  disposition?: { attached_pic?: number };
}

interface ProbeJson {
  streams?: ProbeStream[];
  format?: { format_name?: string; duration?: string; start_time?: string };
}

function noVideo(source: ResolvedInput): FfmpegError {
  return new FfmpegError(`${source.display} has no video stream`, { file: source.display });
}

async function probeWithFfprobe(source: ResolvedInput, tools: FfmpegTools, limits: RunLimits): Promise<MediaInfo> {
  // ffprobe -hide_banner -loglevel level+error -protocol_whitelist file -print_format json -show_format -show_streams <input>
  const args = ['-protocol_whitelist', source.protocolWhitelist, ...(source.inputArgs ?? []), '-print_format', 'json', '-show_format', '-show_streams', source.url];
  const { stdout } = await runFfmpeg({ binary: tools.ffprobe!.path, kind: 'ffprobe', args, file: source.display, ...limits });
  let json: ProbeJson;
  try {
    json = JSON.parse(stdout) as ProbeJson;
  } catch (err) {
    throw new FfmpegError(`ffprobe printed no readable JSON for ${source.display}`, { file: source.display }, { cause: err });
  }
  const streams = json.streams ?? [];
  const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  if (!video || !video.width || !video.height) throw noVideo(source);
  const audio = streams.find((s) => s.codec_type === 'audio');
  // The average rate gives the right duration for variable-rate files; r_frame_rate is the fallback.
  const rate = parseRational(video.avg_frame_rate) ?? parseRational(video.r_frame_rate);
  if (!rate) throw new FfmpegError(`${source.display}: ffprobe reports no frame rate for the video stream`, { file: source.display });
  const duration = num(video.duration) ?? num(json.format?.duration);
  const nbFrames = num(video.nb_frames);
  const rotation = rotationOf(
    video.tags?.rotate !== undefined ? Number(video.tags.rotate) : undefined,
    video.side_data_list?.find((d) => d.side_data_type === 'Display Matrix' && typeof d.rotation === 'number')?.rotation,
  );
  return finishInfo(source, {
    format: json.format?.format_name ?? 'unknown',
    width: video.width,
    height: video.height,
    rotation,
    frameRate: rate,
    duration,
    startTime: num(json.format?.start_time),
    videoEnd: videoEnd(num(video.start_time), num(video.duration), num(json.format?.start_time)),
    frameCount: nbFrames && nbFrames > 0 ? nbFrames : undefined,
    codec: video.codec_name ?? 'unknown',
    pixFmt: video.pix_fmt ?? 'unknown',
    audioCodec: audio?.codec_name ?? (audio ? 'unknown' : undefined),
    prober: 'ffprobe',
  });
}

/** The end of the video stream on the decoded frames' clock: its own start and duration, less the container's start. */
function videoEnd(start: number | undefined, duration: number | undefined, containerStart: number | undefined): number | undefined {
  if (duration === undefined) return undefined;
  return (start ?? containerStart ?? 0) + duration - (containerStart ?? 0);
}

function num(text: string | undefined): number | undefined {
  if (text === undefined || text === 'N/A') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Clockwise degrees a player rotates by. The `rotate` tag is clockwise; the display matrix rotation
 * (ffprobe's `rotation`, ffmpeg's "displaymatrix: rotation of X degrees") is counter-clockwise.
 */
function rotationOf(rotateTag: number | undefined, displayMatrixCcw: number | undefined): 0 | 90 | 180 | 270 {
  const cw = rotateTag !== undefined && Number.isFinite(rotateTag) ? rotateTag : displayMatrixCcw !== undefined ? -displayMatrixCcw : 0;
  const r = (((Math.round(cw / 90) * 90) % 360) + 360) % 360;
  return r as 0 | 90 | 180 | 270;
}

type InfoCore = Omit<MediaInfo, 'input' | 'displayWidth' | 'displayHeight' | 'fps' | 'frameCountSource' | 'estimatedFrameCount' | 'hasAudio'>;

function finishInfo(source: ResolvedInput, core: InfoCore): MediaInfo {
  const swap = core.rotation === 90 || core.rotation === 270;
  const fps = rationalValue(core.frameRate);
  return {
    input: source.display,
    ...core,
    displayWidth: swap ? core.height : core.width,
    displayHeight: swap ? core.width : core.height,
    fps,
    frameCountSource: core.frameCount !== undefined ? 'container' : 'unknown',
    estimatedFrameCount: core.duration !== undefined ? Math.round(core.duration * fps) : core.frameCount,
    hasAudio: core.audioCodec !== undefined,
  };
}

async function probeWithFfmpeg(source: ResolvedInput, tools: FfmpegTools, limits: RunLimits): Promise<MediaInfo> {
  // ffmpeg -hide_banner -loglevel level+info -nostats -nostdin -protocol_whitelist file -i <input>
  // With no output ffmpeg lists the input and exits 1 ("At least one output file must be specified").
  const args = ['-protocol_whitelist', source.protocolWhitelist, ...(source.inputArgs ?? []), '-i', source.url];
  const { log } = await runFfmpeg({ binary: tools.ffmpeg.path, args, file: source.display, logLevel: 'info', ...limits, allowFailure: true });
  return parseFfmpegInputListing(source, log.map((l) => ({ level: l.level, message: l.message })));
}

/**
 * Reads the `Input #0` block of `ffmpeg -i` (its info-level lines). Exported for unit tests of the
 * parser; `probeMedia` is the public way in.
 */
export function parseFfmpegInputListing(source: ResolvedInput, lines: ReadonlyArray<{ level: string; message: string }>): MediaInfo {
  const { format, block } = inputBlock(source, lines);
  const durationMatch = /Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)/.exec(block.join('\n'));
  const duration = durationMatch ? Number(durationMatch[1]) * 3600 + Number(durationMatch[2]) * 60 + Number(durationMatch[3]) : undefined;
  const startMatch = /start: (-?\d+(?:\.\d+)?)/.exec(block.join('\n'));
  const videoAt = block.findIndex((l) => /Stream #0:\d+.*: Video: /.test(l) && !/\(attached pic\)/.test(l));
  if (videoAt < 0) throw noVideo(source);
  const videoLine = block[videoAt];
  const codec = /: Video: ([^\s,(]+)/.exec(videoLine)?.[1] ?? 'unknown';
  // The pixel format is the first field after the codec part; its colour details sit in parentheses.
  const afterCodec = videoLine.slice(videoLine.indexOf(': Video: ') + 9);
  const fields = splitTopLevel(afterCodec);
  const pixFmt = fields[1]?.replace(/\(.*$/, '').trim() || 'unknown';
  const size = /\b([1-9]\d*)x([1-9]\d*)\b/.exec(fields.slice(1).join(','));
  if (!size) throw new FfmpegError(`${source.display}: no frame size in ffmpeg's stream line: ${videoLine}`, { file: source.display });
  const fpsMatch = /(\d+(?:\.\d+)?)(k?) fps\b/.exec(videoLine) ?? /(\d+(?:\.\d+)?)(k?) tbr\b/.exec(videoLine);
  const rateValue = fpsMatch ? Number(fpsMatch[1]) * (fpsMatch[2] ? 1000 : 1) : undefined;
  const frameRate = rateValue !== undefined ? rationalFromDecimal(rateValue) : undefined;
  if (!frameRate) throw new FfmpegError(`${source.display}: no frame rate in ffmpeg's stream line: ${videoLine}`, { file: source.display });
  // The stream's own metadata lines follow its Stream line up to the next Stream line.
  let rotateTag: number | undefined;
  let matrixCcw: number | undefined;
  for (const l of block.slice(videoAt + 1)) {
    if (/^\s*Stream #/.test(l)) break;
    const tag = /^\s*rotate\s*:\s*(-?\d+(?:\.\d+)?)/.exec(l);
    if (tag) rotateTag = Number(tag[1]);
    const matrix = /displaymatrix: rotation of (-?\d+(?:\.\d+)?) degrees/.exec(l);
    if (matrix) matrixCcw = Number(matrix[1]);
  }
  const audioLine = block.find((l) => /Stream #0:\d+.*: Audio: /.test(l));
  return finishInfo(source, {
    format,
    width: Number(size[1]),
    height: Number(size[2]),
    rotation: rotationOf(rotateTag, matrixCcw),
    frameRate,
    duration,
    startTime: startMatch ? Number(startMatch[1]) : undefined,
    videoEnd: undefined,
    frameCount: undefined,
    codec,
    pixFmt,
    audioCodec: audioLine ? (/: Audio: ([^\s,(]+)/.exec(audioLine)?.[1] ?? 'unknown') : undefined,
    prober: 'ffmpeg',
  });
}

/** The `Input #0` header's format and the lines under it; an FfmpegError quoting ffmpeg when absent. */
function inputBlock(source: ResolvedInput, lines: ReadonlyArray<{ level: string; message: string }>): { format: string; block: string[] } {
  const info = lines.filter((l) => l.level === 'info').map((l) => l.message);
  const start = info.findIndex((l) => /^Input #0, /.test(l));
  if (start < 0) {
    const said = lines.filter((l) => ['panic', 'fatal', 'error'].includes(l.level)).map((l) => l.message);
    throw new FfmpegError(`ffmpeg could not read ${source.display}: ${said.slice(-5).join(' | ') || 'no input listing'}`, {
      file: source.display,
      stderr: said,
    });
  }
  const block: string[] = [];
  for (const l of info.slice(start + 1)) {
    if (/^(Input #[1-9]|Output #|Stream mapping:)/.test(l)) break;
    block.push(l);
  }
  return { format: /^Input #0, (.+), from /.exec(info[start])?.[1] ?? 'unknown', block };
}

/**
 * The codec of the first audio stream of any input (audio-only files included), undefined when it has
 * none. For the encoder's copy-or-encode choice.
 */
export async function probeAudioCodec(input: string, config: Omit<ProbeConfig, 'countFrames'> = {}): Promise<string | undefined> {
  const source = resolveInput(input, config.schemes);
  const tools = config.tools ?? (await locateFfmpeg());
  const timeoutMs = config.timeoutMs ?? 60_000;
  if (tools.ffprobe) {
    // ffprobe -hide_banner -loglevel level+error -protocol_whitelist file -select_streams a:0
    //   -show_entries stream=codec_name -print_format json <input>
    const args = ['-protocol_whitelist', source.protocolWhitelist, '-select_streams', 'a:0', '-show_entries', 'stream=codec_name', '-print_format', 'json', source.url];
    const { stdout } = await runFfmpeg({ binary: tools.ffprobe.path, kind: 'ffprobe', args, file: source.display, timeoutMs });
    const json = JSON.parse(stdout) as { streams?: Array<{ codec_name?: string }> };
    const stream = json.streams?.[0];
    return stream ? (stream.codec_name ?? 'unknown') : undefined;
  }
  const args = ['-protocol_whitelist', source.protocolWhitelist, '-i', source.url];
  const { log } = await runFfmpeg({ binary: tools.ffmpeg.path, args, file: source.display, logLevel: 'info', timeoutMs, allowFailure: true });
  const { block } = inputBlock(source, log);
  const audioLine = block.find((l) => /Stream #0:\d+.*: Audio: /.test(l));
  return audioLine ? (/: Audio: ([^\s,(]+)/.exec(audioLine)?.[1] ?? 'unknown') : undefined;
}

/** Splits on commas that are not inside parentheses: `yuv420p(tv, bt709), 568x320` -> 2 fields. */
function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      out.push(current.trim());
      current = '';
    } else current += ch;
  }
  out.push(current.trim());
  return out;
}

async function countWithFfprobe(source: ResolvedInput, tools: FfmpegTools, limits: RunLimits): Promise<number> {
  // ffprobe -hide_banner -loglevel level+error -protocol_whitelist file -count_frames -select_streams v:0
  //   -show_entries stream=nb_read_frames -print_format json <input>
  const args = [
    '-protocol_whitelist', source.protocolWhitelist, ...(source.inputArgs ?? []),
    '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-print_format', 'json', source.url,
  ];
  const { stdout } = await runFfmpeg({ binary: tools.ffprobe!.path, kind: 'ffprobe', args, file: source.display, ...limits });
  const json = JSON.parse(stdout) as { streams?: Array<{ nb_read_frames?: string }> };
  const count = num(json.streams?.[0]?.nb_read_frames);
  if (count === undefined) throw new FfmpegError(`ffprobe could not count the frames of ${source.display}`, { file: source.display });
  return count;
}

async function countWithFfmpeg(source: ResolvedInput, tools: FfmpegTools, limits: RunLimits): Promise<number> {
  // Decodes with passthrough timing (what decodeFrames$ emits) into the null muxer and reads the frame
  // counter from the machine-readable progress report:
  // ffmpeg -hide_banner -loglevel level+error -nostats -nostdin -protocol_whitelist file -i <input>
  //   -progress pipe:1 -map 0:v:0 -vsync passthrough -f null -
  const args = [
    '-protocol_whitelist', source.protocolWhitelist, ...(source.inputArgs ?? []), '-i', source.url, '-progress', 'pipe:1',
    ...(tools.passthroughPerOutput ? [] : tools.passthroughArgs),
    '-map', '0:v:0', ...(tools.passthroughPerOutput ? tools.passthroughArgs : []), '-f', 'null', '-',
  ];
  const { stdout } = await runFfmpeg({ binary: tools.ffmpeg.path, args, file: source.display, ...limits });
  const counts = [...stdout.matchAll(/^frame=\s*(\d+)/gm)];
  if (counts.length === 0) throw new FfmpegError(`ffmpeg reported no frame count for ${source.display}`, { file: source.display });
  return Number(counts[counts.length - 1][1]);
}
