/**
 * The overlay frame as ffmpeg's overlay filter reads it without a conversion: planar yuva420p (Y, then U
 * and V at half size each way, then alpha at full size). The heat grid, most of the pixels, is painted
 * straight into the planes from colour tables (`packHeatYuva`). The annotations are drawn in RGBA
 * (draw.ts) and only the rectangles drawn on a frame are converted (`packYuva`), so their cost follows
 * what was painted (a few thousand pixels), not the layer's size. A buffer handed back for reuse keeps
 * its pixels and remembers where it was painted; the next frame converts those places again from its own
 * (cleared) drawing, which blanks what it does not paint over.
 *
 * Colours: BT.601 limited range, ffmpeg's default for RGB to YUV. A 2x2 block's chroma is the
 * alpha-weighted mean of its pixels' colours (a transparent pixel has no colour to give its neighbours),
 * or their plain mean when none has any opacity.
 * Transparent pixels are black (Y 16, U and V 128), as RGBA (0, 0, 0, 0) converts: when the layer is
 * enlarged, edge pixels mix towards black exactly as before.
 */
import { colourIndex } from '../../render/index.ts';

/** A half-open pixel rectangle [x0, x1) x [y0, y1). */
export interface PixelRect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

// BT.601 limited range (Y in [16, 235], U and V in [16, 240]) over 8-bit RGB.
const YR = 65.481 / 255;
const YG = 128.553 / 255;
const YB = 24.966 / 255;
const UR = -37.797 / 255;
const UG = -74.203 / 255;
const UB = 112 / 255;
const VR = 112 / 255;
const VG = -93.786 / 255;
const VB = -18.214 / 255;

const lumaOf = (r: number, g: number, b: number): number => Math.round(16 + YR * r + YG * g + YB * b);
// Luma per channel value in 1/65536ths (the 16 offset and the rounding half folded into the red table):
// integer sums in the per-pixel loop, rounding as lumaOf does except within 1/65536 of a half.
const LUMA_R = Int32Array.from({ length: 256 }, (_, v) => Math.round((16.5 + YR * v) * 65536));
const LUMA_G = Int32Array.from({ length: 256 }, (_, v) => Math.round(YG * v * 65536));
const LUMA_B = Int32Array.from({ length: 256 }, (_, v) => Math.round(YB * v * 65536));
const uOf = (r: number, g: number, b: number): number => Math.round(128 + UR * r + UG * g + UB * b);
const vOf = (r: number, g: number, b: number): number => Math.round(128 + VR * r + VG * g + VB * b);

/** BT.601 limited-range Y, U, V of an RGB colour, rounded. */
export function rgbToYuv(r: number, g: number, b: number): [number, number, number] {
  return [lumaOf(r, g, b), uOf(r, g, b), vOf(r, g, b)];
}

/** Fills `frame` (a `width` x `height` yuva420p frame) with transparent black. */
export function blankYuva(frame: Uint8Array, width: number, height: number): void {
  const luma = width * height;
  frame.fill(16, 0, luma);
  frame.fill(128, luma, luma + luma / 2);
  frame.fill(0, luma + luma / 2);
}

/**
 * `rects` grown to even corners (whole 2x2 chroma blocks), clipped to the frame, without empty ones and
 * without those inside another (a text sprite on its panel, the same place painted on two frames).
 */
function blockRects(rects: readonly PixelRect[], width: number, height: number): PixelRect[] {
  const grown = rects.map((r) => evenRect(r, width, height)).filter((r): r is PixelRect => r !== null);
  const inside = (a: PixelRect, b: PixelRect) => a.x0 >= b.x0 && a.y0 >= b.y0 && a.x1 <= b.x1 && a.y1 <= b.y1;
  // Of two equal rectangles the first is kept.
  return grown.filter((a, i) => !grown.some((b, j) => j !== i && inside(a, b) && (!inside(b, a) || j < i)));
}

/** `r` grown to even corners (whole 2x2 chroma blocks) and clipped to the frame; null when empty. */
function evenRect(r: PixelRect, width: number, height: number): PixelRect | null {
  const x0 = Math.max(0, Math.floor(r.x0 / 2) * 2);
  const y0 = Math.max(0, Math.floor(r.y0 / 2) * 2);
  const x1 = Math.min(width, Math.ceil(r.x1 / 2) * 2);
  const y1 = Math.min(height, Math.ceil(r.y1 / 2) * 2);
  return x1 > x0 && y1 > y0 ? { x0, y0, x1, y1 } : null;
}

/**
 * Converts the pixels of `rects` from `rgba` (straight alpha, `width` x `height`, 4-byte aligned) into the
 * yuva420p `frame` of the same size. Width and height are even; rectangles are grown to even corners and
 * clipped. Reads each pixel as one little-endian word (R in the low byte).
 */
