/**
 * Boxes by the rule of the CAM authors' released localization code (see `officialBoxes`), in frame pixels.
 * Synchronous, allocation-light (scratch buffers are reused across calls), owns no tensors.
 */
import { ConfigError } from '../../common/errors.ts';
import { stripUndefined } from '../../common/checks.ts';
import { checkMap, type MapSize } from '../cam/maps.ts';
import { checkGeometry, type Box, type BoxResolution, type FrameGeometry } from './geometry.ts';
import { area, intersection } from './metrics.ts';
import { cellsToFrame, checkThreshold, clamp, components, distBuffer, heatOnGrid, maskBuffer, maxOf, workGrid } from './internal/work-grid.ts';

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

export const DEFAULT_OFFICIAL_BOX_OPTIONS: Readonly<Required<OfficialBoxOptions>> = Object.freeze({
  thresholds: OFFICIAL_THRESHOLDS,
  erode: true,
  erodeLevel: 10,
  holes: true,
  edgeMargin: 5,
  resolution: 'input',
});

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
