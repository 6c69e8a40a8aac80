/**
 * The review state: one SQLite file per workspace (`<home>/review.db`) holding datasets, images, their
 * annotated boxes and splits, the GAP feature cache, the trained head, predictions, small quantized maps and
 * the reviewer's decisions. Writes that belong together run in one transaction, so a crash leaves either the
 * old state or the new one. Decisions are keyed by (dataset, image key), so re-importing a dataset keeps them.
 *
 * The schema is in internal/store-schema.ts, the reads in internal/store-queries.ts and the writes in
 * internal/store-writes.ts; this class ties them to one open file.
 */
import { existsSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InputError } from '../common/index.ts';
import { BUSY_TIMEOUT_MS, isBusyError, type SqlDatabase } from './internal/sqlite.ts';
import { openStoreDatabase } from './internal/store-schema.ts';
import {
  countFeatures,
  selectDataset,
  selectDatasets,
  selectDecision,
  selectFeatures,
  selectImage,
  selectImages,
  selectMaps,
  selectRows,
} from './internal/store-queries.ts';
import {
  writeAnalysis,
  writeDataset,
  writeDecision,
  writeFeatures,
  writeImport,
  type Analysis,
  type DatasetMeta,
  type DecisionChange,
  type KeyedAnalysis,
} from './internal/store-writes.ts';
import type { DatasetRecord, Decision, DecisionStatus, DecisionTag, ImageInput, ImageRecord, ReviewRow, RowFilter, StoredMap } from './types.ts';

/** Every decision tag, in the order the UI offers them. */
export const DECISION_TAGS: readonly DecisionTag[] = ['object', 'actor', 'background'];
/** Every decision status. */
export const DECISION_STATUSES: readonly DecisionStatus[] = ['accepted', 'rejected'];

/** The file name of the store inside a camstream home. */
export const REVIEW_DB_FILE = 'review.db';

/** `<home>/review.db`. */
export function reviewDbPath(home: string): string {
  return join(home, REVIEW_DB_FILE);
}

/**
 * A write that waited `BUSY_TIMEOUT_MS` for another connection's lock and gave up: nothing was written, and
 * the same write may succeed later (the server answers 503 with Retry-After, not 400).
 */
