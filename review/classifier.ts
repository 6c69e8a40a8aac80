/**
 * A linear classifier on GAP features, trained in TypeScript: multinomial logistic regression with an L2
 * penalty, the regularization strength picked on a validation split carved from the training images.
 *
 * ref: Zhou et al. 2016, sec. 4 ("we train a linear SVM on the GAP features ... the CAM is then computed
 * from the weights of the linear classifier"). A softmax classifier is used instead of one-vs-rest SVMs:
 * it is smooth (a plain accelerated gradient method converges), gives calibrated confidences for the
 * review's sort, and its weights play the same role in M_c = sum_k w_k^c f_k.
 *
 * Everything is deterministic: zero initial weights, a fixed number of iterations, a seeded split.
 */
import { ConfigError, InputError, mulberry32 } from '../common/index.ts';
import { type LinearHead } from '../models/index.ts';
import { shuffled } from './internal/shuffle.ts';

export interface ClassifierConfig {
  /** Candidate L2 strengths (lambda in `mean CE + lambda/2 * |W|^2`). Default 1e-4 ... 1 by decades. */
  lambdas?: readonly number[];
  /** Gradient steps per fit. Default 400. */
  iterations?: number;
  /** Share of each class's training images held out to choose lambda. Default 0.25. */
  validationFraction?: number;
  /** Seed of the validation split. Default 7. */
  seed?: number;
}

export const DEFAULT_CLASSIFIER_CONFIG = Object.freeze({
  lambdas: Object.freeze([1e-4, 1e-3, 1e-2, 1e-1, 1]) as readonly number[],
  iterations: 400,
  validationFraction: 0.25,
  seed: 7,
});

export type ResolvedClassifierConfig = Required<ClassifierConfig>;

/** Merges over the defaults and validates; throws ConfigError naming the field. */
export function resolveClassifierConfig(config: ClassifierConfig = {}): ResolvedClassifierConfig {
  const c = { ...DEFAULT_CLASSIFIER_CONFIG };
  for (const [k, v] of Object.entries(config)) if (v !== undefined) (c as Record<string, unknown>)[k] = v;
  if (!Array.isArray(c.lambdas) || c.lambdas.length === 0 || !c.lambdas.every((l) => typeof l === 'number' && l > 0 && Number.isFinite(l))) {
    throw new ConfigError(`lambdas must be a non-empty list of positive numbers, got ${JSON.stringify(c.lambdas)}`);
  }
  if (!Number.isInteger(c.iterations) || c.iterations < 1 || c.iterations > 100_000) {
    throw new ConfigError(`iterations must be an integer in [1, 100000], got ${String(c.iterations)}`);
  }
  if (typeof c.validationFraction !== 'number' || !(c.validationFraction > 0 && c.validationFraction < 1)) {
    throw new ConfigError(`validationFraction must be a number in (0, 1), got ${String(c.validationFraction)}`);
  }
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) throw new ConfigError(`seed must be a non-negative integer, got ${String(c.seed)}`);
  return c;
}

/** Training rows: one GAP vector per image and its class index. */
export interface TrainingSet {
  features: readonly Float32Array[];
  labels: readonly number[];
  numClasses: number;
}

export interface ClassifierFit {
  /** The head in the ORIGINAL feature space (standardization folded in), `[k, C]` row-major. */
  head: LinearHead;
  /** The chosen lambda. */
  lambda: number;
  /** How lambda was chosen: on the validation split, or the middle candidate when no split was possible. */
  chosenBy: 'validation' | 'default';
  /** Validation accuracy per candidate lambda (empty when chosenBy is 'default'). */
  validation: Array<{ lambda: number; accuracy: number; loss: number }>;
  /** Indices (into the training set) held out for validation. */
  validationIndices: number[];
  /** Accuracy of the final head on the whole training set. */
  trainAccuracy: number;
}

/**
 * Stratified split of indices into (fit, validation): per class, `round(n * fraction)` images, at least one
 * when the class has two or more and never all of them. Seeded and order-independent of the input order
 * beyond the indices themselves.
 */
export function stratifiedSplit(labels: readonly number[], fraction: number, seed: number): { first: number[]; second: number[] } {
  const random = mulberry32(seed);
  const byClass = new Map<number, number[]>();
  labels.forEach((l, i) => {
    const list = byClass.get(l) ?? [];
    list.push(i);
    byClass.set(l, list);
  });
  const first: number[] = [];
  const second: number[] = [];
  for (const cls of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = shuffled(byClass.get(cls)!, random);
    const take = idx.length < 2 ? 0 : Math.min(idx.length - 1, Math.max(1, Math.round(idx.length * fraction)));
    second.push(...idx.slice(0, take));
    first.push(...idx.slice(take));
  }
  return { first: first.sort((a, b) => a - b), second: second.sort((a, b) => a - b) };
}

interface Standardized {
  mean: Float64Array;
  std: Float64Array;
}

