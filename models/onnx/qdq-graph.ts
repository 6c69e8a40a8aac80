/**
 * The graph side of static INT8 quantization (QDQ format): what to calibrate, and the rewrite that inserts
 * QuantizeLinear / DequantizeLinear pairs once the activation ranges are known. ONNX Runtime's graph
 * optimizer then fuses `DQ -> Conv -> Q` into QLinearConv, `DQ -> Add -> Q` into QLinearAdd, and so on;
 * anything it cannot fuse still runs in fp32 on dequantized values, so the result is always correct.
 *
 * Choices (the ones that make ORT's integer kernels fast on x86 and keep CAM maps close to fp32):
 * - Activations are uint8, asymmetric, one scale per tensor. A Relu (or Clip at 0) right after a quantized
 *   Conv or Add is removed and its range given to the producer's output with zero point 0: the uint8
 *   clamp at 0 does the Relu's work.
 * - Conv weights are int8, symmetric, one scale per output channel (axis 0), zero point 0.
 * - Conv biases are int32 with scale = input scale x weight scale of the channel, zero point 0.
 * - BatchNormalization after a Conv is folded into the Conv first (a Q/DQ between them would block ORT's
 *   own fp32 folding and cost a kernel).
 * - MaxPool's output shares its input's scale and zero point (ORT then runs it on uint8 directly).
 * - The head stays fp32: the class conv of a class-conv-gap head is not quantized, and global pooling,
 *   the classifier and the CAM nodes camstream adds at load read dequantized features.
 * Opset 13 or later is needed (per-axis DequantizeLinear); 11 and 12 models are moved to 13 when they use
 * no op whose signature changed.
 */
import { ModelLoadError } from '../../common/errors.ts';
import { GraphView, tensorDims, tensorFloats } from './graph.ts';
import { encodeModel, floatTensor, toNumber, type IModelProto, type ITensorProto, type Int64Like, type ModelProto, type NodeProto } from './proto.ts';

/** An activation range in float units, from calibration. */
export type Range = readonly [number, number];

/** Ops whose inputs and outputs get Q/DQ pairs (ORT has integer kernels for each). */
const QUANTIZED_OPS = new Set(['Conv', 'Add', 'LeakyRelu', 'MaxPool', 'AveragePool', 'Concat']);
/** Ops whose output reuses the input's quantization (order-preserving, value-preserving). */
export const SHARED_PARAMS_OPS = new Set(['MaxPool']);
/** Ops whose signature changed between opsets 11 and 13 (axes moved to an input, and so on). */
const CHANGED_BY_13 = new Set(['Squeeze', 'Unsqueeze', 'ReduceSum', 'Split', 'Pad', 'Resize', 'Upsample']);

/** The fp32 model prepared for calibration, and what the rewrite will quantize. */
export interface QdqPlan {
  /** The model with batchnorms folded into convs, at opset >= 13 (serialized). */
  model: Uint8Array;
  /** Activation tensors to calibrate (names in `model`). */
  tensors: string[];
  /** Relu / Clip nodes (by output name) that the rewrite removes; their output range starts at 0. */
  foldedActivations: string[];
  /** Activations read only by a LeakyRelu, with its slope (calibration weighs their errors by it). */
  leakyAlpha: Map<string, number>;
}

/** Attribute value of a node, as the decoded proto keeps it (undefined when absent). */
function attrOf(n: NodeProto, name: string) {
  return n.attribute.find((a) => a.name === name);
}

/** Folds each `Conv -> BatchNormalization` (conv output used by the BN alone) into the conv's weights and bias. */
function foldBatchNorms(view: GraphView, inits: Map<string, ITensorProto>): NodeProto[] {
  const removed = new Set<NodeProto>();
  for (const bn of view.nodes) {
    if (bn.opType !== 'BatchNormalization') continue;
    const conv = view.producer(bn.input[0]);
    if (!conv || conv.opType !== 'Conv' || view.consumersOf(bn.input[0]).length !== 1 || view.isGraphOutput(bn.input[0])) continue;
    const w = view.constant(conv.input[1]);
    const params = bn.input.slice(1, 5).map((name) => view.constant(name));
    if (!w || params.some((p) => !p)) continue;
    const [gamma, beta, mean, variance] = params.map((p) => tensorFloats(p!));
    const epsilon = attrOf(bn, 'epsilon')?.f ?? 1e-5;
    const dims = tensorDims(w);
    const weights = tensorFloats(w);
    const perChannel = weights.length / dims[0];
    const oldBias = conv.input[2] ? tensorFloats(view.constant(conv.input[2])!) : new Float32Array(dims[0]);
    const bias = new Float32Array(dims[0]);
    for (let o = 0; o < dims[0]; o++) {
      const factor = gamma[o] / Math.sqrt(variance[o] + epsilon);
      for (let i = 0; i < perChannel; i++) weights[o * perChannel + i] *= factor;
      bias[o] = (oldBias[o] - mean[o]) * factor + beta[o];
    }
    const base = conv.name || conv.output[0];
    inits.set(`${base}/folded_w`, floatTensor(`${base}/folded_w`, dims, weights));
    inits.set(`${base}/folded_b`, floatTensor(`${base}/folded_b`, [dims[0]], bias));
    conv.input = [conv.input[0], `${base}/folded_w`, `${base}/folded_b`];
    conv.output = [bn.output[0]];
    removed.add(bn);
  }
  return view.nodes.filter((n) => !removed.has(n));
}

