/**
 * Raster helpers of the real-digit scenes (mnist-scenes.ts): sampling a 28x28 digit through an inverse
 * map, the tight box of a mask, bilinear resizing (the engines' rule) and a JPEG-like 8x8 DCT
 * quantization for compression artefacts, all synchronous so training batches stay cheap to fill.
 */
import type { Rng } from '../../common/index.ts';

export type Box4 = [number, number, number, number];

/** Bilinear sample of a `w x h` single-channel image at (x, y) in pixel-centre coordinates; 0 outside. */
export function sampleBilinear(src: Float32Array, w: number, h: number, x: number, y: number): number {
  const fx = x - 0.5;
  const fy = y - 0.5;
  const x0 = Math.floor(fx);
  const y0 = Math.floor(fy);
  const ax = fx - x0;
  const ay = fy - y0;
  const at = (xx: number, yy: number): number => (xx < 0 || yy < 0 || xx >= w || yy >= h ? 0 : src[yy * w + xx]);
  return (at(x0, y0) * (1 - ax) + at(x0 + 1, y0) * ax) * (1 - ay) + (at(x0, y0 + 1) * (1 - ax) + at(x0 + 1, y0 + 1) * ax) * ay;
}

/** Tight box `[x1, y1, x2, y2]` (pixel edges) of the cells of `mask` at or above `threshold`; null when none. */
export function maskBox(mask: Float32Array, w: number, h: number, threshold: number, clip?: Box4): Box4 | null {
  const [cx1, cy1, cx2, cy2] = clip ?? [0, 0, w, h];
  let x1 = w;
  let y1 = h;
  let x2 = 0;
  let y2 = 0;
  for (let y = cy1; y < cy2; y++) {
    for (let x = cx1; x < cx2; x++) {
      if (mask[y * w + x] >= threshold) {
        if (x < x1) x1 = x;
        if (x + 1 > x2) x2 = x + 1;
        if (y < y1) y1 = y;
        if (y + 1 > y2) y2 = y + 1;
      }
    }
  }
  return x2 <= x1 ? null : [x1, y1, x2, y2];
}

/**
 * Bilinear resize of packed RGB bytes with half-pixel centres and no antialiasing: the rule of
 * `tf.image.resizeBilinear(halfPixelCenters)` and ONNX `Resize`, which the engines apply to frames, so a
 * network trains on what it will see. Returns floats 0-255.
 */
export function resizeRgbBilinear(rgb: Uint8Array, w: number, h: number, ow: number, oh: number): Float32Array {
  const out = new Float32Array(ow * oh * 3);
  const sx = w / ow;
  const sy = h / oh;
  for (let y = 0; y < oh; y++) {
    const fy = Math.min(h - 1, Math.max(0, (y + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(h - 1, y0 + 1);
    const ay = fy - y0;
    for (let x = 0; x < ow; x++) {
      const fx = Math.min(w - 1, Math.max(0, (x + 0.5) * sx - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(w - 1, x0 + 1);
      const ax = fx - x0;
      for (let c = 0; c < 3; c++) {
        const top = rgb[(y0 * w + x0) * 3 + c] * (1 - ax) + rgb[(y0 * w + x1) * 3 + c] * ax;
        const bottom = rgb[(y1 * w + x0) * 3 + c] * (1 - ax) + rgb[(y1 * w + x1) * 3 + c] * ax;
        out[(y * ow + x) * 3 + c] = top * (1 - ay) + bottom * ay;
      }
    }
  }
  return out;
}

// 8x8 DCT-II basis, orthonormal: DCT[u * 8 + x].
const DCT = new Float32Array(64);
for (let u = 0; u < 8; u++) {
  for (let x = 0; x < 8; x++) DCT[u * 8 + x] = (u === 0 ? Math.SQRT1_2 : 1) * 0.5 * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
}
// The JPEG standard's luminance quantization table (ITU T.81, Annex K).
const LUMA_Q = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22,
  37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/**
 * JPEG-like artefacts in place on float RGB (0-255): each channel's 8x8 blocks are transformed,
 * quantized with the standard table scaled for `quality` (1-100, libjpeg's scaling) and transformed back.
 */
export function jpegArtefacts(img: Float32Array, w: number, h: number, quality: number): void {
  const s = quality < 50 ? 5000 / quality : 200 - 2 * quality;
  const q = LUMA_Q.map((v) => Math.max(1, Math.floor((v * s + 50) / 100)));
  const block = new Float32Array(64);
  const tmp = new Float32Array(64);
  for (let by = 0; by < h; by += 8) {
    for (let bx = 0; bx < w; bx += 8) {
      for (let c = 0; c < 3; c++) {
        for (let i = 0; i < 64; i++) {
          const x = Math.min(w - 1, bx + (i & 7));
          const y = Math.min(h - 1, by + (i >> 3));
          block[i] = img[(y * w + x) * 3 + c] - 128;
        }
        transform8(block, tmp, false);
        for (let i = 0; i < 64; i++) block[i] = Math.round(block[i] / q[i]) * q[i];
        transform8(block, tmp, true);
        for (let i = 0; i < 64; i++) {
          const x = bx + (i & 7);
          const y = by + (i >> 3);
          if (x < w && y < h) img[(y * w + x) * 3 + c] = block[i] + 128;
        }
      }
    }
  }
}

/** Separable 2-D DCT (or its inverse) of an 8x8 block, in place. */
function transform8(b: Float32Array, tmp: Float32Array, inverse: boolean): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let r = 0; r < 8; r++) {
      for (let k = 0; k < 8; k++) {
        let acc = 0;
        for (let n = 0; n < 8; n++) acc += (inverse ? DCT[n * 8 + k] : DCT[k * 8 + n]) * b[r * 8 + n];
        tmp[k * 8 + r] = acc; // written transposed, so the second pass works on columns
      }
    }
    b.set(tmp);
  }
}

/** Sum of three uniforms scaled to unit variance: close to Gaussian and cheap. */
export function noiseSample(rng: Rng): number {
  return 2 * (rng.next() + rng.next() + rng.next() - 1.5);
}
