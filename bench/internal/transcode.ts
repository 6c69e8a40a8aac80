/**
 * The transcode-only row of `npm run bench`: the clip decoded and re-encoded by one ffmpeg with the
 * pipeline's settings (decoder threads, x264 preset, CRF, encoder threads, yuv420p, faststart) and no
 * model, no overlay: the most ffmpeg alone can do on this machine. With the model-only figure it bounds a
 * case: both share the cores, so `limitFps = 1 / (1/modelOnlyFps + 1/transcodeOnlyFps)`.
 * The same transcode of a case's own output MP4 (heat map and boxes already in the picture) tells how much
 * of ffmpeg's cost in the pipeline is x264 working harder on that picture, which no change to the pipeline
 * can remove, and how much is the pipeline's own (second decode, composite, pipes).
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
}

/** Runs the transcode `spec.rounds` times (the clip's first `frames` frames). */
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
  return { clipLabel: spec.clipLabel, frames: spec.frames, fps, ...(bestCpu !== undefined ? { coreMsPerFrame: bestCpu } : {}) };
}
