/**
 * Head discovery for ONNX models: where the features feeding global average pooling are, and the linear
 * classifier (W, b) that turns the pooled vector into logits. With these, the class activation map of class
 * c is M_c(x, y) = sum_k W[k, c] f_k(x, y), and mean(M_c) + b_c is the logit of c
 * (ref: Zhou et al. 2016, sec. 2).
 *
 * Two forms are recognized, both as exported by PyTorch, tf2onnx and keras2onnx:
 * - `onnx-gap-gemm`: GlobalAveragePool, or ReduceMean over the spatial axes (axes as an attribute, or from
 *   opset 18 as a constant input), then any of Flatten / Reshape / Squeeze / Identity / Dropout, then Gemm
 *   (transB 0 or 1; alpha and beta folded into W and b) or MatMul (+ Add of a constant bias).
 * - `onnx-class-conv-gap`: a linear 1x1 Conv with one filter per class feeding the pooling directly
 *   (NIN, Darknet): a 1x1 conv before GAP is GAP followed by a dense layer, so the features are
 *   the conv's input and W is the conv kernel `[C, k, 1, 1]` read as `[k, C]`.
 * - `onnx-class-conv-relu-gap`: the same conv with a Relu between it and the pooling (SqueezeNet). The
 *   class maps are then the post-ReLU outputs M_c = ReLU(W_c . f + b_c), and mean(M_c) + 0 = logit_c.
 * The classifier's output must reach a graph output through pass-through ops or a Softmax: this keeps
 * squeeze-and-excitation blocks (pooling -> small dense -> gate) from passing for the head.
 *
 * `camstream.json` can name the tensors when the graph hides them (`featureTensor`, `weights`, `bias`).
 */
import { ConfigError, NoGapHeadError } from '../../common/errors.ts';
import type { HeadKind, ModelFileConfig } from '../types.ts';
import { GraphView, tensorDims, tensorFloats, tensorInts } from './graph.ts';
import { checkOverridePath } from './discover-override.ts';
import type { NodeProto, TensorProto } from './proto.ts';

/** A classifier on GAP features, found in (or named for) an ONNX graph. */
export interface OnnxHead {
  kind: Extract<HeadKind, 'onnx-gap-gemm' | 'onnx-class-conv-gap' | 'onnx-class-conv-relu-gap'>;
  /**
   * `relu` for a class conv followed by ReLU before the pooling (SqueezeNet): the class maps are
   * ReLU(W_c . f + b_c) and the logit is their mean, with no bias after it. Undefined for linear heads.
   */
  activation?: 'relu';
  /** The tensor feeding global average pooling: `[N, k, h, w]` (nchw) or `[N, h, w, k]` (nhwc). */
  featureTensor: string;
  featureLayout: 'nchw' | 'nhwc';
  /**
   * A tensor the model already computes that holds the pooled features (`[N, k]`, `[N, k, 1, 1]` or
   * `[N, 1, 1, k]`), reused instead of pooling again; undefined for class-conv heads (the model pools
   * the class maps there, not the features).
   */
  pooledTensor?: string;
  /** Row-major `[k, C]`, alpha folded in. */
  weights: Float32Array;
  /** Length C, beta folded in; zeros when the classifier has none. */
  bias: Float32Array;
  /** Feature channels k. */
  channels: number;
  numClasses: number;
  /** Node names of the head, for reports (`pool -> flatten -> gemm`). */
  path: string[];
}

/** Ops between the pooling and the classifier that only change the shape (or nothing, at inference). */
const PASS_THROUGH = new Set(['Flatten', 'Reshape', 'Squeeze', 'Identity', 'Dropout']);

/**
 * Ops allowed between the logits and a graph output: shape changes and the monotone output activations
 * of single- and multi-label classifiers (CAM stays on the logits before them).
 */
const TO_OUTPUT = new Set(['Flatten', 'Reshape', 'Squeeze', 'Identity', 'Dropout', 'Softmax', 'LogSoftmax', 'Sigmoid']);

