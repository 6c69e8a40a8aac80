/**
 * The GAP network camstream trains for its embedded model: a few 3x3 conv stages, global average pooling,
 * one dense layer (ref: Zhou et al. 2016, sec. 2: "a network largely consisting of convolutional layers,
 * and just before the final output layer we perform global average pooling on the convolutional feature
 * maps and use those as features for a fully-connected layer").
 *
 * Mapping resolution: the paper (sec. 2 and 3.1) finds localization improves when the last conv layer
 * keeps a higher spatial resolution (they remove layers of AlexNet/VGG/GoogLeNet to reach 13x13 or
 * 14x14). Here two stride-2 convs downsample 4x, so the default 56x56 input gives 14x14 maps; the last
 * stages add receptive field at that resolution instead of pooling further. The optional fusion stage
 * (`fuse`) doubles the mapping resolution without running the whole trunk at it: the 14x14 trunk output
 * is upsampled to 28x28 and joined with the 28x28 output of the first conv before the feature conv, so a
 * 4-pixel map cell becomes 2 pixels. In its gate mode (the shipped model's) the finer output instead makes
 * a sigmoid gate per feature channel and cell, which multiplies the upsampled trunk output: the trunk says
 * what is there, the gate where the strokes are. Either way GAP feeds one dense layer from the feature
 * layer, so M_c = sum_k w_k^c f_k and mean(M_c) + b_c = logit_c hold unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ConfigError } from '../../common/index.ts';

export interface GapNetConfig {
  /** Square input side in pixels, a multiple of 4. Default 56 (14x14 maps). */
  inputSize?: number;
  /** Filters per 3x3 conv layer. Default [16, 32, 64, 64]. */
  widths?: readonly number[];
  /**
   * Stride per conv layer (1 or 2), same length as `widths`; their product is the input-to-map ratio.
   * Default [2, 2, 1, 1]: 4x downsampling by strided convs (no pooling layers, whose gradient is slow
   * on wasm), so a 56x56 input gives 14x14 maps, and two convs at that resolution.
   */
  strides?: readonly number[];
  /**
   * Kernel side per conv layer, same length as `widths`. Default: 4 for stride-2 layers, 3 for the rest
   * ([4, 4, 3, 3] for the default strides). The stride-2 layers use
   * 4x4 kernels because TF's 'same' padding then pads one pixel on each side and the window of output
   * cell i is centred exactly on input position 2i + 1, which is where half-pixel-centre upsampling of the
   * map puts it. A 3x3 kernel pads only the bottom/right and centres each cell half a pixel further down
   * and right, an error that doubles at the next stride-2 layer (measured on the first trained model:
   * CAM boxes 1.5-2.5 px up and left of the digits).
   */
  kernels?: readonly number[];
  /**
   * Optional fusion stage that doubles the mapping resolution (an hourglass with one skip connection):
   * the last trunk output is upsampled 2x (nearest neighbour, which is exact for 2x: map cell i covers
   * finer cells 2i and 2i+1), concatenated with the last trunk output already at that finer resolution,
   * and passed through `widths.length` convs of side `kernel` at stride 1, the last of which gives the
   * features. The trunk keeps its receptive field (what the class evidence needs), the fine skip brings
   * where the strokes are. Needs a stride-2 layer in the trunk with a layer before it. `batchNorm: false`
   * gives the fusion convs a bias instead of batch normalization (which costs more at the finer
   * resolution); default: as the trunk.
   *
   * `mode: 'gate'` replaces the concatenation: the finer trunk output alone goes through the fusion convs,
   * the last of which has a sigmoid instead of a ReLU and as many filters as the last trunk layer, and the
   * features are the upsampled trunk output times that gate, channel by channel (so they stay >= 0).
   * Default mode 'concat'. Default: no fusion stage.
   */
  fuse?: { widths: readonly number[]; kernel: number; batchNorm?: boolean; mode?: 'concat' | 'gate' } | null;
  /** Output classes. Default 10 (the digits). */
  numClasses?: number;
  /** Seed for the weight initializers. Default 1. */
  seed?: number;
  /** Batch normalization after each conv (before the ReLU). Default true: it makes training converge in
   * a fraction of the steps, which is what fits the training budget on one wasm thread. */
  batchNorm?: boolean;
}

