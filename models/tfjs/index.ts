/**
 * The TF.js engine (see engine.ts). `loadTfjsModel` is the `EngineLoader` the model loader calls; the rest
 * is for tools and tests: backend choice, model folders on disk.
 */
export { loadTfjsModel, DEFAULT_TOP_K } from './engine.ts';
export { initTfjsBackend, availableTfjsBackends, TFJS_BACKENDS, type TfjsBackend, type TfjsBackendName } from './backend.ts';
export { readModelFolder, folderLoadHandler, saveArtifactsToFolder, MODEL_JSON, SHARD_FILE, type FolderModel, type TfjsModelKind } from './io.ts';
