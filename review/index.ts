/**
 * Action-localization review in the Stanford 40 style (Zhou et al. 2016, sec. 4): import a dataset, GAP
 * features from a backbone (cached), a linear classifier trained on them, CAMs from its weights, localization
 * against the annotated boxes, state in SQLite, reports and exports. Pure logic: usable without the server.
 */
export {
  DEFAULT_CLASSIFIER_CONFIG,
  fitLinearClassifier,
  headLogits,
  resolveClassifierConfig,
  stratifiedSplit,
  type ClassifierConfig,
  type ClassifierFit,
  type TrainingSet,
} from './classifier.ts';
export { scanDataset, type ScannedDataset, type ScannedItem } from './scan.ts';
export {
  DEFAULT_REVIEW_IMPORT_CONFIG,
  dequantizeRawMap,
  importForReview,
  modelIdentity,
  quantizeRawMap,
  type ReviewImportConfig,
  type ReviewImportHooks,
  type ReviewImportResult,
} from './import.ts';
export { IOU_HISTOGRAM_EDGES, iouHistogram, localizeAgainst, summarizeImages, type EvaluatedImage, type Localization } from './metrics.ts';
export { DECISION_STATUSES, DECISION_TAGS, REVIEW_DB_FILE, ReviewStore, reviewDbPath, StoreBusyError } from './store.ts';
export { CAM_BOX_COLOUR, renderReviewOverlay, TRUE_BOX_COLOUR, type ReviewOverlayOptions } from './overlay.ts';
export {
  barChartSvg,
  EXPORT_FORMATS,
  exportCsv,
  exportFormatFor,
  exportHtml,
  exportJsonObject,
  formatReportTable,
  histogramSvg,
  renderExport,
  reportJson,
  reportTableHtml,
  writeExport,
  type ExportFormat,
} from './report.ts';
export type {
  ClassMetrics,
  DatasetRecord,
  Decision,
  DecisionStatus,
  DecisionTag,
  ImageInput,
  ImageRecord,
  ImportIssue,
  PredictionInput,
  ReviewRow,
  ReviewSummary,
  RowFilter,
  Split,
  StoredMap,
  TopEntry,
} from './types.ts';
