/**
 * Calibration for static quantization: runs the fp32 model (after the preprocessing its camstream.json
 * asks for) on sample frames with the activations to quantize as extra outputs, and turns what it saw into
 * one range per activation with the chosen method.
 *
 * Methods (ranges always include 0):
 * - `minmax`: the smallest and largest value seen.
 * - `percentile`: the `percentile` (default 99.99) and its mirror of the values seen; a few outliers no
 *   longer stretch the scale of every other value.
 * - `mse`: the range, each end shrunk from min/max on a grid, whose uint8 fake quantization has the least
 *   squared error on the values seen, measured after the leaky rectifier the activation feeds if any
 *   (ref: the error-minimising calibrators of TensorRT and ONNX Runtime).
 * Values are kept as a bounded sample per activation (min and max exactly), so memory stays flat however
 * many frames calibrate.
 */
import * as ort from 'onnxruntime-node';
import { ConfigError, ModelLoadError } from '../../common/errors.ts';
import { fitGeometry, resolvePreprocess } from '../preprocess.ts';
import type { Frame, ModelFileConfig, Preprocess } from '../types.ts';
import { discoverOnnxInput } from './discover-input.ts';
import { GraphView, parseOnnxModel } from './graph.ts';
import { activationParams, type Range } from './qdq-graph.ts';
import { DataType, encodeModel, type IModelProto } from './proto.ts';
import { createSession } from './session.ts';
import { CALIBRATION_METHODS, type CalibrationMethod } from './calibration-methods.ts';

export { CALIBRATION_METHODS, type CalibrationMethod };

/** How ranges are chosen. */
export interface CalibrationConfig {
  /** Default `mse` (the best CAM fidelity on the Darknet fixture). */
  method?: CalibrationMethod;
  /** Percentile of the `percentile` method, in (50, 100]. Default 99.99. */
  percentile?: number;
  /** Values kept per activation for the percentile and mse methods. Default 262144. */
  sampleSize?: number;
}

export const DEFAULT_CALIBRATION_CONFIG: Readonly<Required<CalibrationConfig>> = Object.freeze({
  method: 'mse',
  percentile: 99.99,
  sampleSize: 262144,
});

/** Merges and checks a calibration config. @throws ConfigError naming the field and value. */
export function resolveCalibrationConfig(config: CalibrationConfig = {}): Required<CalibrationConfig> {
  const out = { ...DEFAULT_CALIBRATION_CONFIG, ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) };
  if (!CALIBRATION_METHODS.includes(out.method)) {
    throw new ConfigError(`calibration method must be one of ${CALIBRATION_METHODS.join(', ')}, got '${String(out.method)}'`);
  }
  if (!(out.percentile > 50 && out.percentile <= 100)) throw new ConfigError(`percentile must be in (50, 100], got ${out.percentile}`);
  if (!Number.isInteger(out.sampleSize) || out.sampleSize < 1024) throw new ConfigError(`sampleSize must be an integer >= 1024, got ${out.sampleSize}`);
  return out;
}

/** Running min, max and a strided sample of one activation's values. */
class ActivationStats {
  min = Infinity;
  max = -Infinity;
  private readonly sample: Float32Array;
  private filled = 0;

  constructor(private readonly perFrame: number, capacity: number) {
    this.sample = new Float32Array(capacity);
  }

  add(values: Float32Array): void {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
    }
    const step = Math.max(1, Math.floor(values.length / this.perFrame));
    // A per-frame offset keeps strided samples of same-shaped frames from always hitting the same positions.
    for (let i = this.filled % step; i < values.length && this.filled < this.sample.length; i += step) this.sample[this.filled++] = values[i];
  }

  /** The sample, sorted ascending (a copy). */
  sorted(): Float32Array {
    return this.sample.slice(0, this.filled).sort();
  }
}

/**
 * Squared error of uint8 fake quantization over `range`, on `values`, measured after a leaky rectifier of
 * slope `alpha` when the activation feeds one (alpha 1: no rectifier): an error on the negative side then
 * costs alpha^2 as much, so the search may clip that side harder.
 */
function quantError(values: Float32Array, range: Range, alpha: number): number {
  const { scale, zeroPoint } = activationParams(range);
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const q = (Math.max(0, Math.min(255, Math.round(v / scale) + zeroPoint)) - zeroPoint) * scale;
    const d = (q < 0 ? alpha * q : q) - (v < 0 ? alpha * v : v);
    sum += d * d;
  }
  return sum;
}

/** The range in the grid of shrunk min/max pairs with the least error (see `quantError`). */
function searchRange(sorted: Float32Array, full: Range, alpha: number): Range {
  // Every 4th sorted value is enough to rank candidates and keeps the search fast.
  const values = sorted.length > 65536 ? sorted.filter((_, i) => i % 4 === 0) : sorted;
  let best = full;
  let bestError = quantError(values, full, alpha);
  for (let lo = 1; lo > 0.05; lo -= full[0] < 0 ? 0.1 : 2) {
    for (let hi = 1; hi >= 0.3; hi -= 0.025) {
      const candidate: Range = [full[0] * lo, full[1] * hi];
      const error = quantError(values, candidate, alpha);
      if (error < bestError) [best, bestError] = [candidate, error];
    }
  }
  return best;
}

