/**
 * Random-weight networks for tests and benches: an engine-neutral `NetSpec` (spec.ts), seeded generators
 * (small nets for each head type, ResNet-50, MobileNetV2), and writers to a TF.js layers model, a TF.js
 * graph model and an ONNX model that compute the same function.
 */
export type { NetNode, NetSpec } from './spec.ts';
export { createRandom, mulberry32, randomFrames, smallClassConvNet, smallGapDenseNet, type Random, type SmallNetOptions } from './random.ts';
export { resnet50Spec, type ResNet50Options } from './resnet50.ts';
export { mobileNetV2Spec, type MobileNetV2Options } from './mobilenetv2.ts';
export { countParameters } from './calibrated-writer.ts';
export { toLayersModel, writeLayersModel, type ToLayersOptions } from './to-layers.ts';
export { toTfGraphArtifacts, writeTfGraphModel } from './to-tf-graph.ts';
export { toOnnxModel, type ToOnnxOptions, CONV_LEAKY_ALPHA } from './to-onnx.ts';
