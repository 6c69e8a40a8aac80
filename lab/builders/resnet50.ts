/**
 * ResNet-50 v1.5 as a random-weight `NetSpec` (He et al., CVPR 2016, table 1, "50-layer"; v1.5 moves the
 * stride-2 of each downsampling bottleneck from the first 1x1 conv to the 3x3 conv, as torchvision and
 * most deployed ResNet-50s do). For benches and tests: the real topology and parameter count
 * (25,557,032 with 1000 classes), He-normal weights from a seeded PRNG, batchnorm statistics drawn near
 * the values a calibration on data would give (see calibrated-writer.ts), so activations and logits stay
 * at a sane scale. Layer names follow Keras' `tf.keras.applications.ResNet50` (`conv5_block3_out` feeds
 * GAP, `predictions` gives logits; no softmax).
 */
import type { NetSpec } from './spec.ts';
import { CalibratedWriter, checkBuilderOptions } from './calibrated-writer.ts';

export interface ResNet50Options {
  /** PRNG seed: the same seed gives the same weights. */
  seed: number;
  /** Input `[height, width]`; default [224, 224] (feature map 7x7). */
  inputSize?: [number, number];
  /** Classifier outputs; default 1000. */
  numClasses?: number;
  /**
   * Fold batchnorm into conv weights and fuse ReLUs into convs (same function, fewer nodes, as an
   * inference-converted graph). Default false: separate Conv, BatchNorm and ReLU nodes like a Keras model.
   */
  foldBatchNorm?: boolean;
}

/** Bottleneck blocks per stage (conv2_x .. conv5_x) and their inner widths; outputs are 4x wider. */
const STAGES: ReadonlyArray<{ blocks: number; width: number }> = [
  { blocks: 3, width: 64 },
  { blocks: 4, width: 128 },
  { blocks: 6, width: 256 },
  { blocks: 3, width: 512 },
];
const EXPANSION = 4;

/**
 * The ResNet-50 v1.5 spec. Takes about a second for the 25.6 M weights; the spec owns fresh
 * Float32Arrays (no sharing between calls).
 */
export function resnet50Spec(options: ResNet50Options): NetSpec {
  const { seed, inputSize = [224, 224], numClasses = 1000, foldBatchNorm = false } = options;
  // Five stride-2 steps: below 32 px the last stage would see a feature map under 1x1.
  checkBuilderOptions('resnet50Spec', seed, inputSize, numClasses, 32);
  const net = new CalibratedWriter({ seed, foldBatchNorm });

  // Stem: 7x7/2 conv, BN, ReLU, 3x3/2 max pool (224 -> 56).
  let x = net.conv('conv1_conv', 'input', 64, 7, 2);
  x = net.batchnorm('conv1_bn', x);
  x = net.relu('conv1_relu', x);
  x = net.maxpool('pool1_pool', x, 3, 2);

  STAGES.forEach(({ blocks, width }, s) => {
    for (let b = 1; b <= blocks; b++) {
      const prefix = `conv${s + 2}_block${b}`;
      // Stage conv2 keeps the 56x56 size after the max pool; the others halve it in their first block.
      const strides = b === 1 && s > 0 ? 2 : 1;
      const shortcut =
        b === 1
          ? net.batchnorm(`${prefix}_0_bn`, net.conv(`${prefix}_0_conv`, x, width * EXPANSION, 1, strides))
          : x;
      let y = net.conv(`${prefix}_1_conv`, x, width, 1, 1);
      y = net.relu(`${prefix}_1_relu`, net.batchnorm(`${prefix}_1_bn`, y));
      y = net.conv(`${prefix}_2_conv`, y, width, 3, strides);
      y = net.relu(`${prefix}_2_relu`, net.batchnorm(`${prefix}_2_bn`, y));
      y = net.conv(`${prefix}_3_conv`, y, width * EXPANSION, 1, 1);
      y = net.batchnorm(`${prefix}_3_bn`, y);
      x = net.relu(`${prefix}_out`, net.add(`${prefix}_add`, shortcut, y));
    }
  });

  const pooled = net.gap('avg_pool', x);
  const logits = net.dense('predictions', pooled, numClasses);
  return net.spec('resnet50', [inputSize[0], inputSize[1]], logits);
}
