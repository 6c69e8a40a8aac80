/**
 * The overlay frame as ffmpeg's overlay filter reads it without a conversion: planar yuva420p (Y, then U
 * and V at half size each way, then alpha at full size). Drawing stays RGBA (draw.ts); only the rectangles
 * drawn on a frame are converted, so the cost follows what was painted (a few thousand pixels), not the
 * layer's size. A buffer handed back for reuse keeps its pixels and remembers where it was painted; the
 * next frame converts those places again from its own (cleared) drawing, which blanks what it does not
 * paint over.
 *
 * Colours: BT.601 limited range, ffmpeg's default for RGB to YUV. A 2x2 block's chroma is the
 * alpha-weighted mean of its pixels' colours (a transparent pixel has no colour to give its neighbours),
 * or their plain mean when none has any opacity.
 * Transparent pixels are black (Y 16, U and V 128), as RGBA (0, 0, 0, 0) converts: when the layer is
 * enlarged, edge pixels mix towards black exactly as before.
 */

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
// integer sums in the per-pixel loop, equal to lumaOf's rounding.
const LUMA_R = Int32Array.from({ length: 256 }, (_, v) => Math.round((16.5 + YR * v) * 65536));
const LUMA_G = Int32Array.from({ length: 256 }, (_, v) => Math.round(YG * v * 65536));
const LUMA_B = Int32Array.from({ length: 256 }, (_, v) => Math.round(YB * v * 65536));
const uOf = (r: number, g: number, b: number): number => Math.round(128 + UR * r + UG * g + UB * b);
const vOf = (r: number, g: number, b: number): number => Math.round(128 + VR * r + VG * g + VB * b);

/** BT.601 limited-range Y, U, V of an RGB colour, rounded. */
export function rgbToYuv(r: number, g: number, b: number): [number, number, number] {
  return [lumaOf(r, g, b), uOf(r, g, b), vOf(r, g, b)];
}

/** Byte size of a `width` x `height` yuva420p frame (even sides). */
export function yuvaBytes(width: number, height: number): number {
  return (width * height * 5) / 2;
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
 * Converts the pixels of `rects` from `rgba` (straight alpha, `width` x `height`) into the yuva420p `frame`
 * of the same size. Width and height are even; rectangles are grown to even corners and clipped.
 */
export function packYuva(rgba: Uint8Array, frame: Uint8Array, width: number, height: number, rects: readonly PixelRect[]): void {
  const luma = width * height;
  const uBase = luma;
  const vBase = luma + luma / 4;
  const aBase = luma + luma / 2;
  const cw = width / 2;
  // Whole pixels at a time where the drawing is aligned (it is, as the render stage allocates it).
  const words = rgba.byteOffset % 4 === 0 ? new Uint32Array(rgba.buffer, rgba.byteOffset, rgba.byteLength >> 2) : undefined;
  for (const r of blockRects(rects, width, height)) {
    for (let y = r.y0; y < r.y1; y += 2) {
      for (let x = r.x0; x < r.x1; x += 2) {
        const c = (y >> 1) * cw + (x >> 1);
        const top = y * width + x;
        const o = top * 4;
        const w4 = width * 4;
        const blank = words ? (words[top] | words[top + 1] | words[top + width] | words[top + width + 1]) === 0 : zeroBytes(rgba, o, 8) && zeroBytes(rgba, o + w4, 8);
        if (blank) {
          // Nothing painted in the block (the common case where an earlier frame's shapes are blanked).
          frame[top] = frame[top + 1] = frame[top + width] = frame[top + width + 1] = 16;
          frame[aBase + top] = frame[aBase + top + 1] = frame[aBase + top + width] = frame[aBase + top + width + 1] = 0;
          frame[uBase + c] = 128;
          frame[vBase + c] = 128;
          continue;
        }
        let sr = 0;
        let sg = 0;
        let sb = 0;
        let sa = 0;
        let pr = 0;
        let pg = 0;
        let pb = 0;
        for (let k = 0; k < 4; k++) {
          const p = (y + (k >> 1)) * width + x + (k & 1);
          const o = p * 4;
          const R = rgba[o];
          const G = rgba[o + 1];
          const B = rgba[o + 2];
          const A = rgba[o + 3];
          frame[p] = (LUMA_R[R] + LUMA_G[G] + LUMA_B[B]) >> 16;
          frame[aBase + p] = A;
          sr += R * A;
          sg += G * A;
          sb += B * A;
          sa += A;
          pr += R;
          pg += G;
          pb += B;
        }
        if (sa === 0) {
          // Colour without opacity (a cold cell of the heat at opacity by value): the plain mean, as an RGBA
          // conversion would give it, so that enlarging the layer mixes edges towards this colour.
          frame[uBase + c] = uOf(pr / 4, pg / 4, pb / 4);
          frame[vBase + c] = vOf(pr / 4, pg / 4, pb / 4);
        } else {
          frame[uBase + c] = uOf(sr / sa, sg / sa, sb / sa);
          frame[vBase + c] = vOf(sr / sa, sg / sa, sb / sa);
        }
      }
    }
  }
}

/** Whether the `n` bytes of `data` from `at` are all 0. */
function zeroBytes(data: Uint8Array, at: number, n: number): boolean {
  for (let i = at; i < at + n; i++) if (data[i] !== 0) return false;
  return true;
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
