/**
 * Boxes and points from class activation maps, in ORIGINAL frame pixels.
 *
 * Conventions:
 * - A box is `[x1, y1, x2, y2]` in continuous frame coordinates: pixel column `c` covers `[c, c + 1)`, so a
 *   box around columns 10..19 is `[10, y1, 20, y2]` and its width is `x2 - x1`. Areas and IoU use these
 *   continuous extents (no "+1" convention).
 * - Maps are raw M_c at feature resolution, row-major `[h, w]` (see `CamResult`). They are placed over the
 *   frame through a `FrameGeometry`: the map covers the model input, and the model input came from the frame
 *   by stretching or by letterboxing.
 * - Work happens on a "work grid": the map bilinearly resampled (half-pixel centres, see `resampleMap`) over
 *   the part of the model input that shows the frame, at model-input resolution (default) or at frame
 *   resolution. Every function is synchronous, allocation-light (scratch buffers are reused across calls) and
 *   owns no tensors.
 */
import type { ResizeMode } from '../types.ts';
import { ConfigError, InputError } from '../../common/errors.ts';
import { checkMap, resampleMap, type GridTransform, type MapSize } from '../cam/maps.ts';

/** `[x1, y1, x2, y2]` in frame pixels (continuous coordinates, see the module doc). */
export type Box = [number, number, number, number];

/** The part of the model input that holds the frame, in input pixels. */
export interface ContentRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * How model-input pixels relate to frame pixels. `stretch`: the frame was resized to the input size,
 * ignoring aspect ratio. `letterbox`: the frame was scaled by `s = min(inW / fw, inH / fh)` and centred on a
 * zero-padded input; unless `content` says otherwise the scaled frame is `round(fw * s) x round(fh * s)`
 * pixels placed at `floor((inW - width) / 2), floor((inH - height) / 2)`.
 */
export interface FrameGeometry {
  frameWidth: number;
  frameHeight: number;
  inputWidth: number;
  inputHeight: number;
  resize: ResizeMode;
  /** Letterbox only: where the frame sits in the input, when the preprocessor rounded differently. */
  content?: ContentRect;
}

/** Where boxes are computed: on a grid of model-input pixels (fast) or of frame pixels (exact, costlier). */
export type BoxResolution = 'input' | 'frame';

export interface PaperBoxOptions {
  /** Keep pixels above `threshold * max(map)`. Default 0.2 (paper sec. 3.1). In [0, 1). */
  threshold?: number;
  /** Default `input`. */
  resolution?: BoxResolution;
}

export interface OfficialBoxOptions {
  /**
   * Fractions of the map's maximum, each in (0, 1). Default `OFFICIAL_THRESHOLDS`, the released code's
   * ILSVRC setting (levels 20, 100 and 110 of 255).
   */
  thresholds?: readonly number[];
  /**
   * Apply the released code's distance-transform erosion before finding contours. Default true.
   * Off gives plain threshold-and-contour boxes.
   */
  erode?: boolean;
  /** Erosion level on the 0..255 rescaled distance map (released code: 10). Default 10. */
  erodeLevel?: number;
  /** Also return the boxes of holes, as the released code's two-level contour retrieval does. Default true. */
  holes?: boolean;
  /** The released code keeps boxes this many frame pixels off the right and bottom edges. Default 5. */
  edgeMargin?: number;
  /** Default `input`. */
  resolution?: BoxResolution;
}

/** Levels 20, 100, 110 of 255: the thresholds of the released ILSVRC localization script. */
export const OFFICIAL_THRESHOLDS: readonly number[] = Object.freeze([20 / 255, 100 / 255, 110 / 255]);

export const DEFAULT_PAPER_BOX_OPTIONS: Readonly<Required<PaperBoxOptions>> = Object.freeze({
  threshold: 0.2,
  resolution: 'input',
});

