/**
 * The review store's tables and how a file is opened: the folder is created when missing, the journal
 * is WAL, foreign keys are on, and the schema is applied idempotently (CREATE ... IF NOT EXISTS).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputError } from '../../common/index.ts';
import { openDatabase, type SqlDatabase } from './sqlite.ts';

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

/** Opens (creating the folder and file when missing) the store file at `path` and applies the schema. */
export function openStoreDatabase(path: string): SqlDatabase {
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
  return db;
}
