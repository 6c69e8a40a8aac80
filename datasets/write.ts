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
import { actionsTxt, annotationXml, stanford40Paths } from './stanford40.ts';

export type DatasetLayout = 'stanford40' | 'folders';
export const DATASET_LAYOUTS: readonly DatasetLayout[] = ['stanford40', 'folders'];

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
}

export const DEFAULT_WRITE_DATASET_CONFIG = Object.freeze({
  layout: 'stanford40' as DatasetLayout,
  n: 400,
  seed: 7,
  size: 112,
  trainFraction: 0.5,
  quality: 92,
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
  const classes = [...DIGIT_LABELS];
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
        const scene = generateScene(c.seed, i, c.scene);
        const name = classes[scene.label];
        counts[scene.label]++;
        const jpeg = sharp(scene.rgb, { raw: { width: scene.width, height: scene.height, channels: 3 } }).jpeg({ quality: c.quality });
        if (c.layout === 'stanford40') {
          const id = `${name}_${String(counts[scene.label]).padStart(3, '0')}`;
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

function lines(items: readonly string[]): string {
  return items.length === 0 ? '' : `${items.join('\n')}\n`;
}
