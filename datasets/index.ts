/**
 * Image datasets: the procedural scene generator (cluttered digits with true boxes), writing generated
 * scenes to disk (Stanford 40 or folder-per-class) and reading both layouts.
 */
export {
  DIGIT_LABELS,
  DEFAULT_SCENE_CONFIG,
  resolveSceneConfig,
  generateScene,
  generateSceneLayers,
  generateScenes,
  sceneLabel,
  fillBatch,
  type Scene,
  type SceneConfig,
  type SceneLayers,
} from './scenes.ts';
export {
  writeGeneratedDataset,
  resolveWriteDatasetConfig,
  DEFAULT_WRITE_DATASET_CONFIG,
  DATASET_LAYOUTS,
  type DatasetLayout,
  type WriteDatasetConfig,
  type WriteDatasetResult,
} from './write.ts';
export { readDataset, readStanford40, readFolders, detectLayout, type Dataset, type DatasetItem } from './read.ts';
export { annotationXml, parseAnnotationXml, actionsTxt, parseActionsTxt, type Stanford40Annotation } from './stanford40.ts';
