/**
 * How close a quantized model stays to its fp32 original, measured through camstream's own engine on
 * frames the calibration did not see: class agreement, CAM map agreement and forward speed.
 */
import type { CamModel, Frame } from '../types.ts';

/** The fidelity of a quantized model against fp32 (stored under `quantization` in camstream.json). */
export interface FidelityReport {
  /** Frames compared. */
  frames: number;
  /** Fraction of frames whose top-1 class is the same in both models. */
  top1Agreement: number;
  /** Mean fraction of fp32's top-5 classes found in the quantized model's top 5. */
  top5Overlap: number;
  /** Mean Pearson r between the two models' CAM maps of fp32's top-1 class. */
  camR: number;
  /** The lowest of those r. */
  camRWorst: number;
  /** fp32 median forward time over the quantized one's (interleaved runs, same threads). */
  speedup: number;
  fp32Ms: number;
  int8Ms: number;
  threads: number;
}

/** Pearson correlation of two equally long arrays; 1 when both are constant, 0 when only one is. */
export function pearson(a: Float32Array, b: Float32Array): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma;
    const db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa === 0 || sbb === 0) return saa === sbb ? 1 : 0;
  return sab / Math.sqrt(saa * sbb);
}

function median(values: number[]): number {
  const s = [...values].sort((x, y) => x - y);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Median single-frame forward times of `a` and `b`, run alternately (ABBA order) on the same frames so
 * that load and frequency changes hit both alike. Returns `[msA, msB]`.
 */
export async function interleavedTiming(a: CamModel, b: CamModel, frames: readonly Frame[], runs: number): Promise<[number, number]> {
  const times: [number[], number[]] = [[], []];
  const once = async (model: CamModel, slot: 0 | 1, frame: Frame) => {
    const t0 = performance.now();
    await model.infer([frame], { topK: 1 });
    times[slot].push(performance.now() - t0);
  };
  await a.infer([frames[0]], { topK: 1 });
  await b.infer([frames[0]], { topK: 1 });
  for (let i = 0; i < runs; i++) {
    const frame = frames[i % frames.length];
    const order: Array<[CamModel, 0 | 1]> = i % 2 === 0 ? [[a, 0], [b, 1]] : [[b, 1], [a, 0]];
    for (const [model, slot] of order) await once(model, slot, frame);
  }
  return [median(times[0]), median(times[1])];
}

/**
 * Compares `int8` against `fp32` on `frames` (neither model is disposed). `timingRuns` forward passes of
 * each model are timed, interleaved (default 20).
 */
export async function measureFidelity(fp32: CamModel, int8: CamModel, frames: readonly Frame[], timingRuns = 20): Promise<FidelityReport> {
  let top1 = 0;
  let top5 = 0;
  const rs: number[] = [];
  for (const frame of frames) {
    const [ref] = await fp32.infer([frame], { topK: 5 });
    const [got] = await int8.infer([frame], { topK: 5 });
    if (ref.ids[0] === got.ids[0]) top1++;
    const mine = new Set(got.ids);
    top5 += ref.ids.filter((id) => mine.has(id)).length / ref.ids.length;
    const [map] = await int8.infer([frame], { classes: [ref.ids[0]] });
    const size = ref.mapSize[0] * ref.mapSize[1];
    rs.push(pearson(ref.maps.subarray(0, size), map.maps.subarray(0, size)));
  }
  const [fp32Ms, int8Ms] = await interleavedTiming(fp32, int8, frames, timingRuns);
  return {
    frames: frames.length,
    top1Agreement: top1 / frames.length,
    top5Overlap: top5 / frames.length,
    camR: rs.reduce((x, y) => x + y, 0) / rs.length,
    camRWorst: Math.min(...rs),
    speedup: fp32Ms / int8Ms,
    fp32Ms,
    int8Ms,
    threads: int8.info.threads,
  };
}
