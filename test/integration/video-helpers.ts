/**
 * Helpers for the video pipeline's integration tests: generated clips, small random models written to disk
 * (loaded through `load()` like a user's), and process checks through /proc.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { smallClassConvNet, smallGapDenseNet, writeLayersModel, toOnnxModel } from '../../lab/builders/index.ts';
import { runFfmpeg, type FfmpegTools } from '../../pipelines/ffmpeg/index.ts';
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
