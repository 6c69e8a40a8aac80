/**
 * The review import, end to end (DESIGN.md: "images through infer (GAP features only), a linear head fitted
 * on them, then CAM from that head's weights, localize, persist, browse"):
 * 1. scan the dataset (bad files reported and skipped);
 * 2. decode each image and get its GAP vector from the backbone, or from the feature cache (keyed by the
 *    model's identity and the image file's SHA-256);
 * 3. fit the linear classifier on the train split (lambda picked on a validation split carved from it);
 * 4. `model.withHead(head)`: one more pass gives every class's logit and map M_c = sum_k w_k^c f_k
 *    (ref: Zhou et al. 2016, sec. 2 and 4); the true class's map is localized against the annotated boxes;
 * 5. store images, predictions, quantized maps and the summary, each group in one transaction.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { checkInt, ConfigError, InputError, stripUndefined } from '../common/index.ts';
import type { CamModel, CamResult, Frame, LinearHead, Preprocess } from '../models/index.ts';
import type { DatasetLayout } from '../datasets/index.ts';
import { readImageFrame } from '../pipelines/sources/image-file.ts';
import { frameGeometry, mapAt } from '../pipelines/stages/localize.ts';
import { fitLinearClassifier, stratifiedSplit, type ClassifierConfig, type ClassifierFit } from './classifier.ts';
import { localizeAgainst, summarizeImages, type EvaluatedImage } from './metrics.ts';
import { scanDataset, type ScannedDataset, type ScannedItem } from './scan.ts';
import type { ReviewStore } from './store.ts';
import type { ImageInput, ImportIssue, PredictionInput, ReviewSummary, Split, StoredMap, TopEntry } from './types.ts';

export interface ReviewImportConfig {
  /** Dataset name in the store. Default: the folder's name. */
  name?: string;
  /** Default: detected from the folder. */
  layout?: DatasetLayout;
  /** The model spec as given (path or URL), hashed into the feature cache key. Default `model.info.source`. */
  modelSpec?: string;
  /** Classes whose maps are stored per image, besides the true class. Default 3. */
  topK?: number;
  /** Frames per `infer` call. Default 8. */
  batchSize?: number;
  /** Folder layout only (it has no split files): share of each class held out for test. Default 0.5. */
  testFraction?: number;
  /** Seed of the folder layout's train/test split. Default 7. */
  seed?: number;
  classifier?: ClassifierConfig;
  /** Stanford 40: largest annotation file read, in bytes (larger ones are skipped). Default 256 KiB. */
  maxAnnotationBytes?: number;
}

export const DEFAULT_REVIEW_IMPORT_CONFIG = Object.freeze({ topK: 3, batchSize: 8, testFraction: 0.5, seed: 7 });

export interface ReviewImportHooks {
  /** After each batch of a phase: `features` (backbone pass) or `cams` (pass with the trained head). */
  onProgress?: (phase: 'features' | 'cams', done: number, total: number) => void;
  /** Each file skipped or worked around, as soon as it is found. */
  onIssue?: (issue: ImportIssue) => void;
}

export interface ReviewImportResult {
  datasetId: number;
  name: string;
  summary: ReviewSummary;
  issues: ImportIssue[];
  /** Images whose GAP vector came from the backbone this run, and from the cache. */
  featuresComputed: number;
  featuresCached: number;
}

type ResolvedImportConfig = ReviewImportConfig & typeof DEFAULT_REVIEW_IMPORT_CONFIG;

function resolveImportConfig(config: ReviewImportConfig): ResolvedImportConfig {
  const c = { ...DEFAULT_REVIEW_IMPORT_CONFIG, ...stripUndefined(config) } as ResolvedImportConfig;
  checkInt('topK', c.topK, 1, 100);
  checkInt('batchSize', c.batchSize, 1, 256);
  if (!(c.testFraction > 0 && c.testFraction < 1)) throw new ConfigError(`testFraction must be a number in (0, 1), got ${String(c.testFraction)}`);
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) throw new ConfigError(`seed must be a non-negative integer, got ${String(c.seed)}`);
  if (c.name !== undefined && !/^[\w.-]{1,100}$/.test(c.name)) {
    throw new ConfigError(`name must be 1-100 letters, digits, '.', '_' or '-', got ${JSON.stringify(c.name)}`);
  }
  return c;
}

