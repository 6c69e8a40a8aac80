/**
 * Plain-array operations on class activation maps: resampling, normalization and 8-bit quantization.
 *
 * The engines hand back raw maps M_c at feature resolution (7x7 to 28x28, see `CamResult.maps`); everything
 * here works on such small `Float32Array`s, row-major `[height, width]`, so no tensor is involved and nothing
 * needs disposing. Functions that take an optional `out` write into it (and return it) so that a per-frame
 * caller can reuse one buffer; without `out` they allocate the result, which the caller owns.
 */
import { ConfigError, InputError } from '../../common/errors.ts';

/** `[height, width]` of a map, the layout of `CamResult.mapSize`. */
export type MapSize = readonly [number, number];

/**
 * How a raw map becomes a display map in [0, 1]:
 * - `minmax`: per map, `(v - min) / (max - min)`; a constant map becomes all zeros.
 * - `fixed`: `v / scale`, clamped to [0, 1] (negative evidence shows as 0). A scale shared across frames
 *   keeps brightness comparable over time, which per-frame min-max does not.
 * - `prob`: `minmax` multiplied by the class probability, so a class the model barely believes in stays dim
 *   instead of being stretched to full brightness.
 */
export type NormalizeMode = 'minmax' | 'fixed' | 'prob';

export interface NormalizeOptions {
  /** `fixed` mode: the raw value shown at full brightness. Required, finite and > 0. */
  scale?: number;
  /** `prob` mode: the class probability in [0, 1]. Required. */
  probability?: number;
  /** Destination (same length as the map; may be the map itself). Allocated when absent. */
  out?: Float32Array;
}

/** An affine placement of an output grid over a map, in map-pixel units (see `resampleMap`). */
export interface GridTransform {
  /** Map pixels per output pixel along x. */
  scaleX: number;
  /** Map x coordinate (pixel-edge units) of the output grid's left edge. */
  offsetX: number;
  scaleY: number;
  offsetY: number;
}

/** Checks a `[height, width]` pair and that `map` holds exactly `height * width` values. */
export function checkMap(map: ArrayLike<number>, size: MapSize, what = 'map'): void {
  checkSize(size, `${what} size`);
  const expected = size[0] * size[1];
  if (map.length !== expected) {
    throw new InputError(
      `${what} has ${map.length} values but its size [${size[0]}, ${size[1]}] needs ${expected}`,
    );
  }
}

/** Checks a `[height, width]` pair of positive integers. */
export function checkSize(size: readonly number[], what: string): void {
  if (!Array.isArray(size) || size.length !== 2 || !size.every((v) => Number.isInteger(v) && v > 0)) {
    throw new InputError(`${what} must be [height, width] of positive integers, got ${JSON.stringify(size)}`);
  }
}

/**
 * Bilinear resampling of a map onto an arbitrary axis-aligned grid: output pixel `(i, j)` (centre at
 * `j + 0.5, i + 0.5`) reads the map at `x = (j + 0.5) * scaleX + offsetX`, `y = (i + 0.5) * scaleY + offsetY`,
 * where map pixel `k` covers `[k, k + 1)` and has its value at its centre `k + 0.5`. Positions outside the
 * outermost centres take the edge value (clamping), as cv2.resize and TF's half-pixel resize do.
 *
 * This one routine serves plain upsampling and the letterbox case, where the grid covers only the part of
 * the map that lies over the frame. `out` (length `outSize[0] * outSize[1]`) is written when given.
 */
export function resampleMap(
  map: Float32Array,
  size: MapSize,
  outSize: MapSize,
  transform: GridTransform,
  out?: Float32Array,
): Float32Array {
  checkMap(map, size);
  checkSize(outSize, 'output size');
  const [h, w] = size;
  const [outH, outW] = outSize;
  const n = outH * outW;
  const dst = out ?? new Float32Array(n);
  if (dst.length !== n) {
    throw new InputError(`out has ${dst.length} values, expected ${n} for [${outH}, ${outW}]`);
  }
  // Column weights are the same for every row: compute them once (small typed arrays, not per pixel).
  const x0s = new Int32Array(outW);
  const x1s = new Int32Array(outW);
  const fxs = new Float32Array(outW);
  axisWeights(outW, w, transform.scaleX, transform.offsetX, x0s, x1s, fxs);
  const y0s = new Int32Array(outH);
  const y1s = new Int32Array(outH);
  const fys = new Float32Array(outH);
  axisWeights(outH, h, transform.scaleY, transform.offsetY, y0s, y1s, fys);
  // Each map row interpolated along x once (h rows, not one per output row): the same arithmetic in the
  // same order as interpolating per output pixel, kept in doubles, so the result is bit for bit the same.
  if (rowScratch.length < h * outW) rowScratch = new Float64Array(h * outW);
  const rows = rowScratch;
  for (let r = 0, base = 0, t = 0; r < h; r++, base += w) {
    for (let j = 0; j < outW; j++, t++) {
      const a = map[base + x0s[j]];
      rows[t] = a + (map[base + x1s[j]] - a) * fxs[j];
    }
  }
  let o = 0;
  for (let i = 0; i < outH; i++) {
    const t0 = y0s[i] * outW;
    const t1 = y1s[i] * outW;
    const fy = fys[i];
    for (let j = 0; j < outW; j++) {
      const top = rows[t0 + j];
      dst[o++] = top + (rows[t1 + j] - top) * fy;
    }
  }
  return dst;
}

