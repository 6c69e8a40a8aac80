/**
 * Static INT8 quantization of an ONNX classifier, in TypeScript on the ONNX graph: fold batchnorms, run
 * the fp32 model on calibration frames for activation ranges, then insert QDQ pairs (qdq-graph.ts,
 * qdq-rewrite.ts). The GAP head and the CAM path stay fp32 on dequantized features, so the quantized file
 * loads in camstream like any ONNX model.
 */
import { discoverOnnxHead } from './discover.ts';
import { GraphView, parseOnnxModel } from './graph.ts';
import { calibrateActivations, type CalibrationConfig } from './calibrate.ts';
import { planQdq } from './qdq-graph.ts';
import { insertQdq } from './qdq-rewrite.ts';
import type { Frame, ModelFileConfig } from '../types.ts';

/** What `quantizeOnnx` needs besides the model and frames. */
export interface QuantizeOptions {
  /** camstream.json of the fp32 model (preprocessing, tensor names). */
  fileConfig: ModelFileConfig;
  /** Names the model in errors. */
  where: string;
  /** Intra-op threads of the calibration session. */
  threads: number;
  calibration?: CalibrationConfig;
  /** Called after each calibration frame. */
  onFrame?: (done: number, total: number) => void;
}

/** A quantized model and what was quantized. */
export interface QuantizedModel {
  bytes: Uint8Array;
  /** Activations given a QDQ pair. */
  activations: number;
  /** Rectifiers folded into the uint8 range of their producer. */
  foldedActivations: number;
}

/** The output name of a class-conv-gap head's conv (kept fp32), or undefined for other heads. */
function headConvOf(view: GraphView, fileConfig: ModelFileConfig, where: string): string | undefined {
  const head = discoverOnnxHead(view, fileConfig, where);
  if (head.kind !== 'onnx-class-conv-gap') return undefined;
  const pools = new Set(['GlobalAveragePool', 'ReduceMean']);
  const conv = view.consumersOf(head.featureTensor).find((n) => n.opType === 'Conv' && view.consumersOf(n.output[0]).some((c) => pools.has(c.opType)));
  return conv?.output[0];
}

/**
 * Quantizes the fp32 ONNX model `bytes` with ranges calibrated on `frames` (packed RGB, any size).
 * @throws NoGapHeadError when the model has no GAP head; ModelLoadError when it cannot be quantized or
 *   ONNX Runtime rejects it; ConfigError for a bad calibration config or no frames.
 */
export async function quantizeOnnx(bytes: Uint8Array, frames: readonly Frame[], options: QuantizeOptions): Promise<QuantizedModel> {
  const model = parseOnnxModel(bytes, options.where);
  const headConv = headConvOf(new GraphView(model), options.fileConfig, options.where);
  const plan = planQdq(model, headConv, options.where);
  const ranges = await calibrateActivations(plan.model, plan.tensors, frames, {
    fileConfig: options.fileConfig,
    where: options.where,
    threads: options.threads,
    config: options.calibration,
    leakyAlpha: plan.leakyAlpha,
    onFrame: options.onFrame,
  });
  return {
    bytes: insertQdq(plan.model, plan.foldedActivations, ranges, headConv),
    activations: plan.tensors.length,
    foldedActivations: plan.foldedActivations.length,
  };
}
