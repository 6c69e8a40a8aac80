/**
 * Sample sources for the evaluation: freshly generated scenes, or a dataset folder (decoded with sharp).
 */
import sharp from 'sharp';
import { ConfigError, InputError } from '../../common/index.ts';
import type { Box } from '../../models/index.ts';
import {
  CLASS_LABELS,
  generateMnistScene,
  generateScene,
  loadMnistDigits,
  MnistSampler,
  NO_DIGIT,
  resolveSceneConfig,
  type Dataset,
  type MnistRecipe,
  type SceneConfig,
} from '../../datasets/index.ts';
import type { EvalSample } from './evaluate.ts';

/** Scenes `0 .. n-1` of stream `seed` (the generator's default settings unless `scene` says otherwise). */
export function* generatedSamples(seed: number, n: number, scene: SceneConfig = {}): Generator<EvalSample> {
  const config = resolveSceneConfig(scene);
  for (let i = 0; i < n; i++) {
    const s = generateScene(seed, i, config);
    yield { frame: { data: s.rgb, width: s.width, height: s.height }, label: s.label, boxes: [s.box] };
  }
}

/**
 * Scenes `0 .. n-1` of the real-digit `recipe`, stream `seed`, drawn from one MNIST split (`split`, default
 * the test split; 'train' gives validation scenes from the part training draws on, for choosing settings
 * without the test split), with classes mapped to the model's by name. `no digit` scenes carry no box; for a model without a
 * `no digit` class their label is -1, which no answer matches (so accuracy is the share answered
 * `no digit`). `size` sets the side of webcam and textured scenes (default 100).
 * @throws ConfigError when the model lacks a digit class.
 */
export function* mnistSamples(
  recipe: MnistRecipe,
  seed: number,
  n: number,
  modelLabels: readonly string[],
  size = 100,
  split: 'train' | 'test' = 'test',
): Generator<EvalSample> {
  const sampler = new MnistSampler(loadMnistDigits(), split);
  const mapping = CLASS_LABELS.map((name, k) => {
    const index = modelLabels.indexOf(name);
    if (index < 0 && k !== NO_DIGIT) throw new ConfigError(`the model has no class '${name}' (its labels: ${modelLabels.slice(0, 12).join(', ')})`);
    return index;
  });
  for (let i = 0; i < n; i++) {
    const s = generateMnistScene(sampler, recipe, seed, i, { size });
    yield { frame: { data: s.rgb, width: s.width, height: s.height }, label: mapping[s.label], boxes: s.box ? [s.box] : undefined };
  }
}

/** Decodes an image file to packed RGB. */
export async function decodeRgb(path: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  try {
    const { data, info } = await sharp(path).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new InputError(`${path}: decoded to ${info.channels} channels, expected 3`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`${path}: cannot decode image (${(error as Error).message})`);
  }
}

/**
 * Maps each dataset class to the model's class index by label name.
 * @throws ConfigError naming a dataset class the model does not know.
 */
export function classMapping(datasetClasses: readonly string[], modelLabels: readonly string[]): number[] {
  return datasetClasses.map((name) => {
    const k = modelLabels.indexOf(name);
    if (k < 0) {
      throw new ConfigError(
        `dataset class '${name}' is not one of the model's labels (${modelLabels.slice(0, 12).join(', ')}${modelLabels.length > 12 ? ', ...' : ''})`,
      );
    }
    return k;
  });
}

/**
 * The items of `dataset` (optionally only one split, and at most `limit` of them, in file order) as
 * evaluation samples. Boxes from annotations are scaled when the image's real size differs from the
 * annotated size.
 */
export async function* datasetSamples(
  dataset: Dataset,
  modelLabels: readonly string[],
  options: { split?: 'train' | 'test'; limit?: number } = {},
): AsyncGenerator<EvalSample> {
  const mapping = classMapping(dataset.classes, modelLabels);
  let items = dataset.items;
  if (options.split !== undefined) items = items.filter((it) => it.split === options.split);
  if (options.limit !== undefined) items = items.slice(0, options.limit);
  for (const item of items) {
    const frame = await decodeRgb(item.path);
    let boxes: Box[] | undefined = item.boxes?.map((b) => [...b] as Box);
    if (boxes && item.width !== undefined && item.height !== undefined && (item.width !== frame.width || item.height !== frame.height)) {
      const sx = frame.width / item.width;
      const sy = frame.height / item.height;
      boxes = boxes.map(([x1, y1, x2, y2]) => [x1 * sx, y1 * sy, x2 * sx, y2 * sy]);
    }
    yield { frame, label: mapping[item.label], boxes };
  }
}
