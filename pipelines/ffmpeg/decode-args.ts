/**
 * The ffmpeg command line of a decode run: one filter graph that ends in one raw output per requested
 * size, each on its own pipe.
 */
import type { ResolvedDecodeConfig, ResolvedOutput } from './decode-config.ts';
import type { ResolvedInput } from './input.ts';
import type { FfmpegTools } from './locate.ts';
import { formatRational } from './rational.ts';

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
  args.push(...config.inputOptions, '-protocol_whitelist', source.protocolWhitelist, ...(source.inputArgs ?? []), '-i', source.url);
  if (!tools.passthroughPerOutput) args.push(...tools.passthroughArgs);

  const common: string[] = [];
  if (config.filter) common.push(config.filter);
  if (config.fps) common.push(`fps=fps=${formatRational(config.fps)}`);
  // checksum=0: showinfo would otherwise hash every frame, which costs more than it tells us here.
  if (config.timestamps === 'pts') common.push('showinfo=checksum=0');
  const chains = outputs.map((o, i) => outputChain(o, config.outputs[i].width === undefined));
  // The full-size stream leaves the same split, after showinfo: the same frames with the same timestamps.
  if (config.passthrough) chains.push(`format=${config.passthrough.pixFmt}`);
  let graph: string;
  if (chains.length === 1) {
    graph = `[0:v:0]${[...common, chains[0]].join(',')}[o0]`;
  } else {
    const labels = chains.map((_, i) => `[s${i}]`).join('');
    graph = `[0:v:0]${[...common, `split=${chains.length}`].join(',')}${labels}`;
    graph += chains.map((_, i) => `;[s${i}]${chains[i]}[o${i}]`).join('');
  }
  args.push('-filter_complex', graph);
  outputs.forEach((o, i) => {
    args.push('-map', `[o${i}]`);
    if (tools.passthroughPerOutput) args.push(...tools.passthroughArgs);
    if (config.maxFrames !== undefined) args.push('-frames:v', String(config.maxFrames));
    // stdout is fd 1; extra pipes start at fd 3.
    args.push('-f', 'rawvideo', '-pix_fmt', o.pixFmt, i === 0 ? 'pipe:1' : `pipe:${i + 2}`);
  });
  const p = config.passthrough;
  if (p) {
    const n = outputs.length;
    args.push('-map', `[o${n}]`);
    if (tools.passthroughPerOutput) args.push(...tools.passthroughArgs);
    if (config.maxFrames !== undefined) args.push('-frames:v', String(config.maxFrames));
    // Microsecond timestamps: the encoder's default time base is 1/rate, which would round a
    // variable-rate clip's timestamps onto a constant grid.
    args.push('-c:v', 'rawvideo', '-pix_fmt', p.pixFmt, '-enc_time_base:v', '1/1000000');
    if (p.audio !== 'none') args.push('-map', '0:a:0?', '-c:a', p.audio === 'copy' ? 'copy' : 'pcm_s16le');
    if (p.durationSeconds !== undefined) args.push('-t', String(p.durationSeconds));
    args.push('-max_interleave_delta', '100000', '-f', 'nut', `pipe:${n + 2}`);
  }
  return args;
}