/** Spatial layout a pooling node averages over, or undefined when it is not a global spatial average. */
function poolingLayout(view: GraphView, n: NodeProto): 'nchw' | 'nhwc' | undefined {
  if (n.opType === 'GlobalAveragePool') return 'nchw';
  if (n.opType !== 'ReduceMean') return undefined;
  let axes = view.intsAttr(n, 'axes');
  if (axes === undefined && n.input[1]) {
    const c = view.constant(n.input[1]);
    if (!c) return undefined;
    axes = tensorInts(c);
  }
  if (axes === undefined) return undefined; // all axes: not a spatial pooling
  // Feature maps are 4-D: normalize negative axes with rank 4.
  const set = axes.map((a) => (a < 0 ? a + 4 : a)).sort().join(',');
  if (set === '2,3') return 'nchw';
  if (set === '1,2') return 'nhwc';
  return undefined;
}

/** Follows single-consumer pass-through ops from `tensor`; returns the last tensor and the nodes passed. */
function passThrough(view: GraphView, tensor: string, ops: Set<string>): { tensor: string; nodes: NodeProto[] } {
  const nodes: NodeProto[] = [];
  let t = tensor;
  for (;;) {
    const consumers = view.consumersOf(t);
    if (consumers.length !== 1 || view.isGraphOutput(t)) break;
    const [c] = consumers;
    if (!ops.has(c.opType) || c.input[0] !== t) break;
    nodes.push(c);
    t = c.output[0];
  }
  return { tensor: t, nodes };
}

/** Whether `tensor` reaches a graph output through `TO_OUTPUT` ops only. */
function reachesOutput(view: GraphView, tensor: string): boolean {
  if (view.isGraphOutput(tensor)) return true;
  return view.consumersOf(tensor).some(
    (c) => TO_OUTPUT.has(c.opType) && c.input[0] === tensor && c.output.some((o) => reachesOutput(view, o)),
  );
}

/** A constant's values broadcast to a length-`count` bias vector, or undefined when it does not fit. */
function asBias(t: TensorProto, count: number): Float32Array | undefined {
  const values = tensorFloats(t);
  if (values.length === count) return values;
  if (values.length === 1) return new Float32Array(count).fill(values[0]);
  return undefined;
}

/** `[rows, cols]` row-major -> `[cols, rows]`. */
function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const dst = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
  return dst;
}

interface Classifier {
  weights: Float32Array;
  bias: Float32Array;
  channels: number;
  numClasses: number;
  logits: string;
  nodes: NodeProto[];
}

/** A Gemm or MatMul (+ Add) reading `tensor` as its first operand, with constant weights. */
function linearAfter(view: GraphView, tensor: string): Classifier | undefined {
  for (const c of view.consumersOf(tensor)) {
    if (c.input[0] !== tensor) continue;
    if (c.opType === 'Gemm') {
      const b = view.constant(c.input[1]);
      if (!b || view.intAttr(c, 'transA', 0) !== 0) continue;
      const dims = tensorDims(b);
      if (dims.length !== 2) continue;
      const transB = view.intAttr(c, 'transB', 0) === 1;
      const [k, classes] = transB ? [dims[1], dims[0]] : dims;
      const raw = tensorFloats(b);
      const weights = transB ? transpose2d(raw, classes, k) : raw;
      // Y = alpha * A.B + beta * C: fold both scalars into the head so CAM needs no extra terms.
      const alpha = view.floatAttr(c, 'alpha', 1);
      const beta = view.floatAttr(c, 'beta', 1);
      if (alpha !== 1) for (let i = 0; i < weights.length; i++) weights[i] *= alpha;
      let bias: Float32Array = new Float32Array(classes);
      if (c.input[2]) {
        const ct = view.constant(c.input[2]);
        const fitted = ct && asBias(ct, classes);
        if (!fitted) continue;
        bias = fitted;
        if (beta !== 1) for (let i = 0; i < bias.length; i++) bias[i] *= beta;
      }
      return { weights, bias, channels: k, numClasses: classes, logits: c.output[0], nodes: [c] };
    }
    if (c.opType === 'MatMul') {
      const b = view.constant(c.input[1]);
      if (!b) continue;
      const dims = tensorDims(b);
      if (dims.length !== 2) continue;
      const [k, classes] = dims;
      const weights = tensorFloats(b);
      const next = view.consumersOf(c.output[0]);
      if (next.length === 1 && next[0].opType === 'Add' && !view.isGraphOutput(c.output[0])) {
        const add = next[0];
        const other = add.input[0] === c.output[0] ? add.input[1] : add.input[0];
        const ct = view.constant(other);
        const bias = ct && asBias(ct, classes);
        if (bias) {
          return { weights, bias, channels: k, numClasses: classes, logits: add.output[0], nodes: [c, add] };
        }
      }
      return { weights, bias: new Float32Array(classes), channels: k, numClasses: classes, logits: c.output[0], nodes: [c] };
    }
  }
  return undefined;
}

