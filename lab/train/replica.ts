/**
 * One replica of the GAP network for synchronous data-parallel training. Every replica holds the same
 * weights and the same Adam state; each step, replica r computes the gradient of its own shard of the
 * batch (scenes `step * batchSize + r * shard ...`), the shards' gradients are averaged in replica order,
 * and every replica applies the same average. Identical inputs to identical float code on one backend keep
 * the replicas bit-identical, so the run stays seeded end to end for a given replica count.
 *
 * Batch normalization: each replica normalizes with its own shard's statistics (as multi-GPU training
 * does without synchronized batchnorm), and the moving mean and variance, which tfjs-layers updates during
 * the training forward pass, are averaged across replicas after each step. The update is linear in the
 * batch statistic, so the average equals one update with the mean of the shards' statistics.
 *
 * With one replica this is plain training: the gradient tensors are applied directly, never copied out.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildGapNet, GAP_NET_PREPROCESS, gapNetForward, mapAreaPenalty } from './architecture.ts';
import { fillMixedBatch } from './mix.ts';
import { NO_DIGIT } from '../../datasets/index.ts';
import type { ResolvedTrainConfig } from './train.ts';

/** What a replica sends for averaging: the shard's loss, its gradients and its moving statistics. */
export interface ShardResult {
  loss: number;
  /** Gradients of every trainable variable, concatenated in `model.trainableWeights` order. */
  grads: Float32Array;
  /** Values of every non-trainable weight (batchnorm moving statistics), concatenated. */
  stats: Float32Array;
}

export class Replica {
  readonly model: tfl.LayersModel;
  private readonly optimizer: tf.AdamOptimizer;
  private readonly variables: tf.Variable[];
  private readonly frozen: tf.Variable[];
  private readonly shard: number;
  private readonly images: Float32Array;
  private readonly labels: Int32Array;
  /** The map term's weight of each sample of the shard (`mapAreaBySource` of its source). */
  private readonly termWeights: Float32Array;
  /** Gradients of the last local step, kept as tensors when there is only one replica. */
  private pending: tf.NamedTensorMap | undefined;

  constructor(
    private readonly config: ResolvedTrainConfig,
    private readonly index: number,
    private readonly count: number,
  ) {
    this.shard = config.batchSize / count;
    this.model = buildGapNet(config.net);
    if (config.initialWeights) {
      const current = this.model.getWeights();
      if (config.initialWeights.length !== current.length || config.initialWeights.some((w, i) => w.length !== current[i].size)) {
        throw new Error('initialWeights do not fit the network: another architecture');
      }
      const tensors = config.initialWeights.map((w, i) => tf.tensor(w, current[i].shape));
      this.model.setWeights(tensors);
      tf.dispose(tensors);
    }
    this.variables = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.frozen = this.model.nonTrainableWeights.map((w) => w.read() as tf.Variable);
    this.optimizer = tf.train.adam(config.learningRate);
    const size = config.net.inputSize;
    this.images = new Float32Array(this.shard * size * size * 3);
    this.labels = new Int32Array(this.shard);
    this.termWeights = new Float32Array(this.shard);
  }

  /**
   * Forward and backward pass on this replica's shard of step `step`. With one replica the gradients stay
   * on the backend for `apply`; with more they are read back (flat) for averaging.
   */
  computeGradients(step: number): ShardResult | number {
    const { seed, batchSize, scene, net, mix, mapAreaWeight, mapAreaCap, mapAreaBySource } = this.config;
    const size = net.inputSize;
    const out = { images: this.images, labels: this.labels };
    const termWeights = this.termWeights;
    let k = 0;
    fillMixedBatch(mix, seed, step * batchSize + this.index * this.shard, this.shard, scene, out, GAP_NET_PREPROCESS, (origin) => {
      termWeights[k++] = mapAreaBySource[origin.source];
    });
    const { value, grads } = tf.tidy(() => {
      const x = tf.tensor4d(this.images, [this.shard, size, size, 3]);
      const y = tf.oneHot(tf.tensor1d(this.labels, 'int32'), net.numClasses);
      return tf.variableGrads(() => {
        const { features, kernel, logits } = gapNetForward(this.model, x);
        const ce = tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
        if (!(mapAreaWeight > 0)) return ce;
        // Only the digits have maps: the `no digit` column and any after it are left out of the term.
        const mappedTargets = tf.mul(y, tf.tensor2d([Array.from({ length: net.numClasses }, (_, c) => (c < NO_DIGIT ? 1 : 0))]));
        const term = mapAreaPenalty(features, kernel, mappedTargets as tf.Tensor2D, mapAreaCap, tf.tensor1d(termWeights));
        return tf.add(ce, tf.mul(mapAreaWeight, term)) as tf.Scalar;
      }, this.variables);
    });
    const loss = value.dataSync()[0];
    value.dispose();
    if (this.count === 1) {
      this.pending = grads;
      return loss;
    }
    const flat = new Float32Array(this.variables.reduce((s, v) => s + v.size, 0));
    let offset = 0;
    for (const v of this.variables) {
      const g = grads[v.name];
      flat.set(g.dataSync() as Float32Array, offset);
      offset += g.size;
    }
    tf.dispose(grads);
    return { loss, grads: flat, stats: this.readStats() };
  }

  /** Applies gradients at learning rate `lr`: the pending local ones (one replica) or an averaged set. */
  apply(lr: number, averaged?: { grads: Float32Array; stats: Float32Array }): void {
    // Adam's learning rate is a plain field read at every applyGradients.
    (this.optimizer as unknown as { learningRate: number }).learningRate = lr;
    if (averaged === undefined) {
      if (this.pending === undefined) throw new Error('apply() without gradients: call computeGradients() first');
      const pending = this.pending;
      this.optimizer.applyGradients(this.variables.map((v) => ({ name: v.name, tensor: pending[v.name] })));
      tf.dispose(pending);
      this.pending = undefined;
      return;
    }
    tf.tidy(() => {
      let offset = 0;
      const named = this.variables.map((v) => {
        const tensor = tf.tensor(averaged.grads.subarray(offset, offset + v.size), v.shape);
        offset += v.size;
        return { name: v.name, tensor };
      });
      this.optimizer.applyGradients(named);
    });
    let offset = 0;
    for (const v of this.frozen) {
      tf.tidy(() => v.assign(tf.tensor(averaged.stats.subarray(offset, offset + v.size), v.shape)));
      offset += v.size;
    }
  }

  private readStats(): Float32Array {
    const out = new Float32Array(this.frozen.reduce((s, v) => s + v.size, 0));
    let offset = 0;
    for (const v of this.frozen) {
      out.set(v.dataSync() as Float32Array, offset);
      offset += v.size;
    }
    return out;
  }

  /** Frees the optimizer state (and pending gradients); the model is the caller's. */
  disposeOptimizer(): void {
    if (this.pending) tf.dispose(this.pending);
    this.pending = undefined;
    this.optimizer.dispose();
  }
}

/** Mean of equal-length shard vectors, summed in replica order (so the result is deterministic). */
export function averageInOrder(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts[0].length);
  for (const p of parts) for (let i = 0; i < out.length; i++) out[i] += p[i];
  const n = parts.length;
  for (let i = 0; i < out.length; i++) out[i] /= n;
  return out;
}
