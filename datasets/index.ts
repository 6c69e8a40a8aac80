/**
 * Image datasets: the procedural scene generator (cluttered digits with true boxes), real MNIST digits
 * with their fixed train/test split and the real-digit scene recipes (dm100, stn60, webcam, none),
 * writing generated scenes to disk (Stanford 40 or folder-per-class) and reading both layouts.
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
  SCENE_SOURCES,
  type DatasetLayout,
  type SceneSource,
  type WriteDatasetConfig,
  type WriteDatasetResult,
} from './write.ts';
export { readDataset, readStanford40, readFolders, detectLayout, type Dataset, type DatasetItem } from './read.ts';
export {
  annotationXml,
  parseAnnotationXml,
  readAnnotationFile,
  DEFAULT_MAX_ANNOTATION_BYTES,
  actionsTxt,
  parseActionsTxt,
  type Stanford40Annotation,
} from './stanford40.ts';
export { readXmlTree, findElement, findElements, type XmlElement, type XmlScanStats } from './xml.ts';
export {
  loadMnistDigits,
  mnistSplitRange,
  MnistSampler,
  MNIST_SIDE,
  MNIST_SPLITS,
  MNIST_TRAIN_FRACTION,
  type MnistDigits,
  type MnistSample,
  type MnistSplit,
} from './mnist.ts';
export {
  generateMnistScene,
  generateClutteredLayers,
  generateWebcamLayers,
  fillMnistSample,
  CLASS_LABELS,
  CLUTTERED_RECIPES,
  MNIST_RECIPES,
  NO_DIGIT,
  NO_DIGIT_LABEL,
  type ClutteredLayers,
  type WebcamLayers,
  type Distractor,
  type MnistRecipe,
  type MnistScene,
  type MnistSceneOptions,
} from './mnist-scenes.ts';
