/**
 * Writing generated scenes to disk as a dataset, in the Stanford 40 layout or one folder per class,
 * JPEG-encoded with sharp. The whole dataset is written into a temporary folder beside `out` and renamed
 * at the end, so an interrupted run never leaves a folder that looks complete.
 */
import sharp from 'sharp';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError, stripUndefined } from '../common/index.ts';
import { DIGIT_LABELS, generateScene, resolveSceneConfig, type SceneConfig } from './scenes.ts';
import { loadMnistDigits, MnistSampler, MNIST_SPLITS, type MnistSplit } from './mnist.ts';
import { generateMnistScene, MNIST_RECIPES, NO_DIGIT_LABEL, type MnistRecipe } from './mnist-scenes.ts';
import { actionsTxt, annotationXml, stanford40Paths } from './stanford40.ts';
import { DATASET_LAYOUTS, type DatasetLayout } from './names.ts';
import { SCENE_SOURCES, type SceneSource } from './names.ts';

export { DATASET_LAYOUTS, type DatasetLayout };

/** Where the scenes come from: the procedural generator (scenes.ts) or real MNIST digits (mnist-scenes.ts). */
export { SCENE_SOURCES, type SceneSource };

export interface WriteDatasetConfig {
  layout?: DatasetLayout;
  /** Number of images. Default 400. */
  n?: number;
  /** Scene stream seed. Default 7. */
  seed?: number;
  /** Image side in pixels. Default 112 (the generator draws at any size). */
  size?: number;
  /** Share of each class's images listed in `<class>_train.txt` (Stanford 40 only). Default 0.5. */
  trainFraction?: number;
  /** JPEG quality 1-100. Default 92. */
  quality?: number;
  /** Other scene settings (size comes from `size`). */
  scene?: SceneConfig;
  /** Scene source. Default 'procedural'. */
  source?: SceneSource;
  /** Real-digit recipe (source 'mnist'). Default 'dm100'. dm100 and stn60 have their own canvas size; `size` sets the others'. */
  recipe?: MnistRecipe;
  /** MNIST split the digits come from (source 'mnist'). Default 'test'. */
  split?: MnistSplit;
}

export const DEFAULT_WRITE_DATASET_CONFIG = Object.freeze({
  layout: 'stanford40' as DatasetLayout,
  n: 400,
  seed: 7,
  size: 112,
  trainFraction: 0.5,
  quality: 92,
  source: 'procedural' as SceneSource,
  recipe: 'dm100' as MnistRecipe,
  split: 'test' as MnistSplit,
});

export type ResolvedWriteDatasetConfig = Required<Omit<WriteDatasetConfig, 'scene'>> & { scene: Required<SceneConfig> };

/** Merges and validates; throws ConfigError naming the field, the value and the allowed range. */
export function resolveWriteDatasetConfig(config: WriteDatasetConfig = {}): ResolvedWriteDatasetConfig {
  const c = { ...DEFAULT_WRITE_DATASET_CONFIG, ...stripUndefined(config) };
  if (!DATASET_LAYOUTS.includes(c.layout)) {
    throw new ConfigError(`layout must be one of ${DATASET_LAYOUTS.join(', ')}, got '${String(c.layout)}'`);
  }
  if (!Number.isInteger(c.n) || c.n < 1 || c.n > 1_000_000) throw new ConfigError(`n must be an integer in [1, 1000000], got ${c.n}`);
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) throw new ConfigError(`seed must be a non-negative integer, got ${c.seed}`);
  if (!(c.trainFraction >= 0 && c.trainFraction <= 1)) throw new ConfigError(`trainFraction must be in [0, 1], got ${c.trainFraction}`);
  if (!Number.isInteger(c.quality) || c.quality < 1 || c.quality > 100) throw new ConfigError(`quality must be an integer in [1, 100], got ${c.quality}`);
  if (!SCENE_SOURCES.includes(c.source)) throw new ConfigError(`source must be one of ${SCENE_SOURCES.join(', ')}, got '${String(c.source)}'`);
  if (!MNIST_RECIPES.includes(c.recipe)) throw new ConfigError(`recipe must be one of ${MNIST_RECIPES.join(', ')}, got '${String(c.recipe)}'`);
  if (!MNIST_SPLITS.includes(c.split)) throw new ConfigError(`split must be one of ${MNIST_SPLITS.join(', ')}, got '${String(c.split)}'`);
  const scene = resolveSceneConfig({ ...config.scene, size: c.size });
  return { ...c, scene };
}

export interface WriteDatasetResult {
  out: string;
  layout: DatasetLayout;
  n: number;
  classes: string[];
  /** Images per class, in class order. */
  counts: number[];
}