export class StoreBusyError extends InputError {}

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
    return new ReviewStore(path, openStoreDatabase(path));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---------------------------------------------------------------------------------------------------
  // Datasets

  listDatasets(): DatasetRecord[] {
    return selectDatasets(this.db);
  }

  /** A dataset by name, or by numeric id. */
  dataset(nameOrId: string | number): DatasetRecord | undefined {
    return selectDataset(this.db, nameOrId);
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
   * The dataset named `ref`, else the one imported from the folder `ref` (a path, relative to the working
   * directory, compared once symlinks are resolved, as the import stored it).
   * @throws InputError listing the datasets (name and folder) when neither matches, or naming the candidates
   *   when one folder was imported under several names.
   */
  requireDatasetByNameOrPath(ref: string): DatasetRecord {
    const byName = this.dataset(ref);
    if (byName) return byName;
    const all = this.listDatasets();
    const lexical = resolve(ref);
    const real = existsSync(lexical) ? realpathSync(lexical) : lexical;
    const matches = all.filter((d) => d.root === real || d.root === lexical);
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) {
      throw new InputError(`${real} was imported as ${matches.map((d) => `'${d.name}'`).join(' and ')} in ${this.path}: name the dataset`);
    }
    throw new InputError(
      `no review dataset named or imported from '${ref}' in ${this.path} (${
        all.length ? `have: ${all.map((d) => `${d.name} (${d.root})`).join(', ')}` : 'none imported yet: run camstream review import'
      })`,
    );
  }

  /**
   * Creates the dataset, or replaces the images (and so the boxes, predictions and maps) of an existing one
   * of that name, in one transaction. Decisions survive (keyed by image key). Returns the dataset id.
   */
  replaceDataset(meta: DatasetMeta, images: readonly ImageInput[]): number {
    return this.writing(`replace dataset '${meta.name}'`, () => writeDataset(this.db, meta, images));
  }

  /**
   * Replaces a dataset's images and stores their analysis in one transaction (what an import does). The
   * transaction takes the store's write lock first, so concurrent imports (of one dataset or of several,
   * from any number of processes) wait for each other and the last to commit wins whole.
   * @throws InputError naming the store and the dataset when the write fails (another process holding the
   *   store beyond the busy timeout, say); nothing of this import is then stored.
   */
  saveImport(meta: DatasetMeta, images: readonly ImageInput[], analysis: KeyedAnalysis): number {
    return this.writing(`save the import of dataset '${meta.name}'`, () => writeImport(this.db, meta, images, analysis));
  }

  /** Stores the analysis of a dataset (head, summary, predictions, maps) in one transaction. */
  saveAnalysis(datasetId: number, analysis: Analysis): void {
    this.writing(`save the analysis of dataset ${datasetId}`, () => writeAnalysis(this.db, datasetId, analysis));
  }

  // ---------------------------------------------------------------------------------------------------
  // Feature cache

  /** The cached GAP vector of image content `sha256` under model `modelKey`, if any. */
  cachedFeatures(modelKey: string, sha256: string): Float32Array | undefined {
    return selectFeatures(this.db, modelKey, sha256);
  }

  /** Caches GAP vectors (one transaction for the batch). */
  cacheFeatures(modelKey: string, rows: ReadonlyArray<{ sha256: string; features: Float32Array }>): void {
    this.writing(`cache the features of ${rows.length} images`, () => writeFeatures(this.db, modelKey, rows));
  }

  /** Number of cached vectors for a model (for reports and tests). */
  cachedFeatureCount(modelKey: string): number {
    return countFeatures(this.db, modelKey);
  }

  // ---------------------------------------------------------------------------------------------------
  // Images, predictions, maps

  images(datasetId: number): ImageRecord[] {
    return selectImages(this.db, datasetId);
  }

  image(imageId: number): ImageRecord | undefined {
    return selectImage(this.db, imageId);
  }

  /** Grid rows of analysed images, filtered and sorted (ties by key). */
  rows(datasetId: number, filter: RowFilter = {}): ReviewRow[] {
    return selectRows(this.db, datasetId, filter);
  }

  /** One analysed image's row, or undefined. */
  row(imageId: number): ReviewRow | undefined {
    const im = this.image(imageId);
    if (!im) return undefined;
    return this.rows(im.datasetId, { split: 'all' }).find((r) => r.id === imageId);
  }

  /** The stored maps of an image (top-k classes and the true class), by class id. */
  maps(imageId: number): StoredMap[] {
    return selectMaps(this.db, imageId);
  }

  // ---------------------------------------------------------------------------------------------------
  // Decisions

  /** Sets (merges) the decision on an image; returns the stored decision. */
  setDecision(imageId: number, change: DecisionChange): Decision {
    checkDecisionChange(change);
    return this.writing(`save the decision on image ${imageId}`, () => writeDecision(this.db, imageId, change));
  }

  decision(imageId: number): Decision {
    const im = this.image(imageId);
    if (!im) throw new InputError(`no image with id ${imageId}`);
    return selectDecision(this.db, im.datasetId, im.key);
  }

  /**
   * Runs a write, turning SQLite's failures into InputErrors that say which store, what was being written
   * and, for a lock held too long, that another process holds it. Nothing of a failed write is stored.
   */
  private writing<R>(what: string, write: () => R): R {
    try {
      return write();
    } catch (err) {
      if (err instanceof InputError) throw err;
      const reason = (err as Error).message;
      if (isBusyError(err)) {
        throw new StoreBusyError(
          `review store ${this.path}: could not ${what}: another process (an import, or serve saving a decision) ` +
            `kept the store locked for more than ${BUSY_TIMEOUT_MS / 1000} s (${reason}); nothing was written: try again`,
        );
      }
      throw new InputError(`review store ${this.path}: could not ${what} (${reason}); nothing was written`);
    }
  }
}

/** Throws an InputError naming the bad value when a decision change is not one the store accepts. */
function checkDecisionChange(change: DecisionChange): void {
  if (change.status !== undefined && change.status !== null && !DECISION_STATUSES.includes(change.status)) {
    throw new InputError(`status must be one of ${DECISION_STATUSES.join(', ')} or null, got ${JSON.stringify(change.status)}`);
  }
  if (change.tag !== undefined && change.tag !== null && !DECISION_TAGS.includes(change.tag)) {
    throw new InputError(`tag must be one of ${DECISION_TAGS.join(', ')} or null, got ${JSON.stringify(change.tag)}`);
  }
  if (change.note !== undefined && (typeof change.note !== 'string' || change.note.length > 10_000)) {
    throw new InputError('note must be a string of at most 10000 characters');
  }
}
