/**
 * Head and input discovery on ONNX graphs in the forms exporters write: Gemm with transB, alpha and beta,
 * weights as float_data, ReduceMean axes from a Constant node, Squeeze, NHWC inputs and NHWC features,
 * class-conv heads, overrides from camstream.json, and graphs without a CAM head. Each found head is also
 * checked through the engine: the CAM identity against the unchanged model.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { toOnnxModel, randomFrames, smallClassConvNet, smallGapDenseNet, createRandom, type NetSpec } from '../../../lab/builders/index.ts';
import { ConfigError, ModelLoadError, NoGapHeadError } from '../../../common/index.ts';
import {
  attribute,
  discoverOnnxHead,
  discoverOnnxInput,
  floatAttr,
  GraphView,
  int64Tensor,
  loadOnnxModel,
  node,
  parseOnnxModel,
  tensorFloats,
  valueInfo,
  type AttributeProto,
  type GraphProto,
  type NodeProto,
  type TensorProto,
} from '../../../models/onnx/index.ts';
import type { ModelFileConfig } from '../../../models/index.ts';
import { asDecoded, editModel, expectIdentity, onnxSource, reference, tempFolder, topK } from './onnx-helpers.ts';

const attrs = (values: Record<string, Parameters<typeof attribute>[1]>): AttributeProto[] =>
  Object.entries(values).map(([name, v]) => asDecoded<AttributeProto>(attribute(name, v)));

const tmp = tempFolder();
afterAll(() => tmp.cleanup());
let counter = 0;

const view = (bytes: Uint8Array): GraphView => new GraphView(parseOnnxModel(bytes, 'test.onnx'));
const denseOf = (spec: NetSpec) => {
  const d = spec.nodes.find((n) => n.op === 'dense' || (n.op === 'conv' && n.name === 'classconv'));
  if (!d || (d.op !== 'dense' && d.op !== 'conv')) throw new Error('no classifier in spec');
  return d;
};

/** Loads `bytes` with the engine and checks the CAM identity on two frames against the unchanged model. */
async function checkIdentity(bytes: Uint8Array, fileConfig: ModelFileConfig = {}): Promise<void> {
  const model = await loadOnnxModel(onnxSource(tmp.dir, `d${counter++}.onnx`, bytes, fileConfig), { threads: 1 });
  try {
    const [h, w] = model.info.preprocess.inputSize;
    // One frame at the model size, one of another size and aspect.
    const frames = [...randomFrames(99, 1, w, h), ...randomFrames(98, 1, w + 9, h - 5)];
    const results = await model.infer(frames, { topK: 3 });
    for (let i = 0; i < frames.length; i++) {
      const logits = (await reference(bytes, model, frames[i], ['logits'])).logits.data;
      expect(Array.from(results[i].ids)).toEqual(topK(logits, 3));
      expectIdentity(results[i], model.head().bias, logits);
    }
  } finally {
    await model.dispose();
  }
}

/** Inserts `nodes` before the first node matching `before`. */
function insertBefore(graph: GraphProto, before: (n: NodeProto) => boolean, ...nodes: NodeProto[]): void {
  const i = graph.node.findIndex(before);
  graph.node.splice(i, 0, ...nodes);
}

