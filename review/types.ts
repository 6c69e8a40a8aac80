/** Shapes shared by the review feature's parts (import, analysis, store, reports, server). */
import type { Box, LinearHead } from '../models/index.ts';
import type { Decision, DecisionStatus, ImportIssue, ReviewSummary } from '../protocol/index.ts';
import type { Localization } from './metrics.ts';

/** Shapes the review API sends (the summary, import issues, decisions) are defined once, in protocol/review.ts. */
export type { ClassMetrics, Decision, DecisionStatus, DecisionTag, ImportIssue, ReviewSummary } from '../protocol/index.ts';

// ---------------------------------------------------------------------------------------------------
// What the store (store.ts) keeps and returns.

/** The split an image belongs to. */
export type Split = 'train' | 'val' | 'test';

/** An imported dataset, with its analysis once it ran. */
export interface DatasetRecord {
  id: number;
  name: string;
  root: string;
  layout: string;
  classes: string[];
  modelSource: string;
  modelKey: string;
  createdAt: string;
  updatedAt: string;
  /** Set once the analysis ran. */
  summary: ReviewSummary | null;
  issues: ImportIssue[];
  head: LinearHead | null;
}

/** An image to store: where it is, its content hash, size, class, split and annotated boxes. */
export interface ImageInput {
  key: string;
  path: string;
  sha256: string;
  width: number;
  height: number;
  label: number;
  split: Split;
  boxes: Box[];
}

/** A stored image. */
export interface ImageRecord extends ImageInput {
  id: number;
  datasetId: number;
}

/** One of an image's top classes. */
export interface TopEntry {
  classId: number;
  score: number;
  probability: number;
}

/** A prediction and the localization of its measured map (fields null when the image has no annotated box). */
export interface PredictionInput extends Localization {
  imageId: number;
  predicted: number;
  confidence: number;
  top: TopEntry[];
  /** The class whose map is measured against the boxes (the true class). */
  mapClass: number;
}

/** A class map quantized to bytes. */
export interface StoredMap {
  classId: number;
  height: number;
  width: number;
  /** Raw map range: value = min + q / 255 * (max - min). */
  min: number;
  max: number;
  data: Uint8Array;
}

/** One grid row: the image, its prediction and its decision. */
export interface ReviewRow extends ImageRecord, Omit<PredictionInput, 'imageId'> {
  correct: boolean;
  decision: Decision;
}

/** Which grid rows to list and in what order (default: every split, by key ascending). */
export interface RowFilter {
  split?: Split | 'all';
  classId?: number;
  correct?: boolean;
  iouMin?: number;
  iouMax?: number;
  status?: DecisionStatus | 'undecided';
  sort?: 'confidence' | 'iou' | 'key';
  order?: 'asc' | 'desc';
}
