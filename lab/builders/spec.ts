/**
 * An engine-neutral description of a small convolutional network with its weights, from which the
 * builders make the same network as a TF.js layers model and as an ONNX model. Used by tests (the CAM
 * identity and cross-engine agreement on random weights) and benches (ResNet-50- and MobileNetV2-shaped
 * random-weight models).
 *
 * Conventions (TF's, converted by the ONNX builder):
 * - Activations are NHWC; the input is `[inputSize[0], inputSize[1], 3]` float, already preprocessed.
 * - Conv kernels are HWIO `[kh, kw, cin, cout]`; depthwise kernels `[kh, kw, cin, 1]`; dense kernels
 *   `[in, out]`. All weights row-major Float32Array.
 * - `same` padding is TF's: for stride 2 the extra pixel goes at the bottom/right (ONNX SAME_UPPER).
 * - Nodes are listed in topological order; `input` names an earlier node (or 'input').
 */
export type NetNode =
  | {
      op: 'conv';
      name: string;
      input: string;
      filters: number;
      kernel: [number, number];
      strides: number;
      padding: 'same' | 'valid';
      /** Depthwise conv (one filter per input channel, `filters` must equal cin). */
      depthwise?: boolean;
      activation?: 'linear' | 'relu' | 'relu6' | 'leaky';
      kernelWeights: Float32Array;
      bias?: Float32Array;
    }
  | {
      op: 'batchnorm';
      name: string;
      input: string;
      gamma: Float32Array;
      beta: Float32Array;
      mean: Float32Array;
      variance: Float32Array;
      epsilon: number;
    }
  | { op: 'relu' | 'relu6'; name: string; input: string }
  | { op: 'leaky'; name: string; input: string; alpha: number }
  | { op: 'add'; name: string; inputs: [string, string] }
  | { op: 'maxpool'; name: string; input: string; pool: number; strides: number; padding: 'same' | 'valid' }
  | { op: 'gap'; name: string; input: string }
  | { op: 'dropout'; name: string; input: string; rate: number }
  | { op: 'flatten'; name: string; input: string }
  | { op: 'dense'; name: string; input: string; units: number; kernelWeights: Float32Array; bias?: Float32Array }
  | { op: 'softmax'; name: string; input: string };

export interface NetSpec {
  name: string;
  inputSize: [number, number];
  nodes: NetNode[];
  /** Name of the output node (logits or probabilities). */
  output: string;
}

/**
 * Slope of a conv's fused `leaky` activation. The spec's conv node carries no alpha; 0.1 is Darknet's
 * leaky ReLU, the networks this activation comes from. Every builder uses this value.
 */
export const CONV_LEAKY_ALPHA = 0.1;

/** The node variants whose `op` is `K` (for example `NodeOf<'conv'>`). */
export type NodeOf<K extends NetNode['op']> = NetNode & { op: K };

/** A table with one emitter per op: each builder keeps one, so an op added to `NetNode` fails to type-check until every builder handles it. */
export type EmitterTable<B, R> = { [K in NetNode['op']]: (n: NodeOf<K>, build: B) => R };

/** The emitter of `n.op` in `table`, or undefined for an op the table lacks (a spec built without types). */
export function emitterOf<B, R>(table: EmitterTable<B, R>, n: NetNode): ((n: NetNode, build: B) => R) | undefined {
  return Object.hasOwn(table, n.op) ? (table[n.op] as (n: NetNode, build: B) => R) : undefined;
}
