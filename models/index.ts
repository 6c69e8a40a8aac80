/**
 * The models layer's public surface: loading (file or URL, with cache), the CamModel interface both engines
 * implement, maps, boxes and colormaps. Engines load lazily through `load()`, so importing this module pulls
 * in neither tfjs's wasm nor onnxruntime's native binding.
 */
export * from './types.ts';
export * from './errors.ts';
export {
  load,
  resolveSource,
  createProgressBar,
  formatBytes,
  DEFAULT_CACHE_DIR,
  MODEL_CONFIG_FILE,
  type ResolveOptions,
  type DownloadProgress,
  type ProgressEvent,
} from './load/index.ts';
export { resolvePreprocess, fitGeometry, inputToFrame, type FitGeometry } from './preprocess.ts';
export {
  upsampleBilinear,
  resampleMap,
  normalizeMap,
  quantizeMap,
  dequantizeMap,
  type MapSize,
  type NormalizeMode,
  type NormalizeOptions,
} from './maps.ts';
export {
  paperBox,
  officialBox,
  officialBoxes,
  thresholdSweep,
  iou,
  boxInside,
  peakPoint,
  maxBoxAcc,
  OFFICIAL_THRESHOLDS,
  type Box,
  type FrameGeometry,
  type PeakPoint,
} from './boxes.ts';
export { applyColormap, colormapLut, COLORMAP_NAMES, type ColormapName } from './colormaps.ts';
