/**
 * Where a map sits over a frame: boxes are `[x1, y1, x2, y2]` in continuous frame pixels (pixel column `c`
 * covers `[c, c + 1)`, so a box around columns 10..19 is `[10, y1, 20, y2]`, its width `x2 - x1`; no "+1"
 * convention), and a `FrameGeometry` says how model-input pixels relate to frame pixels (stretch or
 * letterbox). Maps are raw M_c at feature resolution, row-major `[h, w]` (see `CamResult`), covering the
 * model input.
 */
import type { ResizeMode } from '../types.ts';
import { InputError } from '../../common/errors.ts';
import type { GridTransform, MapSize } from '../cam/maps.ts';

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
