/**
 * The heat layer: a normalized map resampled and coloured on a small grid spanning the frame. The only
 * per-pixel work done in JS; enlarging the grid to the frame is left to libvips or ffmpeg.
 */
import { checkGeometry, checkMap, colormapLut, contentRect, frameGrid, resampleMap, type FrameGeometry, type MapSize } from '../../models/index.ts';
import { resolveOverlayConfig, type AlphaMode, type OverlayConfig } from './overlay-config.ts';

/** A small RGBA image: the coloured map over the frame, ready to be enlarged to `frameWidth x frameHeight`. */
export interface HeatLayer {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Where `colourizeMap` paints when not into a new buffer: an RGBA image, from byte `offset`, `stride` bytes a row. */
export interface HeatTarget {
  data: Uint8Array;
  offset: number;
  stride: number;
  /** Scratch for the resampled values, reused when it has the grid's size. */
  scratch?: Float32Array;
}

/**
 * Colours a normalized map on a small grid spanning the frame (see `samplesPerCell`), with the alpha of
 * `alphaMode`. This is the part of the overlay done in JS; enlarging it (sharp here, or ffmpeg's scale and
 * overlay filters in a video pipeline) gives the full-size layer. Returns a new buffer owned by the caller,
 * or, with `into`, paints the grid there (the video overlay's packed frame) and returns that buffer.
 */
export function colourizeMap(
  map: Float32Array,
  mapSize: MapSize,
  geometry: FrameGeometry,
  config: OverlayConfig = {},
  into?: HeatTarget,
): HeatLayer {
  checkMap(map, mapSize);
  checkGeometry(geometry);
  return colourizeGrid(map, mapSize, geometry, resolveOverlayConfig(config), false, into);
}

/** The heat grid's size: `samplesPerCell` pixels per map cell lying over the frame, at most the frame's size. */
function heatGridSize(mapSize: MapSize, geometry: FrameGeometry, samplesPerCell: number): { width: number; height: number } {
  const content = contentRect(geometry);
  // Map cells lying over the frame along each axis (fewer than the map's when letterbox padding is cut off).
  const cellsX = (mapSize[1] * content.width) / geometry.inputWidth;
  const cellsY = (mapSize[0] * content.height) / geometry.inputHeight;
  const width = Math.max(1, Math.min(geometry.frameWidth, Math.round(cellsX * samplesPerCell)));
  const height = Math.max(1, Math.min(geometry.frameHeight, Math.round(cellsY * samplesPerCell)));
  return { width, height };
}

/** The map resampled on the heat grid (into `scratch` when it has the grid's size). */
function gridValues(
  map: Float32Array,
  mapSize: MapSize,
  geometry: FrameGeometry,
  size: { width: number; height: number },
  forLibvips: boolean,
  scratch: Float32Array | undefined,
): { values: Float32Array } {
  const { width, height } = size;
  const { transform } = frameGrid(mapSize, geometry, width, height);
  if (forLibvips && width < geometry.frameWidth) transform.offsetX += (0.5 * transform.scaleX * width) / geometry.frameWidth;
  if (forLibvips && height < geometry.frameHeight) transform.offsetY += (0.5 * transform.scaleY * height) / geometry.frameHeight;
  return { values: resampleMap(map, mapSize, [height, width], transform, scratch?.length === width * height ? scratch : undefined) };
}

/**
 * The normalized map resampled on the heat grid `colourizeMap` colours (same size, same sampling), for
 * painters of other pixel formats. `scratch` is used when it has the grid's size.
 */
export function heatValues(
  map: Float32Array,
  mapSize: MapSize,
  geometry: FrameGeometry,
  samplesPerCell: number,
  scratch?: Float32Array,
): { values: Float32Array; width: number; height: number } {
  checkMap(map, mapSize);
  checkGeometry(geometry);
  const size = heatGridSize(mapSize, geometry, samplesPerCell);
  return { ...gridValues(map, mapSize, geometry, size, false, scratch), ...size };
}

/**
 * The opacity (0..255) of each colour index under `alpha` (0..1): even with `constant`, growing with the
 * index with `value` (cold areas untouched).
 */
export function heatOpacities(alpha: number, alphaMode: AlphaMode): Uint8Array {
  const alpha255 = alpha * 255;
  return Uint8Array.from({ length: 256 }, (_, q) => Math.round(alphaMode === 'value' ? (alpha255 * q) / 255 : alpha255));
}

/**
 * The colour index (0..255) of a normalized map value, as `colourizeMap` picks it: `Math.round(v * 255)`
 * clamped, written as a truncation of x + 0.5, which equals it for x >= 0.5 and is cheaper per pixel (the
 * sum would round up to 1 for x a hair under 0.5, hence the test first).
 */
export function colourIndex(v: number): number {
  if (!(v > 0)) return 0;
  if (v >= 1) return 255;
  const x = v * 255;
  return x < 0.5 ? 0 : (x + 0.5) | 0;
}

/**
 * `colourizeMap`, optionally pre-compensating libvips' upsampling: its `linear` resize samples output pixel
 * `j` at input position `j / s - 0.5` (s = enlargement), half an output pixel left of the half-pixel-centre
 * convention `(j + 0.5) / s - 0.5` that the boxes and `upsampleBilinear` use. Sampling the grid half a frame
 * pixel further along cancels it (checked against a per-pixel reference in the render tests). An axis that is
 * not enlarged is not shifted.
 */
export function colourizeGrid(
  map: Float32Array,
  mapSize: MapSize,
  geometry: FrameGeometry,
  c: Required<OverlayConfig>,
  forLibvips: boolean,
  into?: HeatTarget,
): HeatLayer {
  const { width, height } = heatGridSize(mapSize, geometry, c.samplesPerCell);
  const { values } = gridValues(map, mapSize, geometry, { width, height }, forLibvips, into?.scratch);
  const lut = colormapLut(c.colormap);
  const data = into?.data ?? new Uint8Array(width * height * 4);
  const stride = into?.stride ?? width * 4;
  const opacity = heatOpacities(c.alpha, c.alphaMode);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0, o = (into?.offset ?? 0) + y * stride; x < width; x++, i++, o += 4) {
      const q = colourIndex(values[i]);
      const k = 3 * q;
      data[o] = lut[k];
      data[o + 1] = lut[k + 1];
      data[o + 2] = lut[k + 2];
      data[o + 3] = opacity[q];
    }
  }
  return { data, width, height };
}
