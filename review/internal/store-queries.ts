/**
 * The review store's reads: datasets, images with their boxes, grid rows (filtered and sorted in SQL),
 * maps, decisions and the feature cache. Each takes the open database and returns records.
 */
import type { Box } from '../../models/index.ts';
import type { SqlDatabase } from './sqlite.ts';
import type { DatasetRecord, Decision, DecisionStatus, DecisionTag, ImageRecord, ReviewRow, RowFilter, StoredMap } from '../types.ts';
import { blobToFloat32, toDataset, toImage, toReviewRow, type DatasetRow, type ImageRow, type JoinedRow } from './store-rows.ts';

/** Every dataset, by name. */
export function selectDatasets(db: SqlDatabase): DatasetRecord[] {
  return (db.prepare('SELECT * FROM datasets ORDER BY name').all() as DatasetRow[]).map(toDataset);
}

/** A dataset by name, or by numeric id. */
export function selectDataset(db: SqlDatabase, nameOrId: string | number): DatasetRecord | undefined {
  const row =
    typeof nameOrId === 'number'
      ? db.prepare('SELECT * FROM datasets WHERE id = ?').get(nameOrId)
      : db.prepare('SELECT * FROM datasets WHERE name = ?').get(nameOrId);
  return row === undefined ? undefined : toDataset(row as DatasetRow);
}

/** The images of a dataset in insertion order, with their boxes. */
export function selectImages(db: SqlDatabase, datasetId: number): ImageRecord[] {
  const rows = db.prepare('SELECT * FROM images WHERE dataset_id = ? ORDER BY id').all(datasetId) as ImageRow[];
  const boxes = selectBoxesOf(db, datasetId);
  return rows.map((r) => toImage(r, boxes));
}

/** One image with its boxes, or undefined. */
export function selectImage(db: SqlDatabase, imageId: number): ImageRecord | undefined {
  const r = db.prepare('SELECT * FROM images WHERE id = ?').get(imageId) as ImageRow | undefined;
  if (!r) return undefined;
  const boxes = (db.prepare('SELECT x1, y1, x2, y2 FROM boxes WHERE image_id = ? ORDER BY rowid').all(imageId) as Array<{ x1: number; y1: number; x2: number; y2: number }>).map(
    (b) => [b.x1, b.y1, b.x2, b.y2] as Box,
  );
  return toImage(r, new Map([[imageId, boxes]]));
}

/** The boxes of every image of a dataset, by image id, in insertion order. */
function selectBoxesOf(db: SqlDatabase, datasetId: number): Map<number, Box[]> {
  const out = new Map<number, Box[]>();
  const rows = db
    .prepare('SELECT b.image_id AS id, b.x1, b.y1, b.x2, b.y2 FROM boxes b JOIN images i ON i.id = b.image_id WHERE i.dataset_id = ? ORDER BY b.rowid')
    .all(datasetId) as Array<{ id: number; x1: number; y1: number; x2: number; y2: number }>;
  for (const b of rows) {
    const list = out.get(b.id) ?? [];
    list.push([b.x1, b.y1, b.x2, b.y2]);
    out.set(b.id, list);
  }
  return out;
}

/** Grid rows of analysed images, filtered and sorted (ties by key). */
export function selectRows(db: SqlDatabase, datasetId: number, filter: RowFilter): ReviewRow[] {
  const { where, params } = rowConditions(datasetId, filter);
  const sql = `SELECT i.*, p.predicted, p.confidence, p.top, p.map_class, p.paper_box, p.official_box, p.iou_paper, p.iou_official,
        p.inside_paper, p.inside_official, p.pointing, p.peak, d.status, d.tag, d.note, d.updated_at
      FROM images i JOIN predictions p ON p.image_id = i.id
      LEFT JOIN decisions d ON d.dataset_id = i.dataset_id AND d.image_key = i.key
      WHERE ${where.join(' AND ')} ORDER BY ${rowOrder(filter)}, i.key ASC`;
  const rows = db.prepare(sql).all(...params) as JoinedRow[];
  const boxes = selectBoxesOf(db, datasetId);
  return rows.map((r) => toReviewRow(r, boxes));
}

/** The WHERE terms (joined with AND) and their bound values for a row filter. */
function rowConditions(datasetId: number, filter: RowFilter): { where: string[]; params: unknown[] } {
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
  return { where, params };
}

/** The sort column and direction: by key ascending unless told, by a score descending unless told. */
function rowOrder(filter: RowFilter): string {
  const column = filter.sort === 'iou' ? 'p.iou_paper' : filter.sort === 'confidence' ? 'p.confidence' : 'i.key';
  const order = filter.order === 'asc' ? 'ASC' : filter.order === 'desc' ? 'DESC' : filter.sort === 'key' || !filter.sort ? 'ASC' : 'DESC';
  return `${column} ${order}`;
}

/** The stored maps of an image, by class id. */
export function selectMaps(db: SqlDatabase, imageId: number): StoredMap[] {
  return (db.prepare('SELECT * FROM maps WHERE image_id = ? ORDER BY class_id').all(imageId) as Array<{ class_id: number; height: number; width: number; min: number; max: number; data: Buffer }>).map(
    (m) => ({ classId: m.class_id, height: m.height, width: m.width, min: m.min, max: m.max, data: new Uint8Array(m.data) }),
  );
}

/** The decision on (dataset, image key), or the empty decision. */
export function selectDecision(db: SqlDatabase, datasetId: number, key: string): Decision {
  const d = db.prepare('SELECT status, tag, note, updated_at FROM decisions WHERE dataset_id = ? AND image_key = ?').get(datasetId, key) as
    | { status: DecisionStatus | null; tag: DecisionTag | null; note: string; updated_at: string }
    | undefined;
  return d ? { status: d.status, tag: d.tag, note: d.note, updatedAt: d.updated_at } : { status: null, tag: null, note: '', updatedAt: null };
}

/** The cached GAP vector of image content `sha256` under model `modelKey`, if any. */
export function selectFeatures(db: SqlDatabase, modelKey: string, sha256: string): Float32Array | undefined {
  const row = db.prepare('SELECT vec FROM features WHERE model_key = ? AND sha256 = ?').get(modelKey, sha256) as { vec: Buffer } | undefined;
  return row ? blobToFloat32(row.vec) : undefined;
}

/** Number of cached vectors for a model. */
export function countFeatures(db: SqlDatabase, modelKey: string): number {
  return (db.prepare('SELECT COUNT(*) AS n FROM features WHERE model_key = ?').get(modelKey) as { n: number }).n;
}
