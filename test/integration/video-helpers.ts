/**
 * Helpers for the video pipeline's integration tests: generated clips, small random models written to disk
 * (loaded through `load()` like a user's), and process checks through /proc.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { smallClassConvNet, smallGapDenseNet, writeLayersModel, toOnnxModel } from '../../models/builders/index.ts';
import { runFfmpeg, type FfmpegTools } from '../../pipelines/ffmpeg/index.ts';

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
  return path;
}

/** A small random GAP + dense network as a TF.js layers folder (for the tfjs leak test). */
export async function writeRandomLayers(dir: string, seed = 2): Promise<string> {
  const folder = join(dir, `layers-${seed}`);
  await mkdir(folder, { recursive: true });
  await writeLayersModel(smallGapDenseNet(seed, { inputSize: [24, 32], numClasses: 8, width: 4 }), folder);
  return folder;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Polls until `pid` is gone; false after `limitMs`. */
export async function waitGone(pid: number, limitMs = 5000): Promise<boolean> {
  const t0 = performance.now();
  while (performance.now() - t0 < limitMs) {
    if (!alive(pid) || isZombie(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

function stat(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces, so split after the closing parenthesis.
    const close = s.lastIndexOf(')');
    return [s.slice(0, close + 1), ...s.slice(close + 2).split(' ')];
  } catch {
    return undefined;
  }
}

function isZombie(pid: number): boolean {
  return stat(pid)?.[1] === 'Z';
}

/** Live (non-zombie) child processes of `pid`, with their command names, from /proc. */
export function childProcesses(pid: number): Array<{ pid: number; comm: string }> {
  const out: Array<{ pid: number; comm: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (!s || s[1] === 'Z' || Number(s[2]) !== pid) continue;
    out.push({ pid: Number(name), comm: s[0].slice(s[0].indexOf('(') + 1, -1) });
  }
  return out;
}

/** Lines of a JSONL file, parsed. */
export function readJsonLines<T = Record<string, unknown>>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as T);
}
