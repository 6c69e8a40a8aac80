/**
 * Builds a `NetSpec` as TF.js GRAPH model artifacts: a TF GraphDef in JSON (the form tensorflowjs_converter
 * writes) with the weights as Const nodes, plus the weight specs and one weight buffer. `tf.loadGraphModel`
 * accepts them (through `tf.io.fromMemory`, or from a folder written by `writeTfGraphModel`).
 *
 * Ops emitted (NHWC, TF semantics): Placeholder, Const, Conv2D / DepthwiseConv2dNative, BiasAdd, Relu,
 * Relu6, LeakyRelu, FusedBatchNormV3 (inference: moving statistics), AddV2, MaxPool, Mean (GAP over
 * [1, 2]), Identity (dropout, flatten of a vector), Reshape (flatten of a map), MatMul, Softmax; with
 * `fuse`, also _FusedConv2D, FusedDepthwiseConv2dNative and _FusedMatMul.
 *
 * Naming: the last op of each spec node carries the node's name (so `featureTensor: "conv2"` names the same
 * tensor as in the layers model); helper ops are `<name>/<Op>`, consts `<name>/kernel`, `<name>/bias`, ...
 */
import type * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../../common/index.ts';
import type { GraphAttrJson, GraphNodeJson } from '../../models/tfjs/discover-graph.ts';
import { saveArtifactsToFolder } from '../../models/tfjs/io.ts';
import { CONV_LEAKY_ALPHA, emitterOf, type EmitterTable, type NetNode, type NetSpec, type NodeOf } from './spec.ts';

const T: GraphAttrJson = { type: 'DT_FLOAT' };
const str = (s: string): GraphAttrJson => ({ s: Buffer.from(s, 'utf8').toString('base64') });
const ints = (v: number[]): GraphAttrJson => ({ list: { i: v.map(String) } });
const NHWC = str('NHWC');
const ACTIVATION_OPS = { relu: 'Relu', relu6: 'Relu6', leaky: 'LeakyRelu' } as const;

/** Per-sample shape of a tensor: [h, w, c] for maps, [c] for vectors. */
type Shape = number[];

class GraphWriter {
  readonly nodes: GraphNodeJson[] = [];
  readonly specs: tf.io.WeightsManifestEntry[] = [];
  private readonly chunks: Uint8Array[] = [];
  private readonly names = new Set<string>();

  private add(node: GraphNodeJson): string {
    if (this.names.has(node.name)) throw new ConfigError(`graph builder: duplicate node name '${node.name}'`);
    this.names.add(node.name);
    this.nodes.push(node);
    return node.name;
  }

  constant(name: string, values: Float32Array | Int32Array, shape: number[]): string {
    const dtype = values instanceof Int32Array ? 'int32' : 'float32';
    const tfType = dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT';
    this.specs.push({ name, shape, dtype });
    this.chunks.push(new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)));
    return this.add({
      name,
      op: 'Const',
      attr: {
        dtype: { type: tfType },
        value: { tensor: { dtype: tfType, tensorShape: { dim: shape.map((s) => ({ size: String(s) })) } } },
      },
    });
  }

  op(name: string, op: string, input: string[], attr: Record<string, GraphAttrJson> = {}): string {
    return this.add({ name, op, input, attr });
  }

  weightData(): ArrayBuffer {
    const total = this.chunks.reduce((a, c) => a + c.byteLength, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.byteLength;
    }
    return out.buffer;
  }
}

function outSide(size: number, k: number, s: number, padding: 'same' | 'valid'): number {
  return padding === 'same' ? Math.ceil(size / s) : Math.ceil((size - k + 1) / s);
}

export interface ToTfGraphOptions {
  /**
   * Emit the fused ops tensorflowjs_converter writes for inference graphs: a conv with a bias becomes
   * `_FusedConv2D` / `FusedDepthwiseConv2dNative` (`fused_ops = [BiasAdd, <activation>]`), a dense with a
   * bias `_FusedMatMul` (`fused_ops = [BiasAdd]`). Default false (one TF op per step).
   */
  fuse?: boolean;
}

/** A tensor of the graph: its node name and per-sample shape. */
interface GraphTensor {
  name: string;
  shape: Shape;
}