export const DEFAULT_GAP_NET_CONFIG: Readonly<Required<Omit<GapNetConfig, 'kernels'>>> = Object.freeze({
  inputSize: 56,
  widths: Object.freeze([16, 32, 64, 64]) as readonly number[],
  strides: Object.freeze([2, 2, 1, 1]) as readonly number[],
  numClasses: 10,
  seed: 1,
  batchNorm: true,
  fuse: null,
});

/**
 * The input scaling the network is trained with: `x = (pixel / 255 - 0.5) / 0.25` per channel, RGB,
 * NHWC. It is what the model folder's camstream.json declares (`scale`, `mean`, `std`).
 */
export const GAP_NET_PREPROCESS = Object.freeze({
  scale: 1 / 255,
  mean: [0.5, 0.5, 0.5] as [number, number, number],
  std: [0.25, 0.25, 0.25] as [number, number, number],
});

/** Merges and validates; throws ConfigError naming the field, the value and the allowed range. */
export function resolveGapNetConfig(config: GapNetConfig = {}): Required<GapNetConfig> {
  const merged = { ...DEFAULT_GAP_NET_CONFIG, ...config };
  const { inputSize, widths, strides, numClasses, seed, batchNorm } = merged;
  const fuse = merged.fuse ?? null;
  const kernels = config.kernels ?? strides.map((s) => (s === 2 ? 4 : 3));
  if (!Number.isInteger(inputSize) || inputSize < 16 || inputSize > 512) {
    throw new ConfigError(`inputSize must be an integer in [16, 512], got ${inputSize}`);
  }
  if (widths.length < 3 || widths.some((w) => !Number.isInteger(w) || w < 1 || w > 1024)) {
    throw new ConfigError(`widths must hold at least 3 integers in [1, 1024], got [${widths.join(', ')}]`);
  }
  if (strides.length !== widths.length || strides.some((s) => s !== 1 && s !== 2)) {
    throw new ConfigError(`strides must hold ${widths.length} values of 1 or 2 (one per width), got [${strides.join(', ')}]`);
  }
  if (kernels.length !== widths.length || kernels.some((k) => !Number.isInteger(k) || k < 1 || k > 7)) {
    throw new ConfigError(`kernels must hold ${widths.length} integers in [1, 7] (one per width), got [${kernels.join(', ')}]`);
  }
  const ratio = strides.reduce((a, b) => a * b, 1);
  if (inputSize % ratio !== 0) {
    throw new ConfigError(`inputSize ${inputSize} must be a multiple of the total stride ${ratio}`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 2 || numClasses > 10000) {
    throw new ConfigError(`numClasses must be an integer in [2, 10000], got ${numClasses}`);
  }
  if (!Number.isInteger(seed)) {
    throw new ConfigError(`seed must be an integer, got ${seed}`);
  }
  if (fuse !== null) {
    if (!Array.isArray(fuse.widths) || fuse.widths.length < 1 || fuse.widths.some((w) => !Number.isInteger(w) || w < 1 || w > 1024)) {
      throw new ConfigError(`fuse.widths must hold at least 1 integer in [1, 1024], got ${JSON.stringify(fuse.widths)}`);
    }
    if (!Number.isInteger(fuse.kernel) || fuse.kernel < 1 || fuse.kernel > 7) {
      throw new ConfigError(`fuse.kernel must be an integer in [1, 7], got ${String(fuse.kernel)}`);
    }
    if (fuse.mode !== undefined && fuse.mode !== 'concat' && fuse.mode !== 'gate') {
      throw new ConfigError(`fuse.mode must be 'concat' or 'gate', got ${String(fuse.mode)}`);
    }
    if (fuse.mode === 'gate' && fuse.widths[fuse.widths.length - 1] !== widths[widths.length - 1]) {
      throw new ConfigError(`fuse.widths must end with the trunk's last width (${widths[widths.length - 1]}) in gate mode, got ${JSON.stringify(fuse.widths)}`);
    }
    if (fineLayerIndex(strides) < 0) {
      throw new ConfigError(`fuse needs a stride-2 trunk layer with a layer before it, got strides [${strides.join(', ')}]`);
    }
  }
  return {
    inputSize,
    widths: [...widths],
    strides: [...strides],
    kernels: [...kernels],
    numClasses,
    seed,
    batchNorm: batchNorm === true,
    fuse:
      fuse === null
        ? null
        : { widths: [...fuse.widths], kernel: fuse.kernel, batchNorm: fuse.batchNorm ?? batchNorm === true, ...(fuse.mode === 'gate' ? { mode: 'gate' as const } : {}) },
  };
}

/** Index of the last trunk layer whose output is twice the trunk's final resolution (before its last stride-2 layer). */
function fineLayerIndex(strides: readonly number[]): number {
  const lastStride2 = strides.lastIndexOf(2);
  return lastStride2 - 1;
}

/** Input side over map side: the trunk's total stride, halved by a fusion stage. */
export function mapRatio(net: Required<GapNetConfig>): number {
  const ratio = net.strides.reduce((a, b) => a * b, 1);
  return net.fuse ? ratio / 2 : ratio;
}

/** Name of the last conv layer (the features the CAM is made of) in models built here. */
export const FEATURE_LAYER = 'features';
/** Name of the dense classifier layer. */
export const CLASSIFIER_LAYER = 'predictions';

/**
 * Builds the GAP network, untrained, with seeded He-normal conv weights. Input: float32 NHWC
 * `[batch, inputSize, inputSize, 3]`, pixels scaled to [0, 1]. Output: softmax probabilities. The caller
 * owns the returned model (dispose it).
 */
export function buildGapNet(config: GapNetConfig = {}): tfl.LayersModel {
  const { inputSize, widths, strides, kernels, numClasses, seed, batchNorm, fuse } = resolveGapNetConfig(config);
  const input = tfl.input({ shape: [inputSize, inputSize, 3], name: 'image' });
  const gated = fuse?.mode === 'gate';
  // The last conv names the feature layer, except in gate mode, where the gating product does.
  const convCount = gated ? Number.POSITIVE_INFINITY : widths.length + (fuse?.widths.length ?? 0);
  let index = 0;
  // conv (+ BN) + ReLU; the last conv of the network is the feature layer.
  const block = (x: tfl.SymbolicTensor, filters: number, kernelSize: number, stride: number, batchNorm: boolean, activation: 'relu' | 'sigmoid' = 'relu'): tfl.SymbolicTensor => {
    const i = index++;
    const last = i === convCount - 1;
    const name = last ? FEATURE_LAYER : `conv${i + 1}`;
    let y = tfl.layers
      .conv2d({
        filters,
        kernelSize,
        strides: stride,
        padding: 'same',
        activation: batchNorm ? 'linear' : activation,
        useBias: !batchNorm,
        kernelInitializer: tfl.initializers.heNormal({ seed: seed * 101 + i }),
        name: batchNorm ? `conv${i + 1}` : name,
      })
      .apply(x) as tfl.SymbolicTensor;
    if (batchNorm) {
      y = tfl.layers.batchNormalization({ momentum: 0.95, name: `bn${i + 1}` }).apply(y) as tfl.SymbolicTensor;
      // The ReLU's output is what feeds GAP, so it carries the feature-layer name.
      y = tfl.layers.activation({ activation, name: last ? FEATURE_LAYER : `${activation}${i + 1}` }).apply(y) as tfl.SymbolicTensor;
    }
    return y;
  };
  const trunk: tfl.SymbolicTensor[] = [];
  let x: tfl.SymbolicTensor = input;
  widths.forEach((filters, i) => {
    x = block(x, filters, kernels[i], strides[i], batchNorm);
    trunk.push(x);
  });
  if (fuse && gated) {
    // Gate mode: the fine skip, through the fusion convs (the last one a sigmoid), gates the upsampled
    // trunk output channel by channel; the product is the feature layer.
    const up = tfl.layers.upSampling2d({ size: [2, 2], interpolation: 'nearest', name: 'upsample' }).apply(x) as tfl.SymbolicTensor;
    let g = trunk[fineLayerIndex(strides)];
    fuse.widths.forEach((filters, j) => {
      g = block(g, filters, fuse.kernel, 1, fuse.batchNorm !== false, j === fuse.widths.length - 1 ? 'sigmoid' : 'relu');
    });
    x = tfl.layers.multiply({ name: FEATURE_LAYER }).apply([up, g]) as tfl.SymbolicTensor;
  } else if (fuse) {
    const up = tfl.layers.upSampling2d({ size: [2, 2], interpolation: 'nearest', name: 'upsample' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.concatenate({ axis: -1, name: 'skip' }).apply([up, trunk[fineLayerIndex(strides)]]) as tfl.SymbolicTensor;
    for (const filters of fuse.widths) x = block(x, filters, fuse.kernel, 1, fuse.batchNorm !== false);
  }
  const gap = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
  const output = tfl.layers
    .dense({
      units: numClasses,
      activation: 'softmax',
      kernelInitializer: tfl.initializers.glorotUniform({ seed: seed * 101 + 99 }),
      name: CLASSIFIER_LAYER,
    })
    .apply(gap) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output, name: 'camstream_digits_gap' });
}

/**
 * The logits of `model` for a batch (the dense layer before its softmax), computed from the GAP
 * features and the classifier's own weight variables so that gradients reach every trainable weight.
 * Used for a numerically stable softmax cross-entropy. Caller owns the result; call inside a tidy.
 */
export function gapNetLogits(model: tfl.LayersModel, images: tf.Tensor4D): tf.Tensor2D {
  return gapNetForward(model, images).logits;
}

/**
 * The training forward pass: the feature maps feeding GAP (`[batch, h, w, k]`), the classifier's kernel
 * (`[k, classes]`) and the logits, mean(features) x kernel + bias (GAP is the spatial mean). The class
 * maps are features x kernel, so a loss on them trains the same weights the logits use. Call inside a tidy.
 */
export function gapNetForward(model: tfl.LayersModel, images: tf.Tensor4D): { features: tf.Tensor4D; kernel: tf.Tensor2D; logits: tf.Tensor2D } {
  const dense = model.getLayer(CLASSIFIER_LAYER);
  const featureModel = featureModels.get(model) ?? tfl.model({ inputs: model.inputs, outputs: model.getLayer('gap').input as tfl.SymbolicTensor });
  featureModels.set(model, featureModel);
  const features = featureModel.apply(images, { training: true }) as tf.Tensor4D;
  const [kernel, bias] = dense.trainableWeights.map((w) => w.read()) as [tf.Tensor2D, tf.Tensor1D];
  const logits = tf.add(tf.matMul(tf.mean(features, [1, 2]) as tf.Tensor2D, kernel), bias) as tf.Tensor2D;
  return { features, kernel, logits };
}

/**
 * A weakly supervised sharpness term on the labelled class's map (image labels only, no boxes). `targets`
 * is the batch's one-hot labels (`[batch, classes]`) with the columns of classes that have no map (`no
 * digit`) zeroed. For each sample with a mapped class, its map M = features x that class's kernel column
 * is cut at 0 and its mean divided by its maximum: the share of the frame the map covers at full strength,
 * 1 for a flat map, small for a single peak. Averaged over those samples (0 when there are none). The
 * paper's box rule keeps the cells above 20% of the maximum, so a broad floor of weak evidence
 * (distractors, background) widens every box; this term pushes that floor down. `sampleWeights`
 * (`[batch]`, default 1 each) scales each sample's share; the sum is still divided by the number of mapped
 * samples, so a weight of 2 counts a sample twice. Call inside a tidy.
 */
export function mapAreaPenalty(features: tf.Tensor4D, kernel: tf.Tensor2D, targets: tf.Tensor2D, cap = 1, sampleWeights?: tf.Tensor1D): tf.Scalar {
  const k = features.shape[3];
  const columns = tf.matMul(targets, kernel, false, true); // [batch, k]
  const maps = tf.relu(tf.sum(tf.mul(features, tf.reshape(columns, [-1, 1, 1, k])), 3)); // [batch, h, w]
  const relative = tf.div(maps, tf.add(tf.max(maps, [1, 2], true), 1e-6));
  const area = tf.div(tf.mean(cap < 1 ? tf.minimum(relative, cap) : relative, [1, 2]), cap); // [batch]
  const mapped = tf.sum(targets, 1); // 1 for a mapped class, 0 otherwise
  const weighted = sampleWeights ? tf.mul(area, tf.mul(mapped, sampleWeights)) : tf.mul(area, mapped);
  return tf.div(tf.sum(weighted), tf.maximum(tf.sum(mapped), 1)) as tf.Scalar;
}

const featureModels = new WeakMap<tfl.LayersModel, tfl.LayersModel>();
