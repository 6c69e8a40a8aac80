/**
 * The ONNX form of a `NetSpec`: the same network, with the same weights, as a serialized ModelProto, so
 * that tests and benches can run one network through both engines.
 *
 * The spec follows TF's conventions (NHWC activations, HWIO kernels, `same` padding with the extra pixel at
 * the bottom/right); the ONNX graph is NCHW, the layout ONNX operators and ONNX Runtime's CPU kernels use.
 * Conversions, node by node:
 * - conv: HWIO -> OIHW kernel (depthwise HWC1 -> C1HW with `group = cin`); `same` padding as explicit pads
 *   computed the way TF does (total = max((out - 1) * stride + kernel - in, 0), the odd pixel after);
 *   the fused activation as a separate node.
 * - batchnorm -> BatchNormalization; relu -> Relu; relu6 -> Clip(0, 6); leaky -> LeakyRelu; add -> Add;
 *   maxpool -> MaxPool (padding positions never win, as in TF).
 * - gap -> GlobalAveragePool (or ReduceMean over axes [2, 3], keepdims 1) -> Flatten: TF's GAP yields
 *   `[N, C]` directly.
 * - flatten of a `[N, C, H, W]` tensor transposes to NHWC first so the flat order matches TF's.
 * - dense -> Gemm with the `[in, out]` kernel (transB = 0) or MatMul + Add; dropout -> nothing (inference).
 * - softmax -> Softmax over the class axis.
 * The graph input is `input`, float32 `[N, 3, H, W]` with a symbolic batch `N`; the graph output is
 * `logits`, or `probabilities` when the spec's output node is a softmax.
 */
import { CONV_LEAKY_ALPHA, emitterOf, type EmitterTable, type NetSpec, type NodeOf } from './spec.ts';
import {
  DataType,
  encodeModel,
  floatAttr,
  floatTensor,
  int64Tensor,
  node,
  valueInfo,
  type INodeProto,
  type ITensorProto,
} from '../../models/onnx/index.ts';

export interface ToOnnxOptions {
  /** Classifier form: `gemm` (Gemm, transB 0, default) or `matmul-add` (MatMul then Add). */
  headStyle?: 'gemm' | 'matmul-add';
  /** Pooling form: `globalaveragepool` (default) or `reducemean` (ReduceMean over H, W, keepdims 1). */
  gap?: 'globalaveragepool' | 'reducemean';
  /** Default-domain opset, 11 or later; default 13. From 18 on, ReduceMean takes its axes as an input. */
  opset?: number;
}

/** Shape of an emitted tensor without the batch axis: `[c, h, w]` (NCHW) or `[c]`. */
type Shape = number[];

interface Emitted {
  tensor: string;
  shape: Shape;
}

/** TF's `same`/`valid` output size and the [before, after] padding for one spatial axis. */
function padAxis(size: number, kernel: number, stride: number, padding: 'same' | 'valid'): [number, number, number] {
  if (padding === 'valid') {
    const out = Math.floor((size - kernel) / stride) + 1;
    return [out, 0, 0];
  }
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  const before = Math.floor(total / 2);
  return [out, before, total - before];
}

/** HWIO `[kh, kw, cin, cout]` -> OIHW `[cout, cin, kh, kw]`. */
function hwioToOihw(src: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  const dst = new Float32Array(src.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < cin; i++) {
        const from = ((y * kw + x) * cin + i) * cout;
        for (let o = 0; o < cout; o++) dst[((o * cin + i) * kh + y) * kw + x] = src[from + o];
      }
    }
  }
  return dst;
}

/** Depthwise HWC1 `[kh, kw, c, 1]` -> `[c, 1, kh, kw]`. */
function depthwiseToOihw(src: Float32Array, kh: number, kw: number, c: number): Float32Array {
  const dst = new Float32Array(src.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < c; i++) dst[(i * kh + y) * kw + x] = src[(y * kw + x) * c + i];
    }
  }
  return dst;
}

/** The graph being built: its nodes and initializers so far, and each spec node's output tensor. */
interface OnnxBuild {
  readonly nodes: INodeProto[];
  readonly initializers: ITensorProto[];
  readonly emitted: Map<string, Emitted>;
  readonly headStyle: 'gemm' | 'matmul-add';
  readonly gapStyle: 'globalaveragepool' | 'reducemean';
  readonly opset: number;
  /** Set when a Clip node needs the shared bounds initializers. */
  clipBounds: boolean;
}

