/**
 * The review store's writes. Each public function here runs as one transaction, so a crash leaves either
 * the old state or the new one.
 */
import { InputError } from '../../common/index.ts';
import type { LinearHead } from '../../models/index.ts';
import { writeTransaction, type SqlDatabase } from './sqlite.ts';
import type { DatasetRecord, Decision, DecisionStatus, DecisionTag, ImageInput, PredictionInput, ReviewSummary, StoredMap } from '../types.ts';
import { blobOf } from './store-rows.ts';
import { selectDecision } from './store-queries.ts';

/** What a dataset row records about an import (the rest of the record is set by the store or the analysis). */
export type DatasetMeta = Pick<DatasetRecord, 'name' | 'root' | 'layout' | 'classes' | 'modelSource' | 'modelKey' | 'issues'>;

/** A dataset's analysis: the trained head, the summary, one prediction per image and the stored maps. */
export interface Analysis {
  head: LinearHead;
  summary: ReviewSummary;
  predictions: readonly PredictionInput[];
  maps: ReadonlyArray<{ imageId: number; map: StoredMap }>;
}

/** A dataset's analysis with images named by key, for `writeImport` (their ids do not exist yet). */
export interface KeyedAnalysis {
  head: LinearHead;
  summary: ReviewSummary;
  predictions: ReadonlyArray<Omit<PredictionInput, 'imageId'> & { imageKey: string }>;
  maps: ReadonlyArray<{ imageKey: string; map: StoredMap }>;
}

/**
 * A whole import in one transaction: the dataset row and its images replaced, then their analysis stored.
 * Two imports of one dataset then serialize on SQLite's write lock: whichever commits last wins, and no
 * analysis ever points at images another import deleted. Returns the dataset id.
 */
export function writeImport(db: SqlDatabase, meta: DatasetMeta, images: readonly ImageInput[], analysis: KeyedAnalysis): number {
  return writeTransaction(db, () => {
    const id = writeDataset(db, meta, images);
    const rows = db.prepare('SELECT id, key FROM images WHERE dataset_id = ?').all(id) as Array<{ id: number; key: string }>;
    const idOf = new Map(rows.map((r) => [r.key, r.id]));
    const known = (key: string): number => {
      const imageId = idOf.get(key);
      if (imageId === undefined) throw new InputError(`analysis of dataset '${meta.name}' names image '${key}', which is not among its images`);
      return imageId;
    };
    writeAnalysis(db, id, {
      head: analysis.head,
      summary: analysis.summary,
      predictions: analysis.predictions.map(({ imageKey, ...p }) => ({ ...p, imageId: known(imageKey) })),
      maps: analysis.maps.map(({ imageKey, map }) => ({ imageId: known(imageKey), map })),
    });
    return id;
  });
}

/** A change to a decision: fields left undefined keep their stored value. */
export interface DecisionChange {
  status?: DecisionStatus | null;
  tag?: DecisionTag | null;
  note?: string;
}

/** Creates the dataset or replaces the images of the one of that name (decisions survive); returns its id. */
export function writeDataset(db: SqlDatabase, meta: DatasetMeta, images: readonly ImageInput[]): number {
  const now = new Date().toISOString();
  return writeTransaction(db, () => {
    const id = upsertDataset(db, meta, now);
    insertImages(db, id, images);
    return id;
  });
}