export const DEFAULT_OFFICIAL_BOX_OPTIONS: Readonly<Required<OfficialBoxOptions>> = Object.freeze({
  thresholds: OFFICIAL_THRESHOLDS,
  erode: true,
  erodeLevel: 10,
  holes: true,
  edgeMargin: 5,
  resolution: 'input',
});

// ---------------------------------------------------------------------------------------------------------
// Geometry

/** Validates a geometry; throws InputError naming the bad field. */
export function checkGeometry(geometry: FrameGeometry): void {
  if (geometry === null || typeof geometry !== 'object') {
    throw new InputError(`geometry must be an object, got ${String(geometry)}`);
  }
  for (const key of ['frameWidth', 'frameHeight', 'inputWidth', 'inputHeight'] as const) {
    const v = geometry[key];
    if (!Number.isInteger(v) || v <= 0) {
      throw new InputError(`geometry.${key} must be a positive integer, got ${String(v)}`);
    }
  }
  if (geometry.resize !== 'stretch' && geometry.resize !== 'letterbox') {
    throw new InputError(`geometry.resize must be 'stretch' or 'letterbox', got ${JSON.stringify(geometry.resize)}`);
  }
  const c = geometry.content;
  if (c !== undefined) {
    const ok =
      [c.x, c.y, c.width, c.height].every((v) => Number.isFinite(v)) &&
      c.x >= 0 &&
      c.y >= 0 &&
      c.width > 0 &&
      c.height > 0 &&
      c.x + c.width <= geometry.inputWidth + 1e-6 &&
      c.y + c.height <= geometry.inputHeight + 1e-6;
    if (!ok) {
      throw new InputError(
        `geometry.content ${JSON.stringify(c)} must be a non-empty rectangle inside the ` +
          `${geometry.inputWidth}x${geometry.inputHeight} input`,
      );
    }
  }
}

/** The part of the model input showing the frame: the whole input for `stretch`. */
export function contentRect(geometry: FrameGeometry): ContentRect {
  const { frameWidth: fw, frameHeight: fh, inputWidth: iw, inputHeight: ih } = geometry;
  if (geometry.resize === 'stretch') return { x: 0, y: 0, width: iw, height: ih };
  if (geometry.content) return { ...geometry.content };
  const s = Math.min(iw / fw, ih / fh);
  const width = Math.min(iw, Math.max(1, Math.round(fw * s)));
  const height = Math.min(ih, Math.max(1, Math.round(fh * s)));
  return { x: Math.floor((iw - width) / 2), y: Math.floor((ih - height) / 2), width, height };
}

/** A point in model-input pixels to frame pixels (continuous coordinates, not clamped). */
export function inputToFramePoint(geometry: FrameGeometry, x: number, y: number): [number, number] {
  const c = contentRect(geometry);
  return [((x - c.x) * geometry.frameWidth) / c.width, ((y - c.y) * geometry.frameHeight) / c.height];
}

/** A point in frame pixels to model-input pixels (continuous coordinates). */
export function frameToInputPoint(geometry: FrameGeometry, x: number, y: number): [number, number] {
  const c = contentRect(geometry);
  return [c.x + (x * c.width) / geometry.frameWidth, c.y + (y * c.height) / geometry.frameHeight];
}

/**
 * A grid of `width x height` cells spanning the whole frame, and where each cell centre falls on the map.
 * Used by the boxes below and by the renderer (which colours such a grid and lets sharp enlarge it).
 */
export interface MapGrid {
  width: number;
  height: number;
  /** Placement of the grid over the map, for `resampleMap`. */
  transform: GridTransform;
}

/**
 * The grid over the frame with `width x height` cells, placed on a `[h, w]` map that covers the model input
 * of `geometry` (letterbox padding excluded: the grid covers only the frame's part of the map).
 */
