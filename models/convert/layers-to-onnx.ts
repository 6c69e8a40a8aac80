/**
 * TF.js layers (Keras) to ONNX: the same network with the same weights as an NCHW ONNX graph (opset 13),
 * so that a TF.js model can run on ONNX Runtime and be quantized.
 *
 * Layer by layer (channels_last only; the graph input becomes float `[N, 3, H, W]`):
 * - Conv2D: HWIO kernel to OIHW; DepthwiseConv2D: `[kh, kw, c, m]` to `[c * m, 1, kh, kw]` with
 *   `group = c`. TF's `same` padding becomes explicit pads (total = max((out - 1) * stride + extent - in, 0),
 *   the odd pixel after), dilation is kept; the fused activation follows as its own node.
 * - BatchNormalization -> BatchNormalization (gamma 1 / beta 0 when scale / center are off).
 * - ReLU (max_value -> Clip, negative_slope -> LeakyRelu), LeakyReLU, Activation, fused activations:
 *   Relu, Clip(0, 6), LeakyRelu, Sigmoid, Tanh, Softmax (axis 1 on `[N, F]`), linear -> nothing.
 * - MaxPooling2D / AveragePooling2D -> MaxPool / AveragePool (padding never counts, as in TF).
 * - Add -> Add (chained for more inputs); Concatenate -> Concat over channels.
 * - GlobalAveragePooling2D -> GlobalAveragePool + Flatten; Dense -> Gemm (`[in, out]` kernel).
 * - Dropout -> nothing; Flatten -> Transpose to NHWC then Flatten (TF's element order);
 *   ZeroPadding2D -> Pad.
 * Every tensor is named after its layer, so camstream.json names (featureTensor) still match.
 */
import { ModelLoadError } from '../../common/errors.ts';
import { DataType, encodeModel, floatAttr, floatTensor, int64Tensor, node, valueInfo, type INodeProto, type ITensorProto } from '../onnx/proto.ts';
import type { KerasLayer, KerasModel } from './keras-topology.ts';

/** Opset of converted models (per-axis QDQ, needed by quantization, starts at 13). */
export const CONVERT_OPSET = 13;

/** A layer's output: tensor name and shape without the batch (`[c, h, w]` or `[f]`). */
interface Out {
  tensor: string;
  shape: number[];
}

interface Build {
  model: KerasModel;
  nodes: INodeProto[];
  inits: ITensorProto[];
  outs: Map<string, Out>;
  where: string;
}

function pair(v: unknown, fallback: number): [number, number] {
  if (v === undefined || v === null) return [fallback, fallback];
  return Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];
}

/** Output size and [before, after] pads of one axis under TF's rules (`extent` = dilated kernel). */
function tfPad(size: number, extent: number, stride: number, padding: unknown): [number, number, number] {
  if (padding === 'valid') return [Math.floor((size - extent) / stride) + 1, 0, 0];
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + extent - size, 0);
  return [out, Math.floor(total / 2), total - Math.floor(total / 2)];
}

function weight(b: Build, layer: KerasLayer, part: string): Float32Array {
  const exact = b.model.weights.get(`${layer.name}/${part}`);
  const found = exact ?? [...b.model.weights].find(([k]) => k.endsWith(`/${layer.name}/${part}`))?.[1];
  if (!found) throw new ModelLoadError(`${b.where}: layer '${layer.name}' has no weight '${part}'`);
  return found.data;
}

function input(b: Build, layer: KerasLayer, i = 0): Out {
  const out = b.outs.get(layer.inputs[i]);
  if (!out) throw new ModelLoadError(`${b.where}: layer '${layer.name}' reads '${layer.inputs[i]}', which is not converted before it`);
  return out;
}

function spatial(b: Build, layer: KerasLayer, x: Out): [number, number, number] {
  if (x.shape.length !== 3) throw new ModelLoadError(`${b.where}: layer '${layer.name}' needs a 4-D input, got [N, ${x.shape.join(', ')}]`);
  return x.shape as [number, number, number];
}

