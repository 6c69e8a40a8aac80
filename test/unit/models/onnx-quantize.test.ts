/**
 * INT8 quantization (models/onnx/quantize.ts): the structure of a quantized small network (QDQ pairs
 * around every conv, uint8 activations with the ReLUs folded into zero point 0, int8 per-channel weights,
 * int32 biases with scale = input scale x weight scale, fp32 head), that ONNX Runtime really fuses it into
 * QLinearConv, and the fidelity report's fields.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { randomFrames, smallClassConvNet, smallGapDenseNet, toOnnxModel } from '../../../lab/builders/index.ts';
import { load, resolvePreprocess, type CamModel } from '../../../models/index.ts';
import {
  discoverOnnxHead,
  discoverOnnxInput,
  extendOnnxModel,
  GraphView,
  measureFidelity,
  parseOnnxModel,
  pearson,
  quantizeOnnx,
  tensorDims,
  tensorFloats,
  type NodeProto,
  type TensorProto,
} from '../../../models/onnx/index.ts';
import { onnxSource, tempFolder } from './onnx-helpers.ts';

const UINT8 = 2;
const INT8 = 3;
const INT32 = 6;
const { dir, cleanup } = tempFolder();
const models: CamModel[] = [];
afterAll(async () => {
  for (const m of models) await m.dispose();
  cleanup();
});

const frames = randomFrames(7, 12, 40, 30);

/** Raw bytes of an initializer as the typed array its data type says. */
function ints(t: TensorProto): Int8Array | Int32Array | Uint8Array {
  const raw = new Uint8Array(t.rawData).slice();
  if (t.dataType === INT8) return new Int8Array(raw.buffer);
  if (t.dataType === INT32) return new Int32Array(raw.buffer);
  return raw;
}

/** The DequantizeLinear feeding `tensor`, with its quantized source, scale and zero point constants. */
function dequantized(view: GraphView, tensor: string): { dq: NodeProto; q?: NodeProto; scale: Float32Array; zp: TensorProto; source?: TensorProto } {
  const dq = view.producer(tensor);
  expect(dq?.opType, `${tensor} comes from a DequantizeLinear`).toBe('DequantizeLinear');
  const zp = view.constant(dq!.input[2])!;
  return { dq: dq!, q: view.producer(dq!.input[0]), scale: tensorFloats(view.constant(dq!.input[1])!), zp, source: view.initializer(dq!.input[0]) };
}

async function quantized(bytes: Uint8Array) {
  const result = await quantizeOnnx(bytes, frames, { fileConfig: {}, where: 'small', threads: 1, calibration: { method: 'minmax' } });
  return { result, view: new GraphView(parseOnnxModel(result.bytes, 'small.int8')) };
}

