/**
 * Training camstream's embedded GAP model on the generated scenes of datasets/: the network, the wasm
 * gradient kernels training needs, the training loop and the writer of the model folder. Importing this
 * module loads tfjs-core and tfjs-layers but starts no backend.
 */
export {
  buildGapNet,
  gapNetForward,
  gapNetLogits,
  mapAreaPenalty,
  resolveGapNetConfig,
  DEFAULT_GAP_NET_CONFIG,
  GAP_NET_PREPROCESS,
  FEATURE_LAYER,
  CLASSIFIER_LAYER,
  type GapNetConfig,
} from './architecture.ts';
export { registerWasmGradKernels, conv2dBackpropFilterWasm, conv2dBackpropInputWasm, tileWasm } from './wasm-grad-kernels.ts';
export { registerTrainingGradients } from './gradients.ts';
export {
  trainGapNet,
  prepareTraining,
  resolveTrainConfig,
  learningRateAt,
  DEFAULT_TRAIN_CONFIG,
  type TrainConfig,
  type ResolvedTrainConfig,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
} from './train.ts';
export {
  fillMixedBatch,
  resolveTrainMix,
  sourceOf,
  DEFAULT_TRAIN_MIX,
  TRAIN_SOURCES,
  type SampleOrigin,
  type TrainMix,
  type TrainSource,
} from './mix.ts';
export {
  trainZooModel,
  writeZooFolder,
  zooModelFileConfig,
  ZOO_MODEL_DIR,
  ZOO_MODEL_NAME,
  ZOO_SHARPEN_PHASE,
  ZOO_TRAIN_CONFIG,
  ZOO_FILES,
  type SharpenPhase,
  type ZooManifest,
} from './zoo.ts';

export { DEFAULT_EVAL_SEED } from './zoo-config.ts';
