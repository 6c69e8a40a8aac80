/**
 * Helpers for the ONNX engine tests: temporary model files, a plain ONNX Runtime session on an unchanged
 * model, graph edits through the public proto helpers, and a JS reference of camstream's preprocessing
 * (models/preprocess.ts) computed in float64, independent of the graph the engine builds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import type { ModelProto } from '../../../models/onnx/index.ts';
import { expect } from 'vitest';
import { fitGeometry, type CamModel, type CamResult, type Frame, type ModelFileConfig, type Preprocess, type ResolvedSource } from '../../../models/index.ts';

const { onnx } = onnxProto;

/** A temporary folder removed by `cleanup()`. */
export function tempFolder(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'camstream-onnx-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes `bytes` as `<dir>/<name>` and returns the ResolvedSource an engine loader receives. */
export function onnxSource(dir: string, name: string, bytes: Uint8Array, fileConfig: ModelFileConfig = {}): ResolvedSource {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { format: 'onnx', path, original: path, fileConfig };
}

/** Decodes, edits and re-encodes a model. */
export function editModel(bytes: Uint8Array, edit: (model: ModelProto) => void): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  edit(model as unknown as ModelProto);
  return onnx.ModelProto.encode(model).finish();
}

/**
 * A message from the proto builders (`node`, `floatTensor`, ...: optional fields) typed as the decoded
 * form `editModel` hands out, to put into a decoded graph. The encoder accepts either.
 */
export function asDecoded<T>(message: object): T {
  return message as T;
}

/** The model with extra float graph outputs (intermediate tensors such as the feature map). */
export function withOutputs(bytes: Uint8Array, names: string[]): Uint8Array {
  return editModel(bytes, (model) => {
    for (const name of names) {
      model.graph.output.push(onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: 1 } } }));
    }
  });
}

/** Runs an unchanged model on one preprocessed input; returns the asked outputs (data and dims). */
export async function runPlain(
  bytes: Uint8Array,
  input: Float32Array,
  dims: number[],
  outputs?: string[],
): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' });
  try {
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, dims) }, outputs ?? session.outputNames);
    const result: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    for (const [k, v] of Object.entries(out)) result[k] = { data: v.data as Float32Array, dims: v.dims };
    return result;
  } finally {
    await session.release();
  }
}

/**
 * camstream's preprocessing of one frame, in float64, as models/preprocess.ts specifies: the `triangle` or
 * `area` filter (`filterResizeReference`), or for `bilinear` a resize with half-pixel centres (source
 * coordinates clamped to the image), to the content size, zero padding for
 * letterbox, channel reorder, `(pixel * scale - mean) / std`, then NCHW when asked. Returns one
 * `[1, ...]` float32 batch.
 */
export function preprocessReference(frame: Frame, pre: Preprocess): { data: Float32Array; dims: number[] } {
  const [inH, inW] = pre.inputSize;
  const g = fitGeometry(frame.width, frame.height, pre);
  const [ch, cw] = g.contentSize;
  const pixels = new Float64Array(inH * inW * 3); // NHWC, padding stays 0
  const src = (y: number, x: number, c: number): number => frame.data[(y * frame.width + x) * 3 + c];
  if (pre.resizeFilter !== 'bilinear' && (ch !== frame.height || cw !== frame.width)) {
    const resized = filterResizeReference(frame, cw, ch, pre.resizeFilter);
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        for (let c = 0; c < 3; c++) pixels[((y + g.padTop) * inW + x + g.padLeft) * 3 + c] = resized[(y * cw + x) * 3 + c];
      }
    }
    return normalizeReference(pixels, pre);
  }
  for (let y = 0; y < ch; y++) {
    const sy = Math.min(Math.max((y + 0.5) * (frame.height / ch) - 0.5, 0), frame.height - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, frame.height - 1);
    const dy = sy - y0;
    for (let x = 0; x < cw; x++) {
      const sx = Math.min(Math.max((x + 0.5) * (frame.width / cw) - 0.5, 0), frame.width - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, frame.width - 1);
      const dx = sx - x0;
      for (let c = 0; c < 3; c++) {
        const top = src(y0, x0, c) * (1 - dx) + src(y0, x1, c) * dx;
        const bottom = src(y1, x0, c) * (1 - dx) + src(y1, x1, c) * dx;
        pixels[((y + g.padTop) * inW + x + g.padLeft) * 3 + c] = top * (1 - dy) + bottom * dy;
      }
    }
  }
  return normalizeReference(pixels, pre);
}