export function packYuva(rgba: Uint8Array, frame: Uint8Array, width: number, height: number, rects: readonly PixelRect[]): void {
  if (rgba.byteOffset % 4 !== 0) throw new RangeError('packYuva: the RGBA drawing must start on a 4-byte boundary');
  const words = new Uint32Array(rgba.buffer, rgba.byteOffset, rgba.byteLength >> 2);
  const luma = width * height;
  const uBase = luma;
  const vBase = luma + luma / 4;
  const aBase = luma + luma / 2;
  const cw = width / 2;
  for (const r of blockRects(rects, width, height)) {
    for (let y = r.y0; y < r.y1; y += 2) {
      let c = (y >> 1) * cw + (r.x0 >> 1);
      for (let top = y * width + r.x0, end = y * width + r.x1; top < end; top += 2, c++) {
        const w0 = words[top];
        const w1 = words[top + 1];
        const w2 = words[top + width];
        const w3 = words[top + width + 1];
        if ((w0 | w1 | w2 | w3) === 0) {
          // Nothing painted in the block (the common case where an earlier frame's shapes are blanked).
          frame[top] = frame[top + 1] = frame[top + width] = frame[top + width + 1] = 16;
          frame[aBase + top] = frame[aBase + top + 1] = frame[aBase + top + width] = frame[aBase + top + width + 1] = 0;
          frame[uBase + c] = 128;
          frame[vBase + c] = 128;
          continue;
        }
        const r0 = w0 & 255, g0 = (w0 >>> 8) & 255, b0 = (w0 >>> 16) & 255, a0 = w0 >>> 24;
        const r1 = w1 & 255, g1 = (w1 >>> 8) & 255, b1 = (w1 >>> 16) & 255, a1 = w1 >>> 24;
        const r2 = w2 & 255, g2 = (w2 >>> 8) & 255, b2 = (w2 >>> 16) & 255, a2 = w2 >>> 24;
        const r3 = w3 & 255, g3 = (w3 >>> 8) & 255, b3 = (w3 >>> 16) & 255, a3 = w3 >>> 24;
        frame[top] = (LUMA_R[r0] + LUMA_G[g0] + LUMA_B[b0]) >> 16;
        frame[top + 1] = (LUMA_R[r1] + LUMA_G[g1] + LUMA_B[b1]) >> 16;
        frame[top + width] = (LUMA_R[r2] + LUMA_G[g2] + LUMA_B[b2]) >> 16;
        frame[top + width + 1] = (LUMA_R[r3] + LUMA_G[g3] + LUMA_B[b3]) >> 16;
        frame[aBase + top] = a0;
        frame[aBase + top + 1] = a1;
        frame[aBase + top + width] = a2;
        frame[aBase + top + width + 1] = a3;
        const sa = a0 + a1 + a2 + a3;
        // Colour without opacity (a cold cell of the heat at opacity by value): the plain mean, as an RGBA
        // conversion would give it, so that enlarging the layer mixes edges towards this colour.
        let R: number, G: number, B: number;
        if (sa === 0) {
          R = (r0 + r1 + r2 + r3) / 4;
          G = (g0 + g1 + g2 + g3) / 4;
          B = (b0 + b1 + b2 + b3) / 4;
        } else {
          R = (r0 * a0 + r1 * a1 + r2 * a2 + r3 * a3) / sa;
          G = (g0 * a0 + g1 * a1 + g2 * a2 + g3 * a3) / sa;
          B = (b0 * a0 + b1 * a1 + b2 * a2 + b3 * a3) / sa;
        }
        frame[uBase + c] = uOf(R, G, B);
        frame[vBase + c] = vOf(R, G, B);
      }
    }
  }
}

/** How the heat colours a grid value: the colormap's RGB table (768 bytes) and each colour index's opacity. */
export interface HeatColours {
  lut: Uint8Array;
  /** Opacity 0..255 of each colour index 0..255. */
  alpha: Uint8Array;
}

/** Per colour index: Y, and U and V before their 128 offset and rounding (unrounded, so means stay exact). */
function heatTables(lut: Uint8Array): { y: Uint8Array; u: Float64Array; v: Float64Array } {
  const y = new Uint8Array(256);
  const u = new Float64Array(256);
  const v = new Float64Array(256);
  for (let q = 0; q < 256; q++) {
    const [r, g, b] = [lut[3 * q], lut[3 * q + 1], lut[3 * q + 2]];
    y[q] = (LUMA_R[r] + LUMA_G[g] + LUMA_B[b]) >> 16; // as packYuva rounds
    u[q] = UR * r + UG * g + UB * b;
    v[q] = VR * r + VG * g + VB * b;
  }
  return { y, u, v };
}
const heatTableCache = new WeakMap<Uint8Array, ReturnType<typeof heatTables>>();