/**
 * The feature-cache key of a model: SHA-256 over its files (a tfjs folder's model.json and shards, an .onnx
 * file; a URL by its text) and what changes the numbers (engine, backend, preprocessing, feature shape).
 */
export function modelIdentity(model: CamModel, spec: string = model.info.source): string {
  const h = createHash('sha256');
  const { engine, backend, preprocess, featureShape } = model.info;
  h.update(JSON.stringify({ engine, backend, preprocess, featureShape }));
  let files: string[] = [];
  try {
    const path = resolve(spec);
    const st = statSync(path);
    const folder = st.isDirectory() ? path : basename(path) === 'model.json' ? dirname(path) : undefined;
    files = folder === undefined ? [path] : readdirSync(folder).sort().map((f) => join(folder, f)).filter((f) => statSync(f).isFile());
  } catch {
    h.update(`spec:${spec}`); // a URL or a zoo name: its text identifies it
  }
  for (const f of files) h.update(basename(f)).update(readFileSync(f));
  return h.digest('hex');
}

interface Decoded {
  item: ScannedItem;
  frame: Frame;
  sha256: string;
}

/** Decodes a batch; files that are missing or not images become issues. */
async function decodeBatch(items: readonly ScannedItem[], issues: ImportIssue[], hooks: ReviewImportHooks): Promise<Decoded[]> {
  const out: Decoded[] = [];
  for (const item of items) {
    try {
      const frame = await readImageFrame(item.path);
      const sha256 = createHash('sha256').update(await readFile(item.path)).digest('hex');
      out.push({ item, frame, sha256 });
    } catch (err) {
      const issue: ImportIssue = { path: item.path, reason: (err as Error).message.split('\n')[0], severity: 'skipped' };
      issues.push(issue);
      hooks.onIssue?.(issue);
    }
  }
  return out;
}

/** Raw map to 8 bits over its own range (lossy; the range is kept so values can be recovered). */
export function quantizeRawMap(map: Float32Array, classId: number, size: readonly [number, number]): StoredMap {
  let min = Infinity;
  let max = -Infinity;
  for (const v of map) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const span = max - min;
  const data = new Uint8Array(map.length);
  if (span > 0) for (let i = 0; i < map.length; i++) data[i] = Math.round(((map[i] - min) / span) * 255);
  return { classId, height: size[0], width: size[1], min, max, data };
}

/** The stored map back to raw values (approximately: 256 levels over [min, max]). */
export function dequantizeRawMap(m: StoredMap): Float32Array {
  const out = new Float32Array(m.data.length);
  const span = m.max - m.min;
  for (let i = 0; i < out.length; i++) out[i] = m.min + (m.data[i] / 255) * span;
  return out;
}

/**
 * Imports `root` into `store` and analyses it with `model` (a GAP backbone; the caller owns it). Never stops
 * on a bad file: each one is reported in `issues` (and `hooks.onIssue`). Throws InputError when the dataset
 * as a whole cannot be used (no readable images, fewer than two classes with training images).
 */
