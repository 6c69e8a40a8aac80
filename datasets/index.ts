/** Image datasets on disk: writing generated scenes (Stanford 40 or folder-per-class) and reading both layouts. */
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
