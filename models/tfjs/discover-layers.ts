/**
 * Finding the CAM head of a TF.js layers model: the feature map f that feeds global average pooling and
 * the linear classifier (W, b) after it, so that logits = mean_{x,y} f(x, y) . W + b and the map of class
 * c is M_c = f . W[:, c] (ref: Zhou et al. 2016, sec. 2).
 *
 * Recognised, walking back from the model output:
 * - 'gap-dense': GlobalAveragePooling2D -> [Dropout / Flatten / Reshape / Activation('linear')]* -> Dense
 *   (or a 1x1 Conv2D on the pooled vector, as Keras MobileNet has), optionally followed by an activation
 *   (softmax, sigmoid) or a Softmax layer. Keras ResNet / MobileNet / Inception / EfficientNet exports.
 * - 'class-conv-gap': a linear 1x1 Conv2D with C filters -> GlobalAveragePooling2D, optionally followed
 *   by Flatten / Reshape / an activation (NIN, Darknet). A 1x1 conv before GAP is a dense after it: GAP is
 *   linear and commutes with the per-position matrix product.
 * - 'class-conv-relu-gap': the same 1x1 conv with a ReLU (its activation, or a ReLU / Activation('relu')
 *   layer) before GAP (SqueezeNet): the maps are the post-ReLU conv outputs, and their mean is the logit.
 * camstream.json may name the tensors instead (`featureTensor`, `weights`, `bias`): see `HeadOverrides`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ConfigError, NoGapHeadError } from '../../common/errors.ts';
import type { HeadKind, ModelFileConfig } from '../types.ts';

type Layer = tfl.layers.Layer;
type Sym = tfl.SymbolicTensor;

/** Where the engine gets the logits from. */
export type LogitsSource<T> =
  /** The model computes pre-activation logits in this tensor. */
  | { from: 'tensor'; tensor: T }
  /**
   * The classifier applies a nonlinear activation (softmax, sigmoid) in the same layer: the model never
   * holds the logits. This tensor is the classifier's input (the pooled vector); logits = it . W + b.
   */
  | { from: 'classifier-input'; tensor: T }
  /** Tensors named in camstream.json: logits = mean over positions of the features . W + b. */
  | { from: 'features' };

export interface DiscoveredHead<T> {
  kind: HeadKind;
  /** The feature map feeding GAP, NHWC `[N, h, w, k]`. */
  features: T;
  logits: LogitsSource<T>;
  /** Classifier weights `[k, C]`: a new tensor the caller owns and disposes. */
  weights: tf.Tensor2D;
  /** Classifier bias `[C]` (zeros where the classifier has none): a new tensor the caller owns. */
  bias: tf.Tensor1D;
  /** The path found, for reports and errors, e.g. "conv2d_15 -> conv2d_16 (1x1 conv, 1000) -> gap". */
  description: string;
  /**
   * `relu` for a class conv followed by ReLU before the pooling (SqueezeNet): the class maps are the
   * post-ReLU outputs, ReLU(W_c . f + b_c), whose mean is logit_c (the bias is inside the maps).
   */
  activation?: 'relu';
}

/** Tensor names from camstream.json; `featureTensor` and `weights` go together, `bias` is optional. */
export type HeadOverrides = Pick<ModelFileConfig, 'featureTensor' | 'weights' | 'bias'>;

/** Layers that only reshape or are the identity at inference. */
const PASS_THROUGH = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianDropout', 'AlphaDropout', 'Flatten', 'Reshape']);
/** Layers that may follow the classifier: the logits are read before them. */
const OUTPUT_ACTIVATIONS = new Set(['Activation', 'Softmax']);

const className = (l: Layer): string => l.getClassName();
const config = (l: Layer): Record<string, unknown> => l.getConfig() as Record<string, unknown>;

function activationOf(l: Layer): string {
  const a = config(l).activation;
  return typeof a === 'string' ? a : 'linear';
}

function isLinearActivationLayer(l: Layer): boolean {
  return className(l) === 'Activation' && activationOf(l) === 'linear';
}

/** The single layer feeding `l`, or undefined (input layer, merge layer, shared layer). */
function inbound(l: Layer): Layer | undefined {
  if (l.inboundNodes.length !== 1) return undefined;
  const from = l.inboundNodes[0].inboundLayers;
  return from.length === 1 ? from[0] : undefined;
}

function single(t: Sym | Sym[]): Sym {
  return Array.isArray(t) ? t[0] : t;
}

