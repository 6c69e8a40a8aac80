/**
 * Random-weight networks for tests and benches: an engine-neutral `NetSpec` (spec.ts), seeded generators
 * (small nets for each head type, ResNet-50, MobileNetV2; seeded from common's mulberry32), and writers to a TF.js layers model, a TF.js
 * graph model and an ONNX model that compute the same function.
 */
export { CONV_LEAKY_ALPHA, type NetNode, type NetSpec } from './spec.ts';
export { createRandom, randomFrames, smallClassConvNet, smallGapDenseNet, type Random, type SmallNetOptions } from './random.ts';
export { resnet50Spec, type ResNet50Options } from './resnet50.ts';
export { mobileNetV2Spec, type MobileNetV2Options } from './mobilenetv2.ts';
export { countParameters } from './calibrated-writer.ts';
export { toLayersModel, writeLayersModel, type ToLayersOptions } from './to-layers.ts';
export { toTfGraphArtifacts, writeTfGraphModel } from './to-tf-graph.ts';
export { toOnnxModel, type ToOnnxOptions } from './to-onnx.ts';
