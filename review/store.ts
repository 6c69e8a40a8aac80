/**
 * The review state: one SQLite file per workspace (`<home>/review.db`) holding datasets, images, their
 * annotated boxes and splits, the GAP feature cache, the trained head, predictions, small quantized maps and
 * the reviewer's decisions. Writes that belong together run in one transaction, so a crash leaves either the
 * old state or the new one. Decisions are keyed by (dataset, image key), so re-importing a dataset keeps them.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError, type Box, type LinearHead } from '../models/index.ts';
import { openDatabase, type SqlDatabase } from './internal/sqlite.ts';
import type { Localization } from './metrics.ts';
import type { ImportIssue, ReviewSummary } from './types.ts';

export type Split = 'train' | 'val' | 'test';
export type DecisionStatus = 'accepted' | 'rejected';
/** What the CAM lit up, in the reviewer's judgement (the paper's sec. 4 observation is usually `object`). */
export type DecisionTag = 'object' | 'actor' | 'background';
export const DECISION_TAGS: readonly DecisionTag[] = ['object', 'actor', 'background'];
export const DECISION_STATUSES: readonly DecisionStatus[] = ['accepted', 'rejected'];

/** The file name of the store inside a camstream home. */
export const REVIEW_DB_FILE = 'review.db';

/** `<home>/review.db`. */
export function reviewDbPath(home: string): string {
  return join(home, REVIEW_DB_FILE);
}

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

export interface ImageRecord extends ImageInput {
  id: number;
  datasetId: number;
}

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

export interface StoredMap {
  classId: number;
  height: number;
  width: number;
  /** Raw map range: value = min + q / 255 * (max - min). */
  min: number;
  max: number;
  data: Uint8Array;
}

export interface Decision {
  status: DecisionStatus | null;
  tag: DecisionTag | null;
  note: string;
  updatedAt: string | null;
}