export function frameGrid(size: MapSize, geometry: FrameGeometry, width: number, height: number): MapGrid {
  const c = contentRect(geometry);
  const mx = size[1] / geometry.inputWidth;
  const my = size[0] / geometry.inputHeight;
  return {
    width,
    height,
    transform: {
      scaleX: (c.width / width) * mx,
      offsetX: c.x * mx,
      scaleY: (c.height / height) * my,
      offsetY: c.y * my,
    },
  };
}

function workGrid(size: MapSize, geometry: FrameGeometry, resolution: BoxResolution): MapGrid {
  if (resolution === 'frame') return frameGrid(size, geometry, geometry.frameWidth, geometry.frameHeight);
  if (resolution !== 'input') {
    throw new ConfigError(`resolution must be 'input' or 'frame', got ${JSON.stringify(resolution)}`);
  }
  const c = contentRect(geometry);
  return frameGrid(size, geometry, Math.max(1, Math.round(c.width)), Math.max(1, Math.round(c.height)));
}

// ---------------------------------------------------------------------------------------------------------
// Scratch buffers, reused across calls: these run per frame and the work grid is ~50k cells.

let scratchHeat = new Float32Array(0);
let scratchMask = new Uint8Array(0);
let scratchSeen = new Uint8Array(0);
let scratchStack = new Int32Array(0);
let scratchDist = new Float64Array(0);

function heatBuffer(n: number): Float32Array {
  if (scratchHeat.length < n) scratchHeat = new Float32Array(n);
  return scratchHeat.subarray(0, n);
}
function maskBuffer(n: number): Uint8Array {
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
function distBuffer(n: number): Float64Array {
  if (scratchDist.length < n) scratchDist = new Float64Array(n);
  return scratchDist.subarray(0, n);
}

/** The map resampled on the work grid, in a scratch buffer valid until the next call. */
function heatOnGrid(map: Float32Array, size: MapSize, grid: MapGrid): Float32Array {
  return resampleMap(map, size, [grid.height, grid.width], grid.transform, heatBuffer(grid.width * grid.height));
}

function maxOf(values: Float32Array): number {
  let m = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > m) m = values[i];
  return m;
}

// ---------------------------------------------------------------------------------------------------------
// Connected components

/** Bounding rectangle (inclusive cell indices) and cell count of one component. */
interface Component {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  count: number;
  touchesBorder: boolean;
}

/**
 * Connected components of the cells where `mask[i] === value`, by flood fill with an explicit stack.
 * `connectivity` 8 joins diagonal neighbours (used for foreground, as in the paper's and OpenCV's contours);
 * 4 is the dual used for background holes.
 */
function components(mask: Uint8Array, w: number, h: number, value: 0 | 1, connectivity: 4 | 8): Component[] {
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
    while (top > 0) {
      const p = stack[--top];
      const y = (p / w) | 0;
      const x = p - y * w;
      count++;
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
    found.push({ minX, minY, maxX, maxY, count, touchesBorder: minX === 0 || minY === 0 || maxX === w - 1 || maxY === h - 1 });
  }
  return found;
}

