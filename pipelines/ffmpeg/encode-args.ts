/**
 * The ffmpeg command line of an encode run: raw frames on stdin (input 0), optional extra inputs for a
 * filter graph, an optional audio input, one encoded output file.
 */
import { BYTES_PER_PIXEL, type PixFmt } from './decode-config.ts';
import { formatRational, type Rational } from './rational.ts';

/**
 * Raw formats an encode run reads: the decode run's packed formats, and `yuva420p` (planar Y, U, V at
 * half size each way, then alpha: 2.5 bytes a pixel, even sides only), which ffmpeg's overlay takes
 * without a conversion.
 */
export type EncodePixFmt = PixFmt | 'yuva420p';
export const ENCODE_PIX_FMTS: readonly EncodePixFmt[] = [...(Object.keys(BYTES_PER_PIXEL) as PixFmt[]), 'yuva420p'];

/** Bytes of one `width` x `height` frame in `pixFmt` (`yuva420p`: even sides). */
export function rawFrameBytes(width: number, height: number, pixFmt: EncodePixFmt): number {
  return pixFmt === 'yuva420p' ? (width * height * 5) / 2 : width * height * BYTES_PER_PIXEL[pixFmt];
}

/** An input ffmpeg reads besides the frames, resolved and allowed (see `resolveInput`). */
export interface EncodeExtraInput {
  url: string;
  whitelist: string;
  /** Input options placed before its `-i`. */
  options: readonly string[];
}

/** The audio track to mux in: where from, which span, and whether it is copied or re-encoded. */
export interface EncodeAudioTrack {
  url: string;
  whitelist: string;
  startSeconds?: number;
  durationSeconds?: number;
  codec: 'copy' | 'aac';
}

/** Everything `buildEncodeArgs` needs, validated and resolved by `encodeVideo`. */
export interface EncodeArgParts {
  /**
   * The frames arrive as IVF with a timestamp each (see ivf.ts) and keep it: no constant-rate
   * duplication or dropping, timestamps copied (`-copyts`), microsecond encoder time base.
   */
  timed: boolean;
  /** `-fps_mode passthrough` or `-vsync passthrough`, and where it goes (see locate.ts). */
  passthroughArgs: readonly string[];
  passthroughPerOutput: boolean;
  /** Audio from one of `extraInputs` (1-based ffmpeg input index) instead of `audio`. */
  audioFromInput: { index: number; codec: 'copy' | 'aac' } | undefined;
  /** `-shortest`. */
  shortest: boolean;
  /** `-frames:v`, when set. */
  maxFrames: number | undefined;
  /**
   * Older ffmpegs (before 5.1, those without `-fps_mode`) leave the last packet of a stream with its own
   * timestamps without a duration, and the MP4 edit list then ends where the last frame starts: players
   * and ffprobe drop it. There the MP4 gets no edit list, and no B-frames, whose delay only an edit
   * list would take back off the timestamps.
   */
  noEditList: boolean;
  width: number;
  height: number;
  rate: Rational;
  inputPixFmt: EncodePixFmt;
  codec: string;
  preset: string;
  crf: number;
  pixFmt: string;
  threads: number;
  /** `-vf` chain (the caller's filter, then the even-size padding), if any. */
  vf: string | undefined;
  extraInputs: readonly EncodeExtraInput[];
  filterComplex: string | undefined;
  audio: EncodeAudioTrack | undefined;
  faststart: boolean;
  /** `-f`, when the output name has no extension to pick the muxer. */
  format: string | undefined;
  /** The temporary output path. */
  temp: string;
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
export function buildEncodeArgs(parts: EncodeArgParts): string[] {
  const args = ['-y'];
  if (parts.timed) {
    // The frames are the only thing JS holds back, so they are read with little probing and a long queue
    // (ffmpeg's demuxer thread keeps taking them while the graph waits for the other input).
    args.push(
      '-copyts', '-thread_queue_size', '64', '-probesize', '32', '-analyzeduration', '0',
      '-f', 'ivf', '-c:v', 'rawvideo', '-i', 'pipe:0',
    );
    if (!parts.passthroughPerOutput) args.push(...parts.passthroughArgs);
  } else {
    args.push(
      '-f', 'rawvideo', '-pix_fmt', parts.inputPixFmt, '-video_size', `${parts.width}x${parts.height}`,
      '-framerate', formatRational(parts.rate), '-i', 'pipe:0',
    );
  }
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
  if (parts.timed) {
    if (parts.passthroughPerOutput) args.push(...parts.passthroughArgs);
    args.push('-enc_time_base:v', '1/1000000');
    // The MP4 track on the 90 kHz clock: every common rate (24, 25, 30, 30000/1001, 50, 60...) is a whole
    // number of ticks there, so a constant-rate input keeps its exact rate (microseconds would make 30 fps
    // 242000000/8066667), and variable-rate timestamps keep 11 us resolution.
    if (/\.(mp4|m4v|mov)$/i.test(parts.temp) || parts.format === 'mp4' || parts.format === 'mov') args.push('-video_track_timescale', '90000');
  }
  args.push('-c:v', parts.codec);
  if (parts.codec === 'libx264' || parts.codec === 'libx265') args.push('-preset', parts.preset, '-crf', String(parts.crf));
  if (parts.noEditList) args.push('-bf', '0', '-use_editlist', '0');
  args.push('-pix_fmt', parts.pixFmt, '-threads', String(parts.threads));
  const audioCodec = parts.audioFromInput?.codec ?? parts.audio?.codec;
  if (parts.audioFromInput) args.push('-map', `${parts.audioFromInput.index}:a:0?`);
  else if (parts.audio) args.push('-map', `${audioIndex}:a:0`);
  if (audioCodec === 'copy') args.push('-c:a', 'copy');
  else if (audioCodec === 'aac') args.push('-c:a', 'aac', '-b:a', '128k');
  if (parts.maxFrames !== undefined) args.push('-frames:v', String(parts.maxFrames));
  if (parts.shortest) args.push('-shortest');
  if (parts.faststart) args.push('-movflags', '+faststart');
  if (parts.format) args.push('-f', parts.format);
  args.push(parts.temp);
  return args;
}
