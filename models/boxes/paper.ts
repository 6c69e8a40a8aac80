/**
 * The paper's localization rule (ref: Zhou et al. 2016, sec. 3.1): the box of the largest connected
 * region above a fraction of the map's maximum, in frame pixels. Synchronous, owns no tensors.
 */
import { ConfigError } from '../../common/errors.ts';
import { checkMap, type MapSize } from '../cam/maps.ts';
import { checkGeometry, type Box, type BoxResolution, type FrameGeometry, type MapGrid } from './geometry.ts';
import { cellsToFrame, checkThreshold, components, heatOnGrid, maskBuffer, maxOf, workGrid, type Component } from './internal/work-grid.ts';

export interface PaperBoxOptions {
  /** Keep pixels above `threshold * max(map)`. Default 0.2 (paper sec. 3.1). In [0, 1). */
  threshold?: number;
  /** Default `input`. */
  resolution?: BoxResolution;
}

export const DEFAULT_PAPER_BOX_OPTIONS: Readonly<Required<PaperBoxOptions>> = Object.freeze({
  threshold: 0.2,
  resolution: 'input',
});

function largestComponentBox(
  heat: Float32Array,
  level: number,
  grid: MapGrid,
  geometry: FrameGeometry,
): Box | null {
  let best: Component | null = null;
  // Ties go to the first component in raster order, so results are deterministic.
  for (const c of componentsAbove(heat, level, grid)) if (!best || c.count > best.count) best = c;
  return best ? cellsToFrame(best.minX, best.minY, best.maxX, best.maxY, grid, geometry) : null;
}

function componentsAbove(heat: Float32Array, level: number, grid: MapGrid, weigh = false): Component[] {
  const n = heat.length;
  const mask = maskBuffer(n);
  for (let i = 0; i < n; i++) mask[i] = heat[i] > level ? 1 : 0;
  return components(mask, grid.width, grid.height, 1, 8, weigh ? heat : undefined);
}

/** One connected region of the paper rule: its box in frame pixels, its size and its heat. */
export interface PaperComponent {
  box: Box;
  /** Work-grid cells in the region (the paper's "largest" compares these). */
  cells: number;
  /** Its share of the heat above the threshold over all regions, in (0, 1]: sum of the map over its cells. */
  mass: number;
  /** Its largest map value over the map's maximum, in (threshold, 1]: 1 for the region holding the peak. */
  peak: number;
}

/**
 * Every 8-connected region the paper rule sees (cells strictly above `threshold * max`), largest first
 * (ties in raster order): `paperBox` is the first one's box. For callers that choose among similar
 * regions, such as a video keeping the region its previous box was on. Empty when the map has no
 * positive value.
 */
export function paperComponents(
  map: Float32Array,
  size: MapSize,
  geometry: FrameGeometry,
  options: PaperBoxOptions = {},
): PaperComponent[] {
  const threshold = checkThreshold(options.threshold ?? DEFAULT_PAPER_BOX_OPTIONS.threshold, 'threshold', true);
  checkMap(map, size);
  checkGeometry(geometry);
  const grid = workGrid(size, geometry, options.resolution ?? DEFAULT_PAPER_BOX_OPTIONS.resolution);
  const heat = heatOnGrid(map, size, grid);
  const max = maxOf(heat);
  if (!(max > 0)) return [];
  const found = componentsAbove(heat, threshold * max, grid, true);
  let total = 0;
  for (const c of found) total += c.mass;
  return found
    .map((c, order) => ({ c, order }))
    .sort((a, b) => b.c.count - a.c.count || a.order - b.order)
    .map(({ c }) => ({ box: cellsToFrame(c.minX, c.minY, c.maxX, c.maxY, grid, geometry), cells: c.count, mass: c.mass / total, peak: c.peak / max }));
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
