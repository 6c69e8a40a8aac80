/**
 * Antialiased resizing as tap tables: for each output row (or column), which input rows it reads and with
 * what weights. Both engines apply the same tables (a Gather, a multiply and a sum per axis; rows after
 * columns), so their resized frames agree to float rounding, on any opset.
 *
 * Filters (see `ResizeFilter` in models/types.ts):
 * - `triangle`: the tent filter stretched over the output pixel's footprint, as PIL's `BILINEAR` and
 *   torchvision's `antialias=True` resize: with scale s = in / out, output pixel i (centre (i + 0.5) s in
 *   input coordinates) takes input pixel j with weight max(0, 1 - |j + 0.5 - centre| / max(s, 1)),
 *   normalized to sum 1 (which also handles the borders). When upscaling this is plain half-pixel bilinear.
 * - `area`: the box filter over the footprint (OpenCV `INTER_AREA`, PIL `BOX` when shrinking): input pixel j
 *   weighs the length of [j, j + 1] inside [i s, (i + 1) s], divided by s. When upscaling (s < 1) it is the
 *   triangle filter.
 */
import type { ResizeFilter } from '../types.ts';

/** One axis's taps: `indices` and `weights` are row-major `[outSize, taps]` (unused taps: index 0, weight 0). */
export interface ResizeTaps {
  inSize: number;
  outSize: number;
  taps: number;
  indices: Int32Array;
  weights: Float32Array;
}

type TapFilter = Exclude<ResizeFilter, 'bilinear'>;

/** The weights of one output pixel: `[firstInput, weights...]`. */
function pixelWeights(i: number, inSize: number, scale: number, filter: TapFilter): { first: number; w: number[] } {
  if (filter === 'area' && scale >= 1) {
    const lo = i * scale;
    const hi = (i + 1) * scale;
    const first = Math.floor(lo);
    const last = Math.min(inSize - 1, Math.ceil(hi) - 1);
    const w: number[] = [];
    for (let j = first; j <= last; j++) w.push(Math.max(0, Math.min(hi, j + 1) - Math.max(lo, j)));
    return { first, w: normalize(w) };
  }
  const support = Math.max(scale, 1);
  const centre = (i + 0.5) * scale;
  const first = Math.max(0, Math.floor(centre - support));
  const last = Math.min(inSize - 1, Math.ceil(centre + support));
  const w: number[] = [];
  for (let j = first; j <= last; j++) w.push(Math.max(0, 1 - Math.abs(j + 0.5 - centre) / support));
  return { first, w: normalize(w) };
}

function normalize(w: number[]): number[] {
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / sum);
}

/** Tap tables resizing an axis of `inSize` pixels to `outSize` with `filter`. Pure; both sizes >= 1. */
export function resizeTaps(inSize: number, outSize: number, filter: TapFilter): ResizeTaps {
  const scale = inSize / outSize;
  const rows = Array.from({ length: outSize }, (_, i) => pixelWeights(i, inSize, scale, filter));
  // Trailing zero weights (the triangle's ends) are trimmed so the table is as narrow as it can be.
  for (const r of rows) while (r.w.length > 1 && r.w[r.w.length - 1] === 0) r.w.pop();
  for (const r of rows) while (r.w.length > 1 && r.w[0] === 0) (r.w.shift(), r.first++);
  const taps = Math.max(...rows.map((r) => r.w.length));
  const indices = new Int32Array(outSize * taps);
  const weights = new Float32Array(outSize * taps);
  rows.forEach((r, i) => {
    r.w.forEach((v, t) => {
      indices[i * taps + t] = r.first + t;
      weights[i * taps + t] = v;
    });
  });
  return { inSize, outSize, taps, indices, weights };
}

const cache = new Map<string, ResizeTaps>();
const CACHE_ENTRIES = 32;

/** `resizeTaps`, remembered for the last few sizes (a video or camera repeats one frame size). */
export function cachedResizeTaps(inSize: number, outSize: number, filter: TapFilter): ResizeTaps {
  const key = `${inSize}:${outSize}:${filter}`;
  let t = cache.get(key);
  if (t === undefined) {
    t = resizeTaps(inSize, outSize, filter);
    if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
    cache.set(key, t);
  }
  return t;
}
