/**
 * The models layer's public surface: loading (file or URL, with cache), the CamModel interface both engines
 * implement, maps, boxes and colormaps. Engines load lazily through `load()`, so importing this module pulls
 * in neither tfjs's wasm nor onnxruntime's native binding.
 */
export * from './types.ts';
export * from '../common/errors.ts';
export {
  load,
  resolveSource,
  createProgressBar,
  formatBytes,
  DEFAULT_CACHE_DIR,
  MODEL_CONFIG_FILE,
  MANIFEST_FILE,
  cacheEntryPath,
  pidAlive,
  writeFileVia,
  type CacheManifest,
  type CachedFile,
  type ResolveOptions,
  type DownloadProgress,
  type ProgressEvent,
} from './load/index.ts';
export { TS_WORKER_BOOT } from './pool/worker-boot.ts';
export { DEFAULT_INFER_POOL_CONFIG, InferPool, openInferPool, type InferPoolConfig } from './pool/infer-pool.ts';
export { ModelLock } from './pool/model-lock.ts';
export {
  DEFAULT_PREPROCESS,
  NORMALIZATION_PRESETS,
  PRESET_NAMES,
  RESIZE_FILTERS,
  describePreprocess,
  normalizationRecord,
  resolvePreprocess,
  fitGeometry,
  inputToFrame,
  type FitGeometry,
} from './preprocess.ts';
export {
  upsampleBilinear,
  resampleMap,
  normalizeMap,
  quantizeMap,
  dequantizeMap,
  checkMap,
  checkSize,
  type GridTransform,
  type MapSize,
  type NormalizeMode,
  type NormalizeOptions,
} from './cam/maps.ts';
export {
  paperBox,
  officialBox,
  officialBoxes,
  thresholdSweep,
  iou,
  boxInside,
  peakPoint,
  maxBoxAcc,
  maxBoxAccV2,
  area,
  checkGeometry,
  contentRect,
  frameGrid,
  inputToFramePoint,
  frameToInputPoint,
  OFFICIAL_THRESHOLDS,
  DEFAULT_PAPER_BOX_OPTIONS,
  DEFAULT_OFFICIAL_BOX_OPTIONS,
  type Box,
  type BoxPrediction,
  type BoxResolution,
  type ContentRect,
  type FrameGeometry,
  type MapGrid,
  type MaxBoxAccOptions,
  type MaxBoxAccResult,
  type OfficialBoxOptions,
  type PaperBoxOptions,
  type PeakPoint,
} from './boxes/index.ts';
export { applyColormap, colormapLut, COLORMAP_NAMES, type ColormapName } from './cam/colormaps.ts';
