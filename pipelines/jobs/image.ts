/**
 * `camstream image`: infer + CAM + localize on still images, optionally writing an overlay per image.
 * No smoothing (there is no time axis). Images go through the engine one at a time: they differ in size,
 * and a CLI run over a few files gains nothing from batching.
 */
import { basename, extname, join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import {
  CamstreamError,
  ConfigError,
  normalizeMap,
  normalizationRecord,
  type Box,
  type CamModel,
  type CamResult,
  type FrameGeometry,
  type NormalizeMode,
} from '../../models/index.ts';
import { resolveClassRefs, type ClassRef } from './classes.ts';
import { mapPng16, npyBytes } from './image-maps.ts';
import { writeFileAtomic } from '../sinks/manifest.ts';
import { readImageFrame } from '../sources/image-file.ts';
import { boxPixels, frameGeometry, localize, mapAt, resolveLocalizeConfig, type LocalizeConfig } from '../stages/localize.ts';
import { resolveOverlayConfig, writeOverlayFile, type OverlayConfig } from '../render/index.ts';

/** Classes per image when `topK` is not given: 5, or every class of a model with fewer. */
export const DEFAULT_IMAGE_TOP_K = 5;

export interface ImageJobConfig extends LocalizeConfig {
  /**
   * Classes per image, best first, from 1 to the model's class count. Default `DEFAULT_IMAGE_TOP_K` (5),
   * clamped to the class count.
   */
  topK?: number;
  /** Largest image decoded, in pixels (width x height); larger ones are refused from their header. Default 64 000 000. */
  maxPixels?: number;
  /** Classes to map instead of the top-k: indices, or labels (exact, ignoring case). One overlay per class. */
  classes?: readonly ClassRef[];
  /** Folder for overlay images; none are written when unset. */
  outDir?: string;
  /** Folder for each entry's raw map (`<name>.c<index>.npy`, float32) and 16-bit PNG at image size; none when unset. */
  mapsDir?: string;
  /** How the drawn map is scaled to [0, 1]: `minmax` (default) or `prob`. */
  normalize?: Exclude<NormalizeMode, 'fixed'>;
  overlay?: OverlayConfig;
}

export interface ImageTopEntry {
  index: number;
  label: string;
  /** Softmax probability in [0, 1]. */
  score: number;
  /** The raw class logit. */
  logit: number;
  /**
   * CAM box in original image pixels `[x1, y1, x2, y2]`, whole pixels (edges rounded to the nearest pixel
   * boundary), or null when the map holds no positive evidence.
   */
  box: Box | null;
  /** This class's overlay, when one was written for it. */
  overlay?: string;
  /** With `mapsDir`: the raw map's `.npy`, its 16-bit PNG, and the map itself (rows of raw M_c values). */
  npy?: string;
  png?: string;
  map?: number[][];
}

/** A file `annotateImages` could not read, when the caller asked to go on past such files. */
export interface ImageFailure {
  file: string;
  error: CamstreamError;
}

export interface ImageRecord {
  file: string;
  width: number;
  height: number;
  engine: string;
  backend: string;
  threads: number;
  /** The model's input normalization and resize filter, so a record says how its pixels were fed. */
  normalization: ReturnType<typeof normalizationRecord>;
  /** Best first (by score), whether from the top-k or from `classes`. */
  top: ImageTopEntry[];
  /**
   * The class the overlay shows (its map and box): the best one, `top[0]`. The same field as the video
   * JSONL's, where hysteresis may hold a class below the best.
   */
  shown: { index: number; label: string };
  /** Overlay written for this image (the first class's, when there is one per class), when an output folder was given. */
  overlay?: string;
  /** Milliseconds spent in the engine (preprocess + forward + CAM + read-back). */
  inferMs: number;
}

/** Output name for an image's overlay: `<name>.cam<ext>`, PNG when the input format cannot be written. */
export function overlayName(file: string): string {
  return `${basename(file, extname(file))}.cam${overlayExt(file)}`;
}

function overlayExt(file: string): string {
  const ext = extname(file).toLowerCase();
  return ['.jpg', '.jpeg', '.png', '.webp'].includes(ext) ? ext : '.png';
}

/**
 * Runs every file through the model in order, calling `onRecord` as each finishes, and returns the records.
 * A file that cannot be read (bad input, code `INPUT`) stops the run, unless `onFailure` is given: then it
 * is reported there and the run goes on with the next file.
 */
export async function annotateImages(
  files: readonly string[],
  model: CamModel,
  config: ImageJobConfig = {},
  onRecord?: (record: ImageRecord) => void,
  onFailure?: (failure: ImageFailure) => void,
): Promise<ImageRecord[]> {
  const { info } = model;
  const topK = config.topK ?? Math.min(DEFAULT_IMAGE_TOP_K, info.numClasses);
  if (!Number.isInteger(topK) || topK < 1 || topK > info.numClasses) {
    throw new ConfigError(`top must be a whole number in [1, ${info.numClasses}], got ${String(topK)}`);
  }
  const normalize = config.normalize ?? 'minmax';
  if (normalize !== 'minmax' && normalize !== 'prob') {
    throw new ConfigError(`normalize must be minmax or prob, got ${JSON.stringify(normalize)}`);
  }
  const classes = config.classes ? resolveClassRefs(config.classes, info.labels, info.numClasses) : undefined;
  const localizeConfig = resolveLocalizeConfig(config);
  const overlayConfig = resolveOverlayConfig(config.overlay);
  if (config.outDir) await mkdir(config.outDir, { recursive: true });
  if (config.mapsDir) await mkdir(config.mapsDir, { recursive: true });
  const stems = new Set<string>();
  const records: ImageRecord[] = [];
  for (const file of files) {
    let frame;
    try {
      frame = await readImageFrame(file, { maxPixels: config.maxPixels });
    } catch (error) {
      if (!onFailure || !(error instanceof CamstreamError) || error.code !== 'INPUT') throw error;
      onFailure({ file, error });
      continue;
    }
    const started = performance.now();
    const [result] = await model.infer([frame], { topK, classes });
    const inferMs = performance.now() - started;
    const geometry = frameGeometry(frame.width, frame.height, info.preprocess);
    const boxes = localize(result, geometry, localizeConfig);
    // Best first: the engine's top-k already is; requested classes come in the order they were asked.
    const order = Array.from(result.ids, (_, i) => i).sort((a, b) => result.probabilities[b] - result.probabilities[a]);
    const top: ImageTopEntry[] = order.map((i) => {
      const box = boxes[i];
      return {
        index: result.ids[i],
        label: info.labels[result.ids[i]] ?? `class_${result.ids[i]}`,
        score: result.probabilities[i],
        logit: result.scores[i],
        box: box ? boxPixels(box) : null,
      };
    });
    const record: ImageRecord = {
      file,
      width: frame.width,
      height: frame.height,
      engine: info.engine,
      backend: info.backend,
      threads: info.threads,
      normalization: normalizationRecord(info.preprocess),
      top,
      shown: { index: top[0].index, label: top[0].label },
      inferMs,
    };
    const stem = uniqueStem(file, stems);
    const out = { stem, ext: overlayExt(file), perClass: classes !== undefined };
    if (config.outDir && top.length > 0) {
      await writeOverlays(config.outDir, out, { ...overlayConfig, image: frame, geometry }, result, order, top, normalize);
      record.overlay = top.find((t) => t.overlay)?.overlay;
    }
    if (config.mapsDir) await writeMaps(config.mapsDir, stem, result, order, top, geometry);
    records.push(record);
    onRecord?.(record);
  }
  return records;
}

/** The file's base name, with `.2`, `.3`... when an earlier input of this run had the same one. */
function uniqueStem(file: string, taken: Set<string>): string {
  const stem = basename(file, extname(file));
  let name = stem;
  for (let n = 2; taken.has(name); n++) name = `${stem}.${n}`;
  taken.add(name);
  return name;
}

type OverlayBase = Omit<Parameters<typeof writeOverlayFile>[1], 'map' | 'mapSize' | 'boxes' | 'topLabels'>;

/**
 * One overlay of the best class (`<stem>.cam<ext>`), or with requested classes one per class
 * (`<stem>.c<index>.cam<ext>`); each shows that class's map and box and the sorted top-k panel.
 */
async function writeOverlays(
  dir: string,
  name: { stem: string; ext: string; perClass: boolean },
  base: OverlayBase,
  result: CamResult,
  order: number[],
  top: ImageTopEntry[],
  normalize: 'minmax' | 'prob',
): Promise<void> {
  const drawn = name.perClass ? top.length : 1;
  for (let j = 0; j < drawn; j++) {
    const entry = top[j];
    // Listed by score; the class this overlay draws is marked.
    const topLabels = top.map(({ label, score }, i) => ({ label, score, shown: i === j }));
    const file = join(dir, name.perClass ? `${name.stem}.c${entry.index}.cam${name.ext}` : `${name.stem}.cam${name.ext}`);
    await writeOverlayFile(file, {
      ...base,
      map: normalizeMap(mapAt(result, order[j]), normalize, { probability: entry.score }),
      mapSize: result.mapSize,
      boxes: entry.box ? [{ box: entry.box, label: entry.label, score: entry.score }] : [],
      topLabels,
    });
    entry.overlay = file;
  }
}

/** Each entry's raw map as `<stem>.c<index>.npy` and `.png` (see image-maps.ts); the entry gets both paths and the map. */
async function writeMaps(dir: string, stem: string, result: CamResult, order: number[], top: ImageTopEntry[], geometry: FrameGeometry): Promise<void> {
  const [h, w] = result.mapSize;
  for (const [j, entry] of top.entries()) {
    const map = mapAt(result, order[j]);
    entry.npy = join(dir, `${stem}.c${entry.index}.npy`);
    entry.png = join(dir, `${stem}.c${entry.index}.png`);
    await writeFileAtomic(entry.npy, npyBytes(map, result.mapSize));
    await writeFileAtomic(entry.png, await mapPng16(map, result.mapSize, geometry));
    entry.map = Array.from({ length: h }, (_, y) => Array.from(map.subarray(y * w, (y + 1) * w)));
  }
}
