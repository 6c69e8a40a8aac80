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
import type { NetNode, NetSpec } from './spec.ts';
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
} from '../../models/onnx/proto.ts';

export interface ToOnnxOptions {
  /** Classifier form: `gemm` (Gemm, transB 0, default) or `matmul-add` (MatMul then Add). */
  headStyle?: 'gemm' | 'matmul-add';
  /** Pooling form: `globalaveragepool` (default) or `reducemean` (ReduceMean over H, W, keepdims 1). */
  gap?: 'globalaveragepool' | 'reducemean';
  /** Default-domain opset, 11 or later; default 13. From 18 on, ReduceMean takes its axes as an input. */
  opset?: number;
}

/**
 * Slope of a conv's fused `leaky` activation. The spec's conv node carries no alpha; 0.1 is Darknet's
 * leaky ReLU, the networks this activation comes from. The TF.js builder must use the same value.
 */
export const CONV_LEAKY_ALPHA = 0.1;

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

/** Serializes `spec` as an ONNX ModelProto (see the file comment for the conversions). */
export function toOnnxModel(spec: NetSpec, opts: ToOnnxOptions = {}): Uint8Array {
  const headStyle = opts.headStyle ?? 'gemm';
  const gapStyle = opts.gap ?? 'globalaveragepool';
  const opset = opts.opset ?? 13;
  if (!Number.isInteger(opset) || opset < 11) {
    throw new RangeError(`toOnnxModel: opset must be an integer >= 11, got ${opset}`);
  }

  const nodes: INodeProto[] = [];
  const initializers: ITensorProto[] = [];
  const emitted = new Map<string, Emitted>();
  emitted.set('input', { tensor: 'input', shape: [3, spec.inputSize[0], spec.inputSize[1]] });
  let clipBounds = false;

  const from = (name: string, user: string): Emitted => {
    const e = emitted.get(name);
    if (!e) throw new RangeError(`toOnnxModel: node '${user}' reads '${name}', which is not emitted before it`);
    return e;
  };
  const spatial = (e: Emitted, user: string): [number, number, number] => {
    if (e.shape.length !== 3) throw new RangeError(`toOnnxModel: node '${user}' needs a [N, C, H, W] input`);
    return e.shape as [number, number, number];
  };
  const relu6 = (input: string, output: string, name: string): INodeProto => {
    clipBounds = true;
    return node('Clip', [input, 'const/clip_min', 'const/clip_max'], [output], name);
  };

  for (const n of spec.nodes) {
    emitNode(n);
  }

  function emitNode(n: NetNode): void {
    switch (n.op) {
      case 'conv': {
        const x = from(n.input, n.name);
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
        const weights = depthwise
          ? depthwiseToOihw(n.kernelWeights, kh, kw, cin)
          : hwioToOihw(n.kernelWeights, kh, kw, cin, n.filters);
        initializers.push(floatTensor(`${n.name}/kernel`, [n.filters, depthwise ? 1 : cin, kh, kw], weights));
        const inputs = [x.tensor, `${n.name}/kernel`];
        if (n.bias) {
          initializers.push(floatTensor(`${n.name}/bias`, [n.filters], n.bias));
          inputs.push(`${n.name}/bias`);
        }
        const activation = n.activation ?? 'linear';
        const convOut = activation === 'linear' ? n.name : `${n.name}/conv`;
        nodes.push(
          node('Conv', inputs, [convOut], n.name, {
            kernel_shape: [kh, kw],
            strides: [n.strides, n.strides],
            pads: [top, left, bottom, right],
            group: depthwise ? cin : 1,
          }),
        );
        if (activation === 'relu') nodes.push(node('Relu', [convOut], [n.name], `${n.name}/relu`));
        if (activation === 'relu6') nodes.push(relu6(convOut, n.name, `${n.name}/relu6`));
        if (activation === 'leaky') {
          nodes.push(node('LeakyRelu', [convOut], [n.name], `${n.name}/leaky`, { alpha: floatAttr(CONV_LEAKY_ALPHA) }));
        }
        emitted.set(n.name, { tensor: n.name, shape: [n.filters, oh, ow] });
        return;
      }
      case 'batchnorm': {
        const x = from(n.input, n.name);
        const names = ['gamma', 'beta', 'mean', 'variance'].map((p) => `${n.name}/${p}`);
        [n.gamma, n.beta, n.mean, n.variance].forEach((data, i) => {
          initializers.push(floatTensor(names[i], [data.length], data));
        });
        nodes.push(
          node('BatchNormalization', [x.tensor, ...names], [n.name], n.name, { epsilon: floatAttr(n.epsilon) }),
        );
        emitted.set(n.name, { tensor: n.name, shape: x.shape });
        return;
      }
      case 'relu':
      case 'relu6': {
        const x = from(n.input, n.name);
        nodes.push(n.op === 'relu' ? node('Relu', [x.tensor], [n.name], n.name) : relu6(x.tensor, n.name, n.name));
        emitted.set(n.name, { tensor: n.name, shape: x.shape });
        return;
      }
      case 'leaky': {
        const x = from(n.input, n.name);
        nodes.push(node('LeakyRelu', [x.tensor], [n.name], n.name, { alpha: floatAttr(n.alpha) }));
        emitted.set(n.name, { tensor: n.name, shape: x.shape });
        return;
      }
      case 'add': {
        const a = from(n.inputs[0], n.name);
        const b = from(n.inputs[1], n.name);
        if (a.shape.join() !== b.shape.join()) {
          throw new RangeError(`toOnnxModel: add '${n.name}' of shapes [${a.shape}] and [${b.shape}]`);
        }
        nodes.push(node('Add', [a.tensor, b.tensor], [n.name], n.name));
        emitted.set(n.name, { tensor: n.name, shape: a.shape });
        return;
      }
      case 'maxpool': {
        const x = from(n.input, n.name);
        const [c, h, w] = spatial(x, n.name);
        const [oh, top, bottom] = padAxis(h, n.pool, n.strides, n.padding);
        const [ow, left, right] = padAxis(w, n.pool, n.strides, n.padding);
        nodes.push(
          node('MaxPool', [x.tensor], [n.name], n.name, {
            kernel_shape: [n.pool, n.pool],
            strides: [n.strides, n.strides],
            pads: [top, left, bottom, right],
          }),
        );
        emitted.set(n.name, { tensor: n.name, shape: [c, oh, ow] });
        return;
      }
      case 'gap': {
        const x = from(n.input, n.name);
        const [c] = spatial(x, n.name);
        const pooled = `${n.name}/pool`;
        if (gapStyle === 'globalaveragepool') {
          nodes.push(node('GlobalAveragePool', [x.tensor], [pooled], pooled));
        } else if (opset >= 18) {
          initializers.push(int64Tensor(`${n.name}/axes`, [2], [2, 3]));
          nodes.push(node('ReduceMean', [x.tensor, `${n.name}/axes`], [pooled], pooled, { keepdims: 1 }));
        } else {
          nodes.push(node('ReduceMean', [x.tensor], [pooled], pooled, { axes: [2, 3], keepdims: 1 }));
        }
        nodes.push(node('Flatten', [pooled], [n.name], n.name, { axis: 1 }));
        emitted.set(n.name, { tensor: n.name, shape: [c] });
        return;
      }
      case 'dropout': {
        emitted.set(n.name, from(n.input, n.name));
        return;
      }
      case 'flatten': {
        const x = from(n.input, n.name);
        if (x.shape.length === 1) {
          emitted.set(n.name, x);
          return;
        }
        const [c, h, w] = spatial(x, n.name);
        let flatInput = x.tensor;
        if (h * w > 1) {
          // TF flattens NHWC: channels vary fastest. Transpose so ONNX's row-major flatten agrees.
          flatInput = `${n.name}/nhwc`;
          nodes.push(node('Transpose', [x.tensor], [flatInput], flatInput, { perm: [0, 2, 3, 1] }));
        }
        nodes.push(node('Flatten', [flatInput], [n.name], n.name, { axis: 1 }));
        emitted.set(n.name, { tensor: n.name, shape: [c * h * w] });
        return;
      }
      case 'dense': {
        const x = from(n.input, n.name);
        if (x.shape.length !== 1) {
          throw new RangeError(`toOnnxModel: dense '${n.name}' needs a [N, features] input (add gap or flatten)`);
        }
        const fanIn = x.shape[0];
        if (n.kernelWeights.length !== fanIn * n.units) {
          throw new RangeError(
            `toOnnxModel: dense '${n.name}' kernel has ${n.kernelWeights.length} values, expected ${fanIn}x${n.units}`,
          );
        }
        initializers.push(floatTensor(`${n.name}/kernel`, [fanIn, n.units], n.kernelWeights));
        if (n.bias) initializers.push(floatTensor(`${n.name}/bias`, [n.units], n.bias));
        if (headStyle === 'gemm') {
          const inputs = [x.tensor, `${n.name}/kernel`, ...(n.bias ? [`${n.name}/bias`] : [])];
          nodes.push(node('Gemm', inputs, [n.name], n.name, { transB: 0 }));
        } else if (n.bias) {
          nodes.push(node('MatMul', [x.tensor, `${n.name}/kernel`], [`${n.name}/matmul`], `${n.name}/matmul`));
          nodes.push(node('Add', [`${n.name}/matmul`, `${n.name}/bias`], [n.name], n.name));
        } else {
          nodes.push(node('MatMul', [x.tensor, `${n.name}/kernel`], [n.name], n.name));
        }
        emitted.set(n.name, { tensor: n.name, shape: [n.units] });
        return;
      }
      case 'softmax': {
        const x = from(n.input, n.name);
        if (x.shape.length !== 1) throw new RangeError(`toOnnxModel: softmax '${n.name}' needs a [N, classes] input`);
        nodes.push(node('Softmax', [x.tensor], [n.name], n.name, { axis: 1 }));
        emitted.set(n.name, { tensor: n.name, shape: x.shape });
        return;
      }
      default: {
        const unknown: never = n;
        throw new RangeError(`toOnnxModel: unknown node ${JSON.stringify(unknown)}`);
      }
    }
  }

  if (clipBounds) {
    initializers.push(floatTensor('const/clip_min', [], [0]), floatTensor('const/clip_max', [], [6]));
  }

  const out = from(spec.output, 'output');
  if (out.tensor === 'input') throw new RangeError(`toOnnxModel: spec '${spec.name}' outputs its input`);
  const outputNode = spec.nodes.find((n) => n.name === spec.output);
  const outputName = outputNode?.op === 'softmax' ? 'probabilities' : 'logits';
  // Give the output tensor its public name everywhere it appears.
  for (const n of nodes) {
    n.input = (n.input ?? []).map((t) => (t === out.tensor ? outputName : t));
    n.output = (n.output ?? []).map((t) => (t === out.tensor ? outputName : t));
  }

  return encodeModel({
    irVersion: opset >= 21 ? 10 : opset >= 19 ? 9 : 8,
    producerName: 'camstream',
    opsetImport: [{ domain: '', version: opset }],
    graph: {
      name: spec.name,
      node: nodes,
      initializer: initializers,
      input: [valueInfo('input', DataType.FLOAT, ['N', 3, spec.inputSize[0], spec.inputSize[1]])],
      output: [valueInfo(outputName, DataType.FLOAT, ['N', ...out.shape])],
    },
  });
}