/** Appends the node(s) of activation `name` from `from` to `to`; returns false for an unknown activation. */
function activation(b: Build, name: string, from: string, to: string, alpha = 0.3): boolean {
  const ops: Record<string, () => INodeProto> = {
    relu: () => node('Relu', [from], [to], to),
    relu6: () => clip(b, from, to, 6),
    leaky_relu: () => node('LeakyRelu', [from], [to], to, { alpha: floatAttr(alpha) }),
    sigmoid: () => node('Sigmoid', [from], [to], to),
    tanh: () => node('Tanh', [from], [to], to),
    softmax: () => node('Softmax', [from], [to], to, { axis: 1 }),
  };
  const op = Object.hasOwn(ops, name) ? ops[name] : undefined;
  if (!op) return false;
  b.nodes.push(op());
  return true;
}

function clip(b: Build, from: string, to: string, max: number): INodeProto {
  b.inits.push(floatTensor(`${to}/min`, [], [0]), floatTensor(`${to}/max`, [], [max]));
  return node('Clip', [from, `${to}/min`, `${to}/max`], [to], to);
}

/** The fused `activation` of a layer: `raw` is the pre-activation tensor, the layer's name the result. */
function finish(b: Build, layer: KerasLayer, raw: string, shape: number[]): void {
  const act = String(layer.config.activation ?? 'linear');
  if (act === 'linear') {
    b.outs.set(layer.name, { tensor: raw, shape });
    return;
  }
  if (!activation(b, act, raw, layer.name)) throw new ModelLoadError(`${b.where}: layer '${layer.name}' has activation '${act}', which convert does not handle`);
  b.outs.set(layer.name, { tensor: layer.name, shape });
}

function convLayer(b: Build, layer: KerasLayer): void {
  const c = layer.config;
  const x = input(b, layer);
  const [cin, h, w] = spatial(b, layer, x);
  const depthwise = layer.className === 'DepthwiseConv2D';
  const [kh, kw] = pair(c.kernel_size, 1);
  const [sh, sw] = pair(c.strides, 1);
  const [dh, dw] = pair(c.dilation_rate, 1);
  const [oh, top, bottom] = tfPad(h, (kh - 1) * dh + 1, sh, c.padding);
  const [ow, left, right] = tfPad(w, (kw - 1) * dw + 1, sw, c.padding);
  const mult = depthwise ? Number(c.depth_multiplier ?? 1) : 1;
  const cout = depthwise ? cin * mult : Number(c.filters);
  const src = weight(b, layer, depthwise ? 'depthwise_kernel' : 'kernel');
  const inner = depthwise ? 1 : cin;
  const kernel = new Float32Array(src.length);
  // Source [kh, kw, cin, cout] (or [kh, kw, c, m], where output channel c * m + j is group c's j-th).
  for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++) for (let i = 0; i < cin; i++) {
    const from = ((y * kw + xx) * cin + i) * (depthwise ? mult : cout);
    for (let o = 0; o < (depthwise ? mult : cout); o++) {
      const oc = depthwise ? i * mult + o : o;
      kernel[((oc * inner + (depthwise ? 0 : i)) * kh + y) * kw + xx] = src[from + o];
    }
  }
  b.inits.push(floatTensor(`${layer.name}/kernel`, [cout, inner, kh, kw], kernel));
  const inputs = [x.tensor, `${layer.name}/kernel`];
  if (c.use_bias !== false) {
    b.inits.push(floatTensor(`${layer.name}/bias`, [cout], weight(b, layer, 'bias')));
    inputs.push(`${layer.name}/bias`);
  }
  const raw = c.activation && c.activation !== 'linear' ? `${layer.name}/conv` : layer.name;
  const attrs = { kernel_shape: [kh, kw], strides: [sh, sw], dilations: [dh, dw], pads: [top, left, bottom, right], group: depthwise ? cin : 1 };
  b.nodes.push(node('Conv', inputs, [raw], raw, attrs));
  finish(b, layer, raw, [cout, oh, ow]);
}

