/**
 * The training loop for camstream's embedded GAP model: generated scenes on the fly (every step sees new
 * samples, so there is no epoch and no overfitting to a fixed set), Adam with a cosine-decayed learning
 * rate, softmax cross-entropy on the classifier's logits. Seeded end to end: weights come from
 * `buildGapNet({ seed })`, data from the scene stream `seed`, so a run is reproducible on one backend.
 *
 * Backend: whatever tfjs backend is active. On wasm, `prepareTraining()` registers the gradient kernels
 * the wasm build lacks (see wasm-grad-kernels.ts); on 'tensorflow' (tfjs-node) and 'cpu' nothing is needed
 * beyond the gradient functions themselves.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ConfigError } from '../../common/index.ts';
import { Worker } from 'node:worker_threads';
import { TS_WORKER_BOOT } from '../../models/pool/worker-boot.ts';
import { resolveGapNetConfig, type GapNetConfig } from './architecture.ts';
import { registerTrainingGradients } from './gradients.ts';
import { averageInOrder, Replica, type ShardResult } from './replica.ts';
import { resolveSceneConfig, type SceneConfig } from '../../datasets/scenes.ts';
import { registerWasmGradKernels } from './wasm-grad-kernels.ts';
import { DEFAULT_TRAIN_MIX, resolveSourceWeights, resolveTrainMix, type TrainMix, type TrainSource } from './mix.ts';

export interface TrainConfig {
  /** Seed for weights and for the training scene stream. Default 1. */
  seed?: number;
  /** Optimizer steps. Default 3000. */
  steps?: number;
  /** Scenes per step. Default 64. */
  batchSize?: number;
  /** Adam learning rate at the start; decays along a half cosine to `learningRate * 0.02`. Default 0.003. */
  learningRate?: number;
  /**
   * Data-parallel replicas: the batch is split over this many copies of the network, one in this thread
   * and the others in worker threads, and their gradients averaged each step. A different count gives a
   * (slightly) different run, so it is part of a recipe. Must divide `batchSize`. Default 1.
   */
  replicas?: number;
  /** Network shape (its seed is overridden by `seed`). */
  net?: GapNetConfig;
  /** Scene generator settings; `size` is forced to the network's input size. */
  scene?: SceneConfig;
  /**
   * Relative weights of the training sources: procedural scenes and the real-digit recipes (MNIST train
   * split only), chosen per sample. 'none' (no digit, class 10) needs `net.numClasses` 11. Default
   * `{ procedural: 1 }`.
   */
  mix?: TrainMix;
  /**
   * Weight of the map-sharpness term added to the cross-entropy (`mapAreaPenalty` in architecture.ts:
   * the labelled digit's map, cut at 0, mean over maximum). Image labels only. Default 0 (off).
   */
  mapAreaWeight?: number;
  /**
   * Where the map-sharpness term stops counting, as a share of the map's maximum, in (0, 1]: cells above
   * it add a constant, so only the weak floor below it is pushed to 0 and the strong body of the map keeps
   * its extent. 1 counts every cell (mean over maximum). Default 1.
   */
  mapAreaCap?: number;
  /**
   * Multiplies `mapAreaWeight` per training source (missing: 1), so the term can press harder on some
   * kinds of scene than on others: the source is known for every training sample, like its label, and is
   * no box. E.g. `{ dm100: 4, procedural: 0.2 }`. Default: 1 for every source.
   */
  mapAreaBySource?: Partial<Record<TrainSource, number>>;
  /**
   * Start from these weights instead of the seeded initialization: every weight of the network
   * (`model.getWeights()` order, batchnorm statistics included), as from an earlier phase. Default none.
   */
  initialWeights?: Float32Array[];
}

export const DEFAULT_TRAIN_CONFIG: Readonly<Required<Omit<TrainConfig, 'net' | 'scene' | 'mix' | 'mapAreaBySource' | 'initialWeights'>>> = Object.freeze({
  seed: 1,
  steps: 3000,
  batchSize: 64,
  learningRate: 0.003,
  replicas: 1,
  mapAreaWeight: 0,
  mapAreaCap: 1,
});

export interface ResolvedTrainConfig {
  seed: number;
  steps: number;
  batchSize: number;
  learningRate: number;
  replicas: number;
  mapAreaWeight: number;
  mapAreaCap: number;
  /** Every source's multiplier of `mapAreaWeight`. */
  mapAreaBySource: Record<TrainSource, number>;
  initialWeights?: Float32Array[];
  net: Required<GapNetConfig>;
  scene: Required<SceneConfig>;
  mix: Record<TrainSource, number>;
}