/** One TF op of a spec node's chain (see `emit`). */
interface Step {
  op: string;
  inputs: string[];
  attr?: Record<string, GraphAttrJson>;
  suffix: string;
}

/** The graph being built: the writer, each spec node's output tensor and the options. */
interface GraphBuild {
  readonly g: GraphWriter;
  readonly spec: NetSpec;
  readonly tensors: Map<string, GraphTensor>;
  readonly fuse: boolean;
}

/**
 * Makes graph-model artifacts for `spec` (format 'graph-model'). The weight buffer is a fresh copy.
 * @throws ConfigError for unknown inputs, wrong weight lengths, or a flatten the graph cannot express.
 */
export function toTfGraphArtifacts(spec: NetSpec, options: ToTfGraphOptions = {}): tf.io.ModelArtifacts {
  const g = new GraphWriter();
  const [H, W] = spec.inputSize;
  g.op('input', 'Placeholder', [], {
    dtype: T,
    shape: { shape: { dim: [-1, H, W, 3].map((s) => ({ size: String(s) })) } },
  });
  const b: GraphBuild = { g, spec, tensors: new Map([['input', { name: 'input', shape: [H, W, 3] }]]), fuse: options.fuse === true };
  for (const n of spec.nodes) {
    const emitNode = emitterOf(GRAPH_EMITTERS, n);
    if (!emitNode) throw new ConfigError(`NetSpec ${spec.name}: unsupported op '${(n as NetNode).op}'`);
    b.tensors.set(n.name, { name: n.name, shape: emitNode(n, b) });
  }
  get(b, spec.output, 'output');
  checkSingleEnd(g, spec);
  return {
    modelTopology: { node: g.nodes, library: {}, versions: { producer: 1 } },
    format: 'graph-model',
    generatedBy: 'camstream to-tf-graph',
    convertedBy: null,
    weightSpecs: g.specs,
    weightData: g.weightData(),
  };
}

/** The converter treats nodes without consumers as outputs: the spec's output must be the only one. */
function checkSingleEnd(g: GraphWriter, spec: NetSpec): void {
  const consumed = new Set(g.nodes.flatMap((n) => (n.input ?? []).map((i) => i.replace(/:\d+$/, ''))));
  const ends = g.nodes.filter((n) => n.op !== 'Const' && !consumed.has(n.name)).map((n) => n.name);
  if (ends.length !== 1 || ends[0] !== spec.output) {
    throw new ConfigError(`NetSpec ${spec.name}: the graph must end only in '${spec.output}', it ends in ${ends.join(', ')}`);
  }
}

/** The output of an earlier node; `by` names the reader, for the error. */
function get(b: GraphBuild, name: string, by: string): GraphTensor {
  const t = b.tensors.get(name);
  if (t === undefined) throw new ConfigError(`NetSpec ${b.spec.name}: node '${by}' reads unknown node '${name}'`);
  return t;
}

/** Throws a ConfigError unless `arr` holds `size` values. */
function expectLength(b: GraphBuild, node: string, what: string, arr: Float32Array, size: number): void {
  if (arr.length !== size) throw new ConfigError(`NetSpec ${b.spec.name}: ${what} of '${node}' has ${arr.length} values, expected ${size}`);
}

