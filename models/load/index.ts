/**
 * Loading a model: resolve the spec to local files (downloading and caching URL models, reading
 * `camstream.json` and labels), then hand them to the engine that fits the format.
 */
import { ConfigError, ModelLoadError } from '../../common/errors.ts';
import type { CamModel, EngineLoader, EngineName } from '../types.ts';
import { warnUnusedLabels } from './labels-hint.ts';
import { type ResolveOptions, resolveSource } from './resolve.ts';

export { resolveSource, type ResolveOptions } from './resolve.ts';
export { findLabelsCandidate, unusedLabelsWarning, type LabelsCandidate } from './labels-hint.ts';
export { DEFAULT_CACHE_DIR, MANIFEST_FILE, cacheEntryPath, pidAlive, writeFileVia, type CacheManifest, type CachedFile } from './cache.ts';
export { DEFAULT_DOWNLOAD_DEADLINE_MS, DEFAULT_DOWNLOAD_TIMEOUT_MS, type DownloadOptions } from './download.ts';
export {
  DEFAULT_LABELS_FILE,
  MODEL_CONFIG_FILE,
  mergeModelFileConfig,
  parseLabels,
  parseModelFileConfig,
} from './config.ts';
export {
  createProgressBar,
  formatBytes,
  type DownloadProgress,
  type ProgressBarOptions,
  type ProgressEvent,
} from './progress.ts';

/**
 * Engines are imported on first use so that loading one never loads the other's native code
 * (onnxruntime-node's binding, tfjs's wasm).
 */
const ENGINES: Record<EngineName, () => Promise<EngineLoader>> = {
  tfjs: async () => (await import('../tfjs/index.ts')).loadTfjsModel,
  onnx: async () => (await import('../onnx/index.ts')).loadOnnxModel,
};

/**
 * Loads a model from a spec (folder, model.json, .onnx file, or http(s) URL of one; see `resolveSource`)
 * on `options.engine`, else the engine of its format (model.json -> tfjs, .onnx -> onnx).
 * The caller owns the returned model and must `dispose()` it.
 * @throws ConfigError when the engine is unknown or cannot run the format (engine onnx for a TF.js model).
 * @throws ModelLoadError when the model cannot be found, fetched or adapted, or the engine cannot start.
 */
export async function load(spec: string, options: ResolveOptions = {}): Promise<CamModel> {
  const source = await resolveSource(spec, options);
  const engine = options.engine ?? source.format;
  if (engine !== source.format) {
    throw new ConfigError(
      `engine: '${engine}' cannot run ${spec}, a ${source.format === 'tfjs' ? 'TF.js model' : 'ONNX model'}; ` +
        `allowed: '${source.format}' (or leave engine unset)`,
    );
  }
  let loader: EngineLoader;
  try {
    loader = await ENGINES[engine]();
  } catch (err) {
    throw new ModelLoadError(`could not start the ${engine} engine: ${(err as Error).message}`, { cause: err });
  }
  const model = await loader(source, options);
  warnUnusedLabels(source, model);
  return model;
}