/** One grid row: the image, its prediction and its decision. */
export interface ReviewRow extends ImageRecord, Omit<PredictionInput, 'imageId'> {
  correct: boolean;
  decision: Decision;
}

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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS datasets (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  root TEXT NOT NULL,
  layout TEXT NOT NULL,
  classes TEXT NOT NULL,
  model_source TEXT NOT NULL,
  model_key TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  summary TEXT,
  issues TEXT NOT NULL DEFAULT '[]',
  head TEXT
);
CREATE TABLE IF NOT EXISTS images (
  id INTEGER PRIMARY KEY,
  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  label INTEGER NOT NULL,
  split TEXT NOT NULL CHECK (split IN ('train', 'val', 'test')),
  UNIQUE (dataset_id, key)
);
CREATE TABLE IF NOT EXISTS boxes (
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS boxes_image ON boxes(image_id);
CREATE TABLE IF NOT EXISTS features (
  model_key TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  vec BLOB NOT NULL,
  PRIMARY KEY (model_key, sha256)
);
CREATE TABLE IF NOT EXISTS predictions (
  image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
  predicted INTEGER NOT NULL,
  confidence REAL NOT NULL,
  top TEXT NOT NULL,
  map_class INTEGER NOT NULL,
  paper_box TEXT,
  official_box TEXT,
  iou_paper REAL,
  iou_official REAL,
  inside_paper REAL,
  inside_official REAL,
  pointing INTEGER,
  peak TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS maps (
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  class_id INTEGER NOT NULL,
  height INTEGER NOT NULL,
  width INTEGER NOT NULL,
  min REAL NOT NULL,
  max REAL NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (image_id, class_id)
);
CREATE TABLE IF NOT EXISTS decisions (
  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  image_key TEXT NOT NULL,
  status TEXT CHECK (status IN ('accepted', 'rejected')),
  tag TEXT CHECK (tag IN ('object', 'actor', 'background')),
  note TEXT NOT NULL DEFAULT '',
  updated_at TEXT NOT NULL,
  PRIMARY KEY (dataset_id, image_key)
);
`;

interface DatasetRow {
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

interface JoinedRow {
  id: number;
  dataset_id: number;
  key: string;
  path: string;
  sha256: string;
  width: number;
  height: number;
  label: number;
  split: Split;
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

function toDataset(r: DatasetRow): DatasetRecord {
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

function blobToFloat32(b: Buffer): Float32Array {
  // Copy: the Buffer may sit at an offset that is not 4-aligned inside a shared pool.
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/**
 * The SQLite-backed review store. Synchronous (better-sqlite3); one instance per process and file. Call
 * `close()` when done.
 */
export class ReviewStore {
  readonly path: string;
  private readonly db: SqlDatabase;

  private constructor(path: string, db: SqlDatabase) {
    this.path = path;
    this.db = db;
  }

  /** Opens (creating the folder and file when missing) the store at `path` and applies the schema. */
  static open(path: string): ReviewStore {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (err) {
      throw new InputError(`cannot create the folder of the review store ${path}: ${(err as Error).message}`);
    }
    let db: SqlDatabase;
    try {
      db = openDatabase(path);
      // WAL lets `camstream serve` read while an import writes.
      db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      db.exec(SCHEMA);
    } catch (err) {
      throw new InputError(`cannot open the review store ${path}: ${(err as Error).message}`);
    }
    return new ReviewStore(path, db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---------------------------------------------------------------------------------------------------
  // Datasets

  listDatasets(): DatasetRecord[] {
    return (this.db.prepare('SELECT * FROM datasets ORDER BY name').all() as DatasetRow[]).map(toDataset);
  }

  /** A dataset by name, or by numeric id. */
  dataset(nameOrId: string | number): DatasetRecord | undefined {
    const row =
      typeof nameOrId === 'number'
        ? this.db.prepare('SELECT * FROM datasets WHERE id = ?').get(nameOrId)
        : this.db.prepare('SELECT * FROM datasets WHERE name = ?').get(nameOrId);
    return row === undefined ? undefined : toDataset(row as DatasetRow);
  }

  /** The dataset or an InputError listing those that exist. */
  requireDataset(nameOrId: string | number): DatasetRecord {
    const d = this.dataset(nameOrId);
    if (d) return d;
    const names = this.listDatasets().map((x) => x.name);
    throw new InputError(
      `no review dataset '${String(nameOrId)}' in ${this.path} (${names.length ? `have: ${names.join(', ')}` : 'none imported yet: run camstream review import'})`,
    );
  }

  /**
   * Creates the dataset, or replaces the images (and so the boxes, predictions and maps) of an existing one
   * of that name, in one transaction. Decisions survive (keyed by image key). Returns the dataset id.
   */
  replaceDataset(
    meta: { name: string; root: string; layout: string; classes: string[]; modelSource: string; modelKey: string; issues: ImportIssue[] },
    images: readonly ImageInput[],
  ): number {
    const now = new Date().toISOString();
    const run = this.db.transaction(() => {
      const existing = this.db.prepare('SELECT id FROM datasets WHERE name = ?').get(meta.name) as { id: number } | undefined;
      let id: number;
      if (existing) {
        id = existing.id;
        this.db.prepare('DELETE FROM images WHERE dataset_id = ?').run(id);
        this.db
          .prepare(
            'UPDATE datasets SET root = ?, layout = ?, classes = ?, model_source = ?, model_key = ?, updated_at = ?, summary = NULL, issues = ?, head = NULL WHERE id = ?',
          )
          .run(meta.root, meta.layout, JSON.stringify(meta.classes), meta.modelSource, meta.modelKey, now, JSON.stringify(meta.issues), id);
      } else {
        id = Number(
          this.db
            .prepare('INSERT INTO datasets (name, root, layout, classes, model_source, model_key, created_at, updated_at, issues) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
            .run(meta.name, meta.root, meta.layout, JSON.stringify(meta.classes), meta.modelSource, meta.modelKey, now, now, JSON.stringify(meta.issues)).lastInsertRowid,
        );
      }
      const insertImage = this.db.prepare(
        'INSERT INTO images (dataset_id, key, path, sha256, width, height, label, split) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      );
      const insertBox = this.db.prepare('INSERT INTO boxes (image_id, x1, y1, x2, y2) VALUES (?, ?, ?, ?, ?)');
      for (const im of images) {
        const imageId = insertImage.run(id, im.key, im.path, im.sha256, im.width, im.height, im.label, im.split).lastInsertRowid;
        for (const b of im.boxes) insertBox.run(imageId, b[0], b[1], b[2], b[3]);
      }
      return id;
    });
    return run();
  }

  /** Stores the analysis of a dataset (head, summary, predictions, maps) in one transaction. */
  saveAnalysis(datasetId: number, analysis: { head: LinearHead; summary: ReviewSummary; predictions: readonly PredictionInput[]; maps: ReadonlyArray<{ imageId: number; map: StoredMap }> }): void {
    const run = this.db.transaction(() => {
      this.db.prepare('DELETE FROM predictions WHERE image_id IN (SELECT id FROM images WHERE dataset_id = ?)').run(datasetId);
      this.db.prepare('DELETE FROM maps WHERE image_id IN (SELECT id FROM images WHERE dataset_id = ?)').run(datasetId);
      const insertPrediction = this.db.prepare(
        `INSERT INTO predictions (image_id, predicted, confidence, top, map_class, paper_box, official_box, iou_paper, iou_official,
           inside_paper, inside_official, pointing, peak) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const p of analysis.predictions) {
        insertPrediction.run(
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
      const insertMap = this.db.prepare('INSERT INTO maps (image_id, class_id, height, width, min, max, data) VALUES (?, ?, ?, ?, ?, ?, ?)');
      for (const { imageId, map } of analysis.maps) {
        insertMap.run(imageId, map.classId, map.height, map.width, map.min, map.max, Buffer.from(map.data.buffer, map.data.byteOffset, map.data.byteLength));
      }
      const head = { weights: Array.from(analysis.head.weights), bias: Array.from(analysis.head.bias), labels: analysis.head.labels ?? [] };
      this.db
        .prepare('UPDATE datasets SET summary = ?, head = ?, updated_at = ? WHERE id = ?')
        .run(JSON.stringify(analysis.summary), JSON.stringify(head), new Date().toISOString(), datasetId);
    });
    run();
  }

  // ---------------------------------------------------------------------------------------------------
  // Feature cache

  /** The cached GAP vector of image content `sha256` under model `modelKey`, if any. */
  cachedFeatures(modelKey: string, sha256: string): Float32Array | undefined {
    const row = this.db.prepare('SELECT vec FROM features WHERE model_key = ? AND sha256 = ?').get(modelKey, sha256) as { vec: Buffer } | undefined;
    return row ? blobToFloat32(row.vec) : undefined;
  }

  /** Caches GAP vectors (one transaction for the batch). */
  cacheFeatures(modelKey: string, rows: ReadonlyArray<{ sha256: string; features: Float32Array }>): void {
    const insert = this.db.prepare('INSERT OR REPLACE INTO features (model_key, sha256, vec) VALUES (?, ?, ?)');
    this.db.transaction(() => {
      for (const r of rows) insert.run(modelKey, r.sha256, Buffer.from(r.features.buffer, r.features.byteOffset, r.features.byteLength));
    })();
  }

  /** Number of cached vectors for a model (for reports and tests). */
  cachedFeatureCount(modelKey: string): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM features WHERE model_key = ?').get(modelKey) as { n: number }).n;
  }

  // ---------------------------------------------------------------------------------------------------
  // Images, predictions, maps

  images(datasetId: number): ImageRecord[] {
    const rows = this.db.prepare('SELECT * FROM images WHERE dataset_id = ? ORDER BY id').all(datasetId) as JoinedRow[];
    const boxes = this.boxesOf(datasetId);
    return rows.map((r) => this.toImage(r, boxes));
  }

  image(imageId: number): ImageRecord | undefined {
    const r = this.db.prepare('SELECT * FROM images WHERE id = ?').get(imageId) as JoinedRow | undefined;
    if (!r) return undefined;
    const boxes = (this.db.prepare('SELECT x1, y1, x2, y2 FROM boxes WHERE image_id = ? ORDER BY rowid').all(imageId) as Array<{ x1: number; y1: number; x2: number; y2: number }>).map(
      (b) => [b.x1, b.y1, b.x2, b.y2] as Box,
    );
    return this.toImage(r, new Map([[imageId, boxes]]));
  }

  private boxesOf(datasetId: number): Map<number, Box[]> {
    const out = new Map<number, Box[]>();
    const rows = this.db
      .prepare('SELECT b.image_id AS id, b.x1, b.y1, b.x2, b.y2 FROM boxes b JOIN images i ON i.id = b.image_id WHERE i.dataset_id = ? ORDER BY b.rowid')
      .all(datasetId) as Array<{ id: number; x1: number; y1: number; x2: number; y2: number }>;
    for (const b of rows) {
      const list = out.get(b.id) ?? [];
      list.push([b.x1, b.y1, b.x2, b.y2]);
      out.set(b.id, list);
    }
    return out;
  }

  private toImage(r: JoinedRow, boxes: Map<number, Box[]>): ImageRecord {
    return { id: r.id, datasetId: r.dataset_id, key: r.key, path: r.path, sha256: r.sha256, width: r.width, height: r.height, label: r.label, split: r.split, boxes: boxes.get(r.id) ?? [] };
  }

  /** Grid rows of analysed images, filtered and sorted (ties by key). */
  rows(datasetId: number, filter: RowFilter = {}): ReviewRow[] {
    const where = ['i.dataset_id = ?'];
    const params: unknown[] = [datasetId];
    if (filter.split && filter.split !== 'all') {
      where.push('i.split = ?');
      params.push(filter.split);
    }
    if (filter.classId !== undefined) {
      where.push('i.label = ?');
      params.push(filter.classId);
    }
    if (filter.correct !== undefined) where.push(filter.correct ? 'p.predicted = i.label' : 'p.predicted <> i.label');
    if (filter.iouMin !== undefined) {
      where.push('p.iou_paper >= ?');
      params.push(filter.iouMin);
    }
    if (filter.iouMax !== undefined) {
      where.push('p.iou_paper <= ?');
      params.push(filter.iouMax);
    }
    if (filter.status === 'undecided') where.push('d.status IS NULL');
    else if (filter.status) {
      where.push('d.status = ?');
      params.push(filter.status);
    }
    const column = filter.sort === 'iou' ? 'p.iou_paper' : filter.sort === 'confidence' ? 'p.confidence' : 'i.key';
    const order = filter.order === 'asc' ? 'ASC' : filter.order === 'desc' ? 'DESC' : filter.sort === 'key' || !filter.sort ? 'ASC' : 'DESC';
    const sql = `SELECT i.*, p.predicted, p.confidence, p.top, p.map_class, p.paper_box, p.official_box, p.iou_paper, p.iou_official,
        p.inside_paper, p.inside_official, p.pointing, p.peak, d.status, d.tag, d.note, d.updated_at
      FROM images i JOIN predictions p ON p.image_id = i.id
      LEFT JOIN decisions d ON d.dataset_id = i.dataset_id AND d.image_key = i.key
      WHERE ${where.join(' AND ')} ORDER BY ${column} ${order}, i.key ASC`;
    const rows = this.db.prepare(sql).all(...params) as JoinedRow[];
    const boxes = this.boxesOf(datasetId);
    return rows.map((r) => ({
      ...this.toImage(r, boxes),
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
    }));
  }

  /** One analysed image's row, or undefined. */
  row(imageId: number): ReviewRow | undefined {
    const im = this.image(imageId);
    if (!im) return undefined;
    return this.rows(im.datasetId, { split: 'all' }).find((r) => r.id === imageId);
  }

  /** The stored maps of an image (top-k classes and the true class), by class id. */
  maps(imageId: number): StoredMap[] {
    return (this.db.prepare('SELECT * FROM maps WHERE image_id = ? ORDER BY class_id').all(imageId) as Array<{ class_id: number; height: number; width: number; min: number; max: number; data: Buffer }>).map(
      (m) => ({ classId: m.class_id, height: m.height, width: m.width, min: m.min, max: m.max, data: new Uint8Array(m.data) }),
    );
  }

  // ---------------------------------------------------------------------------------------------------
  // Decisions

  /** Sets (merges) the decision on an image; returns the stored decision. */
  setDecision(imageId: number, change: { status?: DecisionStatus | null; tag?: DecisionTag | null; note?: string }): Decision {
    if (change.status !== undefined && change.status !== null && !DECISION_STATUSES.includes(change.status)) {
      throw new InputError(`status must be one of ${DECISION_STATUSES.join(', ')} or null, got ${JSON.stringify(change.status)}`);
    }
    if (change.tag !== undefined && change.tag !== null && !DECISION_TAGS.includes(change.tag)) {
      throw new InputError(`tag must be one of ${DECISION_TAGS.join(', ')} or null, got ${JSON.stringify(change.tag)}`);
    }
    if (change.note !== undefined && (typeof change.note !== 'string' || change.note.length > 10_000)) {
      throw new InputError('note must be a string of at most 10000 characters');
    }
    const run = this.db.transaction((): Decision => {
      const im = this.db.prepare('SELECT dataset_id, key FROM images WHERE id = ?').get(imageId) as { dataset_id: number; key: string } | undefined;
      if (!im) throw new InputError(`no image with id ${imageId}`);
      const old = this.decisionOf(im.dataset_id, im.key);
      const next: Decision = {
        status: change.status !== undefined ? change.status : old.status,
        tag: change.tag !== undefined ? change.tag : old.tag,
        note: change.note !== undefined ? change.note : old.note,
        updatedAt: new Date().toISOString(),
      };
      this.db
        .prepare('INSERT OR REPLACE INTO decisions (dataset_id, image_key, status, tag, note, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(im.dataset_id, im.key, next.status, next.tag, next.note, next.updatedAt);
      return next;
    });
    return run();
  }

  private decisionOf(datasetId: number, key: string): Decision {
    const d = this.db.prepare('SELECT status, tag, note, updated_at FROM decisions WHERE dataset_id = ? AND image_key = ?').get(datasetId, key) as
      | { status: DecisionStatus | null; tag: DecisionTag | null; note: string; updated_at: string }
      | undefined;
    return d ? { status: d.status, tag: d.tag, note: d.note, updatedAt: d.updated_at } : { status: null, tag: null, note: '', updatedAt: null };
  }

  decision(imageId: number): Decision {
    const im = this.image(imageId);
    if (!im) throw new InputError(`no image with id ${imageId}`);
    return this.decisionOf(im.datasetId, im.key);
  }
}