function emitConv(n: NodeOf<'conv'>, b: GraphBuild): Shape {
  const { g, spec } = b;
  const x = get(b, n.input, n.name);
  if (x.shape.length !== 3) throw new ConfigError(`NetSpec ${spec.name}: conv '${n.name}' needs a feature map input`);
  const [h, w, cin] = x.shape;
  const [kh, kw] = n.kernel;
  const cout = n.depthwise ? cin : n.filters;
  if (n.depthwise && n.filters !== cin) throw new ConfigError(`NetSpec ${spec.name}: depthwise conv '${n.name}' has ${n.filters} filters for ${cin} channels`);
  expectLength(b, n.name, 'kernelWeights', n.kernelWeights, kh * kw * cin * (n.depthwise ? 1 : n.filters));
  const kernel = g.constant(`${n.name}/kernel`, n.kernelWeights, [kh, kw, cin, n.depthwise ? 1 : n.filters]);
  const convAttr: Record<string, GraphAttrJson> = {
    T,
    strides: ints([1, n.strides, n.strides, 1]),
    padding: str(n.padding.toUpperCase()),
    data_format: NHWC,
    dilations: ints([1, 1, 1, 1]),
  };
  const act = n.activation === undefined || n.activation === 'linear' ? undefined : ACTIVATION_OPS[n.activation];
  if (n.bias !== undefined) expectLength(b, n.name, 'bias', n.bias, cout);
  const steps: Step[] = [];
  if (b.fuse && n.bias !== undefined) {
    const bias = g.constant(`${n.name}/bias`, n.bias, [cout]);
    steps.push({
      op: n.depthwise ? 'FusedDepthwiseConv2dNative' : '_FusedConv2D',
      inputs: [kernel, bias],
      attr: {
        ...convAttr,
        num_args: { i: '1' },
        fused_ops: { list: { s: ['BiasAdd', ...(act ? [act] : [])].map((o) => str(o).s!) } },
        epsilon: { f: 0 },
        leakyrelu_alpha: { f: CONV_LEAKY_ALPHA },
      },
      suffix: 'FusedConv',
    });
  } else {
    steps.push({ op: n.depthwise ? 'DepthwiseConv2dNative' : 'Conv2D', inputs: [kernel], attr: convAttr, suffix: n.depthwise ? 'depthwise' : 'Conv2D' });
    if (n.bias !== undefined) steps.push(biasAddStep(g, n.name, n.bias, cout));
    if (act === 'LeakyRelu') steps.push({ op: act, inputs: [], attr: { T, alpha: { f: CONV_LEAKY_ALPHA } }, suffix: act });
    else if (act) steps.push({ op: act, inputs: [], attr: { T }, suffix: act });
  }
  emit(g, n.name, x.name, steps);
  return [outSide(h, kh, n.strides, n.padding), outSide(w, kw, n.strides, n.padding), cout];
}

/** A BiasAdd step over a new `<name>/bias` constant. */
function biasAddStep(g: GraphWriter, name: string, bias: Float32Array, size: number): Step {
  return { op: 'BiasAdd', inputs: [g.constant(`${name}/bias`, bias, [size])], attr: { T, data_format: NHWC }, suffix: 'BiasAdd' };
}

function emitBatchnorm(n: NodeOf<'batchnorm'>, b: GraphBuild): Shape {
  const x = get(b, n.input, n.name);
  const c = x.shape[x.shape.length - 1];
  for (const [what, arr] of [['gamma', n.gamma], ['beta', n.beta], ['mean', n.mean], ['variance', n.variance]] as const) {
    expectLength(b, n.name, what, arr, c);
  }
  const consts = (['gamma', 'beta', 'moving_mean', 'moving_variance'] as const).map((what, i) =>
    b.g.constant(`${n.name}/${what}`, [n.gamma, n.beta, n.mean, n.variance][i], [c]),
  );
  emit(b.g, n.name, x.name, [
    {
      op: 'FusedBatchNormV3',
      inputs: consts,
      attr: { T, U: T, epsilon: { f: n.epsilon }, data_format: NHWC, is_training: { b: false } },
      suffix: 'FusedBatchNormV3',
    },
  ]);
  return x.shape;
}

/** A node that is one TF op over its input, keeping its shape. */
function emitUnary(b: GraphBuild, n: { name: string; input: string }, op: string, attr: Record<string, GraphAttrJson>): Shape {
  const x = get(b, n.input, n.name);
  b.g.op(n.name, op, [x.name], attr);
  return x.shape;
}

function emitMaxpool(n: NodeOf<'maxpool'>, b: GraphBuild): Shape {
  const x = get(b, n.input, n.name);
  const [h, w, c] = x.shape;
  b.g.op(n.name, 'MaxPool', [x.name], {
    T,
    ksize: ints([1, n.pool, n.pool, 1]),
    strides: ints([1, n.strides, n.strides, 1]),
    padding: str(n.padding.toUpperCase()),
    data_format: NHWC,
  });
  return [outSide(h, n.pool, n.strides, n.padding), outSide(w, n.pool, n.strides, n.padding), c];
}