/** Inclusive cell range on the work grid to a frame-pixel box. */
function cellsToFrame(
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

// ---------------------------------------------------------------------------------------------------------
// Paper rule

function checkThreshold(t: unknown, what: string, allowZero: boolean): number {
  if (typeof t !== 'number' || !(allowZero ? t >= 0 : t > 0) || !(t < 1)) {
    throw new ConfigError(`${what} must be a number in ${allowZero ? '[0, 1)' : '(0, 1)'}, got ${String(t)}`);
  }
  return t;
}

function largestComponentBox(
  heat: Float32Array,
  level: number,
  grid: MapGrid,
  geometry: FrameGeometry,
): Box | null {
  const n = heat.length;
  const mask = maskBuffer(n);
  for (let i = 0; i < n; i++) mask[i] = heat[i] > level ? 1 : 0;
  let best: Component | null = null;
  // Ties go to the first component in raster order, so results are deterministic.
  for (const c of components(mask, grid.width, grid.height, 1, 8)) if (!best || c.count > best.count) best = c;
  return best ? cellsToFrame(best.minX, best.minY, best.maxX, best.maxY, grid, geometry) : null;
}

/**
 * The paper's localization box. ref: Zhou et al. 2016, sec. 3.1: "we segment the regions of which the value
 * is above 20% of the max value of the CAM. Then we take the bounding box that covers the largest connected
 * component". The raw map is upsampled over the frame's part of the model input, cells strictly above
 * `threshold * max` are kept, and the box of the largest 8-connected component (by cell count) is returned in
 * frame pixels. The threshold is relative to the raw maximum (not to min-max), as the paper states.
 *
 * Returns null when the map has no positive value (no evidence for the class anywhere).
 */
export function paperBox(
  map: Float32Array,
  size: MapSize,
  geometry: FrameGeometry,
  options: PaperBoxOptions = {},
): Box | null {
  const threshold = checkThreshold(options.threshold ?? DEFAULT_PAPER_BOX_OPTIONS.threshold, 'threshold', true);
  return thresholdSweep(map, size, geometry, [threshold], options.resolution)[0];
}

/**
 * The paper box at each threshold (fractions of the map's maximum), computed from one upsampling. Entries
 * are null where the map has no positive value. Raising the threshold only removes cells, so the kept region
 * shrinks; the largest component's box usually shrinks with it but may jump to another blob.
 */
export function thresholdSweep(
  map: Float32Array,
  size: MapSize,
  geometry: FrameGeometry,
  thresholds: readonly number[],
  resolution: BoxResolution = DEFAULT_PAPER_BOX_OPTIONS.resolution,
): Array<Box | null> {
  checkMap(map, size);
  checkGeometry(geometry);
  if (!Array.isArray(thresholds) || thresholds.length === 0) {
    throw new ConfigError(`thresholds must be a non-empty array, got ${JSON.stringify(thresholds)}`);
  }
  thresholds.forEach((t, i) => checkThreshold(t, `thresholds[${i}]`, true));
  const grid = workGrid(size, geometry, resolution);
  const heat = heatOnGrid(map, size, grid);
  const max = maxOf(heat);
  if (!(max > 0)) return thresholds.map(() => null);
  return thresholds.map((t) => largestComponentBox(heat, t * max, grid, geometry));
}

// ---------------------------------------------------------------------------------------------------------
// The released code's rule

/**
 * Boxes as the CAM authors' released localization code makes them (github.com/zhoubolei/CAM,
 * `ILSVRC_generate_heatmap.m` + `bboxgenerator/dt_box.cpp`), ported:
 * 1. The map, resized over the frame, is divided by its maximum and stored as a 0..255 image (negatives
 *    clip to 0).
 * 2. For each threshold level t: binary mask `heat > t`; a Euclidean distance transform gives each kept
 *    pixel its distance to the nearest dropped pixel; the distances are rescaled so the largest is 255 and
 *    pixels at level <= 10 are dropped. This erodes each blob by ~4% of the thickest blob's inner radius and
 *    removes thin bridges and specks (`erode`).
 * 3. `findContours(RETR_CCOMP)` on the eroded mask: the outer border of every 8-connected component and the
 *    border of every hole. The bounding rectangle of a component's outer border is the bounding rectangle of
 *    the component itself, so a component labelling gives exactly the same rectangles without tracing
 *    borders; a hole border runs along the foreground pixels around the hole, so its rectangle is the hole's
 *    (a 4-connected background region not reaching the image edge) grown by one pixel.
 * 4. Each rectangle is kept off the right and bottom edges by `edgeMargin` pixels, as the released code does.
 * 5. Boxes of all thresholds are pooled, sorted by area (largest first) and merged: going from the largest,
 *    any later box whose intersection with it exceeds half the area of the LARGER of the two is dropped (the
 *    released `big_overlap` rule: intersection > 0.5 * max(area a, area b); not IoU, not the smaller box).
 *    The released loop erases while iterating and so skips the box right after each erased one; this port
 *    checks every pair, the evident intent.
 * Deviations: the released pipeline resized with MATLAB's bicubic `imresize` and round-tripped the heatmap
 * through JPEG; here the resize is bilinear and exact. With `resolution: 'input'` (default) the work happens
 * at model-input resolution and the boxes are scaled to the frame, which the relative erosion tolerates.
 *
 * Returns all boxes, largest first; empty when the map has no positive value.
 */
export function officialBoxes(
  map: Float32Array,
  size: MapSize,
  geometry: FrameGeometry,
  options: OfficialBoxOptions = {},
): Box[] {
  checkMap(map, size);
  checkGeometry(geometry);
  const o = { ...DEFAULT_OFFICIAL_BOX_OPTIONS, ...stripUndefined(options) };
  if (!Array.isArray(o.thresholds) || o.thresholds.length === 0) {
    throw new ConfigError(`thresholds must be a non-empty array, got ${JSON.stringify(o.thresholds)}`);
  }
  o.thresholds.forEach((t, i) => checkThreshold(t, `thresholds[${i}]`, false));
  if (typeof o.erodeLevel !== 'number' || !(o.erodeLevel >= 0 && o.erodeLevel < 255)) {
    throw new ConfigError(`erodeLevel must be a number in [0, 255), got ${String(o.erodeLevel)}`);
  }
  if (typeof o.edgeMargin !== 'number' || !(o.edgeMargin >= 0) || !Number.isFinite(o.edgeMargin)) {
    throw new ConfigError(`edgeMargin must be a finite number >= 0 (frame pixels), got ${String(o.edgeMargin)}`);
  }
  const grid = workGrid(size, geometry, o.resolution);
  const heat = heatOnGrid(map, size, grid);
  const max = maxOf(heat);
  if (!(max > 0)) return [];
  const n = heat.length;
  // Step 1: the 0..255 heatmap, in place (the float heat is not needed afterwards).
  const scale = 255 / max;
  for (let i = 0; i < n; i++) {
    const v = heat[i] * scale;
    heat[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
  }
  const { width: w, height: h } = grid;
  const mask = maskBuffer(n);
  const raw: Box[] = [];
  for (const t of o.thresholds) {
    // Fractions come in as floats; strip the float noise so that 20/255 means level 20 exactly.
    const level = Math.round(t * 255 * 1e6) / 1e6;
    let any = false;
    for (let i = 0; i < n; i++) {
      const on = heat[i] > level ? 1 : 0;
      mask[i] = on;
      any ||= on === 1;
    }
    if (!any) continue;
    if (o.erode) erodeRelative(mask, w, h, o.erodeLevel);
    for (const c of components(mask, w, h, 1, 8)) {
      raw.push(limitBox(cellsToFrame(c.minX, c.minY, c.maxX, c.maxY, grid, geometry), geometry, o.edgeMargin));
    }
    if (o.holes) {
      for (const c of components(mask, w, h, 0, 4)) {
        if (c.touchesBorder) continue;
        const box = cellsToFrame(c.minX - 1, c.minY - 1, c.maxX + 1, c.maxY + 1, grid, geometry);
        raw.push(limitBox(box, geometry, o.edgeMargin));
      }
    }
  }
  return mergeBoxes(raw);
}

/** The first (largest) of `officialBoxes`, or null when there is none. */
export function officialBox(
  map: Float32Array,
  size: MapSize,
  geometry: FrameGeometry,
  options: OfficialBoxOptions = {},
): Box | null {
  return officialBoxes(map, size, geometry, options)[0] ?? null;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** The released code's LIMIT step on an `(x, y, width, height)` rectangle (width limited from the raw x). */
function limitBox(box: Box, geometry: FrameGeometry, margin: number): Box {
  const W = geometry.frameWidth;
  const H = geometry.frameHeight;
  const [bx, by] = box;
  const bw = box[2] - box[0];
  const bh = box[3] - box[1];
  const x = clamp(bx, 0, W - margin);
  const y = clamp(by, 0, H - margin);
  const w = clamp(bw, 0, W - bx - margin);
  const h = clamp(bh, 0, H - by - margin);
  return [x, y, x + w, y + h];
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? (hi < lo ? lo : hi) : v;
}

/** Sort by area (largest first, stable) and drop boxes overlapping a larger kept one (see `officialBoxes`). */
function mergeBoxes(boxes: Box[]): Box[] {
  const sorted = boxes
    .map((box, i) => ({ box, i, area: area(box) }))
    .sort((a, b) => b.area - a.area || a.i - b.i);
  const kept: Array<{ box: Box; area: number }> = [];
  for (const cand of sorted) {
    // Every kept box is at least as large as the candidate, so max(area) is the kept box's area.
    if (!kept.some((k) => intersection(k.box, cand.box) > 0.5 * k.area)) kept.push(cand);
  }
  return kept.map((k) => k.box);
}

/**
 * In-place erosion of a binary mask by the released code's rule: exact Euclidean distance of each kept cell
 * to the nearest dropped cell, rescaled so the largest distance is 255, and cells whose rounded level is
 * <= `level` dropped. The image edge is not background. A mask with no dropped cell is left as is (the
 * released code leaves a flat distance map untouched).
 *
 * The distance transform is separable (Felzenszwalb & Huttenlocher 2012): per column, the distance to the
 * nearest dropped cell of that column, which for a binary mask is two linear scans (done row by row, over
 * all columns at once, for contiguous memory access); then per row, the lower envelope of parabolas.
 */
function erodeRelative(mask: Uint8Array, w: number, h: number, level: number): void {
  const n = w * h;
  const d2 = distBuffer(n);
  let hasBackground = false;
  for (let i = 0; i < n; i++) {
    if (mask[i] === 0) {
      hasBackground = true;
      break;
    }
  }
  if (!hasBackground) return;
  // Column pass: vertical distance (in cells) to the nearest dropped cell; FAR where a column has none.
  for (let x = 0; x < w; x++) d2[x] = mask[x] ? FAR : 0;
  for (let y = 1; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) d2[row + x] = mask[row + x] ? d2[row - w + x] + 1 : 0;
  }
  for (let y = h - 2; y >= 0; y--) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      const below = d2[row + w + x] + 1;
      if (below < d2[row + x]) d2[row + x] = below;
    }
  }
  for (let i = 0; i < n; i++) {
    const v = d2[i];
    d2[i] = v >= FAR ? FAR : v * v;
  }
  // Row pass: exact squared Euclidean distance.
  const f = new Float64Array(w);
  const d = new Float64Array(w);
  const z = new Float64Array(w + 1);
  const v = new Int32Array(w);
  let maxD2 = 0;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) f[x] = d2[row + x];
    edt1d(f, w, d, z, v);
    for (let x = 0; x < w; x++) {
      d2[row + x] = d[x];
      if (d[x] > maxD2) maxD2 = d[x];
    }
  }
  const maxD = Math.sqrt(maxD2);
  if (!(maxD > 0)) return;
  const k = 255 / maxD;
  for (let i = 0; i < n; i++) {
    // round(d * 255 / maxD) > level, with the released code's round-half-up.
    if (mask[i] && Math.floor(Math.sqrt(d2[i]) * k + 0.5) <= level) mask[i] = 0;
  }
}