/** A linear 1x1 Conv (no padding, stride 1, group 1) producing `tensor`, read as a classifier. */
function classConvBefore(view: GraphView, tensor: string): (Classifier & { features: string }) | undefined {
  const conv = view.producer(tensor);
  if (!conv || conv.opType !== 'Conv') return undefined;
  // The conv output must feed only the pooling: a second reader could depend on the class maps.
  if (view.consumersOf(tensor).length !== 1 || view.isGraphOutput(tensor)) return undefined;
  const w = view.constant(conv.input[1]);
  if (!w) return undefined;
  const dims = tensorDims(w);
  if (dims.length !== 4 || dims[2] !== 1 || dims[3] !== 1) return undefined;
  if (view.intAttr(conv, 'group', 1) !== 1) return undefined;
  if ((view.intsAttr(conv, 'strides') ?? [1, 1]).some((s) => s !== 1)) return undefined;
  if ((view.intsAttr(conv, 'pads') ?? [0, 0, 0, 0]).some((p) => p !== 0)) return undefined;
  const [classes, k] = dims;
  let bias: Float32Array = new Float32Array(classes);
  if (conv.input[2]) {
    const bt = view.constant(conv.input[2]);
    const fitted = bt && asBias(bt, classes);
    if (!fitted) return undefined;
    bias = fitted;
  }
  return {
    weights: transpose2d(tensorFloats(w), classes, k),
    bias,
    channels: k,
    numClasses: classes,
    logits: tensor,
    nodes: [conv],
    features: conv.input[0],
  };
}

const nameOf = (n: NodeProto): string => n.name || n.output[0];

/** The Relu producing `tensor` when it is the only reader of its input (the class maps), else undefined. */
function reluBefore(view: GraphView, tensor: string): NodeProto | undefined {
  const p = view.producer(tensor);
  if (!p || p.opType !== 'Relu' || view.consumersOf(tensor).length !== 1 || view.isGraphOutput(tensor)) return undefined;
  return p;
}

/** Tries the two head forms at one pooling node. */
function headAt(view: GraphView, pool: NodeProto, layout: 'nchw' | 'nhwc'): OnnxHead | undefined {
  const pooled = pool.output[0];
  const chain = passThrough(view, pooled, PASS_THROUGH);
  const linear = linearAfter(view, chain.tensor);
  if (linear && reachesOutput(view, linear.logits)) {
    return {
      kind: 'onnx-gap-gemm',
      featureTensor: pool.input[0],
      featureLayout: layout,
      pooledTensor: pooled,
      weights: linear.weights,
      bias: linear.bias,
      channels: linear.channels,
      numClasses: linear.numClasses,
      path: [pool, ...chain.nodes, ...linear.nodes].map(nameOf),
    };
  }
  if (layout !== 'nchw') return undefined;
  const relu = reluBefore(view, pool.input[0]);
  const conv = classConvBefore(view, relu ? relu.input[0] : pool.input[0]);
  if (conv && reachesOutput(view, pooled)) {
    return {
      kind: relu ? 'onnx-class-conv-relu-gap' : 'onnx-class-conv-gap',
      ...(relu ? { activation: 'relu' as const } : {}),
      featureTensor: conv.features,
      featureLayout: 'nchw',
      weights: conv.weights,
      bias: conv.bias,
      channels: conv.channels,
      numClasses: conv.numClasses,
      path: [...conv.nodes, ...(relu ? [relu] : []), pool, ...chain.nodes].map(nameOf),
    };
  }
  return undefined;
}

