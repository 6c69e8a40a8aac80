/** Shapes shared by the review feature's parts (import, analysis, store, reports, server). */
import type { Preprocess } from '../models/index.ts';

/** A file the import skipped (or a problem it worked around), with the reason. */
export interface ImportIssue {
  /** The offending file. */
  path: string;
  /** One line: what is wrong with it. */
  reason: string;
  /** `skipped`: the image is not in the dataset; `warning`: imported anyway. */
  severity: 'skipped' | 'warning';
}

/** Figures of one class on the test split. Localization figures are null where no image has a box. */
export interface ClassMetrics {
  classId: number;
  name: string;
  images: number;
  correct: number;
  accuracy: number;
  meanIoU: number | null;
  meanIoUOfficial: number | null;
  meanInside: number | null;
  pointingGame: number | null;
  /** Share with paper-rule IoU >= 0.5. */
  locAccuracy: number | null;
}

/** What `camstream review report --json` prints (fractions in [0, 1]). */
export interface ReviewSummary {
  dataset: string;
  /** Test images evaluated. */
  images: number;
  totalImages: number;
  trainImages: number;
  validationImages: number;
  /** Files the import skipped. */
  skipped: number;
  classes: string[];
  /** Top-1 accuracy on the test split. */
  accuracy: number;
  /** Mean IoU of the paper-rule CAM box (true class's map) with the best-matching annotated box. */
  meanIoU: number | null;
  meanIoUOfficial: number | null;
  /** Mean share of the paper-rule CAM box lying inside the best annotated box. */
  meanInside: number | null;
  meanInsideOfficial: number | null;
  /** Share of images whose map peak falls inside an annotated box. */
  pointingGame: number | null;
  /** Share with paper-rule IoU >= 0.5. */
  locAccuracy: number | null;
  /** Test images with at least one annotated box (the denominator of the localization figures). */
  boxedImages: number;
  perClass: ClassMetrics[];
  /** confusion[true][predicted] counts on the test split. */
  confusion: number[][];
  /** Paper-rule IoU histogram: `counts[i]` images in [edges[i], edges[i + 1]) (the last bin closed). */
  iouHistogram: { edges: number[]; counts: number[] };
  /** Which class's map is measured against the boxes: the true class (GT-known localization). */
  mapClass: 'true';
  classifier: {
    kind: 'softmax-l2';
    lambda: number;
    chosenBy: 'validation' | 'default';
    validation: Array<{ lambda: number; accuracy: number; loss: number }>;
    trainAccuracy: number;
    featureDims: number;
  };
  model: {
    source: string;
    key: string;
    engine: string;
    backend: string;
    mapSize: [number, number];
    /** The backbone's preprocessing: where a map sits over an image (see `frameGeometry`). */
    preprocess: Preprocess;
  };
}
