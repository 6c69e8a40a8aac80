/**
 * The training data mix: each training sample comes from one source, the procedural scenes of
 * datasets/scenes.ts or a real-digit recipe of datasets/mnist-scenes.ts, chosen per sample index by
 * seeded weights. Real digits come from the MNIST train split only: the sampler here is built for
 * 'train' and nothing lets a caller pass another split, so a test digit never reaches the trainer.
 */
import { ConfigError, createRng } from '../../common/index.ts';
import {
  fillMnistSample,
  generateScene,
  loadMnistDigits,
  MnistSampler,
  NO_DIGIT,
  type MnistRecipe,
  type SceneConfig,
} from '../../datasets/index.ts';

/** A source of training samples. */
export type TrainSource = 'procedural' | MnistRecipe;
export const TRAIN_SOURCES: readonly TrainSource[] = ['procedural', 'dm100', 'stn60', 'webcam', 'none'];

/** Relative weight of each source (missing: 0). */
export type TrainMix = Partial<Record<TrainSource, number>>;

/** The default mix: procedural scenes only (10 classes). */
export const DEFAULT_TRAIN_MIX: Readonly<TrainMix> = Object.freeze({ procedural: 1 });

/**
 * A weight per source, validated (finite, >= 0, known source names); missing sources get `fallback`.
 * @throws ConfigError naming `what` and the bad entry.
 */
export function resolveSourceWeights(weights: Partial<Record<string, number>>, what: string, fallback: number): Record<TrainSource, number> {
  const out = Object.fromEntries(TRAIN_SOURCES.map((s) => [s, fallback])) as Record<TrainSource, number>;
  for (const [name, weight] of Object.entries(weights)) {
    if (!TRAIN_SOURCES.includes(name as TrainSource)) throw new ConfigError(`${what} source must be one of ${TRAIN_SOURCES.join(', ')}, got '${name}'`);
    if (!(typeof weight === 'number' && weight >= 0 && Number.isFinite(weight))) throw new ConfigError(`${what}.${name} must be a weight >= 0, got ${String(weight)}`);
    out[name as TrainSource] = weight;
  }
  return out;
}

/**
 * Validates a mix against the network's class count; returns it with every source present.
 * @throws ConfigError naming a bad weight, or 'none' without an 11th class.
 */
export function resolveTrainMix(mix: TrainMix, numClasses: number): Record<TrainSource, number> {
  const out = resolveSourceWeights(mix, 'mix', 0);
  if (TRAIN_SOURCES.every((s) => out[s] === 0)) throw new ConfigError(`mix needs a source with a positive weight, got ${JSON.stringify(mix)}`);
  if (out.none > 0 && numClasses <= NO_DIGIT) throw new ConfigError(`mix.none needs an 11th class ('no digit'): numClasses is ${numClasses}`);
  return out;
}

let sampler: MnistSampler | undefined;
/** The MNIST train-split sampler every training batch draws from (loaded once per thread). */
function trainSampler(): MnistSampler {
  sampler ??= new MnistSampler(loadMnistDigits(), 'train');
  return sampler;
}

/** The source of training sample `index` of stream `seed`. */
export function sourceOf(mix: Record<TrainSource, number>, seed: number, index: number): TrainSource {
  const total = TRAIN_SOURCES.reduce((s, k) => s + mix[k], 0);
  let u = createRng(seed, index, 0x5a3c).next() * total;
  for (const s of TRAIN_SOURCES) {
    if (u < mix[s]) return s;
    u -= mix[s];
  }
  return TRAIN_SOURCES.filter((s) => mix[s] > 0).at(-1)!;
}

/** Where a training sample came from (for tests): its source, class, and the MNIST digits it used. */
export interface SampleOrigin {
  source: TrainSource;
  label: number;
  mnist: Array<{ label: number; index: number }>;
}

/**
 * Fills a training batch with samples `start .. start + count - 1` of stream `seed`: `images` gets
 * float32 NHWC at `scene.size` (each value `(pixel * scale - mean) / std`), `labels` the classes (10 is
 * `no digit`). Real-digit scenes are resized to the network's input with the engines' bilinear rule.
 * `onSample` sees each sample's origin.
 */
export function fillMixedBatch(
  mix: Record<TrainSource, number>,
  seed: number,
  start: number,
  count: number,
  scene: Required<SceneConfig>,
  out: { images: Float32Array; labels: Int32Array },
  normalize: { scale: number; mean: readonly number[]; std: readonly number[] },
  onSample?: (origin: SampleOrigin) => void,
): void {
  const size = scene.size;
  const n = size * size * 3;
  if (out.images.length < count * n || out.labels.length < count) throw new ConfigError(`batch buffers too small for ${count} scenes of ${n} values`);
  for (let k = 0; k < count; k++) {
    const index = start + k;
    const source = sourceOf(mix, seed, index);
    if (source === 'procedural') {
      const s = generateScene(seed, index, scene);
      const { scale, mean, std } = normalize;
      for (let j = 0; j < n; j += 3) {
        for (let c = 0; c < 3; c++) out.images[k * n + j + c] = (s.rgb[j + c] * scale - mean[c]) / std[c];
      }
      out.labels[k] = s.label;
      onSample?.({ source, label: s.label, mnist: [] });
    } else {
      const s = fillMnistSample(trainSampler(), source, seed, index, size, out.images, k * n, normalize);
      out.labels[k] = s.label;
      onSample?.({ source, label: s.label, mnist: s.sources });
    }
  }
}
