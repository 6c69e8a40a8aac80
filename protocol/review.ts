/**
 * Wire shapes of the review REST API (`REVIEW_API`, served by server/http/review.ts): plain JSON, declared
 * here so the browser client needs nothing from review/. The server builds them from the review store's
 * records, so a field added or retyped there without a change here fails the typecheck in
 * server/http/review.ts.
 */

/** Base path of the review API. */
export const REVIEW_API = '/api/review';

/** The reviewer's verdict on a map. */
export type DecisionStatus = 'accepted' | 'rejected';
/** What the map lit up, in the reviewer's judgement. */
export type DecisionTag = 'object' | 'actor' | 'background';

/** A reviewer's decision on one image (all null and an empty note until one is made). */
export interface Decision {
  status: DecisionStatus | null;
  tag: DecisionTag | null;
  note: string;
  /** ISO 8601 time of the last change. */
  updatedAt: string | null;
}

/** A file the import skipped (or a problem it worked around), with the reason. */
export interface ImportIssue {
  /** The offending file. */
  path: string;
  /** One line: what is wrong with it. */
  reason: string;
  /** `skipped`: the image is not in the dataset; `warning`: imported anyway. */
  severity: 'skipped' | 'warning';
}

/** A box `[x1, y1, x2, y2]` in image pixels. */
export type WireBox = [number, number, number, number];

/** Figures of one class on the test split; localization figures are null where no image has a box. */
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

/** A dataset's figures on its test split (fractions in [0, 1]), as `camstream review report --json` prints. */
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
  /** `confusion[true][predicted]` counts on the test split. */
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
    /** The backbone's preprocessing (models' `Preprocess`): where a map sits over an image. */
    preprocess: {
      inputSize: [number, number];
      channelOrder: 'rgb' | 'bgr';
      layout: 'nhwc' | 'nchw';
      scale: number;
      mean: [number, number, number];
      std: [number, number, number];
      resize: 'stretch' | 'letterbox';
    };
  };
}

/** A dataset as the API lists it. */
export interface ReviewDatasetInfo {
  id: number;
  name: string;
  layout: string;
  classes: string[];
  updatedAt: string;
  summary: ReviewSummary | null;
  issues: ImportIssue[];
}

/** A grid row: the image (never its file path), its prediction, the localization and the decision. */
export interface ReviewRowWire {
  id: number;
  datasetId: number;
  key: string;
  width: number;
  height: number;
  /** True class id. */
  label: number;
  split: 'train' | 'val' | 'test';
  /** Annotated boxes. */
  boxes: WireBox[];
  predicted: number;
  confidence: number;
  top: Array<{ classId: number; score: number; probability: number }>;
  /** The class whose map is measured against the boxes (the true class). */
  mapClass: number;
  correct: boolean;
  /** CAM boxes by the paper's rule and the released code's; null where the map gives none. */
  paperBox: WireBox | null;
  officialBox: WireBox | null;
  /** Localization figures; null for an image without annotated boxes. */
  iouPaper: number | null;
  iouOfficial: number | null;
  insidePaper: number | null;
  insideOfficial: number | null;
  pointing: boolean | null;
  /** The map's peak, image pixels. */
  peak: { x: number; y: number };
  decision: Decision;
}

/** A stored map: 8-bit values over its own raw range (`value = min + q / 255 * (max - min)`). */
export interface ReviewMapWire {
  classId: number;
  width: number;
  height: number;
  min: number;
  max: number;
  data: number[];
}

/** One image's row and its stored maps. */
export interface ReviewImageDetail extends ReviewRowWire {
  maps: ReviewMapWire[];
}

/** The body of a decision POST: only the fields to change. */
export interface DecisionChange {
  status?: DecisionStatus | null;
  tag?: DecisionTag | null;
  note?: string;
}