/** Serializes `spec` as an ONNX ModelProto (see the file comment for the conversions). */
export function toOnnxModel(spec: NetSpec, opts: ToOnnxOptions = {}): Uint8Array {
  const opset = opts.opset ?? 13;
  if (!Number.isInteger(opset) || opset < 11) {
    throw new RangeError(`toOnnxModel: opset must be an integer >= 11, got ${opset}`);
  }
  const b: OnnxBuild = {
    nodes: [],
    initializers: [],
    emitted: new Map([['input', { tensor: 'input', shape: [3, spec.inputSize[0], spec.inputSize[1]] }]]),
    headStyle: opts.headStyle ?? 'gemm',
    gapStyle: opts.gap ?? 'globalaveragepool',
    opset,
    clipBounds: false,
  };
  for (const n of spec.nodes) {
    const emit = emitterOf(ONNX_EMITTERS, n);
    if (!emit) throw new RangeError(`toOnnxModel: unknown node ${JSON.stringify(n)}`);
    emit(n, b);
  }
  if (b.clipBounds) {
    b.initializers.push(floatTensor('const/clip_min', [], [0]), floatTensor('const/clip_max', [], [6]));
  }
  const { name: outputName, shape } = publishOutput(spec, b);
  return encodeModel({
    irVersion: opset >= 21 ? 10 : opset >= 19 ? 9 : 8,
    producerName: 'camstream',
    opsetImport: [{ domain: '', version: opset }],
    graph: {
      name: spec.name,
      node: b.nodes,
      initializer: b.initializers,
      input: [valueInfo('input', DataType.FLOAT, ['N', 3, spec.inputSize[0], spec.inputSize[1]])],
      output: [valueInfo(outputName, DataType.FLOAT, ['N', ...shape])],
    },
  });
}

/** Renames the spec's output tensor to its public name (`logits`, or `probabilities` after a softmax) everywhere. */
function publishOutput(spec: NetSpec, b: OnnxBuild): { name: string; shape: Shape } {
  const out = from(b, spec.output, 'output');
  if (out.tensor === 'input') throw new RangeError(`toOnnxModel: spec '${spec.name}' outputs its input`);
  const outputNode = spec.nodes.find((n) => n.name === spec.output);
  const name = outputNode?.op === 'softmax' ? 'probabilities' : 'logits';
  for (const n of b.nodes) {
    n.input = (n.input ?? []).map((t) => (t === out.tensor ? name : t));
    n.output = (n.output ?? []).map((t) => (t === out.tensor ? name : t));
  }
  return { name, shape: out.shape };
}

/** The tensor a spec node produced; `user` names the node that reads it, for the error. */
function from(b: OnnxBuild, name: string, user: string): Emitted {
  const e = b.emitted.get(name);
  if (!e) throw new RangeError(`toOnnxModel: node '${user}' reads '${name}', which is not emitted before it`);
  return e;
}

/** `[c, h, w]` of a feature-map tensor, or a RangeError naming `user`. */
function spatial(e: Emitted, user: string): [number, number, number] {
  if (e.shape.length !== 3) throw new RangeError(`toOnnxModel: node '${user}' needs a [N, C, H, W] input`);
  return e.shape as [number, number, number];
}

/** ReLU6 as Clip(0, 6) over the shared bounds. */
function relu6(b: OnnxBuild, input: string, output: string, name: string): INodeProto {
  b.clipBounds = true;
  return node('Clip', [input, 'const/clip_min', 'const/clip_max'], [output], name);
}