/** Merges and validates; throws ConfigError naming the field, the value and the allowed range. */
export function resolveTrainConfig(config: TrainConfig = {}): ResolvedTrainConfig {
  const { seed, steps, batchSize, learningRate, replicas, mapAreaWeight, mapAreaCap } = { ...DEFAULT_TRAIN_CONFIG, ...config };
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ConfigError(`seed must be a non-negative integer, got ${seed}`);
  if (!Number.isInteger(steps) || steps < 1 || steps > 10_000_000) {
    throw new ConfigError(`steps must be an integer in [1, 10000000], got ${steps}`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 4096) {
    throw new ConfigError(`batchSize must be an integer in [1, 4096], got ${batchSize}`);
  }
  if (!(learningRate > 0 && learningRate <= 1)) {
    throw new ConfigError(`learningRate must be in (0, 1], got ${learningRate}`);
  }
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 64) {
    throw new ConfigError(`replicas must be an integer in [1, 64], got ${replicas}`);
  }
  if (batchSize % replicas !== 0) {
    throw new ConfigError(`batchSize ${batchSize} must be a multiple of replicas (${replicas}): each replica takes an equal shard`);
  }
  if (!(mapAreaWeight >= 0 && mapAreaWeight <= 100)) throw new ConfigError(`mapAreaWeight must be in [0, 100], got ${mapAreaWeight}`);
  if (!(mapAreaCap > 0 && mapAreaCap <= 1)) throw new ConfigError(`mapAreaCap must be in (0, 1], got ${mapAreaCap}`);
  const mapAreaBySource = resolveSourceWeights(config.mapAreaBySource ?? {}, 'mapAreaBySource', 1);
  const net = resolveGapNetConfig({ ...config.net, seed });
  const scene = resolveSceneConfig({ ...config.scene, size: net.inputSize });
  const mix = resolveTrainMix(config.mix ?? DEFAULT_TRAIN_MIX, net.numClasses);
  return { seed, steps, batchSize, learningRate, replicas, mapAreaWeight, mapAreaCap, mapAreaBySource, initialWeights: config.initialWeights, net, scene, mix };
}

/**
 * Makes the active backend able to train: registers tfjs-core's gradient functions and, on wasm, the
 * missing gradient kernels. Idempotent. Call after `tf.setBackend()`.
 */
export function prepareTraining(): void {
  registerTrainingGradients();
  if (tf.getBackend() === 'wasm') registerWasmGradKernels();
}

export interface TrainProgress {
  /** Steps done (1-based after the first step). */
  step: number;
  steps: number;
  /** This step's mean cross-entropy. */
  loss: number;
  /** Exponential moving average of the loss (smoothing 0.98, bias-corrected). */
  smoothedLoss: number;
  learningRate: number;
  /** Scenes per second so far (generation included). */
  imagesPerSecond: number;
  elapsedMs: number;
}

export interface TrainOptions {
  /** Called after every step. */
  onProgress?: (progress: TrainProgress) => void;
  /** Stops between steps; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface TrainResult {
  /** The trained model; the caller owns it (dispose it). */
  model: tfl.LayersModel;
  /** Per-step losses. */
  losses: Float32Array;
  config: ResolvedTrainConfig;
  wallMs: number;
  backend: string;
}

/** Learning rate at `step` (0-based): a half cosine from `lr` down to `lr * 0.02`. */
export function learningRateAt(step: number, steps: number, lr: number): number {
  const t = steps <= 1 ? 0 : step / (steps - 1);
  return lr * (0.02 + 0.98 * 0.5 * (1 + Math.cos(Math.PI * t)));
}

/**
 * Trains a fresh GAP network on generated scenes, preprocessed as GAP_NET_PREPROCESS says. With
 * `replicas` > 1 the batch is split over that many replicas, one in this thread and the others in worker
 * threads, synchronously data-parallel (see replica.ts). Tensors created per step are freed per step; only
 * the model's weights (returned) stay allocated.
 */