function batchNormLayer(b: Build, layer: KerasLayer): void {
  const c = layer.config;
  const x = input(b, layer);
  const axis = Number(c.axis ?? -1);
  if (!(axis === -1 || (axis === 3 && x.shape.length === 3) || (axis === 1 && x.shape.length === 1))) {
    throw new ModelLoadError(`${b.where}: batch normalization '${layer.name}' over axis ${axis}; convert handles the channel axis only`);
  }
  const mean = weight(b, layer, 'moving_mean');
  const ones = new Float32Array(mean.length).fill(1);
  const parts = [c.scale === false ? ones : weight(b, layer, 'gamma'), c.center === false ? new Float32Array(mean.length) : weight(b, layer, 'beta'), mean, weight(b, layer, 'moving_variance')];
  const names = ['gamma', 'beta', 'mean', 'variance'].map((p) => `${layer.name}/${p}`);
  parts.forEach((data, i) => b.inits.push(floatTensor(names[i], [data.length], data)));
  b.nodes.push(node('BatchNormalization', [x.tensor, ...names], [layer.name], layer.name, { epsilon: floatAttr(Number(c.epsilon ?? 1e-3)) }));
  b.outs.set(layer.name, { tensor: layer.name, shape: x.shape });
}

function activationLayer(b: Build, layer: KerasLayer): void {
  const c = layer.config;
  const x = input(b, layer);
  let name: string;
  let alpha = 0.3;
  if (layer.className === 'LeakyReLU') [name, alpha] = ['leaky_relu', Number(c.alpha ?? 0.3)];
  else if (layer.className === 'ReLU') {
    const max = c.max_value === null || c.max_value === undefined ? undefined : Number(c.max_value);
    const slope = Number(c.negative_slope ?? 0);
    if (slope !== 0 && max !== undefined) throw new ModelLoadError(`${b.where}: ReLU '${layer.name}' with both max_value and negative_slope`);
    if (max !== undefined) {
      b.nodes.push(clip(b, x.tensor, layer.name, max));
      b.outs.set(layer.name, { tensor: layer.name, shape: x.shape });
      return;
    }
    [name, alpha] = slope !== 0 ? ['leaky_relu', slope] : ['relu', 0];
  } else if (layer.className === 'Softmax') name = 'softmax';
  else name = String(c.activation ?? 'linear');
  if (name === 'linear') b.outs.set(layer.name, x);
  else if (activation(b, name, x.tensor, layer.name, alpha)) b.outs.set(layer.name, { tensor: layer.name, shape: x.shape });
  else throw new ModelLoadError(`${b.where}: layer '${layer.name}' has activation '${name}', which convert does not handle`);
}

function poolLayer(b: Build, layer: KerasLayer): void {
  const c = layer.config;
  const x = input(b, layer);
  const [ch, h, w] = spatial(b, layer, x);
  const [kh, kw] = pair(c.pool_size, 2);
  const [sh, sw] = c.strides === null || c.strides === undefined ? [kh, kw] : pair(c.strides, kh);
  const [oh, top, bottom] = tfPad(h, kh, sh, c.padding);
  const [ow, left, right] = tfPad(w, kw, sw, c.padding);
  const op = layer.className === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool';
  b.nodes.push(node(op, [x.tensor], [layer.name], layer.name, { kernel_shape: [kh, kw], strides: [sh, sw], pads: [top, left, bottom, right] }));
  b.outs.set(layer.name, { tensor: layer.name, shape: [ch, oh, ow] });
}

