/**
 * Finding the CAM head of a TF.js graph model (a TF GraphDef as JSON), by node ops and const weights.
 *
 * Recognised, walking back from the output node past Identity / Softmax / Sigmoid / Reshape / Squeeze:
 * - 'mean-matmul': Mean over H, W (reduction indices [1, 2] for NHWC, or [2, 3] for NCHW features) ->
 *   [Identity / Reshape / Squeeze]* -> MatMul with a const weight (+ BiasAdd / Add / AddV2 with a const
 *   bias), or the converter's `_FusedMatMul` with `fused_ops = [BiasAdd]` and no activation.
 *   Features = the Mean's input, W = the MatMul's const (transposed when `transpose_b`), b = the bias.
 * - 'class-conv-gap': a 1x1, stride-1 Conv2D with a const kernel (+ BiasAdd, or `_FusedConv2D` with only
 *   BiasAdd fused) -> Mean over H, W. The map of class c is the conv's output channel c (ref: Zhou et al.
 *   2016, sec. 2: GAP and a linear layer commute).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, NoGapHeadError } from '../../common/errors.ts';
import type { DiscoveredHead, HeadOverrides } from './discover-layers.ts';

/** One attribute value of a GraphDef node as JSON (protobuf JSON mapping: int64 as string, bytes base64). */
export interface GraphAttrJson {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string;
  list?: { i?: Array<string | number>; s?: string[]; f?: number[] };
  shape?: { dim?: Array<{ size: string | number }>; unknownRank?: boolean };
  tensor?: unknown;
}

export interface GraphNodeJson {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, GraphAttrJson>;
}

/** Const tensors of the loaded graph by node name (`GraphModel.weights`). Not owned: the model's. */
export type GraphWeights = Record<string, tf.Tensor[]>;

export interface GraphHead extends DiscoveredHead<string> {
  kind: 'mean-matmul' | 'class-conv-gap';
  /** Layout of the feature node's output; NCHW features are transposed by the engine. */
  featureLayout: 'nhwc' | 'nchw';
}

const SKIP_AFTER = new Set(['Identity', 'Softmax', 'Sigmoid', 'Reshape', 'Squeeze', 'StopGradient', 'Snapshot']);
const SHAPE_ONLY = new Set(['Identity', 'Reshape', 'Squeeze', 'StopGradient', 'Snapshot']);

const nodeName = (input: string): string => input.replace(/^\^/, '').replace(/:\d+$/, '');

function decodeString(s: string | undefined): string {
  return s === undefined ? '' : Buffer.from(s, 'base64').toString('utf8');
}

function listStrings(attr: GraphAttrJson | undefined): string[] {
  return (attr?.list?.s ?? []).map(decodeString);
}

function listInts(attr: GraphAttrJson | undefined): number[] {
  return (attr?.list?.i ?? []).map((v) => Number(v));
}

/** "name (Op) <- ..." for the last nodes before the output, last first. */
export function describeGraphTail(nodes: readonly GraphNodeJson[], output: string, count = 5): string {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const out: string[] = [];
  let cur = byName.get(nodeName(output));
  while (cur !== undefined && out.length < count) {
    out.push(`${cur.name} (${cur.op})`);
    const first = (cur.input ?? []).find((i) => !i.startsWith('^') && byName.get(nodeName(i))?.op !== 'Const');
    cur = first === undefined ? undefined : byName.get(nodeName(first));
  }
  return out.join(' <- ');
}

/** Node lookup over one graph: the node an input names and the const tensor behind it. */
interface GraphIndex {
  byName: Map<string, GraphNodeJson>;
  /** The const tensor an input names (the model's, not owned), or undefined when it is not a Const. */
  constOf(input: string | undefined): tf.Tensor | undefined;
}

/** A matrix product found as the classifier: its node, const weight, bias and the pooled tensor it reads. */
interface MatrixProduct {
  matmul: GraphNodeJson;
  w: tf.Tensor;
  bias: tf.Tensor | undefined;
  transposeB: boolean;
  pooled: string;
}

/**
 * Finds the head of a graph model (see the module doc), or uses camstream.json's names.
 * @param nodes the GraphDef's nodes; @param output the output node; @param weights the model's consts.
 * @throws NoGapHeadError naming the last nodes; ConfigError for overrides naming missing or misshapen nodes.
 */
