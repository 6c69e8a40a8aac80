/**
 * Helpers for the video pipeline's integration tests: generated clips, small random models written to disk
 * (loaded through `load()` like a user's), and process checks through /proc.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { smallClassConvNet, smallGapDenseNet, writeLayersModel, toOnnxModel } from '../../lab/builders/index.ts';
import { lastValueFrom, toArray, type Observable } from 'rxjs';
import { expect } from 'vitest';
import { decodeFrames$, runFfmpeg, type DecodedFrame, type FfmpegTools, type VideoEncoder } from '../../pipelines/ffmpeg/index.ts';
import { waitGone as waitGoneAfter } from '../helpers/processes.ts';

/** Runs ffmpeg to make `dir/name` (arguments after `-y`, before the output). */
export async function makeClip(tools: FfmpegTools, dir: string, name: string, args: string[]): Promise<string> {
  const out = join(dir, name);
  await runFfmpeg({ binary: tools.ffmpeg.path, args: ['-y', ...args, out], timeoutMs: 120_000 });
  return out;
}

/**
 * A small random class-conv network (NIN / Darknet-style head) as an `.onnx` file: fast on ONNX Runtime,
 * so whole clips run in seconds. 32x32 input, 12 classes, 16x16 maps.
 */
export async function writeRandomOnnx(dir: string, seed = 1): Promise<string> {
  const path = join(dir, `random-${seed}.onnx`);
  await writeFile(path, toOnnxModel(smallClassConvNet(seed, { inputSize: [32, 32], numClasses: 12, width: 4 })));
  // Says how the random network is fed (camstream's own defaults, written out), so a run stays quiet: an
  // ONNX file without this is warned about on stderr.
  await writeFile(join(dir, 'camstream.json'), JSON.stringify({ scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1] }));
  return path;
}

/** A small random GAP + dense network as a TF.js layers folder (for the tfjs leak test). */
export async function writeRandomLayers(dir: string, seed = 2): Promise<string> {
  const folder = join(dir, `layers-${seed}`);
  await mkdir(folder, { recursive: true });
  await writeLayersModel(smallGapDenseNet(seed, { inputSize: [24, 32], numClasses: 8, width: 4 }), folder);
  return folder;
}

export { alive, childProcesses } from '../helpers/processes.ts';

/** Polls until `pid` is gone (exited or a zombie); false after `limitMs`. */
export function waitGone(pid: number, limitMs = 5000): Promise<boolean> {
  return waitGoneAfter(pid, { limitMs });
}

/** Lines of a JSONL file, parsed. */
export function readJsonLines<T = Record<string, unknown>>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as T);
}

/**
 * A numbered clip: MPEG-TS, 160x120 at 25 fps, frame n of luma 8n, with an AAC tone (the container starts
 * at 1.4 s, as ffmpeg's MPEG-TS does). Resolves with its path and its frame count by decoding (an ffmpeg may
 * end it a frame early; the npm build's ffprobe crashes counting MPEG-TS frames).
 */
export async function makeNumberedClip(tools: FfmpegTools, dir: string, asked = 30): Promise<{ clip: string; frames: number }> {
  const clip = await makeClip(tools, dir, 'numbered.ts', [
    '-f', 'lavfi', '-i', `color=c=black:size=160x120:rate=25,format=yuv420p,geq=lum='8*N':cb=128:cr=128`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-frames:v', String(asked), '-shortest', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac',
  ]);
  const frames = (await lastValueFrom(decodeFrames$(clip, { tools, width: 8, height: 8, pixFmt: 'gray' }).pipe(toArray()))).length;
  return { clip, frames };
}

/** What frame n of a numbered clip (luma 8n, limited range) becomes in full-range RGB or grey. */
export const numberedLevel = (n: number): number => Math.min(255, Math.max(0, ((8 * n - 16) * 255) / 219));

/** Mean of a grey frame's bytes. */
export const meanOf = (data: Uint8Array): number => data.reduce((s, v) => s + v, 0) / data.length;

/**
 * Decodes a numbered clip's composite, whose overlay was an opaque block over the left half as bright as the
 * frame it was made from, and checks every frame: `frames` of them, each block matching the frame under it
 * (a neighbour is 8 levels away).
 */
export async function expectBlocksOnTheirFrames(tools: FfmpegTools, out: string, frames: number, width: number, height: number): Promise<void> {
  const got = await lastValueFrom(decodeFrames$(out, { tools, pixFmt: 'gray', width, height }).pipe(toArray()));
  expect(got.length).toBe(frames);
  for (const [n, f] of got.entries()) {
    const left = meanOf(f.data.filter((_, i) => i % width < 70));
    const right = meanOf(f.data.filter((_, i) => i % width >= 90));
    expect(Math.abs(left - right), `frame ${n}: block ${left} over ${right}`).toBeLessThan(3);
  }
}

/**
 * Writes, for each decoded frame, an opaque 80-pixel-wide block of `height` rows as bright as that frame,
 * with its timestamp, to the timed encoder; finishes it after the last. The composite is then checked by
 * `expectBlocksOnTheirFrames`.
 */
export async function writeBlocks(frames$: Observable<DecodedFrame>, encoder: Promise<VideoEncoder>, height: number): Promise<void> {
  let chain: Promise<unknown> = Promise.resolve();
  await new Promise<void>((resolve, reject) => {
    frames$.subscribe({
      next: (f) => {
        const v = Math.round(meanOf(f.data));
        const block = new Uint8Array(80 * height * 4);
        for (let i = 0; i < 80 * height; i++) block.set([v, v, v, 255], i * 4);
        chain = chain.then(async () => (await encoder).write(block, f.pts));
      },
      error: reject,
      complete: () => void chain.then(async () => (await encoder).finish()).then(() => resolve(), reject),
    });
  });
}