function standardization(rows: readonly Float32Array[], d: number): Standardized {
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (const r of rows) for (let k = 0; k < d; k++) mean[k] += r[k];
  for (let k = 0; k < d; k++) mean[k] /= rows.length;
  for (const r of rows) for (let k = 0; k < d; k++) std[k] += (r[k] - mean[k]) ** 2;
  // A constant feature gets unit scale: its standardized column is all zeros and its weight stays zero.
  for (let k = 0; k < d; k++) std[k] = Math.sqrt(std[k] / rows.length) || 1;
  return { mean, std };
}

/** Largest eigenvalue of [Z 1]^T [Z 1] / N by power iteration (deterministic start). */
function gramNorm(z: Float64Array[], d: number): number {
  let v = new Float64Array(d + 1).fill(1 / Math.sqrt(d + 1));
  let lambda = 1;
  for (let it = 0; it < 60; it++) {
    const next = new Float64Array(d + 1);
    for (const row of z) {
      let dot = v[d];
      for (let k = 0; k < d; k++) dot += row[k] * v[k];
      for (let k = 0; k < d; k++) next[k] += row[k] * dot;
      next[d] += dot;
    }
    let norm = 0;
    for (let k = 0; k <= d; k++) norm += (next[k] /= z.length) ** 2;
    norm = Math.sqrt(norm);
    if (!(norm > 0)) return 1;
    lambda = norm;
    for (let k = 0; k <= d; k++) next[k] /= norm;
    v = next;
  }
  return lambda;
}

interface RawModel {
  /** `[d, C]` row-major, on standardized features. */
  w: Float64Array;
  b: Float64Array;
}

/** Softmax probabilities of one standardized row into `out`; returns the log-sum-exp. */
function softmaxRow(row: Float64Array, m: RawModel, d: number, C: number, out: Float64Array): number {
  for (let c = 0; c < C; c++) out[c] = m.b[c];
  for (let k = 0; k < d; k++) {
    const x = row[k];
    if (x === 0) continue;
    const base = k * C;
    for (let c = 0; c < C; c++) out[c] += x * m.w[base + c];
  }
  let max = -Infinity;
  for (let c = 0; c < C; c++) if (out[c] > max) max = out[c];
  let sum = 0;
  for (let c = 0; c < C; c++) sum += out[c] = Math.exp(out[c] - max);
  for (let c = 0; c < C; c++) out[c] /= sum;
  return max + Math.log(sum);
}

/**
 * Minimizes `mean_i CE(softmax(W^T z_i + b), y_i) + lambda/2 |W|^2` by Nesterov's accelerated gradient with
 * step 1/L, where L = |[Z 1]|^2 / (2N) + lambda bounds the Hessian (Böhning's bound on the softmax
 * curvature, 1/2 (I - 11^T/C), times the Gram matrix). The bias is not penalized.
 */
function fitRaw(z: Float64Array[], y: readonly number[], d: number, C: number, lambda: number, iterations: number, gram: number): RawModel {
  const n = z.length;
  const step = 1 / (0.5 * gram + lambda);
  let x: RawModel = { w: new Float64Array(d * C), b: new Float64Array(C) };
  let prev: RawModel = { w: new Float64Array(d * C), b: new Float64Array(C) };
  const look: RawModel = { w: new Float64Array(d * C), b: new Float64Array(C) };
  const gw = new Float64Array(d * C);
  const gb = new Float64Array(C);
  const p = new Float64Array(C);
  let t = 1;
  for (let it = 0; it < iterations; it++) {
    const tNext = (1 + Math.sqrt(1 + 4 * t * t)) / 2;
    const beta = (t - 1) / tNext;
    for (let i = 0; i < d * C; i++) look.w[i] = x.w[i] + beta * (x.w[i] - prev.w[i]);
    for (let c = 0; c < C; c++) look.b[c] = x.b[c] + beta * (x.b[c] - prev.b[c]);
    gw.fill(0);
    gb.fill(0);
    for (let i = 0; i < n; i++) {
      const row = z[i];
      softmaxRow(row, look, d, C, p);
      p[y[i]] -= 1;
      for (let c = 0; c < C; c++) gb[c] += p[c];
      for (let k = 0; k < d; k++) {
        const v = row[k];
        if (v === 0) continue;
        const base = k * C;
        for (let c = 0; c < C; c++) gw[base + c] += v * p[c];
      }
    }
    const next: RawModel = { w: prev.w, b: prev.b }; // reuse the oldest buffers
    for (let i = 0; i < d * C; i++) next.w[i] = look.w[i] - step * (gw[i] / n + lambda * look.w[i]);
    for (let c = 0; c < C; c++) next.b[c] = look.b[c] - step * (gb[c] / n);
    prev = x;
    x = next;
    t = tNext;
  }
  return x;
}

