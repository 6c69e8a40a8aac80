/**
 * The review page's calls to `/api/review` (same origin; the token travels in the cookie the server set
 * when the page was opened with ?token=). The path and the wire types come from protocol/.
 */
import { REVIEW_API, type Decision, type DecisionChange, type ReviewDatasetInfo, type ReviewImageDetail, type ReviewRowWire, type ReviewSummary } from '../../protocol/index.ts';

export type { Decision, DecisionChange, ReviewDatasetInfo, ReviewImageDetail, ReviewRowWire, ReviewSummary };

/** Grid filters and sort, as the API's query parameters take them. */
export interface ReviewFilter {
  split: 'test' | 'train' | 'val' | 'all';
  classId: number | null;
  correct: 'all' | 'right' | 'wrong';
  iouMin: number | null;
  iouMax: number | null;
  status: '' | 'accepted' | 'rejected' | 'undecided';
  sort: 'confidence' | 'iou' | 'key';
  order: 'asc' | 'desc';
}

export const DEFAULT_FILTER: ReviewFilter = Object.freeze({
  split: 'test',
  classId: null,
  correct: 'all',
  iouMin: null,
  iouMax: null,
  status: '',
  sort: 'confidence',
  order: 'desc',
}) as ReviewFilter;

async function json<T>(response: Response): Promise<T> {
  if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

export const API = REVIEW_API;

export function listDatasets(): Promise<ReviewDatasetInfo[]> {
  return fetch(`${API}/datasets`).then((r) => json<ReviewDatasetInfo[]>(r));
}

export function filterQuery(f: ReviewFilter): string {
  const q = new URLSearchParams({ split: f.split, sort: f.sort, order: f.order });
  if (f.classId !== null) q.set('class', String(f.classId));
  if (f.correct !== 'all') q.set('correct', f.correct);
  if (f.iouMin !== null) q.set('iouMin', String(f.iouMin));
  if (f.iouMax !== null) q.set('iouMax', String(f.iouMax));
  if (f.status) q.set('status', f.status);
  return q.toString();
}

export function listRows(datasetId: number, f: ReviewFilter): Promise<ReviewRowWire[]> {
  return fetch(`${API}/datasets/${datasetId}/images?${filterQuery(f)}`).then((r) => json<ReviewRowWire[]>(r));
}

export function imageDetail(imageId: number): Promise<ReviewImageDetail> {
  return fetch(`${API}/images/${imageId}`).then((r) => json<ReviewImageDetail>(r));
}

export function saveDecision(imageId: number, change: DecisionChange): Promise<Decision> {
  return fetch(`${API}/images/${imageId}/decision`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(change) }).then((r) =>
    json<Decision>(r),
  );
}

export function overlayUrl(imageId: number, size: number, classId?: number): string {
  return `${API}/images/${imageId}/overlay.jpg?size=${size}${classId === undefined ? '' : `&class=${classId}`}`;
}

export function exportUrl(datasetId: number, format: 'csv' | 'json' | 'html'): string {
  return `${API}/datasets/${datasetId}/export?format=${format}`;
}
