import { describe, expect, it } from 'vitest';
import { colormapLut, type Preprocess } from '../../../models/index.ts';
import { frameGeometry } from '../../../pipelines/index.ts';
import { colourizeMap, heatValues } from '../../../pipelines/render/index.ts';
import { blankYuva, clearRects, packHeatYuva, packYuva, rgbToYuv } from '../../../pipelines/stages/internal/yuva.ts';
import { rawFrameBytes } from '../../../pipelines/ffmpeg/index.ts';

const yuvaBytes = (w: number, h: number) => rawFrameBytes(w, h, 'yuva420p');

const W = 8;
const H = 6;

/** An RGBA canvas with `paint(x, y)` giving each pixel's colour (transparent black elsewhere). */
function canvas(paint: (x: number, y: number) => [number, number, number, number] | undefined): Uint8Array {
  const rgba = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) rgba.set(paint(x, y) ?? [0, 0, 0, 0], (y * W + x) * 4);
  return rgba;
}

const planes = (f: Uint8Array) => ({ y: f.subarray(0, W * H), u: f.subarray(W * H, W * H * 1.25), v: f.subarray(W * H * 1.25, W * H * 1.5), a: f.subarray(W * H * 1.5) });

describe('yuva420p packing of the overlay drawing', () => {
  it('converts BT.601 limited range like ffmpeg: black 16/128/128, white 235/128/128, pure red 81/90/240', () => {
    expect(rgbToYuv(0, 0, 0)).toEqual([16, 128, 128]);
    expect(rgbToYuv(255, 255, 255)).toEqual([235, 128, 128]);
    expect(rgbToYuv(255, 0, 0)).toEqual([81, 90, 240]);
  });

  it('a blank frame is transparent black, as RGBA zeros convert', () => {
    const f = new Uint8Array(yuvaBytes(W, H));
    blankYuva(f, W, H);
    const p = planes(f);
    expect([...new Set(p.y)]).toEqual([16]);
    expect([...new Set(p.u)]).toEqual([128]);
    expect([...new Set(p.v)]).toEqual([128]);
    expect([...new Set(p.a)]).toEqual([0]);
  });

  it('converts whole 2x2 blocks around a rectangle at odd corners, and only those', () => {
    const red = canvas((x, y) => (x >= 3 && x < 5 && y === 1 ? [255, 0, 0, 200] : undefined));
    const f = new Uint8Array(yuvaBytes(W, H));
    blankYuva(f, W, H);
    // Grown to [2, 6) x [0, 2): every pixel of the touched chroma blocks is written.
    packYuva(red, f, W, H, [{ x0: 3, y0: 1, x1: 5, y1: 2 }]);
    const p = planes(f);
    expect([p.y[1 * W + 3], p.a[1 * W + 3], p.y[1 * W + 4], p.a[1 * W + 4]]).toEqual([81, 200, 81, 200]);
    // Transparent neighbours inside the blocks: black, no alpha; the block's chroma is red's alone (alpha-weighted).
    expect([p.y[0 * W + 3], p.a[0 * W + 3], p.y[1 * W + 2], p.a[1 * W + 2]]).toEqual([16, 0, 16, 0]);
    expect([p.u[1], p.v[1], p.u[2], p.v[2]]).toEqual([90, 240, 90, 240]);
    // Blocks outside the grown rectangle keep the blank.
    expect([p.u[0], p.u[3], p.u[4 + 1]]).toEqual([128, 128, 128]);
    // Alpha-weighted chroma of a block half red (alpha 255), half blue (alpha 85): 3 parts red to 1 blue.
    const mixed = canvas((x, y) => (y < 2 && x < 2 ? (x === 0 ? [255, 0, 0, 255] : [0, 0, 255, 85]) : undefined));
    packYuva(mixed, f, W, H, [{ x0: 0, y0: 0, x1: 2, y1: 2 }]);
    const [, u, v] = rgbToYuv(191.25, 0, 63.75);
    expect([p.u[0], p.v[0]]).toEqual([u, v]);
  });

  it('keeps the colour of pixels painted without opacity (a cold heat cell at opacity by value)', () => {
    const ghost = canvas((x, y) => (x < 2 && y < 2 ? [0, 0, 255, 0] : undefined));
    const f = new Uint8Array(yuvaBytes(W, H));
    blankYuva(f, W, H);
    packYuva(ghost, f, W, H, [{ x0: 0, y0: 0, x1: 2, y1: 2 }]);
    const p = planes(f);
    const [y, u, v] = rgbToYuv(0, 0, 255);
    expect([p.y[0], p.a[0], p.u[0], p.v[0]]).toEqual([y, 0, u, v]);
  });

  it('clears the painted rectangles of the RGBA drawing, clipped to it', () => {
    const full = canvas(() => [9, 9, 9, 9]);
    clearRects(full, W, H, [{ x0: -2, y0: 4, x1: 3, y1: 99 }]);
    expect(Array.from(full.subarray((5 * W + 2) * 4, (5 * W + 3) * 4))).toEqual([0, 0, 0, 0]);
    expect(Array.from(full.subarray((5 * W + 3) * 4, (5 * W + 4) * 4))).toEqual([9, 9, 9, 9]);
    expect(Array.from(full.subarray((3 * W + 0) * 4, (3 * W + 1) * 4))).toEqual([9, 9, 9, 9]);
  });

  it('paints the heat grid straight to YUVA exactly as colouring it in RGBA and packing it would (odd sides, both opacities)', () => {
    const pre: Preprocess = { inputSize: [224, 224], channelOrder: 'rgb', layout: 'nhwc', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], resize: 'letterbox', resizeFilter: 'triangle', normalization: 'default' };
    let seed = 3;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (const [fw, fh, cells, spc] of [[640, 360, 7, 5], [320, 240, 5, 7], [300, 301, 4, 3]] as const) {
      const geometry = frameGeometry(fw, fh, pre);
      const map = Float32Array.from({ length: cells * cells }, () => rnd() * 1.2 - 0.1);
      for (const alphaMode of ['constant', 'value'] as const) {
        const rgbaHeat = colourizeMap(map, [cells, cells], geometry, { samplesPerCell: spc, alpha: 0.6, alphaMode, colormap: 'turbo' });
        const [gw, gh] = [rgbaHeat.width, rgbaHeat.height];
        const [w, h, top] = [gw + (gw % 2) + 2, gh + (gh % 2) + 6, 4];
        // Reference: the RGBA grid placed in a drawing, then packed.
        const drawing = new Uint8Array(w * h * 4);
        for (let y = 0; y < gh; y++) drawing.set(rgbaHeat.data.subarray(y * gw * 4, (y + 1) * gw * 4), ((top + y) * w) * 4);
        const want = new Uint8Array(yuvaBytes(w, h));
        blankYuva(want, w, h);
        packYuva(drawing, want, w, h, [{ x0: 0, y0: top, x1: gw, y1: top + gh }]);
        const got = new Uint8Array(yuvaBytes(w, h));
        blankYuva(got, w, h);
        const grid = heatValues(map, [cells, cells], geometry, spc);
        expect([grid.width, grid.height]).toEqual([gw, gh]);
        const alpha255 = 0.6 * 255;
        const alpha = Uint8Array.from({ length: 256 }, (_, q) => Math.round(alphaMode === 'value' ? (alpha255 * q) / 255 : alpha255));
        packHeatYuva(grid.values, gw, gh, { lut: colormapLut('turbo'), alpha }, got, w, h, top);
        let worst = 0;
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
        // Chroma means in floating point may round the other way at an exact half.
        expect(worst).toBeLessThanOrEqual(1);
        expect(Buffer.compare(got.subarray(0, w * h), want.subarray(0, w * h))).toBe(0);
      }
    }
  });
});