export function discoverGraphHead(
  nodes: readonly GraphNodeJson[],
  output: string,
  weights: GraphWeights,
  overrides: HeadOverrides,
  where: string,
): GraphHead {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const g: GraphIndex = {
    byName,
    constOf: (input) => {
      if (input === undefined) return undefined;
      const n = byName.get(nodeName(input));
      return n?.op === 'Const' ? weights[n.name]?.[0] : undefined;
    },
  };
  const noHead = (why: string): NoGapHeadError =>
    new NoGapHeadError(
      `${where}: no CAM head found (${why}). The graph ends with: ${describeGraphTail(nodes, output)}. camstream ` +
        'needs features -> Mean over H,W -> MatMul (+ BiasAdd), or a linear 1x1 Conv2D -> Mean. If the graph ' +
        'has such a head under other nodes, name it in camstream.json beside the model: {"featureTensor": ' +
        '"<node feeding the pooling>", "weights": "<const node of the classifier weights [k, C]>", "bias": ' +
        '"<const node of the bias [C]>"}.',
    );

  if (overrides.featureTensor !== undefined || overrides.weights !== undefined || overrides.bias !== undefined) {
    return fromOverrides(byName, weights, overrides, where);
  }

  let cur = byName.get(nodeName(output));
  while (cur !== undefined && SKIP_AFTER.has(cur.op)) cur = byName.get(nodeName(cur.input?.[0] ?? ''));
  if (cur === undefined) throw noHead(`output node '${output}' not found`);
  const product = matrixProductAt(g, cur);
  if (product !== undefined) return meanMatmulHead(g, product, cur.name, noHead);
  if (cur.op === 'Mean') return classConvHead(g, cur, noHead);
  throw noHead(`'${cur.name}' (${cur.op}) is neither a MatMul classifier nor a Mean`);
}

/** The MatMul (or `_FusedMatMul` with only BiasAdd) producing `logits`, past a const bias add; else undefined. */
function matrixProductAt(g: GraphIndex, logits: GraphNodeJson): MatrixProduct | undefined {
  // Split off the bias, then expect the matrix product.
  let bias: tf.Tensor | undefined;
  let matmul: GraphNodeJson | undefined = logits;
  if (logits.op === 'BiasAdd' || logits.op === 'Add' || logits.op === 'AddV2') {
    const ins = (logits.input ?? []).filter((i) => !i.startsWith('^'));
    const ci = ins.findIndex((i) => g.constOf(i) !== undefined);
    if (ci >= 0) {
      bias = g.constOf(ins[ci]);
      matmul = g.byName.get(nodeName(ins[1 - ci] ?? ''));
    }
  }
  if (matmul === undefined || matmul.attr?.transpose_a?.b) return undefined;
  const transposeB = matmul.attr?.transpose_b?.b === true;
  const pooled = matmul.input?.[0];
  let w: tf.Tensor | undefined;
  if (matmul.op === 'MatMul') {
    w = g.constOf(matmul.input?.[1]);
  } else if (matmul.op === '_FusedMatMul') {
    const ops = listStrings(matmul.attr?.fused_ops).map((s) => s.toLowerCase());
    if (ops.length === 1 && ops[0] === 'biasadd') {
      w = g.constOf(matmul.input?.[1]);
      bias = g.constOf(matmul.input?.[2]);
    }
  }
  return w !== undefined && pooled !== undefined ? { matmul, w, bias, transposeB, pooled } : undefined;
}

/** 'mean-matmul': the product must read a Mean over H and W (past shape-only ops). */
function meanMatmulHead(g: GraphIndex, p: MatrixProduct, logitsNode: string, noHead: (why: string) => NoGapHeadError): GraphHead {
  const { matmul, w } = p;
  let mean = g.byName.get(nodeName(p.pooled));
  while (mean !== undefined && SHAPE_ONLY.has(mean.op)) mean = g.byName.get(nodeName(mean.input?.[0] ?? ''));
  const layout = mean?.op === 'Mean' ? meanLayout(mean, g.constOf) : undefined;
  if (mean === undefined || layout === undefined) {
    throw noHead(`'${matmul.name}' (${matmul.op}) is not fed by a Mean over H and W`);
  }
  if (w.rank !== 2) throw noHead(`the weights of '${matmul.name}' have rank ${w.rank}, not 2`);
  return {
    kind: 'mean-matmul',
    features: mean.input![0],
    featureLayout: layout,
    logits: { from: 'tensor', tensor: logitsNode },
    ...ownedWeights(w, p.bias, p.transposeB),
    description: `${nodeName(mean.input![0])} -> ${mean.name} (Mean) -> ${matmul.name} (${matmul.op})`,
  };
}

/** 'class-conv-gap': the Mean `mean` must pool a linear 1x1, stride-1 NHWC conv (+ its const bias). */
function classConvHead(g: GraphIndex, mean: GraphNodeJson, noHead: (why: string) => NoGapHeadError): GraphHead {
  const layout = meanLayout(mean, g.constOf);
  if (layout === undefined) throw noHead(`'${mean.name}' (Mean) does not reduce over H and W`);
  let conv = g.byName.get(nodeName(mean.input?.[0] ?? ''));
  let convBias: tf.Tensor | undefined;
  if (conv && (conv.op === 'BiasAdd' || conv.op === 'Add' || conv.op === 'AddV2')) {
    convBias = g.constOf(conv.input?.[1]);
    conv = g.byName.get(nodeName(conv.input?.[0] ?? ''));
  }
  let kernel: tf.Tensor | undefined;
  if (conv?.op === 'Conv2D' && isUnitStride(conv)) {
    kernel = g.constOf(conv.input?.[1]);
  } else if (conv?.op === '_FusedConv2D' && isUnitStride(conv)) {
    const ops = listStrings(conv.attr?.fused_ops).map((s) => s.toLowerCase());
    if (ops.length === 1 && ops[0] === 'biasadd') {
      kernel = g.constOf(conv.input?.[1]);
      convBias = g.constOf(conv.input?.[2]);
    }
  }
  if (conv === undefined || kernel === undefined || kernel.rank !== 4 || kernel.shape[0] !== 1 || kernel.shape[1] !== 1) {
    throw noHead(`'${mean.name}' (Mean) pools ${conv ? `'${conv.name}' (${conv.op})` : 'nothing known'}, not a linear 1x1 conv, and no MatMul follows it`);
  }
  if (layout === 'nchw') throw noHead(`'${conv.name}' is an NCHW class conv, which camstream does not read`);
  return {
    kind: 'class-conv-gap',
    features: conv.input![0],
    featureLayout: 'nhwc',
    logits: { from: 'tensor', tensor: mean.name },
    ...ownedWeights(tf.reshape(kernel, [kernel.shape[2] as number, kernel.shape[3] as number]), convBias, false, true),
    description: `${nodeName(conv.input![0])} -> ${conv.name} (1x1 ${conv.op}) -> ${mean.name} (Mean)`,
  };
}

