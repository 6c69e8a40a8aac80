/**
 * The rewritten graph itself, run in a plain ONNX Runtime session: mixed requests (explicit classes and
 * top-k slots in one row), per-frame rows in a batch, fetching `cam_gap` only when asked, pruning of the
 * model's own classifier, every supported opset, and refusals.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { toOnnxModel, randomFrames, smallGapDenseNet } from '../../../lab/builders/index.ts';
import { ModelLoadError } from '../../../common/index.ts';
import { CAM_IO, fitFeeds, discoverOnnxHead, discoverOnnxInput, extendOnnxModel, GraphView, parseOnnxModel, tensorInts } from '../../../models/onnx/index.ts';
import { resolvePreprocess, type Preprocess } from '../../../models/index.ts';
import { editModel, mean, preprocessReference, relErr, runPlain, topK } from './onnx-helpers.ts';

interface Extended {
  bytes: Uint8Array;
  pre: Preprocess;
  weightsT: Float32Array;
  bias: Float32Array;
  k: number;
  classes: number;
}

function extend(model: Uint8Array): Extended {
  const view = new GraphView(parseOnnxModel(model, 'x.onnx'));
  const input = discoverOnnxInput(view, {}, 'x.onnx');
  const head = discoverOnnxHead(view, {}, 'x.onnx');
  const pre = resolvePreprocess({}, { inputSize: input.inputSize, layout: input.layout });
  const { channels: k, numClasses: classes } = head;
  const weightsT = new Float32Array(k * classes);
  for (let c = 0; c < classes; c++) for (let j = 0; j < k; j++) weightsT[c * k + j] = head.weights[j * classes + c];
  return { bytes: extendOnnxModel(view, input, head, pre), pre, weightsT, bias: head.bias, k, classes };
}

async function run(e: Extended, frames: ReturnType<typeof randomFrames>, request: number[][], fetches?: string[]) {
  const session = await ort.InferenceSession.create(e.bytes);
  try {
    const { width, height } = frames[0];
    const packed = new Uint8Array(frames.length * width * height * 3);
    frames.forEach((f, i) => packed.set(f.data, i * f.data.length));
    const feeds = {
      [CAM_IO.frames]: new ort.Tensor('uint8', packed, [frames.length, height, width, 3]),
      [CAM_IO.request]: new ort.Tensor('int64', BigInt64Array.from(request.flat(), BigInt), [request.length, request[0].length]),
      [CAM_IO.weights]: new ort.Tensor('float32', e.weightsT, [e.classes, e.k]),
      [CAM_IO.bias]: new ort.Tensor('float32', e.bias, [e.classes]),
      ...fitFeeds(width, height, e.pre),
    };
    return await session.run(feeds, fetches ?? session.outputNames);
  } finally {
    await session.release();
  }
}

describe('extendOnnxModel', () => {
  const spec = smallGapDenseNet(61);
  const model = toOnnxModel(spec);

  it('answers a mixed request per frame: class ids where given, the j-th best class at -1', async () => {
    const e = extend(model);
    const frames = randomFrames(62, 2, 32, 24);
    const out = await run(e, frames, [
      [-1, 3, -1],
      [5, -1, -1],
    ]);
    const ids = Array.from(out[CAM_IO.ids].data as BigInt64Array, Number);
    expect(out[CAM_IO.ids].dims).toEqual([2, 3]);
    expect(out[CAM_IO.maps].dims).toEqual([2, 3, 12, 16]);
    const maps = out[CAM_IO.maps].data as Float32Array;
    const scores = out[CAM_IO.scores].data as Float32Array;
    for (let f = 0; f < 2; f++) {
      const x = preprocessReference(frames[f], e.pre);
      const logits = (await runPlain(model, x.data, x.dims)).logits.data;
      const best = topK(logits, 3);
      expect(ids.slice(f * 3, f * 3 + 3)).toEqual(f === 0 ? [best[0], 3, best[2]] : [5, best[1], best[2]]);
      for (let j = 0; j < 3; j++) {
        const id = ids[f * 3 + j];
        expect(relErr(scores[f * 3 + j], logits[id])).toBeLessThanOrEqual(1e-4);
        expect(relErr(mean(maps, (f * 3 + j) * 192, 192) + e.bias[id], logits[id])).toBeLessThanOrEqual(1e-4);
      }
    }
  });

  it('accepts more slots than classes: repeated classes, and class 0 for a top slot past the class count', async () => {
    const twoClasses = toOnnxModel(smallGapDenseNet(65, { numClasses: 2 }));
    const e = extend(twoClasses);
    const frames = randomFrames(66, 1, 32, 24);
    const x = preprocessReference(frames[0], e.pre);
    const best = topK((await runPlain(twoClasses, x.data, x.dims)).logits.data, 2);
    const ids = async (row: number[]) => Array.from((await run(e, frames, [row]))[CAM_IO.ids].data as BigInt64Array, Number);
    expect(await ids([1, 1, 0, 1])).toEqual([1, 1, 0, 1]);
    expect(await ids([-1, 1, -1])).toEqual([best[0], 1, 0]);
    expect(await ids([-1, -1])).toEqual(best);
  });

  it('returns only the fetched outputs, cam_gap included only when asked', async () => {
    const e = extend(model);
    const frames = randomFrames(63, 1, 32, 24);
    const without = await run(e, frames, [[-1]], [CAM_IO.ids, CAM_IO.scores, CAM_IO.probs, CAM_IO.maps]);
    expect(Object.keys(without).sort()).toEqual([CAM_IO.ids, CAM_IO.maps, CAM_IO.probs, CAM_IO.scores].sort());
    const withGap = await run(e, frames, [[-1]]);
    expect(withGap[CAM_IO.gap].dims).toEqual([1, 12]);
  });

  it('keeps only what the CAM outputs need: the model classifier and its weights are pruned', () => {
    const e = extend(model);
    const view = new GraphView(parseOnnxModel(e.bytes, 'ext.onnx'));
    expect(view.model.graph.output.map((o) => o.name)).toEqual([CAM_IO.ids, CAM_IO.scores, CAM_IO.probs, CAM_IO.maps, CAM_IO.gap]);
    expect(view.dataInputs().map((i) => i.name)).toEqual([
      CAM_IO.frames,
      CAM_IO.request,
      CAM_IO.weights,
      CAM_IO.bias,
      CAM_IO.colTaps,
      CAM_IO.colWeights,
      CAM_IO.rowTaps,
      CAM_IO.rowWeights,
    ]);
    expect(view.producer('logits')).toBeUndefined();
    expect(view.initializer('logits/kernel')).toBeUndefined();
    expect(view.initializer('conv2/kernel')).toBeDefined();
    expect(view.opset).toBe(13);
    // The model's input is now computed from the frames (the last step: scaling by 1/255), then given its
    // static shape by a Reshape (for ONNX Runtime's shape inference).
    expect(view.producer('input')).toMatchObject({ opType: 'Reshape' });
    expect(view.producer('input')!.name).toMatch(/^cam\/pre\//);
    expect(view.producer(view.producer('input')!.input[0])).toMatchObject({ opType: 'Mul' });
    expect((tensorInts(view.constant(view.producer('input')!.input[1])!))).toEqual([-1, 3, 24, 32]);
    // Added nodes name their part (profiles split preprocessing from the CAM head by it); model nodes keep theirs.
    const names = (ops: string[]) => view.model.graph.node.filter((n) => ops.includes(n.opType ?? '')).map((n) => n.name ?? '');
    for (const name of names(['Cast', 'Resize'])) expect(name).toMatch(/^cam\/pre\//);
    // The antialiased resize's MatMuls (by the tap weights) are preprocessing; the head's are CAM.
    const tapWeights = new Set<string>([CAM_IO.rowWeights, CAM_IO.colWeights]);
    const matmuls = view.model.graph.node.filter((n) => n.opType === 'MatMul');
    const resizing = matmuls.filter((n) => (n.input ?? []).some((i) => tapWeights.has(i)));
    expect(resizing).toHaveLength(2);
    for (const n of resizing) expect(n.name).toMatch(/^cam\/pre\//);
    for (const n of matmuls.filter((m) => !resizing.includes(m))) expect(n.name).toMatch(/^cam\/(?!pre\/)/);
    for (const name of names(['TopK', 'Softmax', 'Gemm'])) expect(name).toMatch(/^cam\/(?!pre\/)/);
    expect(names(['Conv']).length).toBeGreaterThan(0);
    for (const name of names(['Conv'])) expect(name).not.toMatch(/^cam\//);
  });

  it.each([11, 12, 13, 17, 18])('builds a valid session at opset %i', async (opset) => {
    const bytes = toOnnxModel(spec, { opset, gap: opset >= 17 ? 'reducemean' : 'globalaveragepool' });
    const e = extend(bytes);
    expect(new GraphView(parseOnnxModel(e.bytes, 'x')).opset).toBe(opset);
    const frames = randomFrames(64, 1, 40, 30);
    const out = await run(e, frames, [[-1, -1]]);
    const x = preprocessReference(frames[0], e.pre);
    const logits = (await runPlain(bytes, x.data, x.dims)).logits.data;
    expect(Array.from(out[CAM_IO.ids].data as BigInt64Array, Number)).toEqual(topK(logits, 2));
  });

  it('refuses opsets below 11 and models that already use its tensor names', () => {
    const old = editModel(model, (m) => {
      m.opsetImport[0].version = 10;
    });
    expect(() => extend(old)).toThrow(/opset 10/);
    const clash = editModel(model, (m) => {
      m.graph.node.find((n) => n.name === 'conv1')!.output[0] = 'cam_maps';
      for (const n of m.graph.node) n.input = n.input.map((i) => (i === 'conv1' ? 'cam_maps' : i));
    });
    expect(() => extend(clash)).toThrow(ModelLoadError);
    expect(() => extend(clash)).toThrow(/'cam_maps'/);
  });
});
