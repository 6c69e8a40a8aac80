/**
 * The network of a TF.js model up to its features (and its own logits), for layers and graph models alike,
 * and building it from a model folder's artifacts together with the head discovery found in it.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as tfc from '@tensorflow/tfjs-converter';
import { ModelLoadError } from '../../common/errors.ts';
import type { DiscoveredInput } from '../preprocess.ts';
import type { ModelFileConfig } from '../types.ts';
import { discoverGraphHead, type GraphNodeJson } from './discover-graph.ts';
import { discoverLayersHead, type DiscoveredHead } from './discover-layers.ts';
import type { TfjsModelKind } from './io.ts';

/** The network up to the features (and the model's own logits), shared by a model and its `withHead`s. */
export interface Backbone {
  /**
   * One forward pass, synchronous: call it inside `tf.tidy`. Returns the NHWC feature map and, when
   * `withLogits`, the model's logits tensor (as the head's `LogitsSource` says where they are).
   */
  forward(x: tf.Tensor4D, withLogits: boolean): { features: tf.Tensor4D; logits?: tf.Tensor };
  /** Frees the model's weights. */
  dispose(): void;
}

class LayersBackbone implements Backbone {
  private readonly both: tfl.LayersModel;
  private featuresOnly: tfl.LayersModel | undefined;

  constructor(
    private readonly model: tfl.LayersModel,
    private readonly features: tfl.SymbolicTensor,
    logits: tfl.SymbolicTensor | undefined,
  ) {
    // One model with both outputs: a single pass computes the shared trunk once.
    this.both = tfl.model({ inputs: model.inputs, outputs: logits ? [features, logits] : [features] });
  }

  forward(x: tf.Tensor4D, withLogits: boolean): { features: tf.Tensor4D; logits?: tf.Tensor } {
    if (withLogits) {
      const out = this.both.apply(x, { training: false }) as tf.Tensor[];
      return { features: out[0] as tf.Tensor4D, logits: out[1] };
    }
    // A custom head needs only the features: skip the original classifier.
    this.featuresOnly ??= tfl.model({ inputs: this.model.inputs, outputs: this.features });
    return { features: this.featuresOnly.apply(x, { training: false }) as tf.Tensor4D };
  }

  dispose(): void {
    this.model.dispose();
  }
}

class GraphBackbone implements Backbone {
  private readonly input: string;

  constructor(
    private readonly model: tfc.GraphModel,
    private readonly features: string,
    private readonly featureLayout: 'nhwc' | 'nchw',
    private readonly logits: string | undefined,
  ) {
    this.input = model.inputs[0].name;
  }

  forward(x: tf.Tensor4D, withLogits: boolean): { features: tf.Tensor4D; logits?: tf.Tensor } {
    const names = withLogits && this.logits ? [this.features, this.logits] : [this.features];
    const out = this.model.execute({ [this.input]: x }, names) as tf.Tensor[];
    let features = out[0] as tf.Tensor4D;
    if (this.featureLayout === 'nchw') features = tf.transpose(features, [0, 2, 3, 1]);
    return { features, logits: out[1] };
  }

  dispose(): void {
    this.model.dispose();
  }
}

function layersInput(model: tfl.LayersModel, where: string): DiscoveredInput {
  const shape = model.inputs[0]?.shape;
  if (model.inputs.length !== 1 || shape === undefined || shape.length !== 4) {
    throw new ModelLoadError(`${where}: camstream needs one image input [N, H, W, 3], the model has inputs ${JSON.stringify(model.inputs.map((i) => i.shape))}`);
  }
  const channelsLast = shape[3] === 3;
  const channelsFirst = !channelsLast && shape[1] === 3;
  const [h, w] = channelsFirst ? [shape[2], shape[3]] : [shape[1], shape[2]];
  return {
    inputSize: typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0 ? [h, w] : undefined,
    layout: channelsFirst ? 'nchw' : 'nhwc',
  };
}

function graphInput(model: tfc.GraphModel, where: string): DiscoveredInput {
  if (model.inputs.length !== 1) {
    throw new ModelLoadError(`${where}: camstream needs one image input, the graph has ${model.inputs.length}: ${model.inputs.map((i) => i.name).join(', ')}`);
  }
  const shape = model.inputs[0].shape;
  if (shape === undefined || shape.length !== 4) return { layout: 'nhwc' };
  const channelsFirst = shape[3] !== 3 && shape[1] === 3;
  const [h, w] = channelsFirst ? [shape[2], shape[3]] : [shape[1], shape[2]];
  return { inputSize: h > 0 && w > 0 ? [h, w] : undefined, layout: channelsFirst ? 'nchw' : 'nhwc' };
}

/** A built backbone with what discovery found in it. */
export interface OpenedBackbone {
  backbone: Backbone;
  /** The head found: its weights and bias are new tensors the caller owns. */
  found: DiscoveredHead<unknown>;
  /** What the model's input says about size and layout. */
  input: DiscoveredInput;
}

/**
 * Builds the model from `artifacts` and finds its CAM head. On failure everything built here is freed.
 * @throws ModelLoadError (TF.js cannot build the model, bad inputs), NoGapHeadError, ConfigError (overrides).
 */
export async function openBackbone(
  artifacts: tf.io.ModelArtifacts,
  kind: TfjsModelKind,
  fileConfig: ModelFileConfig,
  where: string,
): Promise<OpenedBackbone> {
  if (kind === 'layers') {
    const model = await buildModel(() => tfl.loadLayersModel(tf.io.fromMemory(artifacts)), 'layers', where);
    return withCleanup(model, () => {
      const input = layersInput(model, where);
      const head = discoverLayersHead(model, fileConfig, where);
      const logits = head.logits.from === 'features' ? undefined : head.logits.tensor;
      return { backbone: freeHeadOnError(head, () => new LayersBackbone(model, head.features, logits)), found: head, input };
    });
  }
  const model = await buildModel(() => tfc.loadGraphModel(tf.io.fromMemory(artifacts)), 'graph', where);
  return withCleanup(model, () => {
    const input = graphInput(model, where);
    const nodes = ((artifacts.modelTopology as { node?: GraphNodeJson[] }).node ?? []) as GraphNodeJson[];
    const head = discoverGraphHead(nodes, model.outputNodes[0], model.weights, fileConfig, where);
    const logits = head.logits.from === 'features' ? undefined : head.logits.tensor;
    const backbone = freeHeadOnError(head, () => new GraphBackbone(model, head.features, head.featureLayout, logits));
    return { backbone, found: head, input };
  });
}

async function buildModel<M>(build: () => Promise<M>, kind: TfjsModelKind, where: string): Promise<M> {
  try {
    return await build();
  } catch (err) {
    throw new ModelLoadError(`${where}: TF.js could not build the ${kind} model: ${(err as Error).message}`, { cause: err });
  }
}

/** Runs `open`; frees `model` when it throws. */
function withCleanup<T>(model: { dispose(): void }, open: () => T): T {
  try {
    return open();
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/** Runs `make`; frees the head's tensors when it throws. */
function freeHeadOnError(head: DiscoveredHead<unknown>, make: () => Backbone): Backbone {
  try {
    return make();
  } catch (err) {
    tf.dispose([head.weights, head.bias]);
    throw err;
  }
}
