/**
 * The transcode-only row of `npm run bench`: the clip decoded and re-encoded by one ffmpeg with the
 * pipeline's settings (decoder threads, x264 preset, CRF, encoder threads, yuv420p, faststart) and no
 * model, no overlay: the most ffmpeg alone can do on this machine. With the model-only figure it bounds a
 * case: both share the cores, so `limitFps = 1 / (1/modelOnlyFps + 1/transcodeOnlyFps)`.
 * The same transcode of a case's own output MP4 (heat map and boxes already in the picture) tells how much
 * of ffmpeg's cost in the pipeline is x264 working harder on that picture, which no change to the pipeline
 * can remove, and how much is the pipeline's own (second decode, composite, pipes).
 *
 * From those, `efficiencyCeiling` bounds what any pipeline could reach on a case: it must decode the clip,
 * run the model and encode the annotated picture, so its ffmpeg work is at least the clip's decode plus
 * x264 on that picture (the own output's transcode minus its decode, measured by `decodeOnly`).
 */
import { join } from 'node:path';
import { runFfmpeg, type FfmpegTools } from '../../pipelines/index.ts';
import { reapedChildrenCpuMs } from './proc-cpu.ts';

export interface TranscodeSpec {
  clip: string;
  clipLabel: string;
  frames: number;
  decodeThreads: number;
  encodeThreads: number;
  preset: string;
  crf: number;
  rounds: number;
  outDir: string;
  /** Output file names start with this. Default `transcode`. */
  name?: string;
}

export interface TranscodeResult {
  clipLabel: string;
  frames: number;
  /** Frames per second of each round. */
  fps: number[];
  /** ffmpeg's CPU (user + system) per frame in the fastest round, core-ms (Linux). */
  coreMsPerFrame?: number;
  /** The same clip only decoded (`decodeOnly`), core-ms per frame. */
  decodeCoreMsPerFrame?: number;
}

/** Runs the transcode `spec.rounds` times (the clip's first `frames` frames), then `decodeOnly` on the same frames. */
export async function transcodeOnly(tools: FfmpegTools, spec: TranscodeSpec): Promise<TranscodeResult> {
  const fps: number[] = [];
  let best: number | undefined;
  let bestCpu: number | undefined;
  for (let round = 0; round < spec.rounds; round++) {
    const cpu0 = await reapedChildrenCpuMs();
    const t0 = performance.now();
    // ffmpeg -threads 1 -i clip -frames:v N -map 0:v:0 -c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p -threads 0 -movflags +faststart out.mp4
    await runFfmpeg({
      binary: tools.ffmpeg.path,
      args: [
        '-y', '-threads', String(spec.decodeThreads), '-i', spec.clip, '-frames:v', String(spec.frames), '-map', '0:v:0',
        '-c:v', 'libx264', '-preset', spec.preset, '-crf', String(spec.crf), '-pix_fmt', 'yuv420p', '-threads', String(spec.encodeThreads),
        '-movflags', '+faststart', join(spec.outDir, `${spec.name ?? 'transcode'}-${round}.mp4`),
      ],
      timeoutMs: 600_000,
    });
    const wallMs = performance.now() - t0;
    const cpu1 = await reapedChildrenCpuMs();
    const rate = (spec.frames * 1000) / wallMs;
    fps.push(rate);
    if (best === undefined || rate > best) {
      best = rate;
      bestCpu = cpu0 !== undefined && cpu1 !== undefined ? (cpu1 - cpu0) / spec.frames : undefined;
    }
  }
  const decode = await decodeOnly(tools, spec);
  return {
    clipLabel: spec.clipLabel,
    frames: spec.frames,
    fps,
    ...(bestCpu !== undefined ? { coreMsPerFrame: bestCpu } : {}),
    ...(decode !== undefined ? { decodeCoreMsPerFrame: decode } : {}),
  };
}

/**
 * ffmpeg's CPU per frame (core-ms, Linux) to decode the clip's first `frames` frames and drop them, with
 * the transcode's decoder threads: the least of `rounds` runs (the reaped-children clock ticks at 10 ms).
 */
export async function decodeOnly(
  tools: FfmpegTools,
  spec: Pick<TranscodeSpec, 'clip' | 'frames' | 'decodeThreads'> & { rounds?: number },
): Promise<number | undefined> {
  let best: number | undefined;
  for (let round = 0; round < (spec.rounds ?? 3); round++) {
    const cpu0 = await reapedChildrenCpuMs();
    // ffmpeg -threads 1 -i clip -frames:v N -map 0:v:0 -f null -
    await runFfmpeg({
      binary: tools.ffmpeg.path,
      args: ['-threads', String(spec.decodeThreads), '-i', spec.clip, '-frames:v', String(spec.frames), '-map', '0:v:0', '-f', 'null', '-'],
      timeoutMs: 600_000,
    });
    const cpu1 = await reapedChildrenCpuMs();
    if (cpu0 === undefined || cpu1 === undefined) return undefined;
    const ms = (cpu1 - cpu0) / spec.frames;
    if (best === undefined || ms < best) best = ms;
  }
  return best;
}

/** Inputs of `efficiencyCeiling`: fps are the best of their rounds, costs are core-ms per frame. */
export interface CeilingInputs {
  modelOnlyFps: number;
  /** Cores the model-only run kept busy (its threads times its sessions, at most `cores`). */
  modelCores: number;
  /** Cores of the machine. */
  cores: number;
  /** The case's `limitFps` (its model-only and the clip's transcode-only rates, back to back). */
  limitFps: number;
  /** The clip decoded alone, core-ms per frame. */
  clipDecodeCoreMs: number;
  /** The case's output MP4 transcoded like the clip, and decoded alone. */
  ownOutputTranscodeCoreMs: number;
  ownOutputDecodeCoreMs: number;
}

export interface Ceiling {
  /** Least ffmpeg work per frame for this picture: the clip's decode plus x264 on the annotated picture. */
  pictureCoreMs: number;
  /** The most frames per second the cores give when all their time goes to the model and that ffmpeg work. */
  pictureLimitFps: number;
  /** pictureLimitFps / limitFps: the highest efficiency (e2e / limit) any pipeline writing this picture can show. */
  ceiling: number;
}

/**
 * The efficiency a case could reach at best. The bench's limit assumes ffmpeg's share costs what the clip's
 * plain transcode costs, but the pipeline has to encode the annotated picture, which x264 may find much
 * harder (maps that change every frame). Counting CPU time only, as if every core were busy every moment:
 * a frame costs the model's core-ms (`modelCores` cores for 1 / modelOnlyFps) plus that ffmpeg work, and
 * the cores cannot give more frames per second than their time over that sum. A model that leaves cores
 * idle when alone (one wasm thread) counts only the cores it used, so the bound stays a bound when model
 * and ffmpeg overlap.
 */
export function efficiencyCeiling(c: CeilingInputs): Ceiling {
  const pictureCoreMs = c.clipDecodeCoreMs + c.ownOutputTranscodeCoreMs - c.ownOutputDecodeCoreMs;
  const modelCoreMs = (Math.min(c.modelCores, c.cores) * 1000) / c.modelOnlyFps;
  const pictureLimitFps = (c.cores * 1000) / (modelCoreMs + pictureCoreMs);
  return { pictureCoreMs, pictureLimitFps, ceiling: pictureLimitFps / c.limitFps };
}