function evaluateRaw(z: Float64Array[], y: readonly number[], m: RawModel, d: number, C: number): { accuracy: number; loss: number } {
  const p = new Float64Array(C);
  let correct = 0;
  let loss = 0;
  for (let i = 0; i < z.length; i++) {
    softmaxRow(z[i], m, d, C, p);
    let best = 0;
    for (let c = 1; c < C; c++) if (p[c] > p[best]) best = c;
    if (best === y[i]) correct++;
    loss -= Math.log(Math.max(p[y[i]], 1e-300));
  }
  return { accuracy: z.length ? correct / z.length : 0, loss: z.length ? loss / z.length : 0 };
}

function checkTrainingSet(set: TrainingSet): number {
  const { features, labels, numClasses } = set;
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new InputError(`a classifier needs at least 2 classes, got ${numClasses}`);
  if (features.length === 0) throw new InputError('no training images: every image failed or none is in the train split');
  if (features.length !== labels.length) throw new InputError(`${features.length} feature rows but ${labels.length} labels`);
  const d = features[0].length;
  features.forEach((f, i) => {
    if (f.length !== d) throw new InputError(`feature row ${i} has length ${f.length}, expected ${d}`);
    for (let k = 0; k < d; k++) if (!Number.isFinite(f[k])) throw new InputError(`feature row ${i} has a non-finite value at ${k}`);
  });
  labels.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= numClasses) throw new InputError(`label ${i} is ${l}, expected an integer in [0, ${numClasses})`);
  });
  return d;
}

/**
 * Fits the classifier: picks lambda on a stratified validation split of `set` (highest accuracy, ties to
 * the lower validation loss, then the larger lambda), then refits on all of `set` with it. The returned
 * head works on raw GAP vectors: logits = f . W + b, so `model.withHead(head)` gives CAMs whose spatial
 * mean plus the bias is the classifier's logit (ref: Zhou et al. 2016, sec. 2 and 4).
 */
export function fitLinearClassifier(set: TrainingSet, labels: readonly string[], config: ClassifierConfig = {}): ClassifierFit {
  const c = resolveClassifierConfig(config);
  const d = checkTrainingSet(set);
  const C = set.numClasses;
  const { mean, std } = standardization(set.features, d);
  const z = set.features.map((f) => {
    const row = new Float64Array(d);
    for (let k = 0; k < d; k++) row[k] = (f[k] - mean[k]) / std[k];
    return row;
  });
  const { first, second } = stratifiedSplit(set.labels, c.validationFraction, c.seed);
  const validation: ClassifierFit['validation'] = [];
  let lambda = c.lambdas[Math.floor(c.lambdas.length / 2)];
  let chosenBy: ClassifierFit['chosenBy'] = 'default';
  const fitClasses = new Set(first.map((i) => set.labels[i]));
  if (second.length > 0 && fitClasses.size >= 2) {
    const zf = first.map((i) => z[i]);
    const yf = first.map((i) => set.labels[i]);
    const zv = second.map((i) => z[i]);
    const yv = second.map((i) => set.labels[i]);
    const gram = gramNorm(zf, d);
    let best: { lambda: number; accuracy: number; loss: number } | undefined;
    for (const l of c.lambdas) {
      const score = { lambda: l, ...evaluateRaw(zv, yv, fitRaw(zf, yf, d, C, l, c.iterations, gram), d, C) };
      validation.push(score);
      if (!best || score.accuracy > best.accuracy || (score.accuracy === best.accuracy && (score.loss < best.loss || (score.loss === best.loss && l > best.lambda)))) {
        best = score;
      }
    }
    lambda = best!.lambda;
    chosenBy = 'validation';
  }
  const raw = fitRaw(z, set.labels, d, C, lambda, c.iterations, gramNorm(z, d));
  const trainAccuracy = evaluateRaw(z, set.labels, raw, d, C).accuracy;
  // Fold the standardization into the head: w'_kc = w_kc / s_k, b'_c = b_c - sum_k w_kc m_k / s_k.
  const weights = new Float32Array(d * C);
  const bias = new Float32Array(C);
  for (let cls = 0; cls < C; cls++) {
    let shift = raw.b[cls];
    for (let k = 0; k < d; k++) {
      const w = raw.w[k * C + cls] / std[k];
      weights[k * C + cls] = w;
      shift -= w * mean[k];
    }
    bias[cls] = shift;
  }
  return { head: { weights, bias, labels: [...labels] }, lambda, chosenBy, validation, validationIndices: second, trainAccuracy };
}

/** Logits of one raw GAP vector under a head: f . W + b (float64 accumulation). */
export function headLogits(head: LinearHead, features: Float32Array): Float64Array {
  const C = head.bias.length;
  const d = features.length;
  if (head.weights.length !== d * C) throw new InputError(`head weights have ${head.weights.length} values, expected ${d} x ${C}`);
  const out = new Float64Array(C);
  for (let c = 0; c < C; c++) out[c] = head.bias[c];
  for (let k = 0; k < d; k++) for (let c = 0; c < C; c++) out[c] += features[k] * head.weights[k * C + c];
  return out;
}