/**
 * The antialiased filters of models/preprocess.ts, written out in 2-D and float64 for tests: each output
 * pixel is the normalized sum over its footprint of input pixels weighted by the filter at their centres
 * (`triangle`: tent of half-width max(scale, 1); `area`: the overlap of the pixel with the footprint, the
 * tent when upscaling). Packed RGB out, `outW * outH * 3` values in pixel units.
 */
export function filterResizeReference(frame: Frame, outW: number, outH: number, filter: 'triangle' | 'area'): Float64Array {
  const weight = (outIndex: number, j: number, scale: number): number => {
    if (filter === 'area' && scale >= 1) {
      return Math.max(0, Math.min((outIndex + 1) * scale, j + 1) - Math.max(outIndex * scale, j));
    }
    const support = Math.max(scale, 1);
    return Math.max(0, 1 - Math.abs(j + 0.5 - (outIndex + 0.5) * scale) / support);
  };
  const sx = frame.width / outW;
  const sy = frame.height / outH;
  const out = new Float64Array(outW * outH * 3);
  for (let y = 0; y < outH; y++) {
    const ys: Array<[number, number]> = [];
    for (let j = 0; j < frame.height; j++) {
      const w = weight(y, j, sy);
      if (w > 0) ys.push([j, w]);
    }
    for (let x = 0; x < outW; x++) {
      const acc = [0, 0, 0];
      let total = 0;
      for (let i = Math.max(0, Math.floor(x * sx) - Math.ceil(sx) - 2); i < Math.min(frame.width, (x + 1) * sx + Math.ceil(sx) + 2); i++) {
        const wx = weight(x, i, sx);
        if (wx <= 0) continue;
        for (const [j, wy] of ys) {
          const w = wx * wy;
          total += w;
          for (let c = 0; c < 3; c++) acc[c] += w * frame.data[(j * frame.width + i) * 3 + c];
        }
      }
      for (let c = 0; c < 3; c++) out[(y * outW + x) * 3 + c] = acc[c] / total;
    }
  }
  return out;
}

/** Channel order, `(pixel * scale - mean) / std` and layout, on NHWC float64 pixels of `pre.inputSize`. */
function normalizeReference(pixels: Float64Array, pre: Preprocess): { data: Float32Array; dims: number[] } {
  const [inH, inW] = pre.inputSize;
  const out = new Float32Array(inH * inW * 3);
  for (let i = 0; i < inH * inW; i++) {
    for (let c = 0; c < 3; c++) {
      const from = pre.channelOrder === 'bgr' ? 2 - c : c;
      const v = (pixels[i * 3 + from] * pre.scale - pre.mean[c]) / pre.std[c];
      if (pre.layout === 'nchw') out[c * inH * inW + i] = v;
      else out[i * 3 + c] = v;
    }
  }
  return { data: out, dims: pre.layout === 'nchw' ? [1, 3, inH, inW] : [1, inH, inW, 3] };
}

/** Indices of the `k` largest values, best first (ties: lower index first). */
export function topK(values: ArrayLike<number>, k: number): number[] {
  return Array.from(values, (v, i) => [v, i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, i]) => i);
}

/** Mean of `length` values from `offset`. */
export function mean(values: Float32Array, offset: number, length: number): number {
  let s = 0;
  for (let i = 0; i < length; i++) s += values[offset + i];
  return s / length;
}

/** |a - b| / max(|b|, floor): relative error with a floor so values near 0 are compared absolutely. */
export function relErr(a: number, b: number, floor = 1): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), floor);
}

/** Outputs of the unchanged model for one frame, preprocessed by the JS reference as `model` says. */
export async function reference(
  bytes: Uint8Array,
  model: CamModel,
  frame: Frame,
  outputs: string[],
): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const x = preprocessReference(frame, model.info.preprocess);
  return runPlain(bytes, x.data, x.dims, outputs);
}

/** mean(M_c) + b_c for each returned map (ref: Zhou et al. 2016, sec. 2). */
export function mapLogits(r: CamResult, bias: Float32Array): number[] {
  const per = r.mapSize[0] * r.mapSize[1];
  return Array.from(r.ids, (id, j) => mean(r.maps, j * per, per) + bias[id]);
}

/** Checks mean(M_c) + b_c and the returned scores against reference logits (1e-4 relative, floor 1). */
export function expectIdentity(r: CamResult, bias: Float32Array, logits: Float32Array): void {
  const fromMaps = mapLogits(r, bias);
  r.ids.forEach((id, j) => {
    expect(relErr(fromMaps[j], logits[id])).toBeLessThanOrEqual(1e-4);
    expect(relErr(r.scores[j], logits[id])).toBeLessThanOrEqual(1e-4);
  });
}
