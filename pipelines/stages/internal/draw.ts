/**
 * Minimal RGBA drawing for the annotation layer (rectangles and pre-rendered text sprites), at the
 * overlay's reduced resolution. Colours are straight (non-premultiplied) RGBA bytes, as ffmpeg's rgba.
 * Only the pixels under a shape are touched: a frame's annotations cost a few thousand pixel writes, and
 * a canvas with a `dirty` list gets each painted rectangle added to it (yuva.ts converts just those).
 */
import type { PixelRect } from './yuva.ts';

export interface Canvas {
  data: Uint8Array;
  width: number;
  height: number;
  /** Where shapes were painted, clipped to the canvas (appended to when present). */
  dirty?: PixelRect[];
}

export type Rgba = readonly [number, number, number, number];

/** Straight-alpha "over": paints (r, g, b) with opacity `a` (0..255) onto pixel `o` of `data`. */
function over(data: Uint8Array, o: number, r: number, g: number, b: number, a: number): void {
  if (a <= 0) return;
  const da = data[o + 3];
  if (a >= 255 || da === 0) {
    data[o] = r;
    data[o + 1] = g;
    data[o + 2] = b;
    data[o + 3] = a;
    return;
  }
  const sa = a / 255;
  const dA = (da / 255) * (1 - sa);
  const outA = sa + dA;
  data[o] = Math.round((r * sa + data[o] * dA) / outA);
  data[o + 1] = Math.round((g * sa + data[o + 1] * dA) / outA);
  data[o + 2] = Math.round((b * sa + data[o + 2] * dA) / outA);
  data[o + 3] = Math.round(outA * 255);
}

/** Fills the rectangle [x, x + w) x [y, y + h), clipped to the canvas. */
export function fillRect(c: Canvas, x: number, y: number, w: number, h: number, colour: Rgba): void {
  const x0 = Math.max(0, Math.round(x));
  const y0 = Math.max(0, Math.round(y));
  const x1 = Math.min(c.width, Math.round(x + w));
  const y1 = Math.min(c.height, Math.round(y + h));
  const [r, g, b, a] = colour;
  if (x1 > x0 && y1 > y0) c.dirty?.push({ x0, y0, x1, y1 });
  for (let yy = y0; yy < y1; yy++) {
    for (let xx = x0, o = 4 * (yy * c.width + x0); xx < x1; xx++, o += 4) over(c.data, o, r, g, b, a);
  }
}

/** Outlines the box [x1, y1, x2, y2] with a stroke `lineWidth` wide centred on its edges. */
export function strokeRect(c: Canvas, x1: number, y1: number, x2: number, y2: number, lineWidth: number, colour: Rgba): void {
  const h = lineWidth / 2;
  fillRect(c, x1 - h, y1 - h, x2 - x1 + lineWidth, lineWidth, colour);
  fillRect(c, x1 - h, y2 - h, x2 - x1 + lineWidth, lineWidth, colour);
  fillRect(c, x1 - h, y1 + h, lineWidth, y2 - y1 - lineWidth, colour);
  fillRect(c, x2 - h, y1 + h, lineWidth, y2 - y1 - lineWidth, colour);
}

/** A small straight-alpha RGBA image (rendered text). */
export interface Sprite {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Paints `sprite` with its top-left corner at (x, y), clipped to the canvas. */
export function blit(c: Canvas, sprite: Sprite, x: number, y: number): void {
  const ox = Math.round(x);
  const oy = Math.round(y);
  const painted = { x0: Math.max(0, ox), y0: Math.max(0, oy), x1: Math.min(c.width, ox + sprite.width), y1: Math.min(c.height, oy + sprite.height) };
  if (painted.x1 > painted.x0 && painted.y1 > painted.y0) c.dirty?.push(painted);
  for (let sy = 0; sy < sprite.height; sy++) {
    const yy = oy + sy;
    if (yy < 0 || yy >= c.height) continue;
    for (let sx = 0; sx < sprite.width; sx++) {
      const xx = ox + sx;
      if (xx < 0 || xx >= c.width) continue;
      const s = 4 * (sy * sprite.width + sx);
      over(c.data, 4 * (yy * c.width + xx), sprite.data[s], sprite.data[s + 1], sprite.data[s + 2], sprite.data[s + 3]);
    }
  }
}