function emitConv(n: NodeOf<'conv'>, b: OnnxBuild): void {
  const x = from(b, n.input, n.name);
  const [cin, h, w] = spatial(x, n.name);
  const [kh, kw] = n.kernel;
  const [oh, top, bottom] = padAxis(h, kh, n.strides, n.padding);
  const [ow, left, right] = padAxis(w, kw, n.strides, n.padding);
  const depthwise = n.depthwise ?? false;
  if (depthwise && n.filters !== cin) {
    throw new RangeError(`toOnnxModel: depthwise conv '${n.name}' has ${n.filters} filters for ${cin} channels`);
  }
  const expected = kh * kw * cin * (depthwise ? 1 : n.filters);
  if (n.kernelWeights.length !== expected) {
    throw new RangeError(`toOnnxModel: conv '${n.name}' kernel has ${n.kernelWeights.length} values, expected ${expected}`);
  }
  const weights = depthwise ? depthwiseToOihw(n.kernelWeights, kh, kw, cin) : hwioToOihw(n.kernelWeights, kh, kw, cin, n.filters);
  b.initializers.push(floatTensor(`${n.name}/kernel`, [n.filters, depthwise ? 1 : cin, kh, kw], weights));
  const inputs = [x.tensor, `${n.name}/kernel`];
  if (n.bias) {
    b.initializers.push(floatTensor(`${n.name}/bias`, [n.filters], n.bias));
    inputs.push(`${n.name}/bias`);
  }
  const activation = n.activation ?? 'linear';
  const convOut = activation === 'linear' ? n.name : `${n.name}/conv`;
  b.nodes.push(
    node('Conv', inputs, [convOut], n.name, {
      kernel_shape: [kh, kw],
      strides: [n.strides, n.strides],
      pads: [top, left, bottom, right],
      group: depthwise ? cin : 1,
    }),
  );
  if (activation === 'relu') b.nodes.push(node('Relu', [convOut], [n.name], `${n.name}/relu`));
  if (activation === 'relu6') b.nodes.push(relu6(b, convOut, n.name, `${n.name}/relu6`));
  if (activation === 'leaky') {
    b.nodes.push(node('LeakyRelu', [convOut], [n.name], `${n.name}/leaky`, { alpha: floatAttr(CONV_LEAKY_ALPHA) }));
  }
  b.emitted.set(n.name, { tensor: n.name, shape: [n.filters, oh, ow] });
}

function emitBatchnorm(n: NodeOf<'batchnorm'>, b: OnnxBuild): void {
  const x = from(b, n.input, n.name);
  const names = ['gamma', 'beta', 'mean', 'variance'].map((p) => `${n.name}/${p}`);
  [n.gamma, n.beta, n.mean, n.variance].forEach((data, i) => {
    b.initializers.push(floatTensor(names[i], [data.length], data));
  });
  b.nodes.push(node('BatchNormalization', [x.tensor, ...names], [n.name], n.name, { epsilon: floatAttr(n.epsilon) }));
  b.emitted.set(n.name, { tensor: n.name, shape: x.shape });
}

function emitRelu(n: NodeOf<'relu' | 'relu6'>, b: OnnxBuild): void {
  const x = from(b, n.input, n.name);
  b.nodes.push(n.op === 'relu' ? node('Relu', [x.tensor], [n.name], n.name) : relu6(b, x.tensor, n.name, n.name));
  b.emitted.set(n.name, { tensor: n.name, shape: x.shape });
}

function emitLeaky(n: NodeOf<'leaky'>, b: OnnxBuild): void {
  const x = from(b, n.input, n.name);
  b.nodes.push(node('LeakyRelu', [x.tensor], [n.name], n.name, { alpha: floatAttr(n.alpha) }));
  b.emitted.set(n.name, { tensor: n.name, shape: x.shape });
}

function emitAdd(n: NodeOf<'add'>, b: OnnxBuild): void {
  const x = from(b, n.inputs[0], n.name);
  const y = from(b, n.inputs[1], n.name);
  if (x.shape.join() !== y.shape.join()) {
    throw new RangeError(`toOnnxModel: add '${n.name}' of shapes [${x.shape}] and [${y.shape}]`);
  }
  b.nodes.push(node('Add', [x.tensor, y.tensor], [n.name], n.name));
  b.emitted.set(n.name, { tensor: n.name, shape: x.shape });
}

function emitMaxpool(n: NodeOf<'maxpool'>, b: OnnxBuild): void {
  const x = from(b, n.input, n.name);
  const [c, h, w] = spatial(x, n.name);
  const [oh, top, bottom] = padAxis(h, n.pool, n.strides, n.padding);
  const [ow, left, right] = padAxis(w, n.pool, n.strides, n.padding);
  b.nodes.push(
    node('MaxPool', [x.tensor], [n.name], n.name, {
      kernel_shape: [n.pool, n.pool],
      strides: [n.strides, n.strides],
      pads: [top, left, bottom, right],
    }),
  );
  b.emitted.set(n.name, { tensor: n.name, shape: [c, oh, ow] });
}