function emitGap(n: NodeOf<'gap'>, b: GraphBuild): Shape {
  const x = get(b, n.input, n.name);
  if (x.shape.length !== 3) throw new ConfigError(`NetSpec ${b.spec.name}: gap '${n.name}' needs a feature map input`);
  const axes = b.g.constant(`${n.name}/reduction_indices`, Int32Array.from([1, 2]), [2]);
  b.g.op(n.name, 'Mean', [x.name, axes], { T, Tidx: { type: 'DT_INT32' }, keep_dims: { b: false } });
  return [x.shape[2]];
}

function emitFlatten(n: NodeOf<'flatten'>, b: GraphBuild): Shape {
  const x = get(b, n.input, n.name);
  const size = x.shape.reduce((p, q) => p * q, 1);
  if (x.shape.length === 1) {
    b.g.op(n.name, 'Identity', [x.name], { T });
  } else {
    const target = b.g.constant(`${n.name}/shape`, Int32Array.from([-1, size]), [2]);
    b.g.op(n.name, 'Reshape', [x.name, target], { T, Tshape: { type: 'DT_INT32' } });
  }
  return [size];
}

function emitDense(n: NodeOf<'dense'>, b: GraphBuild): Shape {
  const { g, spec } = b;
  const x = get(b, n.input, n.name);
  if (x.shape.length !== 1) throw new ConfigError(`NetSpec ${spec.name}: dense '${n.name}' needs a vector input (add gap or flatten)`);
  const cin = x.shape[0];
  expectLength(b, n.name, 'kernelWeights', n.kernelWeights, cin * n.units);
  const kernel = g.constant(`${n.name}/kernel`, n.kernelWeights, [cin, n.units]);
  const mm = { T, transpose_a: { b: false }, transpose_b: { b: false } };
  if (n.bias !== undefined) expectLength(b, n.name, 'bias', n.bias, n.units);
  const steps: Step[] = [];
  if (b.fuse && n.bias !== undefined) {
    const bias = g.constant(`${n.name}/bias`, n.bias, [n.units]);
    steps.push({
      op: '_FusedMatMul',
      inputs: [kernel, bias],
      attr: { ...mm, num_args: { i: '1' }, fused_ops: { list: { s: [str('BiasAdd').s!] } }, epsilon: { f: 0 }, leakyrelu_alpha: { f: 0.2 } },
      suffix: 'FusedMatMul',
    });
  } else {
    steps.push({ op: 'MatMul', inputs: [kernel], attr: mm, suffix: 'MatMul' });
    if (n.bias !== undefined) steps.push(biasAddStep(g, n.name, n.bias, n.units));
  }
  emit(g, n.name, x.name, steps);
  return [n.units];
}

/** One emitter per spec op; each adds the node's ops (the last one named as the node) and returns its shape. */
const GRAPH_EMITTERS: EmitterTable<GraphBuild, Shape> = {
  conv: emitConv,
  batchnorm: emitBatchnorm,
  relu: (n, b) => emitUnary(b, n, 'Relu', { T }),
  relu6: (n, b) => emitUnary(b, n, 'Relu6', { T }),
  leaky: (n, b) => emitUnary(b, n, 'LeakyRelu', { T, alpha: { f: n.alpha } }),
  add: (n, b) => {
    const x = get(b, n.inputs[0], n.name);
    const y = get(b, n.inputs[1], n.name);
    b.g.op(n.name, 'AddV2', [x.name, y.name], { T });
    return x.shape;
  },
  maxpool: emitMaxpool,
  gap: emitGap,
  dropout: (n, b) => emitUnary(b, n, 'Identity', { T }),
  flatten: emitFlatten,
  dense: emitDense,
  softmax: (n, b) => emitUnary(b, n, 'Softmax', { T }),
};

/** Chains `steps` after `input`: the first step reads `input` (then its own extra inputs), the last is `name`. */
function emit(g: GraphWriter, name: string, input: string, steps: readonly Step[]): void {
  let prev = input;
  steps.forEach((s, i) => {
    const nodeName = i === steps.length - 1 ? name : `${name}/${s.suffix}`;
    prev = g.op(nodeName, s.op, [prev, ...s.inputs], s.attr);
  });
}

/** Writes the spec as a graph-model folder (`model.json` + one weight shard) for the file loader. */
export async function writeTfGraphModel(spec: NetSpec, folder: string, options: ToTfGraphOptions = {}): Promise<void> {
  await saveArtifactsToFolder(folder, toTfGraphArtifacts(spec, options));
}