function noHead(view: GraphView, source: string, why: string): NoGapHeadError {
  const last = view.describeLastNodes(5).join(' -> ');
  return new NoGapHeadError(
    `${source}: ${why}. The graph ends with: ${last}. camstream needs GlobalAveragePool (or ReduceMean over ` +
      'H, W) followed by Gemm/MatMul, or a linear 1x1 Conv feeding GlobalAveragePool. If the model has such a ' +
      'head in another form, name its tensors in camstream.json beside the model: ' +
      '{ "featureTensor": "<tensor feeding the pooling>", "weights": "<classifier weight initializer>", ' +
      '"bias": "<classifier bias initializer>" }',
  );
}

/** Reads an override's classifier weights as `[k, C]`, using the op that consumes them to orient them. */
function overrideWeights(view: GraphView, name: string, source: string): { weights: Float32Array; k: number; c: number; conv: boolean } {
  const t = view.constant(name);
  if (!t) throw new ConfigError(`${source}: camstream.json "weights": '${name}' is not an initializer or constant of the model`);
  const dims = tensorDims(t);
  const raw = tensorFloats(t);
  const consumer = view.consumersOf(name).find((n) => n.input[1] === name);
  if (dims.length === 4 && dims[2] === 1 && dims[3] === 1) {
    return { weights: transpose2d(raw, dims[0], dims[1]), k: dims[1], c: dims[0], conv: true };
  }
  if (dims.length !== 2) {
    throw new ConfigError(
      `${source}: camstream.json "weights": '${name}' has dims [${dims.join(', ')}], expected [k, C], [C, k] ` +
        'under a Gemm with transB = 1, or a 1x1 conv kernel [C, k, 1, 1]',
    );
  }
  if (consumer?.opType === 'Gemm' && view.intAttr(consumer, 'transB', 0) === 1) {
    return { weights: transpose2d(raw, dims[0], dims[1]), k: dims[1], c: dims[0], conv: false };
  }
  return { weights: raw, k: dims[0], c: dims[1], conv: false };
}

/**
 * Finds the CAM head of an ONNX model (see the file comment). `fileConfig.featureTensor`, `.weights` and
 * `.bias` override what discovery finds; with `featureTensor` and `weights` given, no pooling needs to be
 * found (the pooled vector is then computed from the features, taken in the layout `fileConfig.layout`
 * gives, nchw by default). Named weights are oriented by the op that reads them: `[C, k]` under a Gemm
 * with transB = 1, `[C, k, 1, 1]` for a conv kernel, else `[k, C]`. Without a named bias and without a
 * discovered one, the bias is zero.
 * @throws NoGapHeadError naming the last nodes of the graph and the camstream.json fields to set.
 * @throws ConfigError when an override names a tensor the model does not have or one of the wrong size.
 */
export function discoverOnnxHead(view: GraphView, fileConfig: ModelFileConfig, source: string): OnnxHead {
  const { featureTensor, weights: weightsName, bias: biasName } = fileConfig;
  if (featureTensor !== undefined && !view.hasName(featureTensor)) {
    throw new ConfigError(`${source}: camstream.json "featureTensor": '${featureTensor}' is not a tensor of the model`);
  }
  const found = findStructuralHead(view, featureTensor);
  if (weightsName === undefined && biasName === undefined) {
    if (found) return found;
    throw noHead(
      view,
      source,
      featureTensor === undefined
        ? 'no global-average-pooling head found'
        : `no classifier found after the pooling of "featureTensor" '${featureTensor}'`,
    );
  }
  return applyOverrides(view, found, fileConfig, source);
}