describe('quantizeOnnx', () => {
  it('puts QDQ pairs around every backbone conv with uint8 activations, int8 per-channel weights and int32 biases', async () => {
    const { result, view } = await quantized(toOnnxModel(smallGapDenseNet(3, { width: 4 })));
    const convs = view.nodes.filter((n) => n.opType === 'Conv');
    expect(convs.length).toBe(2);
    for (const conv of convs) {
      const x = dequantized(view, conv.input[0]);
      expect(x.q?.opType, 'activation is quantized by a QuantizeLinear').toBe('QuantizeLinear');
      expect(x.zp.dataType).toBe(UINT8);
      const w = dequantized(view, conv.input[1]);
      expect(w.source?.dataType).toBe(INT8);
      const channels = tensorDims(w.source!)[0];
      expect(w.scale.length, 'one weight scale per output channel').toBe(channels);
      expect(view.intAttr(w.dq, 'axis', -1)).toBe(0);
      expect(Math.max(...Array.from(ints(w.source!), Math.abs))).toBe(127);
      const out = view.consumersOf(conv.output[0]);
      expect(out.map((n) => n.opType), 'the conv output is quantized, the ReLU folded away').toEqual(['QuantizeLinear']);
      if (conv.input[2]) {
        const b = dequantized(view, conv.input[2]);
        expect(b.source?.dataType).toBe(INT32);
        b.scale.forEach((s, o) => expect(s).toBeCloseTo(x.scale[0] * w.scale[o], 9));
      }
    }
    expect(view.nodes.some((n) => n.opType === 'Relu' || n.opType === 'BatchNormalization')).toBe(false);
    // A folded ReLU quantizes with zero point 0: negatives clamp to 0.
    const reluOut = dequantized(view, convs[1].input[0]);
    expect(ints(reluOut.zp)[0]).toBe(0);
    expect(result.foldedActivations).toBe(2);
    // The head stays fp32 on dequantized features.
    const gap = view.nodes.find((n) => n.opType === 'GlobalAveragePool')!;
    expect(view.producer(gap.input[0])?.opType).toBe('DequantizeLinear');
    expect(view.nodes.find((n) => n.opType === 'Gemm')!.input.slice(1).every((t) => view.initializer(t)?.dataType === 1)).toBe(true);
  });

  it('keeps the class conv of a class-conv-gap head in fp32', async () => {
    const { view } = await quantized(toOnnxModel(smallClassConvNet(4, { width: 4 })));
    const convs = view.nodes.filter((n) => n.opType === 'Conv');
    const head = convs[convs.length - 1];
    expect(view.initializer(head.input[1])?.dataType, 'head kernel stays float').toBe(1);
    expect(view.producer(head.input[0])?.opType, 'on dequantized features').toBe('DequantizeLinear');
    for (const conv of convs.slice(0, -1)) expect(view.producer(conv.input[1])?.opType).toBe('DequantizeLinear');
  });

  it('runs as QLinearConv in ONNX Runtime and stays close to fp32 in the engine', async () => {
    const bytes = toOnnxModel(smallGapDenseNet(5, { width: 8, inputSize: [32, 32] }));
    const { result } = await quantized(bytes);
    const optimized = join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(result.bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, optimizedModelFilePath: optimized });
    await session.release();
    const ops = new GraphView(parseOnnxModel(readFileSync(optimized), 'optimized')).nodes.map((n) => n.opType);
    expect(ops.filter((op) => op === 'QLinearConv').length).toBe(2);

    const fp32 = await load(onnxSource(dir, 'f.onnx', bytes).path, { threads: 1 });
    const int8 = await load(onnxSource(dir, 'q.onnx', result.bytes).path, { threads: 1 });
    models.push(fp32, int8);
    const report = await measureFidelity(fp32, int8, frames.slice(0, 4), 4);
    expect(Object.keys(report).sort()).toEqual(['camR', 'camRWorst', 'fp32Ms', 'frames', 'int8Ms', 'speedup', 'threads', 'top1Agreement', 'top5Overlap']);
    expect(report.frames).toBe(4);
    expect(report.camR).toBeGreaterThan(0.95);
    expect(report.camRWorst).toBeLessThanOrEqual(report.camR);
    expect(report.top5Overlap).toBeGreaterThan(0.5);
    expect(report.speedup).toBeGreaterThan(0);
  });

  it("keeps ONNX Runtime's channels-last QLinearConv inside the engine's extended graph, as in the plain one", async () => {
    // The extended graph computes the model input from fed frames and tap tables. Without a static shape
    // for that tensor ORT's layout optimizer left every QLinearConv in NCHW (and MaxPool in a slow uint8
    // kernel): ResNet-50 int8 ran 30.0 ms a frame in the engine against 22.5 ms for the plain graph.
    const bytes = toOnnxModel(smallGapDenseNet(5, { width: 8, inputSize: [32, 32] }));
    const { result } = await quantized(bytes);
    const view = new GraphView(parseOnnxModel(result.bytes, 'small.int8'));
    const input = discoverOnnxInput(view, {}, 'small.int8');
    const pre = resolvePreprocess({}, { inputSize: input.inputSize, layout: input.layout });
    const extended = extendOnnxModel(view, input, discoverOnnxHead(view, {}, 'small.int8'), pre);
    const channelsLast = async (model: Uint8Array, name: string): Promise<boolean[]> => {
      const optimized = join(dir, `${name}.optimized.onnx`);
      const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, optimizedModelFilePath: optimized });
      await session.release();
      const convs = new GraphView(parseOnnxModel(readFileSync(optimized), name)).nodes.filter((n) => n.opType === 'QLinearConv');
      return convs.map((n) => (n.attribute ?? []).some((a) => a.name === 'channels_last' && Number(a.i) === 1));
    };
    const plain = await channelsLast(result.bytes, 'plain');
    expect(plain).toEqual([true, true]);
    expect(await channelsLast(extended, 'extended')).toEqual(plain);
  });

  it('narrows activation ranges with percentile and mse against minmax, never widening one', async () => {
    const bytes = toOnnxModel(smallGapDenseNet(6, { width: 4 }));
    const scales = async (method: 'minmax' | 'percentile' | 'mse') => {
      const { bytes: q } = await quantizeOnnx(bytes, frames, { fileConfig: {}, where: 'm', threads: 1, calibration: { method } });
      const view = new GraphView(parseOnnxModel(q, method));
      return new Map(view.nodes.filter((n) => n.opType === 'QuantizeLinear').map((n) => [n.input[0], tensorFloats(view.constant(n.input[1])!)[0]]));
    };
    const minmax = await scales('minmax');
    for (const method of ['percentile', 'mse'] as const) {
      const narrowed = await scales(method);
      expect([...narrowed.keys()].sort()).toEqual([...minmax.keys()].sort());
      for (const [name, scale] of narrowed) expect(scale, `${method} ${name}`).toBeLessThanOrEqual(minmax.get(name)! * (1 + 1e-6));
      expect([...narrowed].some(([name, scale]) => scale < minmax.get(name)! * 0.999), `${method} narrows some range`).toBe(true);
    }
  });

  it('rejects a calibration without frames, naming the model', async () => {
    const bytes = toOnnxModel(smallGapDenseNet(3));
    await expect(quantizeOnnx(bytes, [], { fileConfig: {}, where: 'empty-cal', threads: 1 })).rejects.toThrow(/empty-cal.*at least one frame/);
  });
});

describe('pearson', () => {
  it('is 1 for maps equal up to scale and offset, -1 for a negated map', () => {
    const a = Float32Array.from([1, 3, 2, 5]);
    expect(pearson(a, a.map((v) => 2 * v + 1))).toBeCloseTo(1, 12);
    expect(pearson(a, a.map((v) => -v))).toBeCloseTo(-1, 12);
  });
});