/**
 * Generates `n` scenes of stream `seed` and writes them to `out` (which must not exist). `onProgress` is
 * called after each image with (done, total).
 */
export async function writeGeneratedDataset(
  out: string,
  config: WriteDatasetConfig = {},
  onProgress?: (done: number, total: number) => void,
): Promise<WriteDatasetResult> {
  const c = resolveWriteDatasetConfig(config);
  const target = resolve(out);
  if (existsSync(target)) throw new ConfigError(`output folder ${target} already exists; choose another --out or remove it`);
  await mkdir(dirname(target), { recursive: true });
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  await rm(tmp, { recursive: true, force: true });
  const { classes, scene: sceneAt } = sceneSource(c);
  const counts = classes.map(() => 0);
  // Per class: the file ids in generation order (for the split files).
  const perClass: string[][] = classes.map(() => []);
  const paths = stanford40Paths(tmp);
  if (c.layout === 'stanford40') {
    for (const p of Object.values(paths)) await mkdir(p, { recursive: true });
  } else {
    for (const name of classes) await mkdir(join(tmp, name), { recursive: true });
  }
  try {
    // A few encodes in flight: sharp runs them on libuv's thread pool while the next scenes are drawn.
    const inFlight = 4;
    for (let start = 0; start < c.n; start += inFlight) {
      const jobs: Promise<void>[] = [];
      for (let i = start; i < Math.min(c.n, start + inFlight); i++) {
        const scene = sceneAt(i);
        const name = classes[scene.label];
        counts[scene.label]++;
        const jpeg = sharp(scene.rgb, { raw: { width: scene.width, height: scene.height, channels: 3 } }).jpeg({ quality: c.quality });
        if (c.layout === 'stanford40') {
          const id = `${name.replace(/ /g, '_')}_${String(counts[scene.label]).padStart(3, '0')}`;
          perClass[scene.label].push(`${id}.jpg`);
          const xml = annotationXml({ filename: `${id}.jpg`, width: scene.width, height: scene.height, action: name, box: scene.box });
          jobs.push(jpeg.toFile(join(paths.images, `${id}.jpg`)).then(() => writeFile(join(paths.annotations, `${id}.xml`), xml)));
        } else {
          jobs.push(jpeg.toFile(join(tmp, name, `${String(i).padStart(6, '0')}.jpg`)).then(() => undefined));
        }
      }
      await Promise.all(jobs);
      onProgress?.(Math.min(c.n, start + inFlight), c.n);
    }
    if (c.layout === 'stanford40') {
      const train: string[] = [];
      const test: string[] = [];
      for (const [k, name] of classes.entries()) {
        const files = perClass[k];
        const cut = Math.round(files.length * c.trainFraction);
        await writeFile(join(paths.splits, `${name}_train.txt`), lines(files.slice(0, cut)));
        await writeFile(join(paths.splits, `${name}_test.txt`), lines(files.slice(cut)));
        train.push(...files.slice(0, cut));
        test.push(...files.slice(cut));
      }
      await writeFile(join(paths.splits, 'train.txt'), lines(train));
      await writeFile(join(paths.splits, 'test.txt'), lines(test));
      await writeFile(join(paths.splits, 'actions.txt'), actionsTxt(classes.map((name, k) => [name, counts[k]])));
    }
    await rename(tmp, target);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
  return { out: target, layout: c.layout, n: c.n, classes, counts };
}

/** One scene to write: RGB bytes, class index into the dataset's classes, true box. */
interface WritableScene {
  rgb: Uint8Array;
  width: number;
  height: number;
  label: number;
  box: [number, number, number, number];
}

/**
 * The dataset's classes and its scene `i`: procedural scenes, or real-digit scenes of the chosen recipe
 * and split (recipe 'none' has the single class `no digit`; in the Stanford 40 layout, which needs a box
 * per image, its images carry the whole frame as their box).
 */
function sceneSource(c: ResolvedWriteDatasetConfig): { classes: string[]; scene: (i: number) => WritableScene } {
  if (c.source === 'procedural') return { classes: [...DIGIT_LABELS], scene: (i) => generateScene(c.seed, i, c.scene) };
  const sampler = new MnistSampler(loadMnistDigits(), c.split);
  const none = c.recipe === 'none';
  return {
    classes: none ? [NO_DIGIT_LABEL] : [...DIGIT_LABELS],
    scene: (i) => {
      const s = generateMnistScene(sampler, c.recipe, c.seed, i, { size: c.size });
      return { ...s, label: none ? 0 : s.label, box: s.box ?? [0, 0, s.width, s.height] };
    },
  };
}

function lines(items: readonly string[]): string {
  return items.length === 0 ? '' : `${items.join('\n')}\n`;
}
