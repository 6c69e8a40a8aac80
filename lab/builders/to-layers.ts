/**
 * Builds a `NetSpec` as a TF.js layers model (functional API) with the spec's weights, and writes it as a
 * layers-model folder (model.json + one shard) for the engine's file loader.
 *
 * Layer names are the spec's node names, so a node name can be given as `featureTensor` in camstream.json.
 * A conv with `activation: 'leaky'` becomes the conv plus a LeakyReLU layer named `<name>_leaky` with
 * alpha `CONV_LEAKY_ALPHA` (the spec carries no alpha for a fused leaky; Darknet uses 0.1). A flatten of a
 * pooled vector becomes a Reshape layer (tfjs-layers' Flatten needs rank >= 3).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ConfigError } from '../../common/index.ts';
import { saveArtifactsToFolder } from '../../models/tfjs/io.ts';
import { CONV_LEAKY_ALPHA, emitterOf, type EmitterTable, type NetNode, type NetSpec, type NodeOf } from './spec.ts';

export interface ToLayersOptions {
  /**
   * Fold a softmax node that directly follows a dense node into the dense layer's activation, as Keras
   * classifiers are exported (`Dense(activation='softmax')`). Default false (a separate Softmax layer).
   */
  fuseSoftmax?: boolean;
}

type Sym = tfl.SymbolicTensor;

/** Weights to set once the model exists: a layer and its arrays in the layer's weight order. */
type PendingWeights = [tfl.layers.Layer, Array<{ values: Float32Array; shape: number[] }>];

/** The model being built: each spec node's output, the weights to set, and the dense layers that absorb a softmax. */
interface LayersBuild {
  readonly spec: NetSpec;
  readonly tensors: Map<string, Sym>;
  readonly pending: PendingWeights[];
  readonly fused: ReadonlySet<string>;
}

/**
 * Makes the layers model (synchronously: a tfjs backend must be ready, `await tf.ready()`). The caller owns it (`model.dispose()` frees its weights).
 * @throws ConfigError when a node refers to an unknown input or a weight array has the wrong length.
 */
export function toLayersModel(spec: NetSpec, options: ToLayersOptions = {}): tfl.LayersModel {
  const [h, w] = spec.inputSize;
  const input = tfl.input({ shape: [h, w, 3], name: 'input' });
  const b: LayersBuild = { spec, tensors: new Map([['input', input]]), pending: [], fused: fusedSoftmaxes(spec, options) };
  for (const n of spec.nodes) {
    const emit = emitterOf(LAYER_EMITTERS, n);
    if (!emit) throw new ConfigError(`NetSpec ${spec.name}: unsupported op '${(n as NetNode).op}'`);
    b.tensors.set(n.name, emit(n, b));
  }
  const model = tfl.model({ inputs: input, outputs: get(b, spec.output, 'output'), name: sanitize(spec.name) });
  setPendingWeights(b.pending);
  return model;
}

/** With `fuseSoftmax`, the dense nodes whose only consumer is a softmax (that softmax becomes their activation). */
function fusedSoftmaxes(spec: NetSpec, options: ToLayersOptions): Set<string> {
  const consumers = new Map<string, number>();
  for (const n of spec.nodes) for (const i of inputsOf(n)) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  const fused = new Set<string>();
  if (options.fuseSoftmax) {
    for (const n of spec.nodes) {
      if (n.op === 'softmax') {
        const from = spec.nodes.find((m) => m.name === n.input);
        if (from?.op === 'dense' && consumers.get(from.name) === 1) fused.add(from.name);
      }
    }
  }
  return fused;
}

function setPendingWeights(pending: readonly PendingWeights[]): void {
  for (const [layer, weights] of pending) {
    const ts = weights.map((x) => tf.tensor(x.values, x.shape, 'float32'));
    try {
      layer.setWeights(ts);
    } finally {
      // setWeights copies into the layer's variables; the temporaries are ours to free.
      tf.dispose(ts);
    }
  }
}

/** The output of an earlier node; `by` names the reader, for the error. */
function get(b: LayersBuild, name: string, by: string): Sym {
  const t = b.tensors.get(name);
  if (t === undefined) throw new ConfigError(`NetSpec ${b.spec.name}: node '${by}' reads unknown node '${name}'`);
  return t;
}

/** Throws a ConfigError unless `arr` holds `size` values. */
function expectLength(b: LayersBuild, node: string, what: string, arr: Float32Array, size: number): void {
  if (arr.length !== size) {
    throw new ConfigError(`NetSpec ${b.spec.name}: ${what} of '${node}' has ${arr.length} values, expected ${size}`);
  }
}

