/**
 * Training and writing camstream's embedded model folder (`models/zoo/<name>/`): the tfjs layers model
 * (model.json + one weights shard), labels.txt, camstream.json (what the loader needs to preprocess
 * frames) and manifest.json (name, classes, input size, sha256 of every file, how it was trained).
 *
 * The folder is written under a temporary name beside the target and renamed at the end, so an
 * interrupted run never leaves a folder that looks complete.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { createHash } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ModelFileConfig } from '../../models/types.ts';
import { folderLoadHandler, saveArtifactsToFolder } from '../../models/tfjs/io.ts';
import { ConfigError } from '../../common/index.ts';
import { buildGapNet, GAP_NET_PREPROCESS, mapRatio } from './architecture.ts';
import { CLASS_LABELS, MNIST_TRAIN_FRACTION } from '../../datasets/index.ts';
import { resolveTrainConfig, trainGapNet, type ResolvedTrainConfig, type TrainConfig, type TrainOptions, type TrainProgress, type TrainResult } from './train.ts';
import { ZOO_MODEL_DIR, ZOO_MODEL_NAME, ZOO_SHARPEN_PHASE, ZOO_TRAIN_CONFIG, type SharpenPhase } from './zoo-config.ts';

export { ZOO_MODEL_DIR, ZOO_MODEL_NAME, ZOO_SHARPEN_PHASE, ZOO_TRAIN_CONFIG, type SharpenPhase };

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
    /**
     * The second phase (map sharpening) run on the first phase's weights; null when there was none. The
     * fields above describe the first phase; `startedFrom` names the folder whose first-phase weights the
     * second started from when the first was not run in the same command.
     */
    sharpen: (SharpenPhase & { replicas: number; wallSeconds: number; finalLoss: number; startedFrom?: string }) | null;
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
  training: { result: TrainResult; command: string; name?: string; sharpen?: TrainResult; firstPhase?: ZooManifest['training']; startedFrom?: string },
): Promise<ZooManifest> {
  const { result, command, sharpen } = training;
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
  const meanTail = (losses: Float32Array): number => {
    const tail = losses.subarray(Math.max(0, losses.length - 100));
    return tail.reduce((a, v) => a + v, 0) / Math.max(1, tail.length);
  };
  const first: ZooManifest['training'] = training.firstPhase ?? {
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
    finalLoss: meanTail(result.losses),
    weightBytes,
    sharpen: null,
  };
  const manifest: ZooManifest = {
    name: training.name ?? basename(folder),
    format: 'tfjs-layers',
    classes: CLASS_LABELS.slice(0, net.numClasses),
    inputSize: [net.inputSize, net.inputSize],
    featureShape: [net.inputSize / ratio, net.inputSize / ratio, net.widths[net.widths.length - 1]],
    preprocess: { ...GAP_NET_PREPROCESS, mean: [...GAP_NET_PREPROCESS.mean], std: [...GAP_NET_PREPROCESS.std], channelOrder: 'rgb', layout: 'nhwc' },
    files,
    training: {
      ...first,
      command,
      weightBytes,
      sharpen: sharpen
        ? {
            steps: sharpen.config.steps,
            learningRate: sharpen.config.learningRate,
            mapAreaWeight: sharpen.config.mapAreaWeight,
            mapAreaCap: sharpen.config.mapAreaCap,
            // Recorded only when some source's multiplier is not 1 (models trained before it existed have none).
            ...(Object.values(sharpen.config.mapAreaBySource).some((w) => w !== 1) ? { mapAreaBySource: sharpen.config.mapAreaBySource } : {}),
            seed: sharpen.config.seed,
            replicas: sharpen.config.replicas,
            wallSeconds: Math.round(sharpen.wallMs / 1000),
            finalLoss: meanTail(sharpen.losses),
            ...(training.startedFrom !== undefined ? { startedFrom: training.startedFrom } : {}),
          }
        : null,
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
 * Trains a GAP network with `config` (default: the shipped recipe), then, unless `sharpen` is null, runs
 * the sharpening phase on it (default: the shipped recipe's), and writes it to `folder` (required: nothing
 * here picks the embedded model's folder by itself). With `startFrom` (a model folder this trainer wrote
 * with the same network) the first phase is not run: the second starts from that model's weights, and its
 * manifest's record of the first phase is kept. Progress counts the steps of both phases. Returns the
 * manifest written. The trained models are disposed.
 */
export async function trainZooModel(
  options: { folder: string; config?: TrainConfig; sharpen?: SharpenPhase | null; startFrom?: string; command?: string } & TrainOptions,
): Promise<{ manifest: ZooManifest; result: TrainResult; folder: string }> {
  const { folder, startFrom, signal } = options;
  const config = options.config ?? ZOO_TRAIN_CONFIG;
  const sharpen = options.sharpen === undefined ? ZOO_SHARPEN_PHASE : options.sharpen;
  const command = options.command ?? 'camstream train';
  const name = folder === ZOO_MODEL_DIR ? ZOO_MODEL_NAME : undefined;
  if (startFrom !== undefined && (sharpen === null || sharpen.steps === 0)) {
    throw new ConfigError('starting from a trained model runs only the sharpening phase, and it is switched off');
  }
  const firstSteps = startFrom === undefined ? resolveTrainConfig(config).steps : 0;
  // The second phase's settings are checked now, not after the first phase's hour of training.
  if (sharpen !== null) resolveTrainConfig({ ...config, ...sharpen });
  const total = firstSteps + (sharpen?.steps ?? 0);
  const progress = (offset: number) => (p: TrainProgress) => options.onProgress?.({ ...p, step: offset + p.step, steps: total });

  let first: TrainResult | undefined;
  let weights: Float32Array[];
  let firstPhase: ZooManifest['training'] | undefined;
  if (startFrom === undefined) {
    first = await trainGapNet(config, { signal, onProgress: progress(0) });
    if (sharpen === null || sharpen.steps === 0) {
      try {
        const manifest = await writeZooFolder(first.model, folder, { result: first, command, name });
        return { manifest, result: first, folder };
      } finally {
        first.model.dispose();
      }
    }
    weights = first.model.getWeights().map((w) => w.dataSync() as Float32Array);
    first.model.dispose();
  } else {
    ({ weights, firstPhase } = await readTrainedModel(startFrom, resolveTrainConfig(config).net));
  }
  const second = await trainGapNet({ ...config, ...sharpen, initialWeights: weights }, { signal, onProgress: progress(firstSteps) });
  try {
    const manifest = await writeZooFolder(second.model, folder, { result: first ?? second, sharpen: second, firstPhase, startedFrom: startFrom, command, name });
    return { manifest, result: second, folder };
  } finally {
    second.model.dispose();
  }
}

/** The weights of a model folder this trainer wrote, checked against the recipe's network, and its first-phase record. */
async function readTrainedModel(dir: string, net: ResolvedTrainConfig['net']): Promise<{ weights: Float32Array[]; firstPhase: ZooManifest['training'] }> {
  let recorded: ZooManifest;
  try {
    recorded = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ZooManifest;
  } catch (err) {
    throw new ConfigError(`${dir} has no readable manifest.json of a model trained here (${(err as Error).message})`);
  }
  if (recorded.training?.sharpen) throw new ConfigError(`${dir} has had its sharpening phase already; start from a model of the first phase only`);
  const model = await tfl.loadLayersModel(folderLoadHandler(dir));
  const reference = buildGapNet(net);
  try {
    const mine = model.getWeights();
    const expected = reference.getWeights();
    if (mine.length !== expected.length || expected.some((w, i) => w.shape.join('x') !== mine[i].shape.join('x'))) {
      throw new ConfigError(`${dir} is not a model of this recipe's network (its weights differ in number or shape)`);
    }
    return { weights: mine.map((w) => w.dataSync() as Float32Array), firstPhase: { ...recorded.training, sharpen: null } };
  } finally {
    model.dispose();
    reference.dispose();
  }
}
