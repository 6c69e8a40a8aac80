/**
 * Confinement of a file to itself. Some demuxers read other files or URLs that the input names: an HLS
 * playlist (even one called `.mp4`) lists segments by absolute path, an ffconcat script lists files, a
 * DASH or IMF manifest names its parts. For a file that must not reach past its folder (a media-root
 * file in `serve`), a run gets `-protocol_whitelist file` (input.ts) and `-format_whitelist` with every
 * demuxer this ffmpeg has except those, so libavformat itself refuses such a file before it opens
 * anything it names; the probe's format is checked against the same list as a second fence.
 */
import { FfmpegError } from './errors.ts';
import type { ResolvedInput } from './input.ts';
import { runFfmpeg } from './spawn.ts';

/** Demuxers that open other files or URLs named inside the input (or run scripts). */
export const REFERENCE_FORMATS: readonly string[] = Object.freeze([
  'hls', 'applehttp', 'concat', 'dash', 'imf', 'webm_dash_manifest', 'sdp', 'rtsp', 'rtp', 'sap',
  'avisynth', 'vapoursynth', 'lavfi',
]);

const whitelists = new Map<string, Promise<string>>();

/** True when one of the names in ffmpeg's comma-separated format name is a reference demuxer. */
export function isReferenceFormat(formatName: string): boolean {
  return formatName.split(',').some((name) => REFERENCE_FORMATS.includes(name.trim()));
}

/** The demuxers `binary` lists (`-demuxers`), without the reference ones, comma-separated. Memoized per binary. */
export function safeFormatWhitelist(binary: string, kind: 'ffmpeg' | 'ffprobe'): Promise<string> {
  let list = whitelists.get(binary);
  if (!list) {
    list = listSafeDemuxers(binary, kind);
    whitelists.set(binary, list);
    list.catch(() => whitelists.delete(binary));
  }
  return list;
}

async function listSafeDemuxers(binary: string, kind: 'ffmpeg' | 'ffprobe'): Promise<string> {
  // ffmpeg -hide_banner -demuxers: " D  mov,mp4,m4a,3gp,3g2,mj2 QuickTime / MOV", after a "--" line.
  const { stdout } = await runFfmpeg({ binary, kind, args: ['-hide_banner', '-demuxers'], standardFlags: false, timeoutMs: 15_000 });
  const body = stdout.slice(stdout.indexOf('--') + 2);
  const names = [...body.matchAll(/^\s*D\S*\s+(\S+)/gm)].map((m) => m[1]).filter((n) => !isReferenceFormat(n));
  if (names.length === 0) throw new FfmpegError(`${binary} -demuxers listed no demuxers`, { file: binary });
  return names.join(',');
}

/** `source` with the format whitelist of `binary` added to its input arguments. */
export async function confineInput(source: ResolvedInput, binary: string, kind: 'ffmpeg' | 'ffprobe'): Promise<ResolvedInput> {
  if (source.scheme !== 'file') return source;
  return { ...source, inputArgs: ['-format_whitelist', await safeFormatWhitelist(binary, kind)] };
}

/**
 * The refusal for a confined input whose format is a reference demuxer: from a probe's format name, or
 * from ffmpeg's "Format not on whitelist" (its log context names the format). Undefined otherwise.
 */
export function referenceRefusal(display: string, format: string | undefined, cause?: unknown): FfmpegError | undefined {
  let name = format !== undefined && isReferenceFormat(format) ? format : undefined;
  if (name === undefined && cause instanceof FfmpegError) {
    const line = cause.stderr.find((l) => /not on whitelist/i.test(l));
    if (line) name = /^\[([^\]]+)\]/.exec(line)?.[1] ?? 'unknown';
  }
  if (name === undefined) return undefined;
  return new FfmpegError(
    `${display} is a ${name} file (a playlist or list of other files), refused: a confined file may not name other files`,
    { file: display },
    { cause },
  );
}