function emitConv(n: NodeOf<'conv'>, b: LayersBuild): Sym {
  const x = get(b, n.input, n.name);
  const cin = x.shape[3] as number;
  const [kh, kw] = n.kernel;
  const act = n.activation === 'leaky' || n.activation === undefined ? 'linear' : n.activation;
  const common = {
    name: n.name,
    kernelSize: [kh, kw] as [number, number],
    strides: n.strides,
    padding: n.padding,
    useBias: n.bias !== undefined,
    activation: act,
  };
  let layer: tfl.layers.Layer;
  if (n.depthwise) {
    if (n.filters !== cin) throw new ConfigError(`NetSpec ${b.spec.name}: depthwise conv '${n.name}' has ${n.filters} filters for ${cin} channels`);
    expectLength(b, n.name, 'kernelWeights', n.kernelWeights, kh * kw * cin);
    layer = tfl.layers.depthwiseConv2d({ ...common, depthMultiplier: 1, depthwiseInitializer: 'zeros' as const });
  } else {
    expectLength(b, n.name, 'kernelWeights', n.kernelWeights, kh * kw * cin * n.filters);
    layer = tfl.layers.conv2d({ ...common, filters: n.filters, kernelInitializer: 'zeros' as const });
  }
  const weights = [{ values: n.kernelWeights, shape: [kh, kw, cin, n.depthwise ? 1 : n.filters] }];
  if (n.bias !== undefined) {
    expectLength(b, n.name, 'bias', n.bias, n.filters);
    weights.push({ values: n.bias, shape: [n.filters] });
  }
  b.pending.push([layer, weights]);
  const out = layer.apply(x) as Sym;
  if (n.activation !== 'leaky') return out;
  return tfl.layers.leakyReLU({ name: `${n.name}_leaky`, alpha: CONV_LEAKY_ALPHA }).apply(out) as Sym;
}

function emitBatchnorm(n: NodeOf<'batchnorm'>, b: LayersBuild): Sym {
  const x = get(b, n.input, n.name);
  const c = x.shape[x.shape.length - 1] as number;
  for (const [what, arr] of [['gamma', n.gamma], ['beta', n.beta], ['mean', n.mean], ['variance', n.variance]] as const) {
    expectLength(b, n.name, what, arr, c);
  }
  const layer = tfl.layers.batchNormalization({ name: n.name, axis: -1, epsilon: n.epsilon });
  b.pending.push([layer, [n.gamma, n.beta, n.mean, n.variance].map((values) => ({ values, shape: [c] }))]);
  return layer.apply(x) as Sym;
}

function emitFlatten(n: NodeOf<'flatten'>, b: LayersBuild): Sym {
  const x = get(b, n.input, n.name);
  // tfjs-layers' Flatten rejects rank-2 inputs (Keras' accepts them as the identity): a pooled vector
  // is "flattened" by a Reshape to its own shape.
  const layer = x.shape.length === 2 ? tfl.layers.reshape({ name: n.name, targetShape: [x.shape[1] as number] }) : tfl.layers.flatten({ name: n.name });
  return layer.apply(x) as Sym;
}

function emitDense(n: NodeOf<'dense'>, b: LayersBuild): Sym {
  const x = get(b, n.input, n.name);
  const cin = x.shape[x.shape.length - 1] as number;
  expectLength(b, n.name, 'kernelWeights', n.kernelWeights, cin * n.units);
  const layer = tfl.layers.dense({
    name: n.name,
    units: n.units,
    useBias: n.bias !== undefined,
    activation: b.fused.has(n.name) ? 'softmax' : 'linear',
    kernelInitializer: 'zeros',
  });
  const weights = [{ values: n.kernelWeights, shape: [cin, n.units] }];
  if (n.bias !== undefined) {
    expectLength(b, n.name, 'bias', n.bias, n.units);
    weights.push({ values: n.bias, shape: [n.units] });
  }
  b.pending.push([layer, weights]);
  return layer.apply(x) as Sym;
}

/** One emitter per spec op; each returns the node's output (weights are queued in `pending`). */
const LAYER_EMITTERS: EmitterTable<LayersBuild, Sym> = {
  conv: emitConv,
  batchnorm: emitBatchnorm,
  relu: (n, b) => tfl.layers.reLU({ name: n.name }).apply(get(b, n.input, n.name)) as Sym,
  relu6: (n, b) => tfl.layers.reLU({ name: n.name, maxValue: 6 }).apply(get(b, n.input, n.name)) as Sym,
  leaky: (n, b) => tfl.layers.leakyReLU({ name: n.name, alpha: n.alpha }).apply(get(b, n.input, n.name)) as Sym,
  add: (n, b) => tfl.layers.add({ name: n.name }).apply([get(b, n.inputs[0], n.name), get(b, n.inputs[1], n.name)]) as Sym,
  maxpool: (n, b) =>
    tfl.layers.maxPooling2d({ name: n.name, poolSize: n.pool, strides: n.strides, padding: n.padding }).apply(get(b, n.input, n.name)) as Sym,
  gap: (n, b) => tfl.layers.globalAveragePooling2d({ name: n.name }).apply(get(b, n.input, n.name)) as Sym,
  dropout: (n, b) => tfl.layers.dropout({ name: n.name, rate: n.rate }).apply(get(b, n.input, n.name)) as Sym,
  flatten: emitFlatten,
  dense: emitDense,
  softmax: (n, b) => (b.fused.has(n.input) ? get(b, n.input, n.name) : (tfl.layers.softmax({ name: n.name }).apply(get(b, n.input, n.name)) as Sym)),
};

/** Writes the spec as a layers-model folder (`model.json` + one weight shard). */
export async function writeLayersModel(spec: NetSpec, folder: string, options: ToLayersOptions = {}): Promise<void> {
  // Building makes tensors: a backend must be up (the current one, else tfjs' default).
  await tf.ready();
  const model = toLayersModel(spec, options);
  try {
    await model.save(tf.io.withSaveHandler((artifacts) => saveArtifactsToFolder(folder, artifacts)));
  } finally {
    model.dispose();
  }
}

function inputsOf(n: NetNode): string[] {
  return n.op === 'add' ? [...n.inputs] : [n.input];
}

/** Keras model names allow letters, digits, `_`, `-`, `.` and `/`. */
function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_.\-/]/g, '_');
}