function mergeLayer(b: Build, layer: KerasLayer): void {
  const xs = layer.inputs.map((_, i) => input(b, layer, i));
  if (layer.className === 'Concatenate') {
    const axis = Number(layer.config.axis ?? -1);
    if (axis !== -1 && axis !== xs[0].shape.length) throw new ModelLoadError(`${b.where}: Concatenate '${layer.name}' over axis ${axis}; convert handles the channel axis only`);
    b.nodes.push(node('Concat', xs.map((x) => x.tensor), [layer.name], layer.name, { axis: 1 }));
    const channels = xs.reduce((a, x) => a + x.shape[0], 0);
    b.outs.set(layer.name, { tensor: layer.name, shape: [channels, ...xs[0].shape.slice(1)] });
    return;
  }
  let acc = xs[0].tensor;
  for (let i = 1; i < xs.length; i++) {
    const out = i === xs.length - 1 ? layer.name : `${layer.name}/${i}`;
    b.nodes.push(node('Add', [acc, xs[i].tensor], [out], out));
    acc = out;
  }
  b.outs.set(layer.name, { tensor: layer.name, shape: xs[0].shape });
}

function gapLayer(b: Build, layer: KerasLayer): void {
  const x = input(b, layer);
  const [ch] = spatial(b, layer, x);
  if (layer.config.keepdims === true) {
    b.nodes.push(node('GlobalAveragePool', [x.tensor], [layer.name], layer.name));
    b.outs.set(layer.name, { tensor: layer.name, shape: [ch, 1, 1] });
    return;
  }
  b.nodes.push(node('GlobalAveragePool', [x.tensor], [`${layer.name}/pool`], `${layer.name}/pool`));
  b.nodes.push(node('Flatten', [`${layer.name}/pool`], [layer.name], layer.name, { axis: 1 }));
  b.outs.set(layer.name, { tensor: layer.name, shape: [ch] });
}

function denseLayer(b: Build, layer: KerasLayer): void {
  const x = input(b, layer);
  if (x.shape.length !== 1) throw new ModelLoadError(`${b.where}: Dense '${layer.name}' on a [N, ${x.shape.join(', ')}] input; convert needs [N, features]`);
  const units = Number(layer.config.units);
  b.inits.push(floatTensor(`${layer.name}/kernel`, [x.shape[0], units], weight(b, layer, 'kernel')));
  const inputs = [x.tensor, `${layer.name}/kernel`];
  if (layer.config.use_bias !== false) {
    b.inits.push(floatTensor(`${layer.name}/bias`, [units], weight(b, layer, 'bias')));
    inputs.push(`${layer.name}/bias`);
  }
  const raw = layer.config.activation && layer.config.activation !== 'linear' ? `${layer.name}/dense` : layer.name;
  b.nodes.push(node('Gemm', inputs, [raw], raw, { transB: 0 }));
  finish(b, layer, raw, [units]);
}

function flattenLayer(b: Build, layer: KerasLayer): void {
  const x = input(b, layer);
  if (x.shape.length === 1) {
    b.outs.set(layer.name, x);
    return;
  }
  const [c, h, w] = spatial(b, layer, x);
  // TF flattens NHWC (channels fastest): transpose so ONNX's row-major Flatten gives the same order.
  b.nodes.push(node('Transpose', [x.tensor], [`${layer.name}/nhwc`], `${layer.name}/nhwc`, { perm: [0, 2, 3, 1] }));
  b.nodes.push(node('Flatten', [`${layer.name}/nhwc`], [layer.name], layer.name, { axis: 1 }));
  b.outs.set(layer.name, { tensor: layer.name, shape: [c * h * w] });
}

function zeroPaddingLayer(b: Build, layer: KerasLayer): void {
  const x = input(b, layer);
  const [c, h, w] = spatial(b, layer, x);
  const p = layer.config.padding;
  const [[top, bottom], [left, right]] = Array.isArray(p)
    ? (p as unknown[]).map((v) => (Array.isArray(v) ? [Number(v[0]), Number(v[1])] : [Number(v), Number(v)]))
    : [[Number(p ?? 1), Number(p ?? 1)], [Number(p ?? 1), Number(p ?? 1)]];
  b.inits.push(int64Tensor(`${layer.name}/pads`, [8], [0, 0, top, left, 0, 0, bottom, right]));
  b.nodes.push(node('Pad', [x.tensor, `${layer.name}/pads`], [layer.name], layer.name));
  b.outs.set(layer.name, { tensor: layer.name, shape: [c, h + top + bottom, w + left + right] });
}

