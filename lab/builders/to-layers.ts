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
import { ConfigError } from '../../common/errors.ts';
import { saveArtifactsToFolder } from '../../models/tfjs/io.ts';
import type { NetNode, NetSpec } from './spec.ts';

/** Alpha of a conv's fused `leaky` activation (Darknet's value). */
export const CONV_LEAKY_ALPHA = 0.1;

export interface ToLayersOptions {
  /**
   * Fold a softmax node that directly follows a dense node into the dense layer's activation, as Keras
   * classifiers are exported (`Dense(activation='softmax')`). Default false (a separate Softmax layer).
   */
  fuseSoftmax?: boolean;
}

type Sym = tfl.SymbolicTensor;

/**
 * Makes the layers model (synchronously: a tfjs backend must be ready, `await tf.ready()`). The caller owns it (`model.dispose()` frees its weights).
 * @throws ConfigError when a node refers to an unknown input or a weight array has the wrong length.
 */
export function toLayersModel(spec: NetSpec, options: ToLayersOptions = {}): tfl.LayersModel {
  const [h, w] = spec.inputSize;
  const input = tfl.input({ shape: [h, w, 3], name: 'input' });
  const tensors = new Map<string, Sym>([['input', input]]);
  // Weights to set once the model exists: [layer, arrays in the layer's weight order].
  const pending: Array<[tfl.layers.Layer, Array<{ values: Float32Array; shape: number[] }>]> = [];

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

  const get = (name: string, by: string): Sym => {
    const t = tensors.get(name);
    if (t === undefined) throw new ConfigError(`NetSpec ${spec.name}: node '${by}' reads unknown node '${name}'`);
    return t;
  };
  const expect = (node: string, what: string, arr: Float32Array, size: number): void => {
    if (arr.length !== size) {
      throw new ConfigError(`NetSpec ${spec.name}: ${what} of '${node}' has ${arr.length} values, expected ${size}`);
    }
  };

  for (const n of spec.nodes) {
    let out: Sym;
    switch (n.op) {
      case 'conv': {
        const x = get(n.input, n.name);
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
          if (n.filters !== cin) throw new ConfigError(`NetSpec ${spec.name}: depthwise conv '${n.name}' has ${n.filters} filters for ${cin} channels`);
          expect(n.name, 'kernelWeights', n.kernelWeights, kh * kw * cin);
          layer = tfl.layers.depthwiseConv2d({ ...common, depthMultiplier: 1, depthwiseInitializer: 'zeros' as const });
        } else {
          expect(n.name, 'kernelWeights', n.kernelWeights, kh * kw * cin * n.filters);
          layer = tfl.layers.conv2d({ ...common, filters: n.filters, kernelInitializer: 'zeros' as const });
        }
        const weights = [{ values: n.kernelWeights, shape: [kh, kw, cin, n.depthwise ? 1 : n.filters] }];
        if (n.bias !== undefined) {
          expect(n.name, 'bias', n.bias, n.filters);
          weights.push({ values: n.bias, shape: [n.filters] });
        }
        pending.push([layer, weights]);
        out = layer.apply(x) as Sym;
        if (n.activation === 'leaky') {
          out = tfl.layers.leakyReLU({ name: `${n.name}_leaky`, alpha: CONV_LEAKY_ALPHA }).apply(out) as Sym;
        }
        break;
      }
      case 'batchnorm': {
        const x = get(n.input, n.name);
        const c = x.shape[x.shape.length - 1] as number;
        for (const [what, arr] of [['gamma', n.gamma], ['beta', n.beta], ['mean', n.mean], ['variance', n.variance]] as const) {
          expect(n.name, what, arr, c);
        }
        const layer = tfl.layers.batchNormalization({ name: n.name, axis: -1, epsilon: n.epsilon });
        pending.push([layer, [n.gamma, n.beta, n.mean, n.variance].map((values) => ({ values, shape: [c] }))]);
        out = layer.apply(x) as Sym;
        break;
      }
      case 'relu':
        out = tfl.layers.reLU({ name: n.name }).apply(get(n.input, n.name)) as Sym;
        break;
      case 'relu6':
        out = tfl.layers.reLU({ name: n.name, maxValue: 6 }).apply(get(n.input, n.name)) as Sym;
        break;
      case 'leaky':
        out = tfl.layers.leakyReLU({ name: n.name, alpha: n.alpha }).apply(get(n.input, n.name)) as Sym;
        break;
      case 'add':
        out = tfl.layers.add({ name: n.name }).apply([get(n.inputs[0], n.name), get(n.inputs[1], n.name)]) as Sym;
        break;
      case 'maxpool':
        out = tfl.layers
          .maxPooling2d({ name: n.name, poolSize: n.pool, strides: n.strides, padding: n.padding })
          .apply(get(n.input, n.name)) as Sym;
        break;
      case 'gap':
        out = tfl.layers.globalAveragePooling2d({ name: n.name }).apply(get(n.input, n.name)) as Sym;
        break;
      case 'dropout':
        out = tfl.layers.dropout({ name: n.name, rate: n.rate }).apply(get(n.input, n.name)) as Sym;
        break;
      case 'flatten': {
        const x = get(n.input, n.name);
        // tfjs-layers' Flatten rejects rank-2 inputs (Keras' accepts them as the identity): a pooled vector
        // is "flattened" by a Reshape to its own shape.
        out = (
          x.shape.length === 2
            ? tfl.layers.reshape({ name: n.name, targetShape: [x.shape[1] as number] })
            : tfl.layers.flatten({ name: n.name })
        ).apply(x) as Sym;
        break;
      }
      case 'dense': {
        const x = get(n.input, n.name);
        const cin = x.shape[x.shape.length - 1] as number;
        expect(n.name, 'kernelWeights', n.kernelWeights, cin * n.units);
        const layer = tfl.layers.dense({
          name: n.name,
          units: n.units,
          useBias: n.bias !== undefined,
          activation: fused.has(n.name) ? 'softmax' : 'linear',
          kernelInitializer: 'zeros',
        });
        const weights = [{ values: n.kernelWeights, shape: [cin, n.units] }];
        if (n.bias !== undefined) {
          expect(n.name, 'bias', n.bias, n.units);
          weights.push({ values: n.bias, shape: [n.units] });
        }
        pending.push([layer, weights]);
        out = layer.apply(x) as Sym;
        break;
      }
      case 'softmax':
        out = fused.has(n.input)
          ? get(n.input, n.name)
          : (tfl.layers.softmax({ name: n.name }).apply(get(n.input, n.name)) as Sym);
        break;
      default:
        throw new ConfigError(`NetSpec ${spec.name}: unsupported op '${(n as NetNode).op}'`);
    }
    tensors.set(n.name, out);
  }

  const model = tfl.model({ inputs: input, outputs: get(spec.output, 'output'), name: sanitize(spec.name) });
  for (const [layer, weights] of pending) {
    const ts = weights.map((x) => tf.tensor(x.values, x.shape, 'float32'));
    try {
      layer.setWeights(ts);
    } finally {
      // setWeights copies into the layer's variables; the temporaries are ours to free.
      tf.dispose(ts);
    }
  }
  return model;
}

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
