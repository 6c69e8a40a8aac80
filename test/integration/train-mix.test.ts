/**
 * Training on the mix of procedural and real-digit scenes with the 11th class `no digit`: the trainer's
 * batches hold only MNIST train-split digits, a short run lowers the loss without leaking tensors, and
 * `camstream train` never writes over the shipped model unless told to.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMnistDigits, resolveSceneConfig } from '../../datasets/index.ts';
import {
  fillMixedBatch,
  GAP_NET_PREPROCESS,
  resolveTrainConfig,
  resolveTrainMix,
  trainGapNet,
  TRAIN_SOURCES,
  ZOO_MODEL_DIR,
  type SampleOrigin,
  type TrainConfig,
} from '../../lab/train/index.ts';
import { ROOT } from '../helpers/fixtures.ts';

const SMALL: TrainConfig = {
  seed: 3,
  steps: 200,
  batchSize: 32,
  learningRate: 0.01,
  net: { inputSize: 32, widths: [16, 32, 32], strides: [2, 2, 1], kernels: [3, 3, 3], numClasses: 11 },
  mix: { procedural: 2, stn60: 1, none: 1 },
  scene: { clutter: [0, 0], noise: [0, 0], blurProbability: 0, perspective: 0, digitScale: [0.6, 0.85] },
};

const mean = (a: Float32Array): number => a.reduce((s, v) => s + v, 0) / a.length;

let root: string;
beforeAll(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
  root = await mkdtemp(join(tmpdir(), 'camstream-train-mix-'));
});
afterAll(async () => {
  tf.disposeVariables();
  await rm(root, { recursive: true, force: true });
});

describe('training batches from the mix', () => {
  it('never puts a test-split MNIST digit into a training batch, for any source', () => {
    const digits = loadMnistDigits();
    const mix = resolveTrainMix({ procedural: 1, dm100: 1, stn60: 1, webcam: 1, none: 1 }, 11);
    const scene = resolveSceneConfig({ size: 32 });
    const origins: SampleOrigin[] = [];
    const count = 600;
    const out = { images: new Float32Array(count * 32 * 32 * 3), labels: new Int32Array(count) };
    fillMixedBatch(mix, 1, 5000, count, scene, out, GAP_NET_PREPROCESS, (o) => origins.push(o));
    expect(origins).toHaveLength(count);
    expect(new Set(origins.map((o) => o.source))).toEqual(new Set(TRAIN_SOURCES));
    const used = origins.flatMap((o) => o.mnist);
    expect(used.length).toBeGreaterThan(2000);
    for (const d of used) expect(d.index).toBeLessThan(Math.floor(0.85 * digits.counts[d.label]));
    expect(origins.filter((o) => o.source === 'none').every((o) => o.label === 10)).toBe(true);
    expect(Array.from(out.labels)).toEqual(origins.map((o) => o.label));
  });

  it('refuses no-digit scenes for a network without the 11th class', () => {
    expect(() => resolveTrainMix({ procedural: 1, none: 1 }, 10)).toThrow(/mix.none needs an 11th class/);
    expect(() => resolveTrainMix({ webcam: -1 }, 11)).toThrow(/mix.webcam must be a weight >= 0, got -1/);
  });

  it('weights the map term per source: all sources at 0 is no term at all, one source at 1 is not', async () => {
    const base: TrainConfig = { ...SMALL, steps: 3 };
    const losses = async (config: TrainConfig): Promise<number[]> => {
      const before = tf.memory().numTensors;
      const r = await trainGapNet(config);
      r.model.dispose();
      // The per-sample weights and the term's tensors are freed with the step.
      expect(tf.memory().numTensors).toBe(before);
      return Array.from(r.losses);
    };
    const zeros = Object.fromEntries(TRAIN_SOURCES.map((s) => [s, 0]));
    const plain = await losses(base);
    expect(await losses({ ...base, mapAreaWeight: 5, mapAreaBySource: zeros })).toEqual(plain);
    const stn60Only = await losses({ ...base, mapAreaWeight: 5, mapAreaBySource: { ...zeros, stn60: 1 } });
    // The first step's loss already carries the term of the batch's stn60 samples.
    expect(stn60Only[0]).toBeGreaterThan(plain[0]);
    expect(() => resolveTrainConfig({ ...base, mapAreaBySource: { dm101: 1 } as never })).toThrow(/mapAreaBySource source must be one of/);
    expect(() => resolveTrainConfig({ ...base, mapAreaBySource: { webcam: -2 } })).toThrow(/mapAreaBySource.webcam must be a weight >= 0, got -2/);
    expect(resolveTrainConfig(base).mapAreaBySource).toEqual(Object.fromEntries(TRAIN_SOURCES.map((s) => [s, 1])));
  });

  it('lowers the loss of an 11-class network on the mix within 200 steps, without leaking tensors', async () => {
    const before = tf.memory().numTensors;
    const result = await trainGapNet(SMALL);
    expect(result.config.mix).toMatchObject({ procedural: 2, stn60: 1, none: 1, dm100: 0, webcam: 0 });
    const first = mean(result.losses.subarray(0, 30));
    const last = mean(result.losses.subarray(170));
    expect(first).toBeGreaterThan(2.1); // about ln(11) at the start
    expect(last).toBeLessThan(0.9 * first);
    expect(tf.memory().numTensors - before).toBe(result.model.weights.length);
    expect(result.model.outputs[0].shape).toEqual([null, 11]);
    result.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** Runs bin/camstream.js in `cwd`; resolves with the exit code and stderr. */