describe('discoverOnnxHead', () => {
  it('reads Gemm weights and bias exactly as the spec holds them', () => {
    const spec = smallGapDenseNet(1);
    const head = discoverOnnxHead(view(toOnnxModel(spec)), {}, 'x');
    const dense = denseOf(spec);
    expect(head).toMatchObject({ kind: 'onnx-gap-gemm', featureTensor: 'conv2', featureLayout: 'nchw', pooledTensor: 'gap/pool', channels: 12, numClasses: 10 });
    expect(head.weights).toEqual(dense.kernelWeights);
    expect(head.bias).toEqual(dense.bias);
    expect(head.path).toEqual(['gap/pool', 'gap', 'logits']);
  });

  it('reads a class-conv kernel [C, k, 1, 1] as W [k, C]', () => {
    const spec = smallClassConvNet(2, { numClasses: 6 });
    const head = discoverOnnxHead(view(toOnnxModel(spec)), {}, 'x');
    const conv = denseOf(spec);
    expect(head).toMatchObject({ kind: 'onnx-class-conv-gap', featureTensor: 'conv2', channels: 12, numClasses: 6 });
    expect(head.pooledTensor).toBeUndefined();
    // A 1x1 HWIO kernel [1, 1, k, C] is W [k, C] row-major.
    expect(head.weights).toEqual(conv.kernelWeights);
    expect(head.bias).toEqual(conv.bias);
  });

  it('finds a class-conv head whose pooled logits end the graph in Softmax', async () => {
    const bytes = toOnnxModel(smallClassConvNet(12, { softmax: true }));
    const head = discoverOnnxHead(view(bytes), {}, 'x');
    expect(head).toMatchObject({ kind: 'onnx-class-conv-gap', featureTensor: 'conv2' });
    expect(head.path).toEqual(['classconv', 'gap/pool', 'gap']);
  });

  it('folds Gemm alpha and beta into W and b and reads transB = 1 weights stored as float_data', async () => {
    const spec = smallGapDenseNet(3);
    const dense = denseOf(spec);
    const bytes = editModel(toOnnxModel(spec), (m) => {
      const g = m.graph;
      const gemm = g.node.find((n) => n.opType === 'Gemm')!;
      gemm.attribute = attrs({ transB: 1, alpha: floatAttr(0.5), beta: floatAttr(2) });
      const w = g.initializer.find((t) => t.name === 'logits/kernel')!;
      const kc = tensorFloats(w);
      const ck: number[] = [];
      for (let c = 0; c < 10; c++) for (let k = 0; k < 12; k++) ck.push(kc[k * 10 + c]);
      w.dims = [10, 12];
      // null drops the field from the encoding (an empty raw_data would still be written).
      w.rawData = null as unknown as Uint8Array;
      w.floatData = ck;
    });
    const head = discoverOnnxHead(view(bytes), {}, 'x');
    expect(head.weights).toEqual(dense.kernelWeights.map((v) => v * 0.5));
    expect(head.bias).toEqual(dense.bias!.map((v) => v * 2));
    await checkIdentity(bytes);
  });

  it('follows ReduceMean axes from a Constant node (opset 18) and a Squeeze', async () => {
    const spec = smallGapDenseNet(4);
    const bytes = editModel(toOnnxModel(spec, { gap: 'reducemean', headStyle: 'matmul-add', opset: 18 }), (m) => {
      const g = m.graph;
      const axes = g.initializer.findIndex((t) => t.name === 'gap/axes');
      g.initializer.splice(axes, 1);
      g.node.unshift(asDecoded<NodeProto>(node('Constant', [], ['gap/axes'], 'axes', { value: { tensor: int64Tensor('', [2], [-2, -1]) } })));
      const flat = g.node.find((n) => n.opType === 'Flatten')!;
      flat.opType = 'Squeeze';
      flat.attribute = [];
      flat.input.push('squeeze_axes');
      // Stored as int64_data rather than raw_data, as some exporters write it.
      g.initializer.push(asDecoded<TensorProto>({ name: 'squeeze_axes', dims: [2], dataType: 7, int64Data: [2, 3] }));
    });
    const head = discoverOnnxHead(view(bytes), {}, 'x');
    expect(head).toMatchObject({ kind: 'onnx-gap-gemm', featureTensor: 'conv2', featureLayout: 'nchw' });
    expect(head.path).toEqual(['gap/pool', 'gap', 'logits/matmul', 'logits']);
    await checkIdentity(bytes);
  });

  it('handles NHWC features pooled by ReduceMean over axes [1, 2] with maps in the right orientation', async () => {
    const spec = smallGapDenseNet(5);
    const nchw = toOnnxModel(spec, { gap: 'reducemean' });
    const bytes = editModel(nchw, (m) => {
      const g = m.graph;
      const reduce = g.node.find((n) => n.opType === 'ReduceMean')!;
      reduce.input[0] = 'conv2_nhwc';
      reduce.attribute = attrs({ axes: [1, 2], keepdims: 1 });
      insertBefore(g, (n) => n === reduce, asDecoded<NodeProto>(node('Transpose', ['conv2'], ['conv2_nhwc'], 'to_nhwc', { perm: [0, 2, 3, 1] })));
    });
    const head = discoverOnnxHead(view(bytes), {}, 'x');
    expect(head).toMatchObject({ featureTensor: 'conv2_nhwc', featureLayout: 'nhwc' });
    await checkIdentity(bytes);
    // The same CAM as the NCHW model, position by position (a swapped h/w would show here).
    const a = await loadOnnxModel(onnxSource(tmp.dir, 'nhwc.onnx', bytes), { threads: 1 });
    const b = await loadOnnxModel(onnxSource(tmp.dir, 'nchw.onnx', nchw), { threads: 1 });
    try {
      expect(a.info.featureShape).toEqual([12, 16, 12]);
      const frames = randomFrames(7, 1, 32, 24);
      const [ra] = await a.infer(frames, { classes: [1, 4] });
      const [rb] = await b.infer(frames, { classes: [1, 4] });
      expect(ra.mapSize).toEqual([12, 16]);
      ra.maps.forEach((v, i) => expect(v).toBeCloseTo(rb.maps[i], 4));
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it('refuses an MLP head (the first dense is followed by a ReLU) with NoGapHeadError', () => {
    const base = smallGapDenseNet(6);
    const r = createRandom(6);
    const spec: NetSpec = {
      ...base,
      nodes: [
        ...base.nodes.filter((n) => n.op !== 'dense'),
        { op: 'dense', name: 'hidden', input: 'gap', units: 8, kernelWeights: r.normalArray(12 * 8, 0.3), bias: r.normalArray(8, 0.1) },
        { op: 'relu', name: 'hidden_relu', input: 'hidden' },
        { op: 'dense', name: 'logits', input: 'hidden_relu', units: 10, kernelWeights: r.normalArray(80, 0.3), bias: r.normalArray(10, 0.1) },
      ],
    };
    expect(() => discoverOnnxHead(view(toOnnxModel(spec)), {}, 'mlp.onnx')).toThrow(NoGapHeadError);
    expect(() => discoverOnnxHead(view(toOnnxModel(spec)), {}, 'mlp.onnx')).toThrow(/hidden_relu \(Relu\) -> logits \(Gemm\)/);
  });

  it('uses featureTensor, weights and bias from camstream.json when the graph hides the head', async () => {
    const spec = smallGapDenseNet(7);
    // A fixed-window AveragePool over the whole 12x16 map is a GAP that discovery does not recognize.
    const bytes = editModel(toOnnxModel(spec), (m) => {
      const pool = m.graph.node.find((n) => n.opType === 'GlobalAveragePool')!;
      pool.opType = 'AveragePool';
      pool.attribute = attrs({ kernel_shape: [12, 16] });
    });
    expect(() => discoverOnnxHead(view(bytes), {}, 'x')).toThrow(NoGapHeadError);
    const config: ModelFileConfig = { featureTensor: 'conv2', weights: 'logits/kernel', bias: 'logits/bias' };
    const head = discoverOnnxHead(view(bytes), config, 'x');
    expect(head).toMatchObject({ kind: 'onnx-gap-gemm', featureTensor: 'conv2', pooledTensor: undefined, channels: 12, numClasses: 10 });
    expect(head.weights).toEqual(denseOf(spec).kernelWeights);
    await checkIdentity(bytes, config);
  });

  it('rejects overrides that name missing or unsuitable tensors', () => {
    const bytes = toOnnxModel(smallGapDenseNet(8));
    expect(() => discoverOnnxHead(view(bytes), { featureTensor: 'nope' }, 'x')).toThrow(ConfigError);
    expect(() => discoverOnnxHead(view(bytes), { featureTensor: 'conv2', weights: 'conv2' }, 'x')).toThrow(/"weights": 'conv2'/);
    expect(() => discoverOnnxHead(view(bytes), { bias: 'conv1/kernel' }, 'x')).toThrow(/"bias"/);
  });
});

describe('discoverOnnxInput', () => {
  it('reads name, layout, size and a fixed batch', () => {
    const bytes = toOnnxModel(smallGapDenseNet(9, { inputSize: [20, 28] }));
    expect(discoverOnnxInput(view(bytes), {}, 'x')).toEqual({ name: 'input', layout: 'nchw', inputSize: [20, 28], fixedBatch: undefined });
    const fixed = editModel(bytes, (m) => {
      m.graph.input[0] = asDecoded(valueInfo('input', 1, [1, 3, 20, 28]));
    });
    expect(discoverOnnxInput(view(fixed), {}, 'x').fixedBatch).toBe(1);
  });

  it('recognizes an NHWC input and runs the model through it', async () => {
    const spec = smallClassConvNet(10);
    const bytes = editModel(toOnnxModel(spec), (m) => {
      const g = m.graph;
      g.input[0] = asDecoded(valueInfo('image', 1, ['batch', 24, 32, 3]));
      g.node.unshift(asDecoded<NodeProto>(node('Transpose', ['image'], ['input'], 'to_nchw', { perm: [0, 3, 1, 2] })));
    });
    expect(discoverOnnxInput(view(bytes), {}, 'x')).toMatchObject({ name: 'image', layout: 'nhwc', inputSize: [24, 32] });
    await checkIdentity(bytes);
    // Channel swap and per-channel normalization on the NHWC layout.
    await checkIdentity(bytes, { channelOrder: 'bgr', scale: 1, mean: [100, 120, 140], std: [50, 60, 70], resize: 'letterbox' });
  });

  it('refuses models with two inputs or a non-RGB input', () => {
    const bytes = toOnnxModel(smallGapDenseNet(11));
    const two = editModel(bytes, (m) => {
      m.graph.input.push(asDecoded(valueInfo('extra', 1, [1])));
    });
    expect(() => discoverOnnxInput(view(two), {}, 'two.onnx')).toThrow(/exactly one image input.*input, extra/);
    const gray = editModel(bytes, (m) => {
      m.graph.input[0] = asDecoded(valueInfo('input', 1, ['N', 1, 24, 32]));
    });
    expect(() => discoverOnnxInput(view(gray), { layout: 'nchw' }, 'gray.onnx')).toThrow(ModelLoadError);
    expect(() => discoverOnnxInput(view(gray), {}, 'gray.onnx')).toThrow(/layout/);
  });
});