export async function importForReview(
  store: ReviewStore,
  model: CamModel,
  root: string,
  config: ReviewImportConfig = {},
  hooks: ReviewImportHooks = {},
): Promise<ReviewImportResult> {
  const c = resolveImportConfig(config);
  const scanned = await scanDataset(root, c.layout, { maxAnnotationBytes: c.maxAnnotationBytes });
  const issues = [...scanned.issues];
  for (const i of scanned.issues) hooks.onIssue?.(i);
  const name = c.name ?? basename(scanned.root);
  const C = scanned.classes.length;
  if (C < 2) throw new InputError(`${scanned.root}: ${C} class found; a classifier needs at least 2`);
  const modelKey = modelIdentity(model, c.modelSpec);

  const features = await gatherFeatures(store, model, modelKey, scanned.items, c.batchSize, issues, hooks);
  const { kept } = features;
  if (kept.length === 0) throw new InputError(`${scanned.root}: no readable images (${issues.length} files skipped)`);
  const { splits, fit } = splitAndFit(kept, scanned, c);
  // Everything is measured before anything is written: the store then replaces the dataset and saves its
  // analysis in one transaction, so a concurrent import of the same dataset cannot interleave with this one.
  const cams = await measureCams(model, fit.head, kept, splits, scanned.classes.length, c, hooks);

  const summary: ReviewSummary = {
    dataset: name,
    ...summarizeImages(cams.evaluated, scanned.classes),
    totalImages: kept.length,
    trainImages: splits.filter((s) => s === 'train').length,
    validationImages: splits.filter((s) => s === 'val').length,
    skipped: issues.filter((i) => i.severity === 'skipped').length,
    classes: scanned.classes,
    mapClass: 'true',
    classifier: {
      kind: 'softmax-l2',
      lambda: fit.lambda,
      chosenBy: fit.chosenBy,
      validation: fit.validation,
      trainAccuracy: fit.trainAccuracy,
      featureDims: model.info.featureShape[2],
    },
    model: {
      source: c.modelSpec ?? model.info.source,
      key: modelKey,
      engine: model.info.engine,
      backend: model.info.backend,
      mapSize: cams.mapSize,
      preprocess: model.info.preprocess,
    },
  };
  const datasetId = store.saveImport(
    { name, root: scanned.root, layout: scanned.layout, classes: scanned.classes, modelSource: c.modelSpec ?? model.info.source, modelKey, issues },
    toImageInputs(kept, splits),
    { head: fit.head, summary, predictions: cams.predictions, maps: cams.maps },
  );
  return { datasetId, name, summary, issues, featuresComputed: features.computed, featuresCached: features.cached };
}

/** A readable image and its GAP vector. */
interface KeptImage {
  item: ScannedItem;
  sha256: string;
  width: number;
  height: number;
  features: Float32Array;
}

/**
 * Phase 1: the GAP vector of every readable image, from the store's cache or from a backbone pass (whose
 * results are cached). Unreadable files become issues.
 */
async function gatherFeatures(
  store: ReviewStore,
  model: CamModel,
  modelKey: string,
  items: readonly ScannedItem[],
  batchSize: number,
  issues: ImportIssue[],
  hooks: ReviewImportHooks,
): Promise<{ kept: KeptImage[]; computed: number; cached: number }> {
  const d = model.info.featureShape[2];
  const kept: KeptImage[] = [];
  let computed = 0;
  let cached = 0;
  for (let start = 0; start < items.length; start += batchSize) {
    const batch = await decodeBatch(items.slice(start, start + batchSize), issues, hooks);
    const missing = batch.filter((b) => store.cachedFeatures(modelKey, b.sha256) === undefined);
    if (missing.length > 0) {
      const results = await model.infer(missing.map((b) => b.frame), { topK: 1, features: true });
      store.cacheFeatures(modelKey, missing.map((b, i) => ({ sha256: b.sha256, features: results[i].features! })));
      computed += missing.length;
    }
    for (const b of batch) {
      const features = store.cachedFeatures(modelKey, b.sha256)!;
      if (features.length !== d) throw new InputError(`cached features of ${b.item.path} have ${features.length} values, expected ${d}`);
      if (!missing.includes(b)) cached++;
      kept.push({ item: b.item, sha256: b.sha256, width: b.frame.width, height: b.frame.height, features });
    }
    hooks.onProgress?.('features', Math.min(items.length, start + batchSize), items.length);
  }
  return { kept, computed, cached };
}

/**
 * The split of each image: the dataset's own (Stanford 40) or a seeded stratified one; then the classifier
 * is fitted on the train images and its validation images are marked `val`.
 */