function isGap(l: Layer): boolean {
  return className(l) === 'GlobalAveragePooling2D' && (config(l).dataFormat ?? config(l).data_format ?? 'channelsLast') !== 'channelsFirst';
}

function is1x1Conv(l: Layer): boolean {
  if (className(l) !== 'Conv2D') return false;
  const c = config(l);
  const k = c.kernelSize as number[] | number | undefined;
  const s = c.strides as number[] | number | undefined;
  const d = c.dilationRate as number[] | number | undefined;
  const ones = (v: number[] | number | undefined): boolean => v === undefined || (Array.isArray(v) ? v.every((x) => x === 1) : v === 1);
  return ones(k) && ones(s) && ones(d) && (c.dataFormat ?? 'channelsLast') !== 'channelsFirst';
}

/** "name (Class), ..." for the last layers before the output, last first. */
export function describeLayersTail(model: tfl.LayersModel, count = 5): string {
  const out: string[] = [];
  let l: Layer | undefined = model.outputLayers[0];
  while (l !== undefined && out.length < count) {
    const act = className(l) === 'Dense' || className(l) === 'Conv2D' || className(l) === 'Activation' ? `, ${activationOf(l)}` : '';
    out.push(`${l.name} (${className(l)}${act})`);
    l = inbound(l);
  }
  return out.join(' <- ');
}

function noHead(model: tfl.LayersModel, where: string, why: string): NoGapHeadError {
  return new NoGapHeadError(
    `${where}: no CAM head found (${why}). The model ends with: ${describeLayersTail(model)}. camstream needs ` +
      'features -> GlobalAveragePooling2D -> Dense, or a linear 1x1 Conv2D with one filter per class -> ' +
      'GlobalAveragePooling2D. If the model has such a head under other layers, name it in camstream.json ' +
      'beside the model: {"featureTensor": "<layer whose output feeds the pooling>", "weights": ' +
      '"<classifier>/kernel", "bias": "<classifier>/bias"}.',
  );
}

/** Kernel and bias of a Dense or 1x1 Conv2D as `[k, C]` and `[C]` tensors the caller owns. */
function classifierWeights(l: Layer): { weights: tf.Tensor2D; bias: tf.Tensor1D } {
  const vars = l.weights;
  const kernel = vars.find((v) => /kernel/.test(v.originalName ?? v.name)) ?? vars[0];
  const biasVar = vars.find((v) => v !== kernel && /bias/.test(v.originalName ?? v.name));
  return tf.tidy(() => {
    const k = kernel.read();
    const c = k.shape[k.shape.length - 1];
    const weights = tf.reshape(k, [-1, c]) as tf.Tensor2D;
    const bias = biasVar ? (tf.reshape(biasVar.read(), [c]) as tf.Tensor1D) : (tf.zeros([c]) as tf.Tensor1D);
    return { weights, bias };
  });
}

/**
 * Finds the head of `model` (see the module doc), or uses camstream.json's names.
 * @param where names the model in errors (path or URL).
 * @throws NoGapHeadError naming the last layers when no head is found; ConfigError when an override names
 *   a layer or weight the model lacks or of the wrong shape.
 */