function camstream(args: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'camstream.js'), ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const sha256 = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

describe('camstream train output folder', () => {
  it('writes a new digits-gap-<date> folder in the working directory when --out is not given', async () => {
    const cwd = await mkdtemp(join(root, 'cwd-'));
    const run = await camstream(['train', '--steps', '1', '--sharpen-steps', '1', '--batch-size', '2', '--replicas', '1', '-q'], cwd);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const made = await readdir(cwd);
    expect(made).toHaveLength(1);
    expect(made[0]).toMatch(/^digits-gap-\d{8}-\d{6}$/);
    const labels = (await readFile(join(cwd, made[0], 'labels.txt'), 'utf8')).trim().split('\n');
    expect(labels).toEqual(['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'no digit']);
  });

  it('--sharpen-from runs only the second phase on a first-phase folder; without a second phase it is refused', async () => {
    const first = join(root, 'phase1');
    const one = await camstream(['train', '--out', first, '--steps', '2', '--sharpen-steps', '0', '--batch-size', '2', '--replicas', '1', '-q'], root);
    expect(one.stderr).toBe('');
    expect(one.code).toBe(0);
    expect(JSON.parse(await readFile(join(first, 'manifest.json'), 'utf8')).training.sharpen).toBeNull();
    const second = join(root, 'phase2');
    const two = await camstream(['train', '--out', second, '--sharpen-from', first, '--sharpen-steps', '2', '--sharpen-weight', '3', '--sharpen-sources', 'dm100=4,procedural=0.2', '--batch-size', '2', '--replicas', '1', '-q'], root);
    expect(two.stderr).toBe('');
    expect(two.code).toBe(0);
    const training = JSON.parse(await readFile(join(second, 'manifest.json'), 'utf8')).training;
    expect(training.steps).toBe(2);
    expect(training.sharpen).toMatchObject({ steps: 2, mapAreaWeight: 3, startedFrom: first });
    expect(training.sharpen.mapAreaBySource).toEqual({ procedural: 0.2, dm100: 4, stn60: 1, webcam: 1, none: 1 });
    const typo = await camstream(['train', '--out', join(root, 'never'), '--sharpen-sources', 'dm101=2', '-q'], root);
    expect(typo.code).toBe(2);
    // Refused before the first phase starts (it would otherwise run its 4,500 steps first).
    expect(typo.stderr).toMatch(/source must be one of procedural, dm100, stn60, webcam, none, got 'dm101'/);
    expect(existsSync(join(root, 'never'))).toBe(false);
    const off = await camstream(['train', '--out', join(root, 'never'), '--sharpen-from', first, '--sharpen-steps', '0', '-q'], root);
    expect(off.code).toBe(2);
    expect(off.stderr).toMatch(/--sharpen-from needs a second phase/);
    expect(existsSync(join(root, 'never'))).toBe(false);
  });

  it('refuses to write over the shipped model without --replace-shipped, leaving it untouched', async () => {
    const shipped = existsSync(join(ZOO_MODEL_DIR, 'model.json')) ? await sha256(join(ZOO_MODEL_DIR, 'model.json')) : undefined;
    const run = await camstream(['train', '--out', ZOO_MODEL_DIR, '--steps', '1', '--batch-size', '2', '--replicas', '1', '-q'], root);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/is the shipped model's folder; add --replace-shipped/);
    if (shipped !== undefined) expect(await sha256(join(ZOO_MODEL_DIR, 'model.json'))).toBe(shipped);
    const both = await camstream(['train', '--replace-shipped', '--out', join(root, 'x'), '--steps', '1', '-q'], root);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--replace-shipped writes/);
  });
});