/** Large finite stand-in for "no background on this line yet" (Infinity would make NaN in the envelope). */
const FAR = 1e20;

/** 1-D squared distance transform of a sampled function `f` (lower envelope of parabolas). */
function edt1d(f: Float64Array, n: number, d: Float64Array, z: Float64Array, v: Int32Array): void {
  let k = 0;
  v[0] = 0;
  z[0] = -Infinity;
  z[1] = Infinity;
  for (let q = 1; q < n; q++) {
    let s = (f[q] + q * q - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]);
    while (s <= z[k]) {
      k--;
      s = (f[q] + q * q - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]);
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1] < q) k++;
    const dq = q - v[k];
    d[q] = dq * dq + f[v[k]];
  }
}

// ---------------------------------------------------------------------------------------------------------
// Box measures and points

/** Area of a box (0 for an empty or inverted one). */
export function area(b: Box): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

function intersection(a: Box, b: Box): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

/** Intersection over union, in [0, 1]; 0 when both boxes are empty. */
export function iou(a: Box, b: Box): number {
  const inter = intersection(a, b);
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** The share of box `a`'s area lying inside box `b`, in [0, 1]; 0 when `a` is empty. */
export function boxInside(a: Box, b: Box): number {
  const aa = area(a);
  return aa > 0 ? intersection(a, b) / aa : 0;
}

/** A map's maximum located in frame pixels, for the pointing game. */
export interface PeakPoint {
  x: number;
  y: number;
  /** The raw map value there. */
  value: number;
}

/**
 * The pointing-game point: the map's maximum, in frame pixels. The maximum of a bilinear upsampling lies on
 * a map cell centre, so the argmax cell's centre is mapped to the frame without upsampling. With letterbox
 * geometry only cells whose centre lies over the frame compete (padding cannot win); if none does (a frame
 * thinner than a cell) all cells compete and the point is clamped onto the frame. Ties: first in raster order.
 */
export function peakPoint(map: Float32Array, size: MapSize, geometry: FrameGeometry): PeakPoint {
  checkMap(map, size);
  checkGeometry(geometry);
  const [h, w] = size;
  const c = contentRect(geometry);
  const cellW = geometry.inputWidth / w;
  const cellH = geometry.inputHeight / h;
  let best = -1;
  for (let pass = 0; pass < 2 && best < 0; pass++) {
    let bestValue = -Infinity;
    for (let i = 0; i < h; i++) {
      const cy = (i + 0.5) * cellH;
      const rowInside = cy >= c.y && cy <= c.y + c.height;
      for (let j = 0; j < w; j++) {
        const cx = (j + 0.5) * cellW;
        const inside = rowInside && cx >= c.x && cx <= c.x + c.width;
        const v = map[i * w + j];
        if ((inside || pass === 1) && v > bestValue) {
          bestValue = v;
          best = i * w + j;
        }
      }
    }
  }
  if (best < 0) best = 0; // all NaN: any cell is as good as another
  const i = (best / w) | 0;
  const j = best - i * w;
  const [x, y] = inputToFramePoint(geometry, (j + 0.5) * cellW, (i + 0.5) * cellH);
  return {
    x: clamp(x, 0, geometry.frameWidth),
    y: clamp(y, 0, geometry.frameHeight),
    value: map[best],
  };
}

// ---------------------------------------------------------------------------------------------------------
// MaxBoxAcc

/** One image's prediction at one threshold: a box, several boxes (best one counts), or none. */
export type BoxPrediction = Box | readonly Box[] | null;

export interface MaxBoxAccOptions {
  /** IoU needed for a hit (delta). Default 0.5. In (0, 1]. */
  iouThreshold?: number;
  /** The map thresholds the predictions were made at, to report the best one. Same length as each row. */
  thresholds?: readonly number[];
}

export interface MaxBoxAccResult {
  /** The best box accuracy over thresholds, in [0, 1]. */
  value: number;
  /** Index of the threshold reaching it (the first one on ties). */
  bestIndex: number;
  /** `thresholds[bestIndex]` when thresholds were given. */
  bestThreshold?: number;
  /** BoxAcc at every threshold index. */
  accuracies: number[];
}

/**
 * MaxBoxAcc (ref: Choe et al. 2020, "Evaluating Weakly Supervised Object Localization Methods Right",
 * sec. 4.1): `BoxAcc(t) = share of images whose box at map threshold t has IoU >= delta with one of the
 * image's ground-truth boxes`, and `MaxBoxAcc = max_t BoxAcc(t)`, which takes the threshold choice out of
 * the comparison. `predictions[i][t]` is image i's box at threshold t (for example from `thresholdSweep`); an
 * array of boxes counts its best match (the paper's multi-contour variant); null never hits. An image with no
 * ground-truth box never hits either.
 */
export function maxBoxAcc(
  predictions: ReadonlyArray<ReadonlyArray<BoxPrediction>>,
  groundTruth: ReadonlyArray<readonly Box[]>,
  options: MaxBoxAccOptions = {},
): MaxBoxAccResult {
  const delta = options.iouThreshold ?? 0.5;
  if (typeof delta !== 'number' || !(delta > 0 && delta <= 1)) {
    throw new ConfigError(`iouThreshold must be a number in (0, 1], got ${String(delta)}`);
  }
  if (predictions.length === 0) throw new InputError('maxBoxAcc needs at least one image, got 0');
  if (predictions.length !== groundTruth.length) {
    throw new InputError(
      `maxBoxAcc got predictions for ${predictions.length} images but ground truth for ${groundTruth.length}`,
    );
  }
  const steps = predictions[0].length;
  if (steps === 0) throw new InputError('maxBoxAcc needs at least one threshold per image, got 0');
  predictions.forEach((row, i) => {
    if (row.length !== steps) {
      throw new InputError(`predictions[${i}] has ${row.length} thresholds, predictions[0] has ${steps}`);
    }
  });
  const thresholds = options.thresholds;
  if (thresholds !== undefined && thresholds.length !== steps) {
    throw new ConfigError(`thresholds has ${thresholds.length} entries but each image has ${steps} predictions`);
  }
  const hits = new Array<number>(steps).fill(0);
  for (let i = 0; i < predictions.length; i++) {
    const gts = groundTruth[i];
    for (let t = 0; t < steps; t++) {
      if (bestIou(predictions[i][t], gts) >= delta) hits[t]++;
    }
  }
  const accuracies = hits.map((k) => k / predictions.length);
  let bestIndex = 0;
  for (let t = 1; t < steps; t++) if (accuracies[t] > accuracies[bestIndex]) bestIndex = t;
  const result: MaxBoxAccResult = { value: accuracies[bestIndex], bestIndex, accuracies };
  if (thresholds) result.bestThreshold = thresholds[bestIndex];
  return result;
}

/**
 * MaxBoxAccV2 (ref: Choe et al. 2020, sec. 4.1 and their released evaluation): MaxBoxAcc averaged over IoU
 * thresholds 0.3, 0.5 and 0.7, so that both coarse and tight localization count.
 */
export function maxBoxAccV2(
  predictions: ReadonlyArray<ReadonlyArray<BoxPrediction>>,
  groundTruth: ReadonlyArray<readonly Box[]>,
  options: Omit<MaxBoxAccOptions, 'iouThreshold'> = {},
): { value: number; perIou: Array<MaxBoxAccResult & { iouThreshold: number }> } {
  const perIou = [0.3, 0.5, 0.7].map((iouThreshold) => ({
    iouThreshold,
    ...maxBoxAcc(predictions, groundTruth, { ...options, iouThreshold }),
  }));
  return { value: perIou.reduce((s, r) => s + r.value, 0) / perIou.length, perIou };
}

function isBox(p: Box | readonly Box[]): p is Box {
  return typeof p[0] === 'number';
}

function bestIou(prediction: BoxPrediction, gts: readonly Box[]): number {
  if (prediction === null) return 0;
  const candidates: readonly Box[] = isBox(prediction) ? [prediction] : prediction;
  let best = 0;
  for (const p of candidates) for (const g of gts) best = Math.max(best, iou(p, g));
  return best;
}