function splitAndFit(kept: readonly KeptImage[], scanned: ScannedDataset, c: ResolvedImportConfig): { splits: Split[]; fit: ClassifierFit } {
  const splits: Split[] = kept.map((k) => k.item.split ?? 'train');
  if (scanned.layout === 'folders') {
    const { second } = stratifiedSplit(kept.map((k) => k.item.label), c.testFraction, c.seed);
    for (const i of second) splits[i] = 'test';
  }
  const trainIdx = kept.map((_, i) => i).filter((i) => splits[i] === 'train');
  const fit = fitLinearClassifier(
    { features: trainIdx.map((i) => kept[i].features), labels: trainIdx.map((i) => kept[i].item.label), numClasses: scanned.classes.length },
    scanned.classes,
    c.classifier,
  );
  for (const v of fit.validationIndices) splits[trainIdx[v]] = 'val';
  return { splits, fit };
}

function toImageInputs(kept: readonly KeptImage[], splits: readonly Split[]): ImageInput[] {
  return kept.map((k, i) => ({
    key: k.item.key,
    path: k.item.path,
    sha256: k.sha256,
    width: k.width,
    height: k.height,
    label: k.item.label,
    split: splits[i],
    boxes: k.item.boxes,
  }));
}

/** What phase 2 measured: a prediction and maps per image, and the test images' figures. */
interface CamMeasures {
  predictions: Array<Omit<PredictionInput, 'imageId'> & { imageKey: string }>;
  maps: Array<{ imageKey: string; map: StoredMap }>;
  evaluated: EvaluatedImage[];
  mapSize: [number, number];
}

/** Phase 2: every class's logit and map from the trained head, localized against the annotated boxes. */
async function measureCams(
  model: CamModel,
  head: LinearHead,
  kept: readonly KeptImage[],
  splits: readonly Split[],
  numClasses: number,
  c: ResolvedImportConfig,
  hooks: ReviewImportHooks,
): Promise<CamMeasures> {
  const cam = model.withHead(head);
  const out: CamMeasures = { predictions: [], maps: [], evaluated: [], mapSize: [0, 0] };
  const allClasses = Array.from({ length: numClasses }, (_, i) => i);
  try {
    for (let start = 0; start < kept.length; start += c.batchSize) {
      const slice = kept.slice(start, start + c.batchSize);
      const lost: ImportIssue[] = [];
      const batch = await decodeBatch(slice.map((k) => k.item), lost, hooks);
      if (lost.length > 0) throw new InputError(`${lost[0].path} changed during the import: ${lost[0].reason}`);
      const results = await cam.infer(batch.map((b) => b.frame), { classes: allClasses });
      for (const [j, r] of results.entries()) {
        const { item, frame } = batch[j];
        out.mapSize = [r.mapSize[0], r.mapSize[1]];
        measureOne(out, r, item, frame, splits[start + j] === 'test', allClasses, model.info.preprocess, c.topK);
      }
      hooks.onProgress?.('cams', Math.min(kept.length, start + c.batchSize), kept.length);
    }
  } finally {
    await cam.dispose();
  }
  return out;
}

/** Adds one image's prediction, maps (true class and top-k) and, for a test image, its figures to `out`. */
function measureOne(
  out: CamMeasures,
  r: CamResult,
  item: ScannedItem,
  frame: Frame,
  isTest: boolean,
  allClasses: readonly number[],
  preprocess: Preprocess,
  topK: number,
): void {
  // With `classes` the ids come back in class order, so scores[c] is class c's logit.
  const order = allClasses.slice().sort((a, b) => r.scores[b] - r.scores[a] || a - b);
  const top: TopEntry[] = order.slice(0, Math.min(topK, allClasses.length)).map((id) => ({ classId: id, score: r.scores[id], probability: r.probabilities[id] }));
  const predicted = order[0];
  const geometry = frameGeometry(frame.width, frame.height, preprocess);
  const loc = localizeAgainst(mapAt(r, item.label), r.mapSize, geometry, item.boxes);
  out.predictions.push({ imageKey: item.key, predicted, confidence: r.probabilities[predicted], top, mapClass: item.label, ...loc });
  for (const id of new Set([item.label, ...top.map((t) => t.classId)])) out.maps.push({ imageKey: item.key, map: quantizeRawMap(mapAt(r, id), id, r.mapSize) });
  if (isTest) out.evaluated.push({ label: item.label, predicted, ...loc });
}