/** `resampleMap`'s rows interpolated along x, reused across calls (it runs per class per frame). */
let rowScratch = new Float64Array(0);

function axisWeights(
  outLen: number,
  inLen: number,
  scale: number,
  offset: number,
  i0: Int32Array,
  i1: Int32Array,
  f: Float32Array,
): void {
  const last = inLen - 1;
  for (let k = 0; k < outLen; k++) {
    // Map coordinate of the output pixel centre, minus 0.5 to index map pixel centres.
    let p = (k + 0.5) * scale + offset - 0.5;
    if (p < 0) p = 0;
    else if (p > last) p = last;
    const lo = Math.floor(p);
    i0[k] = lo;
    i1[k] = lo < last ? lo + 1 : last;
    f[k] = p - lo;
  }
}

/**
 * Bilinear upsampling (or downsampling) of a `[h, w]` map to `[H, W]` with half-pixel centres, i.e.
 * align_corners=false: output pixel `j` samples the map at `(j + 0.5) * w / W - 0.5` in pixel-centre
 * coordinates, clamped at the borders. This is the convention of `cv2.resize(INTER_LINEAR)` and of
 * `tf.image.resizeBilinear(..., alignCorners=false, halfPixelCenters=true)`, so maps line up with the
 * image pixels they summarise. No antialiasing when shrinking (maps are only ever enlarged here).
 */
export function upsampleBilinear(
  map: Float32Array,
  size: MapSize,
  outSize: MapSize,
  out?: Float32Array,
): Float32Array {
  checkSize(outSize, 'output size');
  return resampleMap(
    map,
    size,
    outSize,
    { scaleX: size[1] / outSize[1], offsetX: 0, scaleY: size[0] / outSize[0], offsetY: 0 },
    out,
  );
}

/**
 * Normalizes one raw map to [0, 1] for display (see `NormalizeMode`). Lossy for values outside the range.
 * Throws InputError on a NaN value (an engine bug upstream should not turn into a silently black map).
 */
export function normalizeMap(
  map: Float32Array,
  mode: NormalizeMode,
  options: NormalizeOptions = {},
): Float32Array {
  const n = map.length;
  const out = options.out ?? new Float32Array(n);
  if (out.length !== n) throw new InputError(`out has ${out.length} values, expected ${n}`);
  switch (mode) {
    case 'fixed': {
      const scale = options.scale;
      if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) {
        throw new ConfigError(`normalize scale must be a finite number > 0 for mode 'fixed', got ${scale}`);
      }
      const inv = 1 / scale;
      for (let i = 0; i < n; i++) {
        const v = map[i];
        if (v !== v) throw nanError(i);
        const s = v * inv;
        out[i] = s <= 0 ? 0 : s >= 1 ? 1 : s;
      }
      return out;
    }
    case 'minmax':
      return minMaxInto(map, out, 1);
    case 'prob': {
      const p = options.probability;
      if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
        throw new ConfigError(`normalize probability must be in [0, 1] for mode 'prob', got ${p}`);
      }
      return minMaxInto(map, out, p);
    }
    default:
      throw new ConfigError(`normalize mode must be one of minmax, fixed, prob; got ${JSON.stringify(mode)}`);
  }
}

function minMaxInto(map: Float32Array, out: Float32Array, gain: number): Float32Array {
  const n = map.length;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = map[i];
    if (v !== v) throw nanError(i);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const range = hi - lo;
  // A flat map carries no location: show nothing rather than divide by zero.
  if (!(range > 0) || !Number.isFinite(range)) {
    out.fill(0);
    return out;
  }
  const k = gain / range;
  for (let i = 0; i < n; i++) out[i] = (map[i] - lo) * k;
  return out;
}

function nanError(index: number): InputError {
  return new InputError(`map value at index ${index} is NaN`);
}

/**
 * A normalized map to bytes: `round(clamp(v, 0, 1) * 255)`; NaN becomes 0. Lossy (256 levels), which is
 * what goes over the wire and into colormap lookups. `out` is written when given.
 */
export function quantizeMap(normalized: Float32Array, out?: Uint8Array): Uint8Array {
  const n = normalized.length;
  const dst = out ?? new Uint8Array(n);
  if (dst.length !== n) throw new InputError(`out has ${dst.length} values, expected ${n}`);
  for (let i = 0; i < n; i++) {
    const v = normalized[i];
    // `v > 0` is false for NaN, which therefore maps to 0.
    dst[i] = v > 0 ? (v >= 1 ? 255 : Math.round(v * 255)) : 0;
  }
  return dst;
}

/** Bytes back to [0, 1] floats (`q / 255`). Inverse of `quantizeMap` to within 1/510. */
export function dequantizeMap(quantized: Uint8Array, out?: Float32Array): Float32Array {
  const n = quantized.length;
  const dst = out ?? new Float32Array(n);
  if (dst.length !== n) throw new InputError(`out has ${dst.length} values, expected ${n}`);
  for (let i = 0; i < n; i++) dst[i] = quantized[i] / 255;
  return dst;
}
