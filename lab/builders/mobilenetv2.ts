/**
 * MobileNetV2, width multiplier 1.0, as a random-weight `NetSpec` (Sandler et al., CVPR 2018, table 2):
 * a 3x3/2 stem, 17 inverted-residual bottlenecks (1x1 expansion by t, 3x3 depthwise, ReLU6, linear 1x1
 * projection; a residual add when stride is 1 and widths match), a 1x1 conv to 1280, GAP and a dense
 * classifier. 3,504,872 parameters with 1000 classes. He-normal weights from a seeded PRNG and calibrated
 * random batchnorm statistics (see calibrated-writer.ts). Layer names follow Keras'
 * `tf.keras.applications.MobileNetV2` (`out_relu` feeds GAP, `predictions` gives logits; no softmax).
 */
import type { NetSpec } from './spec.ts';
import { CalibratedWriter, checkBuilderOptions } from './calibrated-writer.ts';

export interface MobileNetV2Options {
  /** PRNG seed: the same seed gives the same weights. */
  seed: number;
  /** Input `[height, width]`; default [224, 224] (feature map 7x7). */
  inputSize?: [number, number];
  /** Classifier outputs; default 1000. */
  numClasses?: number;
  /** Fold batchnorm into convs and fuse ReLU6 (same function, fewer nodes). Default false. */
  foldBatchNorm?: boolean;
}

/** Table 2 of the paper: expansion t, output channels c, repeats n, first stride s. */
const BOTTLENECKS: ReadonlyArray<{ t: number; c: number; n: number; s: number }> = [
  { t: 1, c: 16, n: 1, s: 1 },
  { t: 6, c: 24, n: 2, s: 2 },
  { t: 6, c: 32, n: 3, s: 2 },
  { t: 6, c: 64, n: 4, s: 2 },
  { t: 6, c: 96, n: 3, s: 1 },
  { t: 6, c: 160, n: 3, s: 2 },
  { t: 6, c: 320, n: 1, s: 1 },
];

/** The MobileNetV2 spec (about 0.2 s to build). The spec owns fresh Float32Arrays. */
export function mobileNetV2Spec(options: MobileNetV2Options): NetSpec {
  const { seed, inputSize = [224, 224], numClasses = 1000, foldBatchNorm = false } = options;
  checkBuilderOptions('mobileNetV2Spec', seed, inputSize, numClasses, 32);
  const net = new CalibratedWriter({ seed, foldBatchNorm });

  let x = net.conv('Conv1', 'input', 32, 3, 2);
  x = net.relu('Conv1_relu', net.batchnorm('bn_Conv1', x), true);

  let block = 0;
  for (const { t, c, n, s } of BOTTLENECKS) {
    for (let i = 0; i < n; i++) {
      const strides = i === 0 ? s : 1;
      const prefix = block === 0 ? 'expanded_conv' : `block_${block}`;
      const cin = net.channels(x);
      let y = x;
      if (t !== 1) {
        y = net.conv(`${prefix}_expand`, y, cin * t, 1, 1);
        y = net.relu(`${prefix}_expand_relu`, net.batchnorm(`${prefix}_expand_BN`, y), true);
      }
      y = net.conv(`${prefix}_depthwise`, y, net.channels(y), 3, strides, { depthwise: true });
      y = net.relu(`${prefix}_depthwise_relu`, net.batchnorm(`${prefix}_depthwise_BN`, y), true);
      // Linear bottleneck: no activation after the projection (paper sec. 3.2).
      y = net.conv(`${prefix}_project`, y, c, 1, 1);
      y = net.batchnorm(`${prefix}_project_BN`, y);
      x = strides === 1 && cin === c ? net.add(`${prefix}_add`, x, y) : y;
      block++;
    }
  }

  x = net.conv('Conv_1', x, 1280, 1, 1);
  x = net.relu('out_relu', net.batchnorm('Conv_1_bn', x), true);
  const pooled = net.gap('global_average_pooling2d', x);
  const logits = net.dense('predictions', pooled, numClasses);
  return net.spec('mobilenetv2', [inputSize[0], inputSize[1]], logits);
}