function passLayer(b: Build, layer: KerasLayer): void {
  b.outs.set(layer.name, input(b, layer));
}

const CONVERTERS: Record<string, (b: Build, layer: KerasLayer) => void> = {
  Conv2D: convLayer,
  DepthwiseConv2D: convLayer,
  BatchNormalization: batchNormLayer,
  ReLU: activationLayer,
  LeakyReLU: activationLayer,
  Activation: activationLayer,
  Softmax: activationLayer,
  MaxPooling2D: poolLayer,
  AveragePooling2D: poolLayer,
  Add: mergeLayer,
  Concatenate: mergeLayer,
  GlobalAveragePooling2D: gapLayer,
  Dense: denseLayer,
  Dropout: passLayer,
  Flatten: flattenLayer,
  ZeroPadding2D: zeroPaddingLayer,
};

/** Layer classes `layersToOnnx` converts. */
export const CONVERTIBLE_LAYERS = Object.freeze(Object.keys(CONVERTERS));

/** `[h, w]` of the input layer, from its batch_input_shape `[null, h, w, 3]`. */
function inputSizeOf(layer: KerasLayer, where: string): [number, number] {
  const shape = (layer.config.batch_input_shape ?? layer.config.batch_shape) as Array<number | null> | undefined;
  if (!shape || shape.length !== 4 || shape[3] !== 3 || !shape[1] || !shape[2]) {
    throw new ModelLoadError(`${where}: input '${layer.name}' has shape ${JSON.stringify(shape)}; convert needs [null, height, width, 3]`);
  }
  return [shape[1], shape[2]];
}

/**
 * The ONNX form of a layers model (see the file comment), serialized. The graph input is `input`
 * (`[N, 3, H, W]` float), the output is named after the model's output layer.
 * @throws ModelLoadError naming the first layer convert cannot handle, and why.
 */
export function layersToOnnx(model: KerasModel, where: string): Uint8Array {
  const b: Build = { model, nodes: [], inits: [], outs: new Map(), where };
  let inputSize: [number, number] | undefined;
  for (const layer of model.layers) {
    if (layer.className === 'InputLayer') {
      if (inputSize) throw new ModelLoadError(`${where}: the model has several inputs; convert needs one image input`);
      inputSize = inputSizeOf(layer, where);
      b.outs.set(layer.name, { tensor: 'input', shape: [3, ...inputSize] });
      continue;
    }
    const convert = Object.hasOwn(CONVERTERS, layer.className) ? CONVERTERS[layer.className] : undefined;
    if (!convert) {
      throw new ModelLoadError(`${where}: layer '${layer.name}' is a ${layer.className}; convert handles ${CONVERTIBLE_LAYERS.join(', ')}`);
    }
    if (layer.config.data_format === 'channels_first') throw new ModelLoadError(`${where}: layer '${layer.name}' is channels_first; convert handles channels_last`);
    convert(b, layer);
  }
  if (!inputSize) throw new ModelLoadError(`${where}: the model has no InputLayer`);
  const out = b.outs.get(model.output);
  if (!out || out.tensor === 'input') throw new ModelLoadError(`${where}: output layer '${model.output}' produces no converted tensor`);
  return encodeModel({
    irVersion: 8,
    producerName: 'camstream convert',
    opsetImport: [{ domain: '', version: CONVERT_OPSET }],
    graph: {
      name: model.name,
      node: b.nodes,
      initializer: b.inits,
      input: [valueInfo('input', DataType.FLOAT, ['N', 3, ...inputSize])],
      output: [valueInfo(out.tensor, DataType.FLOAT, ['N', ...out.shape])],
    },
  });
}
