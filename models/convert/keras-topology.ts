/**
 * Reading a TF.js layers model for conversion: the Keras topology in model.json (functional or
 * sequential) as a flat, ordered list of layers with their inputs, and the weights by name.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ModelLoadError } from '../../common/errors.ts';
import { ensureTfjsBackend } from '../tfjs/backend.ts';
import { readModelFolder } from '../tfjs/io.ts';

/** One layer of the model, in topological order. */
export interface KerasLayer {
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** Names of the layers feeding it (empty for the input). */
  inputs: string[];
}

/** A layers model ready to convert. */
export interface KerasModel {
  name: string;
  layers: KerasLayer[];
  /** Name of the layer whose output is the model's output. */
  output: string;
  /** Weights by name (`conv2d_1/kernel`), as float32 arrays with their shapes. */
  weights: Map<string, { shape: number[]; data: Float32Array }>;
}

type Json = Record<string, unknown>;

/** Layer inputs from Keras 2 `inbound_nodes` (`[[[name, nodeIndex, tensorIndex, kwargs], ...]]`). */
function inboundOf(layer: Json, where: string): string[] {
  const inbound = (layer.inbound_nodes ?? []) as unknown[];
  if (inbound.length === 0) return [];
  if (inbound.length > 1) throw new ModelLoadError(`${where}: layer '${String(layer.name)}' is shared (called ${inbound.length} times); convert does not handle shared layers`);
  const calls = inbound[0];
  if (!Array.isArray(calls)) throw new ModelLoadError(`${where}: layer '${String(layer.name)}' has inbound nodes in a format convert does not read (Keras 3?)`);
  return calls.map((c) => String((c as unknown[])[0]));
}

/** The flat layer list of a functional (`Model`/`Functional`) or `Sequential` topology. */
function layersOf(topology: Json, where: string): { name: string; layers: KerasLayer[]; output: string } {
  const root = (topology.model_config ?? topology) as Json;
  const className = String(root.class_name);
  const config = root.config as Json | Json[];
  const list = (Array.isArray(config) ? config : (config.layers as Json[])) ?? [];
  const name = Array.isArray(config) ? 'model' : String(config.name ?? 'model');
  if (className === 'Sequential') {
    const layers: KerasLayer[] = [];
    const first = (list[0]?.config ?? {}) as Json;
    if (list[0]?.class_name !== 'InputLayer') {
      layers.push({ name: 'input', className: 'InputLayer', config: { batch_input_shape: first.batch_input_shape }, inputs: [] });
    }
    for (const l of list) {
      const cfg = l.config as Json;
      layers.push({ name: String(cfg.name), className: String(l.class_name), config: cfg, inputs: layers.length ? [layers[layers.length - 1].name] : [] });
    }
    return { name, layers, output: layers[layers.length - 1].name };
  }
  if (className !== 'Model' && className !== 'Functional') throw new ModelLoadError(`${where}: model class '${className}' is not a Keras functional or sequential model`);
  const layers = list.map((l) => ({ name: String(l.name), className: String(l.class_name), config: l.config as Json, inputs: inboundOf(l, where) }));
  const outputs = (config as Json).output_layers as unknown[][];
  if (!outputs || outputs.length !== 1) throw new ModelLoadError(`${where}: convert needs exactly one model output, found ${outputs?.length ?? 0}`);
  return { name, layers, output: String(outputs[0][0]) };
}

/**
 * Reads a TF.js layers model folder (or its model.json) for conversion.
 * @throws ModelLoadError when the files are missing, not a layers model, or use shared layers.
 */
export async function readKerasModel(path: string): Promise<KerasModel> {
  const { artifacts, kind, folder } = await readModelFolder(path);
  if (kind !== 'layers') throw new ModelLoadError(`${folder}: a TF.js graph model; convert reads layers models only`);
  const { name, layers, output } = layersOf(artifacts.modelTopology as Json, folder);
  await ensureTfjsBackend('cpu');
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  const named = tf.io.decodeWeights(artifacts.weightData as ArrayBuffer, artifacts.weightSpecs ?? []);
  for (const [key, tensor] of Object.entries(named)) {
    weights.set(key, { shape: tensor.shape, data: Float32Array.from(tensor.dataSync() as Float32Array) });
    tensor.dispose();
  }
  return { name, layers, output, weights };
}