function emitGap(n: NodeOf<'gap'>, b: OnnxBuild): void {
  const x = from(b, n.input, n.name);
  const [c] = spatial(x, n.name);
  const pooled = `${n.name}/pool`;
  if (b.gapStyle === 'globalaveragepool') {
    b.nodes.push(node('GlobalAveragePool', [x.tensor], [pooled], pooled));
  } else if (b.opset >= 18) {
    b.initializers.push(int64Tensor(`${n.name}/axes`, [2], [2, 3]));
    b.nodes.push(node('ReduceMean', [x.tensor, `${n.name}/axes`], [pooled], pooled, { keepdims: 1 }));
  } else {
    b.nodes.push(node('ReduceMean', [x.tensor], [pooled], pooled, { axes: [2, 3], keepdims: 1 }));
  }
  b.nodes.push(node('Flatten', [pooled], [n.name], n.name, { axis: 1 }));
  b.emitted.set(n.name, { tensor: n.name, shape: [c] });
}

function emitDropout(n: NodeOf<'dropout'>, b: OnnxBuild): void {
  b.emitted.set(n.name, from(b, n.input, n.name));
}

function emitFlatten(n: NodeOf<'flatten'>, b: OnnxBuild): void {
  const x = from(b, n.input, n.name);
  if (x.shape.length === 1) {
    b.emitted.set(n.name, x);
    return;
  }
  const [c, h, w] = spatial(x, n.name);
  let flatInput = x.tensor;
  if (h * w > 1) {
    // TF flattens NHWC: channels vary fastest. Transpose so ONNX's row-major flatten agrees.
    flatInput = `${n.name}/nhwc`;
    b.nodes.push(node('Transpose', [x.tensor], [flatInput], flatInput, { perm: [0, 2, 3, 1] }));
  }
  b.nodes.push(node('Flatten', [flatInput], [n.name], n.name, { axis: 1 }));
  b.emitted.set(n.name, { tensor: n.name, shape: [c * h * w] });
}

function emitDense(n: NodeOf<'dense'>, b: OnnxBuild): void {
  const x = from(b, n.input, n.name);
  if (x.shape.length !== 1) {
    throw new RangeError(`toOnnxModel: dense '${n.name}' needs a [N, features] input (add gap or flatten)`);
  }
  const fanIn = x.shape[0];
  if (n.kernelWeights.length !== fanIn * n.units) {
    throw new RangeError(`toOnnxModel: dense '${n.name}' kernel has ${n.kernelWeights.length} values, expected ${fanIn}x${n.units}`);
  }
  b.initializers.push(floatTensor(`${n.name}/kernel`, [fanIn, n.units], n.kernelWeights));
  if (n.bias) b.initializers.push(floatTensor(`${n.name}/bias`, [n.units], n.bias));
  if (b.headStyle === 'gemm') {
    const inputs = [x.tensor, `${n.name}/kernel`, ...(n.bias ? [`${n.name}/bias`] : [])];
    b.nodes.push(node('Gemm', inputs, [n.name], n.name, { transB: 0 }));
  } else if (n.bias) {
    b.nodes.push(node('MatMul', [x.tensor, `${n.name}/kernel`], [`${n.name}/matmul`], `${n.name}/matmul`));
    b.nodes.push(node('Add', [`${n.name}/matmul`, `${n.name}/bias`], [n.name], n.name));
  } else {
    b.nodes.push(node('MatMul', [x.tensor, `${n.name}/kernel`], [n.name], n.name));
  }
  b.emitted.set(n.name, { tensor: n.name, shape: [n.units] });
}

function emitSoftmax(n: NodeOf<'softmax'>, b: OnnxBuild): void {
  const x = from(b, n.input, n.name);
  if (x.shape.length !== 1) throw new RangeError(`toOnnxModel: softmax '${n.name}' needs a [N, classes] input`);
  b.nodes.push(node('Softmax', [x.tensor], [n.name], n.name, { axis: 1 }));
  b.emitted.set(n.name, { tensor: n.name, shape: x.shape });
}

/** One emitter per spec op; each appends its ONNX nodes and initializers and records its output. */
const ONNX_EMITTERS: EmitterTable<OnnxBuild, void> = {
  conv: emitConv,
  batchnorm: emitBatchnorm,
  relu: emitRelu,
  relu6: emitRelu,
  leaky: emitLeaky,
  add: emitAdd,
  maxpool: emitMaxpool,
  gap: emitGap,
  dropout: emitDropout,
  flatten: emitFlatten,
  dense: emitDense,
  softmax: emitSoftmax,
};
