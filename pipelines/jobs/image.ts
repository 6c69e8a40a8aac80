/**
 * `camstream image`: infer + CAM + localize on still images, optionally writing an overlay per image.
 * No smoothing (there is no time axis). Images go through the engine one at a time: they differ in size,
 * and a CLI run over a few files gains nothing from batching.
 */
import { basename, extname, join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import {
  ConfigError,
  normalizeMap,
  type Box,
  type CamModel,
  type NormalizeMode,
} from '../../models/index.ts';
import { readImageFrame } from '../sources/image-file.ts';
import { frameGeometry, localize, mapAt, resolveLocalizeConfig, type LocalizeConfig } from '../stages/localize.ts';
import { resolveOverlayConfig, writeOverlayFile, type OverlayConfig } from '../render/index.ts';

export interface ImageJobConfig extends LocalizeConfig {
  /** Classes per image, best first. Default 5. */
  topK?: number;
  /** Explicit class indices instead of the top-k. */
  classes?: number[];
  /** Folder for overlay images; none are written when unset. */
  outDir?: string;
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
  /** CAM box in original image pixels `[x1, y1, x2, y2]`, or null when the map holds no positive evidence. */
  box: Box | null;
}

export interface ImageRecord {
  file: string;
  width: number;
  height: number;
  engine: string;
  backend: string;
  threads: number;
  top: ImageTopEntry[];
  /** Overlay written for this image, when an output folder was given. */
  overlay?: string;
  /** Milliseconds spent in the engine (preprocess + forward + CAM + read-back). */
  inferMs: number;
}

/** Output name for an image's overlay: `<name>.cam<ext>`, PNG when the input format cannot be written. */
export function overlayName(file: string): string {
  const ext = extname(file).toLowerCase();
  const keep = ['.jpg', '.jpeg', '.png', '.webp'].includes(ext) ? ext : '.png';
  return `${basename(file, extname(file))}.cam${keep}`;
}

/**
 * Runs every file through the model in order, calling `onRecord` as each finishes. Stops at the first
 * unreadable file (the error names it). Returns the records.
 */
export async function annotateImages(
  files: readonly string[],
  model: CamModel,
  config: ImageJobConfig = {},
  onRecord?: (record: ImageRecord) => void,
): Promise<ImageRecord[]> {
  const topK = config.topK ?? 5;
  if (!Number.isInteger(topK) || topK < 1 || topK > model.info.numClasses) {
    throw new ConfigError(`top must be a whole number in [1, ${model.info.numClasses}], got ${String(topK)}`);
  }
  const normalize = config.normalize ?? 'minmax';
  if (normalize !== 'minmax' && normalize !== 'prob') {
    throw new ConfigError(`normalize must be minmax or prob, got ${JSON.stringify(normalize)}`);
  }
  const localizeConfig = resolveLocalizeConfig(config);
  const overlayConfig = resolveOverlayConfig(config.overlay);
  if (config.outDir) await mkdir(config.outDir, { recursive: true });
  const { info } = model;
  const names = new Set<string>();
  const records: ImageRecord[] = [];
  for (const file of files) {
    const frame = await readImageFrame(file);
    const started = performance.now();
    const [result] = await model.infer([frame], { topK, classes: config.classes });
    const inferMs = performance.now() - started;
    const geometry = frameGeometry(frame.width, frame.height, info.preprocess);
    const boxes = localize(result, geometry, localizeConfig);
    const top: ImageTopEntry[] = Array.from(result.ids, (id, i) => ({
      index: id,
      label: info.labels[id] ?? `class_${id}`,
      score: result.probabilities[i],
      logit: result.scores[i],
      box: boxes[i],
    }));
    const record: ImageRecord = {
      file,
      width: frame.width,
      height: frame.height,
      engine: info.engine,
      backend: info.backend,
      threads: info.threads,
      top,
      inferMs,
    };
    if (config.outDir && top.length > 0) {
      let name = overlayName(file);
      // Two inputs with the same base name must not overwrite each other's overlay.
      for (let n = 2; names.has(name); n++) name = overlayName(file).replace('.cam', `.${n}.cam`);
      names.add(name);
      const out = join(config.outDir, name);
      const best = top[0];
      await writeOverlayFile(out, {
        ...overlayConfig,
        image: frame,
        map: normalizeMap(mapAt(result, 0), normalize, { probability: best.score }),
        mapSize: result.mapSize,
        geometry,
        boxes: best.box ? [{ box: best.box, label: best.label, score: best.score }] : [],
        topLabels: top.map(({ label, score }) => ({ label, score })),
      });
      record.overlay = out;
    }
    records.push(record);
    onRecord?.(record);
  }
  return records;
}
