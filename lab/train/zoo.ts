/**
 * Training and writing camstream's embedded model folder (`models/zoo/<name>/`): the tfjs layers model
 * (model.json + one weights shard), labels.txt, camstream.json (what the loader needs to preprocess
 * frames) and manifest.json (name, classes, input size, sha256 of every file, how it was trained).
 *
 * The folder is written under a temporary name beside the target and renamed at the end, so an
 * interrupted run never leaves a folder that looks complete.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { createHash } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ModelFileConfig } from '../../models/types.ts';
import { saveArtifactsToFolder } from '../../models/tfjs/io.ts';
import { GAP_NET_PREPROCESS, mapRatio } from './architecture.ts';
import { CLASS_LABELS, MNIST_TRAIN_FRACTION } from '../../datasets/index.ts';
import { trainGapNet, type ResolvedTrainConfig, type TrainConfig, type TrainOptions, type TrainResult } from './train.ts';
import { ZOO_MODEL_DIR, ZOO_MODEL_NAME, ZOO_TRAIN_CONFIG } from './zoo-config.ts';

export { ZOO_MODEL_DIR, ZOO_MODEL_NAME, ZOO_TRAIN_CONFIG };

/** Files of a model folder, in the order the manifest lists them. */
export const ZOO_FILES = ['model.json', 'group1-shard1of1.bin', 'labels.txt', 'camstream.json'] as const;

export interface ZooManifest {
  name: string;
  format: 'tfjs-layers';
  classes: string[];
  inputSize: [number, number];
  /** Feature map feeding GAP, `[h, w, k]`. */
  featureShape: [number, number, number];
  preprocess: { scale: number; mean: number[]; std: number[]; channelOrder: 'rgb'; layout: 'nhwc' };
  /** sha256 (hex) of each file in the folder. */
  files: Record<string, string>;
  training: {
    command: string;
    seed: number;
    steps: number;
    batchSize: number;
    learningRate: number;
    /** Data-parallel replicas the batch was split over (part of the recipe). */
    replicas: number;
    net: ResolvedTrainConfig['net'];
    scene: ResolvedTrainConfig['scene'];
    /** Relative weights of the training sources (procedural scenes, real-digit recipes). */
    mix: ResolvedTrainConfig['mix'];
    /** The MNIST split rule: real digits with index < floor(trainFraction * count) per class file were trained on. */
    mnistSplit: { trainFraction: number; rule: string };
    backend: string;
    wallSeconds: number;
    /** Mean loss over the last 100 steps. */
    finalLoss: number;
    /** Weights' total size in bytes. */
    weightBytes: number;
  };
}

/** What camstream.json says for a model trained here. */
export function zooModelFileConfig(inputSize: number): ModelFileConfig {
  return {
    inputSize: [inputSize, inputSize],
    channelOrder: 'rgb',
    layout: 'nhwc',
    scale: GAP_NET_PREPROCESS.scale,
    mean: [...GAP_NET_PREPROCESS.mean],
    std: [...GAP_NET_PREPROCESS.std],
    resize: 'stretch',
    labels: 'labels.txt',
  };
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/**
 * Writes `model` with labels, camstream.json and manifest.json into `folder` (replacing it), atomically.
 * `command` is recorded in the manifest as the way to rebuild it. Does not dispose the model.
 */
export async function writeZooFolder(
  model: tfl.LayersModel,
  folder: string,
  training: { result: TrainResult; command: string; name?: string },
): Promise<ZooManifest> {
  const { result, command } = training;
  const { net } = result.config;
  const tmp = join(dirname(folder), `.${basename(folder)}.${process.pid}.tmp`);
  await rm(tmp, { recursive: true, force: true });
  let weightBytes = 0;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      weightBytes = artifacts.weightSpecs?.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1) * 4, 0) ?? 0;
      return saveArtifactsToFolder(tmp, artifacts);
    }),
  );
  await writeFile(join(tmp, 'labels.txt'), `${CLASS_LABELS.slice(0, net.numClasses).join('\n')}\n`);
  await writeFile(join(tmp, 'camstream.json'), `${JSON.stringify(zooModelFileConfig(net.inputSize), null, 2)}\n`);
  const files: Record<string, string> = {};
  for (const f of ZOO_FILES) files[f] = await sha256(join(tmp, f));
  const ratio = mapRatio(net);
  const tail = result.losses.subarray(Math.max(0, result.losses.length - 100));
  const manifest: ZooManifest = {
    name: training.name ?? basename(folder),
    format: 'tfjs-layers',
    classes: CLASS_LABELS.slice(0, net.numClasses),
    inputSize: [net.inputSize, net.inputSize],
    featureShape: [net.inputSize / ratio, net.inputSize / ratio, net.widths[net.widths.length - 1]],
    preprocess: { ...GAP_NET_PREPROCESS, mean: [...GAP_NET_PREPROCESS.mean], std: [...GAP_NET_PREPROCESS.std], channelOrder: 'rgb', layout: 'nhwc' },
    files,
    training: {
      command,
      seed: result.config.seed,
      steps: result.config.steps,
      batchSize: result.config.batchSize,
      learningRate: result.config.learningRate,
      replicas: result.config.replicas,
      net,
      scene: result.config.scene,
      mix: result.config.mix,
      mnistSplit: { trainFraction: MNIST_TRAIN_FRACTION, rule: 'per class file, index < floor(0.85 x count) is train; the rest is the test split, never trained on' },
      backend: result.backend,
      wallSeconds: Math.round(result.wallMs / 1000),
      finalLoss: tail.reduce((s, v) => s + v, 0) / Math.max(1, tail.length),
      weightBytes,
    },
  };
  await writeFile(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  // Keep files that are not ours (MODEL_CARD.md) from an earlier folder.
  try {
    await rename(join(folder, 'MODEL_CARD.md'), join(tmp, 'MODEL_CARD.md'));
  } catch {
    // No card yet.
  }
  const old = `${tmp}.old`;
  let hadOld = false;
  try {
    await rename(folder, old);
    hadOld = true;
  } catch {
    // No previous folder.
  }
  await rename(tmp, folder);
  if (hadOld) await rm(old, { recursive: true, force: true });
  return manifest;
}

/**
 * Trains a GAP network with `config` (default: the shipped recipe) and writes it to `folder` (required:
 * nothing here picks the embedded model's folder by itself). Returns the manifest written. The trained
 * model is disposed.
 */
export async function trainZooModel(
  options: { folder: string; config?: TrainConfig; command?: string } & TrainOptions,
): Promise<{ manifest: ZooManifest; result: TrainResult; folder: string }> {
  const folder = options.folder;
  const result = await trainGapNet(options.config ?? ZOO_TRAIN_CONFIG, options);
  try {
    const manifest = await writeZooFolder(result.model, folder, {
      result,
      command: options.command ?? 'camstream train',
      name: folder === ZOO_MODEL_DIR ? ZOO_MODEL_NAME : undefined,
    });
    return { manifest, result, folder };
  } finally {
    result.model.dispose();
  }
}
