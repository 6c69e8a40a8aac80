/**
 * Localization of one map against annotated boxes, and the summary figures of a reviewed dataset.
 * Pure functions over plain arrays.
 */
import { boxInside, iou, officialBox, paperBox, peakPoint, type Box, type FrameGeometry, type MapSize } from '../models/index.ts';
import type { ClassMetrics, ReviewSummary } from './types.ts';

export interface Localization {
  paperBox: Box | null;
  officialBox: Box | null;
  /** Best IoU of the CAM box with any annotated box (0 when the map gives no box); null without boxes. */
  iouPaper: number | null;
  iouOfficial: number | null;
  /** Best share of the CAM box inside an annotated box; null without boxes. */
  insidePaper: number | null;
  insideOfficial: number | null;
  /** Pointing game: the map's peak lies inside an annotated box (edges included); null without boxes. */
  pointing: boolean | null;
  peak: { x: number; y: number };
}

function best(camBox: Box | null, truth: readonly Box[], measure: (a: Box, b: Box) => number): number {
  if (camBox === null) return 0;
  let m = 0;
  for (const t of truth) m = Math.max(m, measure(camBox, t));
  return m;
}

/**
 * The CAM boxes of `map` by both rules (paper sec. 3.1 and the released code, see models/boxes.ts) and how
 * they sit against the annotated `truth` boxes (frame pixels).
 */
export function localizeAgainst(map: Float32Array, mapSize: MapSize, geometry: FrameGeometry, truth: readonly Box[]): Localization {
  const pb = paperBox(map, mapSize, geometry);
  const ob = officialBox(map, mapSize, geometry);
  const peak = peakPoint(map, mapSize, geometry);
  const has = truth.length > 0;
  return {
    paperBox: pb,
    officialBox: ob,
    iouPaper: has ? best(pb, truth, iou) : null,
    iouOfficial: has ? best(ob, truth, iou) : null,
    insidePaper: has ? best(pb, truth, boxInside) : null,
    insideOfficial: has ? best(ob, truth, boxInside) : null,
    pointing: has ? truth.some((t) => peak.x >= t[0] && peak.x <= t[2] && peak.y >= t[1] && peak.y <= t[3]) : null,
    peak: { x: peak.x, y: peak.y },
  };
}

/** One evaluated (test) image as the summary needs it. */
export interface EvaluatedImage {
  label: number;
  predicted: number;
  iouPaper: number | null;
  iouOfficial: number | null;
  insidePaper: number | null;
  insideOfficial: number | null;
  pointing: boolean | null;
}

function mean(values: ReadonlyArray<number | null>): number | null {
  const v = values.filter((x): x is number => x !== null);
  return v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length;
}

function share(values: ReadonlyArray<boolean | null>): number | null {
  const v = values.filter((x): x is boolean => x !== null);
  return v.length === 0 ? null : v.filter(Boolean).length / v.length;
}

/** Bin edges of the IoU histogram: 0, 0.1, ..., 1. */
export const IOU_HISTOGRAM_EDGES: readonly number[] = Object.freeze(Array.from({ length: 11 }, (_, i) => i / 10));

/** Paper-rule IoU histogram over the images that have boxes. */
export function iouHistogram(values: ReadonlyArray<number | null>): { edges: number[]; counts: number[] } {
  const edges = [...IOU_HISTOGRAM_EDGES];
  const counts = new Array<number>(edges.length - 1).fill(0);
  for (const v of values) if (v !== null) counts[Math.min(counts.length - 1, Math.floor(v * 10 + 1e-9))]++;
  return { edges, counts };
}

/** Accuracy, per-class figures, the confusion matrix and the localization means of the test images. */
export function summarizeImages(
  images: readonly EvaluatedImage[],
  classes: readonly string[],
): Pick<ReviewSummary, 'images' | 'accuracy' | 'meanIoU' | 'meanIoUOfficial' | 'meanInside' | 'meanInsideOfficial' | 'pointingGame' | 'locAccuracy' | 'boxedImages' | 'perClass' | 'confusion' | 'iouHistogram'> {
  const confusion = classes.map(() => new Array<number>(classes.length).fill(0));
  for (const im of images) confusion[im.label][im.predicted]++;
  const loc = (set: readonly EvaluatedImage[]) => ({
    meanIoU: mean(set.map((i) => i.iouPaper)),
    meanIoUOfficial: mean(set.map((i) => i.iouOfficial)),
    meanInside: mean(set.map((i) => i.insidePaper)),
    pointingGame: share(set.map((i) => i.pointing)),
    locAccuracy: share(set.map((i) => (i.iouPaper === null ? null : i.iouPaper >= 0.5))),
  });
  const perClass: ClassMetrics[] = classes.map((name, classId) => {
    const set = images.filter((i) => i.label === classId);
    const correct = set.filter((i) => i.predicted === i.label).length;
    return { classId, name, images: set.length, correct, accuracy: set.length ? correct / set.length : 0, ...loc(set) };
  });
  const all = loc(images);
  return {
    images: images.length,
    accuracy: images.length ? images.filter((i) => i.predicted === i.label).length / images.length : 0,
    ...all,
    meanInsideOfficial: mean(images.map((i) => i.insideOfficial)),
    boxedImages: images.filter((i) => i.iouPaper !== null).length,
    perClass,
    confusion,
    iouHistogram: iouHistogram(images.map((i) => i.iouPaper)),
  };
}