/**
 * Structural discovery, from the last pooling node backwards (the classifier head comes last), or from
 * the pooling that reads the named feature tensor.
 */
function findStructuralHead(view: GraphView, featureTensor: string | undefined): OnnxHead | undefined {
  const pools = view.nodes.filter((n) => poolingLayout(view, n) !== undefined).reverse();
  for (const pool of pools) {
    const layout = poolingLayout(view, pool)!;
    const head = headAt(view, pool, layout);
    if (head && (featureTensor === undefined || head.featureTensor === featureTensor)) return head;
  }
  return undefined;
}

/** The head camstream.json's `weights` / `bias` (and `featureTensor`) make of what discovery `found`. */
function applyOverrides(view: GraphView, found: OnnxHead | undefined, fileConfig: ModelFileConfig, source: string): OnnxHead {
  const { featureTensor, weights: weightsName, bias: biasName } = fileConfig;
  let weights = found?.weights;
  let channels = found?.channels;
  let numClasses = found?.numClasses;
  let conv = found?.kind === 'onnx-class-conv-gap' || found?.kind === 'onnx-class-conv-relu-gap';
  let activation = found?.activation;
  if (weightsName !== undefined) {
    const w = overrideWeights(view, weightsName, source);
    weights = w.weights;
    channels = w.k;
    numClasses = w.c;
    conv = w.conv;
  }
  const features = featureTensor ?? found?.featureTensor;
  if (weights === undefined || features === undefined || channels === undefined || numClasses === undefined) {
    throw noHead(
      view,
      source,
      features === undefined
        ? 'camstream.json names classifier tensors but no "featureTensor", and none was found'
        : 'camstream.json names a "bias" but no "weights", and no classifier was found',
    );
  }
  if (weightsName !== undefined) activation = checkOverridePath(view, features, weightsName, source, (n) => poolingLayout(view, n) !== undefined).activation;
  let bias: Float32Array;
  if (biasName !== undefined) {
    bias = overrideBias(view, biasName, numClasses, source);
  } else if (found && found.numClasses === numClasses && weightsName === undefined) {
    bias = found.bias;
  } else {
    bias = new Float32Array(numClasses);
  }
  // The pooled tensor of a structural match is reusable only when the features are the ones pooled.
  const reusePool = found && found.featureTensor === features && found.kind === 'onnx-gap-gemm';
  const layout =
    found && found.featureTensor === features ? found.featureLayout : (fileConfig.layout ?? 'nchw');
  return {
    kind: activation ? 'onnx-class-conv-relu-gap' : conv ? 'onnx-class-conv-gap' : 'onnx-gap-gemm',
    ...(activation ? { activation } : {}),
    featureTensor: features,
    featureLayout: layout,
    pooledTensor: reusePool ? found!.pooledTensor : undefined,
    weights,
    bias,
    channels,
    numClasses,
    path: found?.path ?? [features, weightsName ?? '?'],
  };
}

/** The bias camstream.json names, fitted to `numClasses` values. Throws ConfigError when it does not fit. */
function overrideBias(view: GraphView, name: string, numClasses: number, source: string): Float32Array {
  const t = view.constant(name);
  if (!t) throw new ConfigError(`${source}: camstream.json "bias": '${name}' is not an initializer or constant of the model`);
  const fitted = asBias(t, numClasses);
  if (!fitted) {
    throw new ConfigError(
      `${source}: camstream.json "bias": '${name}' has ${tensorFloats(t).length} values, the weights have ${numClasses} classes`,
    );
  }
  return fitted;
}