/** The range of one activation under `config`; `alpha` is the slope of the leaky rectifier it feeds (1: none). */
function rangeOf(stats: ActivationStats, config: Required<CalibrationConfig>, alpha: number): Range {
  const full: Range = [Math.min(stats.min, 0), Math.max(stats.max, 0)];
  if (config.method === 'minmax') return full;
  const sorted = stats.sorted();
  if (sorted.length === 0) return full;
  if (config.method === 'percentile') {
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
    const p = config.percentile / 100;
    return [Math.min(at(1 - p), 0), Math.max(at(p), 0)];
  }
  return searchRange(sorted, full, alpha);
}

/** `prepared` with `tensors` as extra float outputs, and how to feed its image input. */
function calibrationGraph(prepared: Uint8Array, tensors: readonly string[], fileConfig: ModelFileConfig, where: string): { bytes: Uint8Array; pre: Preprocess; input: string } {
  const model = parseOnnxModel(prepared, where);
  const input = discoverOnnxInput(new GraphView(model), fileConfig, where);
  const pre = resolvePreprocess(fileConfig, { inputSize: input.inputSize, layout: input.layout });
  for (const name of tensors) model.graph.output.push({ name, type: { tensorType: { elemType: DataType.FLOAT } } } as never);
  return { bytes: encodeModel(model as IModelProto), pre, input: input.name };
}

/**
 * One frame as the model's input: bilinear resize (half-pixel centres) to the model size, stretched or
 * letterboxed as `pre` says, then channel order, scale, mean, std and layout. Close to, not bit-equal with,
 * the engine's in-graph preprocessing: ranges need the same statistics, not the same bits.
 */
export function preprocessFrame(frame: Frame, pre: Preprocess): ort.Tensor {
  const [h, w] = pre.inputSize;
  const g = fitGeometry(frame.width, frame.height, pre);
  const [ch, cw] = g.contentSize;
  const out = new Float32Array(h * w * 3);
  const order = pre.channelOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const sample = (c: number, fy: number, fx: number): number => {
    const y0 = Math.max(0, Math.min(frame.height - 1, Math.floor(fy)));
    const x0 = Math.max(0, Math.min(frame.width - 1, Math.floor(fx)));
    const y1 = Math.min(frame.height - 1, y0 + 1);
    const x1 = Math.min(frame.width - 1, x0 + 1);
    const dy = Math.max(0, Math.min(1, fy - y0));
    const dx = Math.max(0, Math.min(1, fx - x0));
    const at = (y: number, x: number) => frame.data[(y * frame.width + x) * 3 + c];
    return (at(y0, x0) * (1 - dx) + at(y0, x1) * dx) * (1 - dy) + (at(y1, x0) * (1 - dx) + at(y1, x1) * dx) * dy;
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const cy = y - g.padTop;
      const cx = x - g.padLeft;
      const inside = cy >= 0 && cy < ch && cx >= 0 && cx < cw;
      for (let c = 0; c < 3; c++) {
        const src = order[c];
        const pixel = inside ? sample(src, ((cy + 0.5) * frame.height) / ch - 0.5, ((cx + 0.5) * frame.width) / cw - 0.5) : 0;
        const value = (pixel * pre.scale - pre.mean[c]) / pre.std[c];
        out[pre.layout === 'nchw' ? (c * h + y) * w + x : (y * w + x) * 3 + c] = value;
      }
    }
  }
  return new ort.Tensor('float32', out, pre.layout === 'nchw' ? [1, 3, h, w] : [1, h, w, 3]);
}

/**
 * Runs `prepared` (an fp32 ONNX model) on `frames` and returns a range per name in `tensors`.
 * `onFrame(done, total)` is called after each frame.
 * @throws ConfigError for a bad config or no frames; ModelLoadError when ONNX Runtime rejects the model.
 */
export async function calibrateActivations(
  prepared: Uint8Array,
  tensors: readonly string[],
  frames: readonly Frame[],
  options: {
    fileConfig: ModelFileConfig;
    where: string;
    threads: number;
    config?: CalibrationConfig;
    /** Slope of the leaky rectifier an activation feeds, by name (the mse method weighs errors by it). */
    leakyAlpha?: ReadonlyMap<string, number>;
    onFrame?: (done: number, total: number) => void;
  },
): Promise<Map<string, Range>> {
  const config = resolveCalibrationConfig(options.config);
  if (frames.length === 0) throw new ConfigError(`${options.where}: calibration needs at least one frame, got none`);
  const graph = calibrationGraph(prepared, tensors, options.fileConfig, options.where);
  const { session } = await createSession(graph.bytes, 'cpu', options.threads, options.where, true);
  const perFrame = Math.max(256, Math.floor(config.sampleSize / frames.length));
  const stats = new Map(tensors.map((t) => [t, new ActivationStats(perFrame, config.sampleSize)]));
  try {
    for (let i = 0; i < frames.length; i++) {
      const out = await session.run({ [graph.input]: preprocessFrame(frames[i], graph.pre) }, [...tensors]);
      for (const t of tensors) stats.get(t)!.add(out[t].data as Float32Array);
      options.onFrame?.(i + 1, frames.length);
    }
  } catch (err) {
    throw new ModelLoadError(`${options.where}: calibration run failed: ${(err as Error).message}`, { cause: err });
  } finally {
    await session.release();
  }
  return new Map([...stats].map(([t, s]) => [t, rangeOf(s, config, options.leakyAlpha?.get(t) ?? 1)]));
}