/** Moves an opset 11/12 model to 13 when nothing in it changed meaning; throws otherwise. */
function raiseOpset(model: ModelProto, where: string): void {
  const entry = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  const version = toNumber(entry?.version as Int64Like);
  if (!entry || version >= 13) return;
  const blocking = model.graph.node.filter((n) => CHANGED_BY_13.has(n.opType)).map((n) => n.opType);
  if (version < 11 || blocking.length > 0) {
    throw new ModelLoadError(
      `${where}: opset ${version} cannot be quantized (per-channel QDQ needs opset 13, and ` +
        `${blocking.length > 0 ? `its ${[...new Set(blocking)].join(', ')} nodes changed meaning by then` : 'opsets below 11 are not handled'}); ` +
        're-export the model at opset 13 or later',
    );
  }
  entry.version = 13;
}

/** Whether node `n` is a Relu, or a Clip whose lower bound is the constant 0 (ReLU6 and the like). */
export function isRectifier(view: GraphView, n: NodeProto): boolean {
  if (n.opType === 'Relu') return true;
  if (n.opType !== 'Clip') return false;
  const lower = n.input[1] ? view.constant(n.input[1]) : undefined;
  const minAttr = attrOf(n, 'min');
  if (lower) return tensorFloats(lower)[0] === 0;
  return minAttr !== undefined && minAttr.f === 0;
}

/** Whether node `n` gets Q/DQ on its tensors (head class conv and adds of constants stay fp32). */
export function isQuantized(view: GraphView, n: NodeProto, headConv: string | undefined): boolean {
  if (!QUANTIZED_OPS.has(n.opType)) return false;
  if (n.opType === 'Conv') return n.output[0] !== headConv && view.constant(n.input[1]) !== undefined;
  const data = n.opType === 'Add' || n.opType === 'Concat' ? n.input : n.input.slice(0, 1);
  return data.every((t) => t !== '' && view.constant(t) === undefined);
}

/** Data inputs of `n` that carry activations (a Conv's weight and bias are handled apart). */
export function activationInputs(n: NodeProto): string[] {
  return n.opType === 'Conv' ? [n.input[0]] : n.opType === 'Add' || n.opType === 'Concat' ? n.input : [n.input[0]];
}

/**
 * Prepares `bytes` for quantization: batchnorms folded, opset raised to 13 when needed, and the list of
 * activation tensors to calibrate. `headConv` is the output name of a class-conv-gap head's conv (kept fp32).
 * @throws ModelLoadError when the opset cannot be raised.
 */
export function planQdq(model: ModelProto, headConv: string | undefined, where: string): QdqPlan {
  raiseOpset(model, where);
  const inits = new Map(model.graph.initializer.map((t) => [t.name, t as ITensorProto]));
  model.graph.node = foldBatchNorms(new GraphView(model), inits);
  const used = new Set(model.graph.node.flatMap((n) => n.input));
  model.graph.initializer = [...inits.values()].filter((t) => used.has(t.name as string)) as typeof model.graph.initializer;
  const view = new GraphView(model);
  const tensors = new Set<string>();
  const folded: string[] = [];
  for (const n of view.nodes) {
    if (!isQuantized(view, n, headConv)) continue;
    for (const t of activationInputs(n)) tensors.add(t);
    const out = n.output[0];
    const users = view.consumersOf(out);
    const foldable = (n.opType === 'Conv' || n.opType === 'Add') && users.length === 1 && !view.isGraphOutput(out);
    if (foldable && isRectifier(view, users[0])) {
      folded.push(users[0].output[0]);
      tensors.add(users[0].output[0]);
    } else {
      tensors.add(out);
    }
  }
  const leakyAlpha = new Map<string, number>();
  for (const t of tensors) {
    const users = view.consumersOf(t);
    if (users.length === 1 && users[0].opType === 'LeakyRelu') leakyAlpha.set(t, attrOf(users[0], 'alpha')?.f ?? 0.01);
  }
  return { model: encodeModel(model as IModelProto), tensors: [...tensors], foldedActivations: folded, leakyAlpha };
}

/** uint8 scale and zero point covering `range` (0 always representable, as ONNX requires). */
export function activationParams(range: Range): { scale: number; zeroPoint: number } {
  const lo = Math.min(range[0], 0);
  const hi = Math.max(range[1], 0);
  if (hi - lo < 1e-12) return { scale: 1, zeroPoint: 0 };
  const scale = (hi - lo) / 255;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** Per-output-channel symmetric int8 weights (axis 0) and their scales. */
export function quantizeWeights(weights: Float32Array, channels: number): { q: Int8Array; scales: Float32Array } {
  const per = weights.length / channels;
  const q = new Int8Array(weights.length);
  const scales = new Float32Array(channels);
  for (let o = 0; o < channels; o++) {
    let maxAbs = 0;
    for (let i = 0; i < per; i++) maxAbs = Math.max(maxAbs, Math.abs(weights[o * per + i]));
    const scale = maxAbs > 0 ? maxAbs / 127 : 1;
    scales[o] = scale;
    for (let i = 0; i < per; i++) q[o * per + i] = Math.max(-127, Math.min(127, Math.round(weights[o * per + i] / scale)));
  }
  return { q, scales };
}