export function discoverLayersHead(model: tfl.LayersModel, overrides: HeadOverrides, where: string): DiscoveredHead<Sym> {
  if (overrides.featureTensor !== undefined || overrides.weights !== undefined || overrides.bias !== undefined) {
    return fromOverrides(model, overrides, where);
  }
  if (model.outputLayers.length === 0) throw noHead(model, where, 'the model has no output');
  let cur: Layer | undefined = model.outputLayers[0];
  const trail: string[] = [];
  while (cur !== undefined && (PASS_THROUGH.has(className(cur)) || OUTPUT_ACTIVATIONS.has(className(cur)))) {
    trail.push(cur.name);
    cur = inbound(cur);
  }
  if (cur === undefined) throw noHead(model, where, 'no classifier before the output');

  const isDenseLike = className(cur) === 'Dense' || is1x1Conv(cur);
  if (isDenseLike) {
    // Look for GAP before the classifier, past shape-only layers.
    let up = inbound(cur);
    while (up !== undefined && (PASS_THROUGH.has(className(up)) || isLinearActivationLayer(up))) up = inbound(up);
    if (up !== undefined && isGap(up)) {
      const gap = up;
      const linear = activationOf(cur) === 'linear';
      const { weights, bias } = classifierWeights(cur);
      return {
        kind: 'gap-dense',
        features: single(gap.input),
        logits: linear ? { from: 'tensor', tensor: single(cur.output) } : { from: 'classifier-input', tensor: single(cur.input) },
        weights,
        bias,
        description: `${inbound(gap)?.name ?? 'input'} -> ${gap.name} (GAP) -> ${cur.name} (${className(cur)}, ${activationOf(cur)})`,
      };
    }
    if (className(cur) === 'Dense') throw noHead(model, where, `classifier '${cur.name}' is not fed by GlobalAveragePooling2D`);
  }

  if (isGap(cur)) {
    const gap = cur;
    const before = inbound(gap);
    // SqueezeNet's head: a separate ReLU between the class conv and the pooling.
    const reluLayer = before !== undefined && isReluLayer(before) ? before : undefined;
    const conv = reluLayer ? inbound(reluLayer) : before;
    if (conv === undefined || !is1x1Conv(conv)) {
      throw noHead(
        model,
        where,
        `'${gap.name}' pools ${conv ? `'${conv.name}' (${className(conv)})` : 'several inputs'}, not a linear 1x1 Conv2D, and no classifier follows it`,
      );
    }
    const own = activationOf(conv);
    if (own !== 'linear' && !(own === 'relu' && reluLayer === undefined)) {
      throw noHead(model, where, `the 1x1 conv '${conv.name}' before '${gap.name}' has activation '${own}', neither linear nor relu`);
    }
    const activated = own === 'relu' || reluLayer !== undefined;
    const { weights, bias } = classifierWeights(conv);
    return {
      kind: activated ? 'class-conv-relu-gap' : 'class-conv-gap',
      features: single(conv.input),
      logits: { from: 'tensor', tensor: single(gap.output) },
      weights,
      bias,
      description:
        `${inbound(conv)?.name ?? 'input'} -> ${conv.name} (1x1 conv, ${weights.shape[1]}${own === 'relu' ? ', relu' : ''})` +
        `${reluLayer ? ` -> ${reluLayer.name} (ReLU)` : ''} -> ${gap.name} (GAP)`,
      ...(activated ? { activation: 'relu' as const } : {}),
    };
  }
  throw noHead(model, where, `'${cur.name}' (${className(cur)}) is neither a classifier nor a GAP layer`);
}

function findVariable(model: tfl.LayersModel, name: string, field: string, where: string): tfl.LayerVariable {
  const bare = name.replace(/:0$/, '');
  const v = model.weights.find((w) => w.originalName === bare || w.name === bare);
  if (v === undefined) {
    const sample = model.weights.slice(-6).map((w) => w.originalName ?? w.name);
    throw new ConfigError(`${where}: camstream.json field '${field}' names weight '${name}', which the model lacks; its last weights are: ${sample.join(', ')}`);
  }
  return v;
}

/** A plain ReLU layer (no cap, threshold or slope) or Activation('relu'). */
function isReluLayer(l: Layer): boolean {
  if (className(l) === 'Activation') return activationOf(l) === 'relu';
  if (className(l) !== 'ReLU') return false;
  const c = config(l);
  return (c.maxValue === undefined || c.maxValue === null) && !c.threshold && !c.negativeSlope;
}

/** Layers that are a non-linear function of their input on their own. */
const NONLINEAR_LAYERS = new Set(['ReLU', 'LeakyReLU', 'ELU', 'PReLU', 'ThresholdedReLU', 'Softmax']);

/** The non-linearity `l` applies, if any: its `activation` (Dense, Conv2D, Activation) or its class. */
function nonLinearityOf(l: Layer): string | undefined {
  if (NONLINEAR_LAYERS.has(className(l))) return className(l);
  const a = activationOf(l);
  return a === 'linear' ? undefined : a;
}

/**
 * camstream.json names the feature layer and the classifier's weights; the engine computes the maps as a
 * linear function of those features (ref: Zhou et al. 2016, sec. 2). Refuses names between which the model
 * applies a non-linearity the engine would skip, so an override cannot silently turn an activated head
 * (SqueezeNet's 1x1 conv -> ReLU -> GAP) into a linear one: the classifier layer's own activation when it
 * is a 1x1 conv before the pooling, a non-linear layer after that conv before the pooling, or one between
 * the feature layer and the classifier (walked up through pooling and shape-only layers).
 * @throws ConfigError naming the layer and its non-linearity.
 */
