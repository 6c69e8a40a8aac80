/**
 * Measures on boxes (area, IoU, containment), the pointing-game point, and MaxBoxAcc
 * (ref: Choe et al. 2020). Boxes are in frame pixels (see geometry.ts).
 */
import { ConfigError, InputError } from '../../common/errors.ts';
import { checkMap, type MapSize } from '../cam/maps.ts';
import { checkGeometry, contentRect, inputToFramePoint, type Box, type FrameGeometry } from './geometry.ts';
import { clamp } from './internal/work-grid.ts';

/** Area of a box (0 for an empty or inverted one). */
export function area(b: Box): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

/** Area shared by two boxes (0 when they do not overlap). */
export function intersection(a: Box, b: Box): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

/** Intersection over union, in [0, 1]; 0 when both boxes are empty. */
export function iou(a: Box, b: Box): number {
  const inter = intersection(a, b);
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** The share of box `a`'s area lying inside box `b`, in [0, 1]; 0 when `a` is empty. */
export function boxInside(a: Box, b: Box): number {
  const aa = area(a);
  return aa > 0 ? intersection(a, b) / aa : 0;
}

/** A map's maximum located in frame pixels, for the pointing game. */
export interface PeakPoint {
  x: number;
  y: number;
  /** The raw map value there. */
  value: number;
}

/**
 * The pointing-game point: the map's maximum, in frame pixels. The maximum of a bilinear upsampling lies on
 * a map cell centre, so the argmax cell's centre is mapped to the frame without upsampling. With letterbox
 * geometry only cells whose centre lies over the frame compete (padding cannot win); if none does (a frame
 * thinner than a cell) all cells compete and the point is clamped onto the frame. Ties: first in raster order.
 */
export function peakPoint(map: Float32Array, size: MapSize, geometry: FrameGeometry): PeakPoint {
  checkMap(map, size);
  checkGeometry(geometry);
  const [h, w] = size;
  const c = contentRect(geometry);
  const cellW = geometry.inputWidth / w;
  const cellH = geometry.inputHeight / h;
  let best = -1;
  for (let pass = 0; pass < 2 && best < 0; pass++) {
    let bestValue = -Infinity;
    for (let i = 0; i < h; i++) {
      const cy = (i + 0.5) * cellH;
      const rowInside = cy >= c.y && cy <= c.y + c.height;
      for (let j = 0; j < w; j++) {
        const cx = (j + 0.5) * cellW;
        const inside = rowInside && cx >= c.x && cx <= c.x + c.width;
        const v = map[i * w + j];
        if ((inside || pass === 1) && v > bestValue) {
          bestValue = v;
          best = i * w + j;
        }
      }
    }
  }
  if (best < 0) best = 0; // all NaN: any cell is as good as another
  const i = (best / w) | 0;
  const j = best - i * w;
  const [x, y] = inputToFramePoint(geometry, (j + 0.5) * cellW, (i + 0.5) * cellH);
  return {
    x: clamp(x, 0, geometry.frameWidth),
    y: clamp(y, 0, geometry.frameHeight),
    value: map[best],
  };
}

// ---------------------------------------------------------------------------------------------------------
// MaxBoxAcc

/** One image's prediction at one threshold: a box, several boxes (best one counts), or none. */
export type BoxPrediction = Box | readonly Box[] | null;

export interface MaxBoxAccOptions {
  /** IoU needed for a hit (delta). Default 0.5. In (0, 1]. */
  iouThreshold?: number;
  /** The map thresholds the predictions were made at, to report the best one. Same length as each row. */
  thresholds?: readonly number[];
}

export interface MaxBoxAccResult {
  /** The best box accuracy over thresholds, in [0, 1]. */
  value: number;
  /** Index of the threshold reaching it (the first one on ties). */
  bestIndex: number;
  /** `thresholds[bestIndex]` when thresholds were given. */
  bestThreshold?: number;
  /** BoxAcc at every threshold index. */
  accuracies: number[];
}

/**
 * MaxBoxAcc (ref: Choe et al. 2020, "Evaluating Weakly Supervised Object Localization Methods Right",
 * sec. 4.1): `BoxAcc(t) = share of images whose box at map threshold t has IoU >= delta with one of the
 * image's ground-truth boxes`, and `MaxBoxAcc = max_t BoxAcc(t)`, which takes the threshold choice out of
 * the comparison. `predictions[i][t]` is image i's box at threshold t (for example from `thresholdSweep`); an
 * array of boxes counts its best match (the paper's multi-contour variant); null never hits. An image with no
 * ground-truth box never hits either.
 */
export function maxBoxAcc(
  predictions: ReadonlyArray<ReadonlyArray<BoxPrediction>>,
  groundTruth: ReadonlyArray<readonly Box[]>,
  options: MaxBoxAccOptions = {},
): MaxBoxAccResult {
  const delta = options.iouThreshold ?? 0.5;
  if (typeof delta !== 'number' || !(delta > 0 && delta <= 1)) {
    throw new ConfigError(`iouThreshold must be a number in (0, 1], got ${String(delta)}`);
  }
  if (predictions.length === 0) throw new InputError('maxBoxAcc needs at least one image, got 0');
  if (predictions.length !== groundTruth.length) {
    throw new InputError(
      `maxBoxAcc got predictions for ${predictions.length} images but ground truth for ${groundTruth.length}`,
    );
  }
  const steps = predictions[0].length;
  if (steps === 0) throw new InputError('maxBoxAcc needs at least one threshold per image, got 0');
  predictions.forEach((row, i) => {
    if (row.length !== steps) {
      throw new InputError(`predictions[${i}] has ${row.length} thresholds, predictions[0] has ${steps}`);
    }
  });
  const thresholds = options.thresholds;
  if (thresholds !== undefined && thresholds.length !== steps) {
    throw new ConfigError(`thresholds has ${thresholds.length} entries but each image has ${steps} predictions`);
  }
  const hits = new Array<number>(steps).fill(0);
  for (let i = 0; i < predictions.length; i++) {
    const gts = groundTruth[i];
    for (let t = 0; t < steps; t++) {
      if (bestIou(predictions[i][t], gts) >= delta) hits[t]++;
    }
  }
  const accuracies = hits.map((k) => k / predictions.length);
  let bestIndex = 0;
  for (let t = 1; t < steps; t++) if (accuracies[t] > accuracies[bestIndex]) bestIndex = t;
  const result: MaxBoxAccResult = { value: accuracies[bestIndex], bestIndex, accuracies };
  if (thresholds) result.bestThreshold = thresholds[bestIndex];
  return result;
}

/**
 * MaxBoxAccV2 (ref: Choe et al. 2020, sec. 4.1 and their released evaluation): MaxBoxAcc averaged over IoU
 * thresholds 0.3, 0.5 and 0.7, so that both coarse and tight localization count.
 */
export function maxBoxAccV2(
  predictions: ReadonlyArray<ReadonlyArray<BoxPrediction>>,
  groundTruth: ReadonlyArray<readonly Box[]>,
  options: Omit<MaxBoxAccOptions, 'iouThreshold'> = {},
): { value: number; perIou: Array<MaxBoxAccResult & { iouThreshold: number }> } {
  const perIou = [0.3, 0.5, 0.7].map((iouThreshold) => ({
    iouThreshold,
    ...maxBoxAcc(predictions, groundTruth, { ...options, iouThreshold }),
  }));
  return { value: perIou.reduce((s, r) => s + r.value, 0) / perIou.length, perIou };
}

function isBox(p: Box | readonly Box[]): p is Box {
  return typeof p[0] === 'number';
}

function bestIou(prediction: BoxPrediction, gts: readonly Box[]): number {
  if (prediction === null) return 0;
  const candidates: readonly Box[] = isBox(prediction) ? [prediction] : prediction;
  let best = 0;
  for (const p of candidates) for (const g of gts) best = Math.max(best, iou(p, g));
  return best;
}