export async function trainGapNet(config: TrainConfig = {}, options: TrainOptions = {}): Promise<TrainResult> {
  const resolved = resolveTrainConfig(config);
  const { steps, batchSize, learningRate, replicas } = resolved;
  prepareTraining();
  if (resolved.net.fuse !== null && tf.getBackend() === 'cpu') {
    // tfjs-backend-cpu 4.22's ResizeNearestNeighborGrad reads dy at the image's batch stride: wrong from
    // the second image of a batch on. wasm and tensorflow compute it right.
    throw new ConfigError("a network with a fusion stage cannot train on the 'cpu' backend (its upsampling gradient is wrong for batches); use wasm");
  }
  const local = new Replica(resolved, 0, replicas);
  const losses = new Float32Array(steps);
  let workers: ReplicaWorkers | undefined;
  const started = performance.now();
  let ema = 0;
  try {
    if (replicas > 1) workers = await ReplicaWorkers.start(resolved, tf.getBackend());
    let averaged: { lr: number; grads: Float32Array; stats: Float32Array } | undefined;
    for (let step = 0; step < steps; step++) {
      options.signal?.throwIfAborted();
      const lr = learningRateAt(step, steps, learningRate);
      let value: number;
      if (workers === undefined) {
        value = local.computeGradients(step) as number;
        local.apply(lr);
      } else {
        // The workers apply the previous step's average and start this step's shards; this thread does
        // its own shard meanwhile, then waits for theirs.
        const remote = workers.step(step, averaged);
        const mine = local.computeGradients(step) as ShardResult;
        const shards = [mine, ...(await remote)];
        averaged = { lr, grads: averageInOrder(shards.map((s) => s.grads)), stats: averageInOrder(shards.map((s) => s.stats)) };
        local.apply(lr, averaged);
        value = shards.reduce((sum, s) => sum + s.loss, 0) / shards.length;
      }
      if (!Number.isFinite(value)) {
        throw new ConfigError(`training diverged at step ${step + 1} (loss ${value}); lower learningRate (${learningRate})`);
      }
      losses[step] = value;
      ema = 0.98 * ema + 0.02 * value;
      const elapsedMs = performance.now() - started;
      options.onProgress?.({
        step: step + 1,
        steps,
        loss: value,
        smoothedLoss: ema / (1 - Math.pow(0.98, step + 1)),
        learningRate: lr,
        imagesPerSecond: ((step + 1) * batchSize * 1000) / elapsedMs,
        elapsedMs,
      });
    }
  } catch (error) {
    local.disposeOptimizer();
    local.model.dispose();
    throw error;
  } finally {
    await workers?.close();
  }
  local.disposeOptimizer();
  return { model: local.model, losses, config: resolved, wallMs: performance.now() - started, backend: tf.getBackend() };
}

/** The worker threads holding replicas 1 .. n-1. */
class ReplicaWorkers {
  private constructor(private readonly workers: Worker[]) {}

  static async start(config: ResolvedTrainConfig, backend: string): Promise<ReplicaWorkers> {
    const workers = Array.from(
      { length: config.replicas - 1 },
      (_, i) => new Worker(TS_WORKER_BOOT, { workerData: { entry: WORKER_ENTRY, config, index: i + 1, count: config.replicas, backend } }),
    );
    const set = new ReplicaWorkers(workers);
    try {
      await Promise.all(workers.map((w) => set.next(w, 'ready')));
    } catch (error) {
      await set.close();
      throw error;
    }
    return set;
  }

  /** The next message of type `type` from `worker`; rejects on an error message, a crash or an exit. */
  private next<T>(worker: Worker, type: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const onMessage = (m: { type: string; message?: string }): void => {
        done();
        if (m.type === type) resolve(m as T);
        else reject(new ConfigError(`training replica failed: ${m.message ?? m.type}`));
      };
      const onError = (err: Error): void => {
        done();
        reject(err);
      };
      const onExit = (code: number): void => {
        done();
        reject(new Error(`training replica worker exited with code ${code}`));
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  /** Sends step `step` (with the previous average to apply first) to every worker; resolves to their shards in order. */
  step(step: number, apply: { lr: number; grads: Float32Array; stats: Float32Array } | undefined): Promise<ShardResult[]> {
    const replies = this.workers.map((w) => this.next<ShardResult>(w, 'shard'));
    for (const w of this.workers) w.postMessage({ type: 'step', step, apply });
    return Promise.all(replies);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

const WORKER_ENTRY = new URL('./internal/replica-worker.ts', import.meta.url).href;