function checkOverridePath(
  model: tfl.LayersModel,
  featureLayer: Layer,
  wv: tfl.LayerVariable,
  isConv: boolean,
  o: HeadOverrides,
  where: string,
): { activation?: 'relu' } {
  const owner = model.layers.find((l) => l.weights.includes(wv));
  if (owner === undefined) return {};
  const refuse = (l: Layer, what: string): ConfigError =>
    new ConfigError(
      `${where}: camstream.json names featureTensor '${o.featureTensor}' and weights '${o.weights}', but ${what} ` +
        `('${l.name}', ${className(l)}, ${nonLinearityOf(l)}): the maps would be taken as linear in the features and come out wrong. ` +
        'Only a ReLU right after a 1x1 class conv (an activated head, as SqueezeNet) is supported; otherwise name tensors with no ' +
        'non-linearity between them',
    );
  let activation: 'relu' | undefined;
  if (isConv) {
    const own = nonLinearityOf(owner);
    if (own === 'relu') activation = 'relu';
    else if (own !== undefined) throw refuse(owner, 'the 1x1 conv holding the weights applies a non-linearity other than ReLU before the pooling');
    // A separate activation layer between the class conv and the pooling belongs to the same head.
    for (const node of owner.outboundNodes) {
      const next = node.outboundLayer;
      if (!next || isGap(next) || nonLinearityOf(next) === undefined) continue;
      if (isReluLayer(next) && activation === undefined) activation = 'relu';
      else throw refuse(next, 'a non-linear layer other than one ReLU follows the class conv');
    }
  }
  let up = inbound(owner);
  while (up !== undefined && up !== featureLayer) {
    if (nonLinearityOf(up) !== undefined) throw refuse(up, 'a non-linear layer sits between the feature layer and the classifier');
    if (!(PASS_THROUGH.has(className(up)) || isGap(up))) break; // another linear op: not ours to judge
    up = inbound(up);
  }
  return activation ? { activation } : {};
}

function fromOverrides(model: tfl.LayersModel, o: HeadOverrides, where: string): DiscoveredHead<Sym> {
  if (o.featureTensor === undefined || o.weights === undefined) {
    throw new ConfigError(
      `${where}: camstream.json must name both 'featureTensor' and 'weights' (and optionally 'bias'), got ` +
        `featureTensor ${JSON.stringify(o.featureTensor)}, weights ${JSON.stringify(o.weights)}, bias ${JSON.stringify(o.bias)}`,
    );
  }
  let layer: Layer;
  try {
    layer = model.getLayer(o.featureTensor.replace(/:0$/, ''));
  } catch {
    throw new ConfigError(
      `${where}: camstream.json field 'featureTensor' names layer '${o.featureTensor}', which the model lacks; it ends with: ${describeLayersTail(model)}`,
    );
  }
  const features = single(layer.output);
  if (features.shape.length !== 4) {
    throw new ConfigError(`${where}: featureTensor '${o.featureTensor}' has shape ${JSON.stringify(features.shape)}, not a feature map [N, h, w, k]`);
  }
  const k = features.shape[3] as number;
  const wv = findVariable(model, o.weights, 'weights', where);
  const bv = o.bias !== undefined ? findVariable(model, o.bias, 'bias', where) : undefined;
  const shape = wv.shape as number[];
  const ok = (shape.length === 2 && shape[0] === k) || (shape.length === 4 && shape[0] === 1 && shape[1] === 1 && shape[2] === k);
  if (!ok) {
    throw new ConfigError(`${where}: weights '${o.weights}' have shape ${JSON.stringify(shape)}; need [${k}, C] or [1, 1, ${k}, C] for ${k} feature channels`);
  }
  const c = shape[shape.length - 1];
  if (bv !== undefined && (bv.shape.length !== 1 || bv.shape[0] !== c)) {
    throw new ConfigError(`${where}: bias '${o.bias}' has shape ${JSON.stringify(bv.shape)}; need [${c}]`);
  }
  const { activation } = checkOverridePath(model, layer, wv, shape.length === 4, o, where);
  const { weights, bias } = tf.tidy(() => ({
    weights: tf.reshape(wv.read(), [k, c]) as tf.Tensor2D,
    bias: bv ? (tf.reshape(bv.read(), [c]) as tf.Tensor1D) : (tf.zeros([c]) as tf.Tensor1D),
  }));
  return {
    kind: activation ? 'class-conv-relu-gap' : shape.length === 4 ? 'class-conv-gap' : 'gap-dense',
    features,
    logits: { from: 'features' },
    weights,
    bias,
    description: activation
      ? `${layer.name} -> ${o.weights} (1x1 conv) -> ReLU -> GAP (from camstream.json)`
      : `${layer.name} -> GAP -> ${o.weights} (from camstream.json)`,
    ...(activation ? { activation } : {}),
  };
}
