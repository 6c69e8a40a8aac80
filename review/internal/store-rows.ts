/**
 * The review store's rows as SQLite returns them, and their conversion to the records the store hands out
 * (JSON columns parsed, blobs copied into typed arrays, 0/1 back to booleans).
 */
import type { Box } from '../../models/index.ts';
import type { DatasetRecord, DecisionStatus, DecisionTag, ImageInput, ImageRecord, ImportIssue, ReviewRow, ReviewSummary, TopEntry } from '../types.ts';

/** A row of `datasets`. */
export interface DatasetRow {
  id: number;
  name: string;
  root: string;
  layout: string;
  classes: string;
  model_source: string;
  model_key: string;
  created_at: string;
  updated_at: string;
  summary: string | null;
  issues: string;
  head: string | null;
}

/** A row of `images`: the image's own columns (its boxes live in `boxes`). */
export interface ImageRow extends Omit<ImageInput, 'boxes'> {
  id: number;
  dataset_id: number;
}

/** An image row joined with its prediction and decision (those columns null where missing). */
export interface JoinedRow extends ImageRow {
  predicted: number | null;
  confidence: number | null;
  top: string | null;
  map_class: number | null;
  paper_box: string | null;
  official_box: string | null;
  iou_paper: number | null;
  iou_official: number | null;
  inside_paper: number | null;
  inside_official: number | null;
  pointing: number | null;
  peak: string | null;
  status: DecisionStatus | null;
  tag: DecisionTag | null;
  note: string | null;
  updated_at: string | null;
}

/** A `datasets` row as a record (JSON columns parsed, the head's arrays as Float32Array). */
export function toDataset(r: DatasetRow): DatasetRecord {
  const head = r.head === null ? null : (JSON.parse(r.head) as { weights: number[]; bias: number[]; labels: string[] });
  return {
    id: r.id,
    name: r.name,
    root: r.root,
    layout: r.layout,
    classes: JSON.parse(r.classes) as string[],
    modelSource: r.model_source,
    modelKey: r.model_key,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    summary: r.summary === null ? null : (JSON.parse(r.summary) as ReviewSummary),
    issues: JSON.parse(r.issues) as ImportIssue[],
    head: head === null ? null : { weights: Float32Array.from(head.weights), bias: Float32Array.from(head.bias), labels: head.labels },
  };
}

/** An image row as a record, with its boxes looked up in `boxes` (none when absent). */
export function toImage(r: ImageRow, boxes: Map<number, Box[]>): ImageRecord {
  return { id: r.id, datasetId: r.dataset_id, key: r.key, path: r.path, sha256: r.sha256, width: r.width, height: r.height, label: r.label, split: r.split, boxes: boxes.get(r.id) ?? [] };
}

/** A joined row of an analysed image (its prediction columns are set) as a grid row. */
export function toReviewRow(r: JoinedRow, boxes: Map<number, Box[]>): ReviewRow {
  return {
    ...toImage(r, boxes),
    predicted: r.predicted!,
    confidence: r.confidence!,
    correct: r.predicted === r.label,
    top: JSON.parse(r.top!) as TopEntry[],
    mapClass: r.map_class!,
    paperBox: r.paper_box === null ? null : (JSON.parse(r.paper_box) as Box),
    officialBox: r.official_box === null ? null : (JSON.parse(r.official_box) as Box),
    iouPaper: r.iou_paper,
    iouOfficial: r.iou_official,
    insidePaper: r.inside_paper,
    insideOfficial: r.inside_official,
    pointing: r.pointing === null ? null : r.pointing === 1,
    peak: JSON.parse(r.peak!) as { x: number; y: number },
    decision: { status: r.status, tag: r.tag, note: r.note ?? '', updatedAt: r.updated_at },
  };
}

/** A blob of float32 values as a Float32Array (a copy). */
export function blobToFloat32(b: Buffer): Float32Array {
  // Copy: the Buffer may sit at an offset that is not 4-aligned inside a shared pool.
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** The bytes of a typed array as a Buffer over the same memory (no copy), for a BLOB column. */
export function blobOf(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}
