/**
 * The ONNX Runtime engine (see engine.ts). `loadOnnxModel` is the `EngineLoader` the model loader calls;
 * the rest is for tools and tests: head discovery, the graph rewrite, and provider queries.
 */
export { loadOnnxModel, fitFeeds, DEFAULT_TOP_K } from './engine.ts';
export { availableOnnxProviders, ONNX_PROVIDERS, type OnnxProvider } from './session.ts';
export { discoverOnnxHead, type OnnxHead } from './discover.ts';
export { discoverOnnxInput, type OnnxInput } from './discover-input.ts';
export { extendOnnxModel, CAM_IO, MIN_OPSET } from './extend.ts';
export { GraphView, parseOnnxModel, tensorFloats, tensorInts, tensorDims, type GraphInput } from './graph.ts';
export {
  attribute,
  DataType,
  encodeModel,
  floatAttr,
  floatTensor,
  int64Tensor,
  node,
  valueInfo,
  type AttributeProto,
  type INodeProto,
  type ITensorProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './proto.ts';
export { quantizeOnnx, type QuantizeOptions, type QuantizedModel } from './quantize.ts';
export {
  calibrateActivations,
  resolveCalibrationConfig,
  CALIBRATION_METHODS,
  DEFAULT_CALIBRATION_CONFIG,
  type CalibrationConfig,
  type CalibrationMethod,
} from './calibrate.ts';
export { measureFidelity, interleavedTiming, pearson, type FidelityReport } from './fidelity.ts';
