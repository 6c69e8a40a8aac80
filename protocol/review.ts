/**
 * Wire shapes of the review REST API (`/api/review`, see review-routes.ts). The client imports these with
 * `import type` only.
 */
import type { Decision, ImportIssue, ReviewRow, ReviewSummary } from '../review/index.ts';

export type { Decision, ReviewSummary, ImportIssue };

export interface ReviewDatasetInfo {
  id: number;
  name: string;
  layout: string;
  classes: string[];
  updatedAt: string;
  summary: ReviewSummary | null;
  issues: ImportIssue[];
}

/** A grid row: the image (no file path), its prediction, localization and decision. */
export type ReviewRowWire = Omit<ReviewRow, 'path' | 'sha256'>;

/** A stored map: 8-bit values over its own raw range (`value = min + q / 255 * (max - min)`). */
export interface ReviewMapWire {
  classId: number;
  width: number;
  height: number;
  min: number;
  max: number;
  data: number[];
}

export interface ReviewImageDetail extends ReviewRowWire {
  maps: ReviewMapWire[];
}

export interface DecisionChange {
  status?: 'accepted' | 'rejected' | null;
  tag?: 'object' | 'actor' | 'background' | null;
  note?: string;
}
