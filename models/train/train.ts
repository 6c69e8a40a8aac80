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
import { ConfigError } from '../errors.ts';
import { buildGapNet, GAP_NET_PREPROCESS, gapNetLogits, resolveGapNetConfig, type GapNetConfig } from './architecture.ts';
import { registerTrainingGradients } from './gradients.ts';
import { fillBatch, resolveSceneConfig, type SceneConfig } from './scenes.ts';
import { registerWasmGradKernels } from './wasm-grad-kernels.ts';

export interface TrainConfig {
  /** Seed for weights and for the training scene stream. Default 1. */
  seed?: number;
  /** Optimizer steps. Default 3000. */
  steps?: number;
  /** Scenes per step. Default 64. */
  batchSize?: number;
  /** Adam learning rate at the start; decays along a half cosine to `learningRate * 0.02`. Default 0.003. */
  learningRate?: number;
  /** Network shape (its seed is overridden by `seed`). */
  net?: GapNetConfig;
  /** Scene generator settings; `size` is forced to the network's input size. */
  scene?: SceneConfig;
}

export const DEFAULT_TRAIN_CONFIG: Readonly<Required<Omit<TrainConfig, 'net' | 'scene'>>> = Object.freeze({
  seed: 1,
  steps: 3000,
  batchSize: 64,
  learningRate: 0.003,
});

export interface ResolvedTrainConfig {
  seed: number;
  steps: number;
  batchSize: number;
  learningRate: number;
  net: Required<GapNetConfig>;
  scene: Required<SceneConfig>;
}

/** Merges and validates; throws ConfigError naming the field, the value and the allowed range. */
export function resolveTrainConfig(config: TrainConfig = {}): ResolvedTrainConfig {
  const { seed, steps, batchSize, learningRate } = { ...DEFAULT_TRAIN_CONFIG, ...config };
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
  const net = resolveGapNetConfig({ ...config.net, seed });
  const scene = resolveSceneConfig({ ...config.scene, size: net.inputSize });
  return { seed, steps, batchSize, learningRate, net, scene };
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
 * Trains a fresh GAP network on generated scenes, preprocessed as GAP_NET_PREPROCESS says. Tensors created per step are freed per step; only the
 * model's weights (returned) and nothing else stay allocated.
 */
export async function trainGapNet(config: TrainConfig = {}, options: TrainOptions = {}): Promise<TrainResult> {
  const resolved = resolveTrainConfig(config);
  const { seed, steps, batchSize, learningRate, net, scene } = resolved;
  prepareTraining();
  const model = buildGapNet(net);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer = tf.train.adam(learningRate);
  const size = net.inputSize;
  const images = new Float32Array(batchSize * size * size * 3);
  const labels = new Int32Array(batchSize);
  const losses = new Float32Array(steps);
  const started = performance.now();
  let ema = 0;
  try {
    for (let step = 0; step < steps; step++) {
      options.signal?.throwIfAborted();
      fillBatch(seed, step * batchSize, batchSize, scene, images, labels, GAP_NET_PREPROCESS);
      const lr = learningRateAt(step, steps, learningRate);
      // Adam's learning rate is a plain field read at every applyGradients.
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      const loss = tf.tidy(() => {
        const x = tf.tensor4d(images, [batchSize, size, size, 3]);
        const y = tf.oneHot(tf.tensor1d(labels, 'int32'), net.numClasses);
        return optimizer.minimize(
          () => tf.losses.softmaxCrossEntropy(y, gapNetLogits(model, x)) as tf.Scalar,
          true,
          variables,
        ) as tf.Scalar;
      });
      const value = (await loss.data())[0];
      loss.dispose();
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
    optimizer.dispose();
    model.dispose();
    throw error;
  }
  optimizer.dispose();
  return { model, losses, config: resolved, wallMs: performance.now() - started, backend: tf.getBackend() };
}
