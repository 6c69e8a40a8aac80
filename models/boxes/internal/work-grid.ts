/**
 * What the box rules share: the "work grid" (the map bilinearly resampled, half-pixel centres, over the
 * frame's part of the model input, at model-input or at frame resolution), scratch buffers reused across
 * calls (these run per frame on ~50k cells), connected components, and threshold checks. Private to boxes/.
 */
import { ConfigError } from '../../../common/errors.ts';
import { resampleMap, type MapSize } from '../../cam/maps.ts';
import { contentRect, frameGrid, type Box, type BoxResolution, type FrameGeometry, type MapGrid } from '../geometry.ts';

/** The grid the box rules work on: frame resolution, or the frame's part of the input at input resolution. */
export function workGrid(size: MapSize, geometry: FrameGeometry, resolution: BoxResolution): MapGrid {
  if (resolution === 'frame') return frameGrid(size, geometry, geometry.frameWidth, geometry.frameHeight);
  if (resolution !== 'input') {
    throw new ConfigError(`resolution must be 'input' or 'frame', got ${JSON.stringify(resolution)}`);
  }
  const c = contentRect(geometry);
  return frameGrid(size, geometry, Math.max(1, Math.round(c.width)), Math.max(1, Math.round(c.height)));
}

// Scratch buffers, reused across calls: the box rules run per frame and the work grid is ~50k cells.
let scratchHeat = new Float32Array(0);
let scratchMask = new Uint8Array(0);
let scratchSeen = new Uint8Array(0);
let scratchStack = new Int32Array(0);
let scratchDist = new Float64Array(0);

function heatBuffer(n: number): Float32Array {
  if (scratchHeat.length < n) scratchHeat = new Float32Array(n);
  return scratchHeat.subarray(0, n);
}
/** A scratch mask of `n` cells, valid until the next call. */
export function maskBuffer(n: number): Uint8Array {
  if (scratchMask.length < n) scratchMask = new Uint8Array(n);
  return scratchMask.subarray(0, n);
}
function seenBuffer(n: number): Uint8Array {
  if (scratchSeen.length < n) scratchSeen = new Uint8Array(n);
  const s = scratchSeen.subarray(0, n);
  s.fill(0);
  return s;
}
function stackBuffer(n: number): Int32Array {
  if (scratchStack.length < n) scratchStack = new Int32Array(n);
  return scratchStack;
}
/** A scratch distance buffer of `n` cells, valid until the next call. */
export function distBuffer(n: number): Float64Array {
  if (scratchDist.length < n) scratchDist = new Float64Array(n);
  return scratchDist.subarray(0, n);
}

/** The map resampled on the work grid, in a scratch buffer valid until the next call. */
export function heatOnGrid(map: Float32Array, size: MapSize, grid: MapGrid): Float32Array {
  return resampleMap(map, size, [grid.height, grid.width], grid.transform, heatBuffer(grid.width * grid.height));
}

/** The largest value (-Infinity for none). */
export function maxOf(values: Float32Array): number {
  let m = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > m) m = values[i];
  return m;
}

/** Bounding rectangle (inclusive cell indices) and cell count of one component. */
export interface Component {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  count: number;
  touchesBorder: boolean;
  /** Sum of `weights` over the component's cells (0 without weights). */
  mass: number;
  /** Largest of `weights` over the component's cells (-Infinity without weights). */
  peak: number;
}

/**
 * Connected components of the cells where `mask[i] === value`, by flood fill with an explicit stack.
 * `connectivity` 8 joins diagonal neighbours (used for foreground, as in the paper's and OpenCV's contours);
 * 4 is the dual used for background holes. With `weights` (one per cell, such as the heat the mask was
 * thresholded from) each component also gets their sum and maximum.
 */
export function components(mask: Uint8Array, w: number, h: number, value: 0 | 1, connectivity: 4 | 8, weights?: Float32Array): Component[] {
  const n = w * h;
  const seen = seenBuffer(n);
  const stack = stackBuffer(n);
  const found: Component[] = [];
  const diagonal = connectivity === 8;
  for (let start = 0; start < n; start++) {
    if (seen[start] || mask[start] !== value) continue;
    let top = 0;
    stack[top++] = start;
    seen[start] = 1;
    let minX = w;
    let minY = h;
    let maxX = -1;
    let maxY = -1;
    let count = 0;
    let mass = 0;
    let peak = -Infinity;
    while (top > 0) {
      const p = stack[--top];
      const y = (p / w) | 0;
      const x = p - y * w;
      count++;
      if (weights) {
        mass += weights[p];
        if (weights[p] > peak) peak = weights[p];
      }
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
      const left = x > 0;
      const right = x < w - 1;
      // Unrolled neighbour visits (this loop is the hot path of every box function).
      if (y > 0) {
        const q = p - w;
        if (!seen[q] && mask[q] === value) (seen[q] = 1), (stack[top++] = q);
        if (diagonal) {
          if (left && !seen[q - 1] && mask[q - 1] === value) (seen[q - 1] = 1), (stack[top++] = q - 1);
          if (right && !seen[q + 1] && mask[q + 1] === value) (seen[q + 1] = 1), (stack[top++] = q + 1);
        }
      }
      if (left && !seen[p - 1] && mask[p - 1] === value) (seen[p - 1] = 1), (stack[top++] = p - 1);
      if (right && !seen[p + 1] && mask[p + 1] === value) (seen[p + 1] = 1), (stack[top++] = p + 1);
      if (y < h - 1) {
        const q = p + w;
        if (!seen[q] && mask[q] === value) (seen[q] = 1), (stack[top++] = q);
        if (diagonal) {
          if (left && !seen[q - 1] && mask[q - 1] === value) (seen[q - 1] = 1), (stack[top++] = q - 1);
          if (right && !seen[q + 1] && mask[q + 1] === value) (seen[q + 1] = 1), (stack[top++] = q + 1);
        }
      }
    }
    found.push({ minX, minY, maxX, maxY, count, mass, peak, touchesBorder: minX === 0 || minY === 0 || maxX === w - 1 || maxY === h - 1 });
  }
  return found;
}

/** Inclusive cell range on the work grid to a frame-pixel box. */
export function cellsToFrame(
  minX: number,
  minY: number,
  maxX: number,
  maxY: number,
  grid: MapGrid,
  geometry: FrameGeometry,
): Box {
  const sx = geometry.frameWidth / grid.width;
  const sy = geometry.frameHeight / grid.height;
  return [minX * sx, minY * sy, (maxX + 1) * sx, (maxY + 1) * sy];
}

/** `t` as a fraction of the map maximum in [0, 1) (`allowZero`) or (0, 1); ConfigError naming `what` otherwise. */
export function checkThreshold(t: unknown, what: string, allowZero: boolean): number {
  if (typeof t !== 'number' || !(allowZero ? t >= 0 : t > 0) || !(t < 1)) {
    throw new ConfigError(`${what} must be a number in ${allowZero ? '[0, 1)' : '(0, 1)'}, got ${String(t)}`);
  }
  return t;
}

/** `v` limited to [lo, hi] (to lo when the range is empty). */
export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? (hi < lo ? lo : hi) : v;
}