/**
 * Paints a heat grid (`values`, `gridWidth` x `gridHeight`, normalized; colour index as `colourIndex`)
 * straight into the yuva420p `frame` (`width` x `height`) with its top-left corner at (0, `top`), `top`
 * even: what `colourizeMap` followed by `packYuva` of its rectangle gives (chroma within 1), without the
 * RGBA step. Cells of the 2x2 blocks the grid only half covers (odd sides) are transparent black, as the
 * frame around the grid is.
 */
export function packHeatYuva(values: Float32Array, gridWidth: number, gridHeight: number, colours: HeatColours, frame: Uint8Array, width: number, height: number, top: number): void {
  let t = heatTableCache.get(colours.lut);
  if (!t) heatTableCache.set(colours.lut, (t = heatTables(colours.lut)));
  const { y: Y, u: U, v: V } = t;
  const alpha = colours.alpha;
  const luma = width * height;
  const uBase = luma;
  const vBase = luma + luma / 4;
  const aBase = luma + luma / 2;
  const cw = width / 2;
  for (let gy = 0; gy < gridHeight; gy += 2) {
    const i0 = gy * gridWidth;
    const p0 = (top + gy) * width;
    const c0 = ((top + gy) >> 1) * cw;
    const lastRow = gy + 1 >= gridHeight;
    for (let gx = 0; gx < gridWidth; gx += 2) {
      const lastColumn = gx + 1 >= gridWidth;
      // Cells past the grid (odd sides) are transparent black: index -1, no opacity, no colour terms.
      const q0 = colourIndex(values[i0 + gx]);
      const q1 = lastColumn ? -1 : colourIndex(values[i0 + gx + 1]);
      const q2 = lastRow ? -1 : colourIndex(values[i0 + gridWidth + gx]);
      const q3 = lastRow || lastColumn ? -1 : colourIndex(values[i0 + gridWidth + gx + 1]);
      const a0 = alpha[q0];
      const a1 = q1 < 0 ? 0 : alpha[q1];
      const a2 = q2 < 0 ? 0 : alpha[q2];
      const a3 = q3 < 0 ? 0 : alpha[q3];
      const p = p0 + gx;
      frame[p] = Y[q0];
      frame[p + 1] = q1 < 0 ? 16 : Y[q1];
      frame[p + width] = q2 < 0 ? 16 : Y[q2];
      frame[p + width + 1] = q3 < 0 ? 16 : Y[q3];
      frame[aBase + p] = a0;
      frame[aBase + p + 1] = a1;
      frame[aBase + p + width] = a2;
      frame[aBase + p + width + 1] = a3;
      const u1 = q1 < 0 ? 0 : U[q1];
      const u2 = q2 < 0 ? 0 : U[q2];
      const u3 = q3 < 0 ? 0 : U[q3];
      const v1 = q1 < 0 ? 0 : V[q1];
      const v2 = q2 < 0 ? 0 : V[q2];
      const v3 = q3 < 0 ? 0 : V[q3];
      const sa = a0 + a1 + a2 + a3;
      const c = c0 + (gx >> 1);
      // U and V lie in [16, 240]: (x + 0.5) | 0 rounds them as Math.round would.
      if (sa === 0) {
        frame[uBase + c] = (128.5 + (U[q0] + u1 + u2 + u3) / 4) | 0;
        frame[vBase + c] = (128.5 + (V[q0] + v1 + v2 + v3) / 4) | 0;
      } else {
        const inv = 1 / sa;
        frame[uBase + c] = (128.5 + (a0 * U[q0] + a1 * u1 + a2 * u2 + a3 * u3) * inv) | 0;
        frame[vBase + c] = (128.5 + (a0 * V[q0] + a1 * v1 + a2 * v2 + a3 * v3) * inv) | 0;
      }
    }
  }
}

/** Zeroes the pixels of `rects` in `rgba` (`width` wide, 4 bytes a pixel), clipped to its `height`. */
export function clearRects(rgba: Uint8Array, width: number, height: number, rects: readonly PixelRect[]): void {
  for (const r of rects) {
    const x0 = Math.max(0, r.x0);
    const x1 = Math.min(width, r.x1);
    if (x1 <= x0) continue;
    for (let y = Math.max(0, r.y0); y < Math.min(height, r.y1); y++) rgba.fill(0, (y * width + x0) * 4, (y * width + x1) * 4);
  }
}