/** Updates the dataset row of that name (dropping its images and analysis) or inserts a new one. */
function upsertDataset(db: SqlDatabase, meta: DatasetMeta, now: string): number {
  const existing = db.prepare('SELECT id FROM datasets WHERE name = ?').get(meta.name) as { id: number } | undefined;
  if (existing) {
    const id = existing.id;
    db.prepare('DELETE FROM images WHERE dataset_id = ?').run(id);
    db.prepare(
      'UPDATE datasets SET root = ?, layout = ?, classes = ?, model_source = ?, model_key = ?, updated_at = ?, summary = NULL, issues = ?, head = NULL WHERE id = ?',
    ).run(meta.root, meta.layout, JSON.stringify(meta.classes), meta.modelSource, meta.modelKey, now, JSON.stringify(meta.issues), id);
    return id;
  }
  return Number(
    db
      .prepare('INSERT INTO datasets (name, root, layout, classes, model_source, model_key, created_at, updated_at, issues) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(meta.name, meta.root, meta.layout, JSON.stringify(meta.classes), meta.modelSource, meta.modelKey, now, now, JSON.stringify(meta.issues)).lastInsertRowid,
  );
}

function insertImages(db: SqlDatabase, datasetId: number, images: readonly ImageInput[]): void {
  const insertImage = db.prepare('INSERT INTO images (dataset_id, key, path, sha256, width, height, label, split) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const insertBox = db.prepare('INSERT INTO boxes (image_id, x1, y1, x2, y2) VALUES (?, ?, ?, ?, ?)');
  for (const im of images) {
    const imageId = insertImage.run(datasetId, im.key, im.path, im.sha256, im.width, im.height, im.label, im.split).lastInsertRowid;
    for (const b of im.boxes) insertBox.run(imageId, b[0], b[1], b[2], b[3]);
  }
}

/** Replaces a dataset's predictions and maps and stores its head and summary. */
export function writeAnalysis(db: SqlDatabase, datasetId: number, analysis: Analysis): void {
  writeTransaction(db, () => {
    db.prepare('DELETE FROM predictions WHERE image_id IN (SELECT id FROM images WHERE dataset_id = ?)').run(datasetId);
    db.prepare('DELETE FROM maps WHERE image_id IN (SELECT id FROM images WHERE dataset_id = ?)').run(datasetId);
    insertPredictions(db, analysis.predictions);
    insertMaps(db, analysis.maps);
    const head = { weights: Array.from(analysis.head.weights), bias: Array.from(analysis.head.bias), labels: analysis.head.labels ?? [] };
    db.prepare('UPDATE datasets SET summary = ?, head = ?, updated_at = ? WHERE id = ?').run(
      JSON.stringify(analysis.summary),
      JSON.stringify(head),
      new Date().toISOString(),
      datasetId,
    );
  });
}

function insertPredictions(db: SqlDatabase, predictions: readonly PredictionInput[]): void {
  const insert = db.prepare(
    `INSERT INTO predictions (image_id, predicted, confidence, top, map_class, paper_box, official_box, iou_paper, iou_official,
       inside_paper, inside_official, pointing, peak) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const p of predictions) {
    insert.run(
      p.imageId,
      p.predicted,
      p.confidence,
      JSON.stringify(p.top),
      p.mapClass,
      p.paperBox === null ? null : JSON.stringify(p.paperBox),
      p.officialBox === null ? null : JSON.stringify(p.officialBox),
      p.iouPaper,
      p.iouOfficial,
      p.insidePaper,
      p.insideOfficial,
      p.pointing === null ? null : p.pointing ? 1 : 0,
      JSON.stringify(p.peak),
    );
  }
}

function insertMaps(db: SqlDatabase, maps: Analysis['maps']): void {
  const insert = db.prepare('INSERT INTO maps (image_id, class_id, height, width, min, max, data) VALUES (?, ?, ?, ?, ?, ?, ?)');
  for (const { imageId, map } of maps) insert.run(imageId, map.classId, map.height, map.width, map.min, map.max, blobOf(map.data));
}

/** Caches GAP vectors under `modelKey`, replacing those of the same content. */
export function writeFeatures(db: SqlDatabase, modelKey: string, rows: ReadonlyArray<{ sha256: string; features: Float32Array }>): void {
  const insert = db.prepare('INSERT OR REPLACE INTO features (model_key, sha256, vec) VALUES (?, ?, ?)');
  writeTransaction(db, () => {
    for (const r of rows) insert.run(modelKey, r.sha256, blobOf(r.features));
  });
}

/** Merges `change` into an image's decision (keyed by dataset and image key); returns the stored decision. */
export function writeDecision(db: SqlDatabase, imageId: number, change: DecisionChange): Decision {
  return writeTransaction(db, (): Decision => {
    const im = db.prepare('SELECT dataset_id, key FROM images WHERE id = ?').get(imageId) as { dataset_id: number; key: string } | undefined;
    if (!im) throw new InputError(`no image with id ${imageId}`);
    const old = selectDecision(db, im.dataset_id, im.key);
    const next: Decision = {
      status: change.status !== undefined ? change.status : old.status,
      tag: change.tag !== undefined ? change.tag : old.tag,
      note: change.note !== undefined ? change.note : old.note,
      updatedAt: new Date().toISOString(),
    };
    db.prepare('INSERT OR REPLACE INTO decisions (dataset_id, image_key, status, tag, note, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      im.dataset_id,
      im.key,
      next.status,
      next.tag,
      next.note,
      next.updatedAt,
    );
    return next;
  });
}