function isUnitStride(conv: GraphNodeJson): boolean {
  const s = listInts(conv.attr?.strides);
  const d = listInts(conv.attr?.dilations);
  const fmt = decodeString(conv.attr?.data_format?.s) || 'NHWC';
  return s.every((x) => x === 1) && d.every((x) => x === 1) && fmt.toUpperCase() === 'NHWC';
}

/** 'nhwc' when the Mean reduces axes {1, 2}, 'nchw' for {2, 3}, else undefined. */
function meanLayout(mean: GraphNodeJson, constOf: (i: string | undefined) => tf.Tensor | undefined): 'nhwc' | 'nchw' | undefined {
  const axes = constOf(mean.input?.[1]);
  if (axes === undefined) return undefined;
  // A 2-element const read once at load.
  const a = Array.from(axes.dataSync()).map(Number).map((x) => (x < 0 ? x + 4 : x)).sort();
  if (a.length === 2 && a[0] === 1 && a[1] === 2) return 'nhwc';
  if (a.length === 2 && a[0] === 2 && a[1] === 3) return 'nchw';
  return undefined;
}

/**
 * `[k, C]` weights and `[C]` bias as new tensors the caller owns. `transposeB`: the graph stores [C, k].
 * `disposeInput`: `w` is a temporary made here, freed after use.
 */
function ownedWeights(w: tf.Tensor, bias: tf.Tensor | undefined, transposeB: boolean, disposeInput = false): { weights: tf.Tensor2D; bias: tf.Tensor1D } {
  try {
    return tf.tidy(() => {
      const weights = (transposeB ? tf.transpose(w) : tf.clone(w)) as tf.Tensor2D;
      const c = weights.shape[1];
      const b = bias !== undefined ? (tf.reshape(bias, [c]) as tf.Tensor1D) : (tf.zeros([c]) as tf.Tensor1D);
      return { weights, bias: b };
    });
  } finally {
    if (disposeInput) w.dispose();
  }
}

function fromOverrides(
  byName: Map<string, GraphNodeJson>,
  weights: GraphWeights,
  o: HeadOverrides,
  where: string,
): GraphHead {
  if (o.featureTensor === undefined || o.weights === undefined) {
    throw new ConfigError(
      `${where}: camstream.json must name both 'featureTensor' and 'weights' (and optionally 'bias'), got ` +
        `featureTensor ${JSON.stringify(o.featureTensor)}, weights ${JSON.stringify(o.weights)}, bias ${JSON.stringify(o.bias)}`,
    );
  }
  if (!byName.has(nodeName(o.featureTensor))) {
    throw new ConfigError(`${where}: camstream.json field 'featureTensor' names node '${o.featureTensor}', which the graph lacks`);
  }
  const get = (name: string, field: string): tf.Tensor => {
    const t = weights[nodeName(name)]?.[0];
    if (t === undefined) throw new ConfigError(`${where}: camstream.json field '${field}' names '${name}', which is not a const node of the graph`);
    return t;
  };
  const w = get(o.weights, 'weights');
  const b = o.bias !== undefined ? get(o.bias, 'bias') : undefined;
  const okShape = w.rank === 2 || (w.rank === 4 && w.shape[0] === 1 && w.shape[1] === 1);
  if (!okShape) throw new ConfigError(`${where}: weights '${o.weights}' have shape ${JSON.stringify(w.shape)}; need [k, C] or [1, 1, k, C]`);
  const c = w.shape[w.rank - 1] as number;
  if (b !== undefined && b.size !== c) throw new ConfigError(`${where}: bias '${o.bias}' has shape ${JSON.stringify(b.shape)}; need [${c}]`);
  const w2 = w.rank === 4 ? tf.reshape(w, [w.shape[2] as number, c]) : w;
  return {
    kind: w.rank === 4 ? 'class-conv-gap' : 'mean-matmul',
    features: o.featureTensor,
    featureLayout: 'nhwc',
    logits: { from: 'features' },
    ...ownedWeights(w2, b, false, w2 !== w),
    description: `${o.featureTensor} -> GAP -> ${o.weights} (from camstream.json)`,
  };
}
