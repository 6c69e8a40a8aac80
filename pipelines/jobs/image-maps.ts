/**
 * Raw class activation maps saved for other tools (`camstream image --maps-out DIR`): the map at feature
 * resolution as a float32 NumPy `.npy` file (raw M_c, no scaling), and the same map min-max scaled to
 * 0-65535 and enlarged to the image's own size as a 16-bit greyscale PNG. Both are written to a temporary
 * name and renamed when complete.
 */
import sharp from 'sharp';
import { frameToInputPoint, type FrameGeometry, type MapSize } from '../../models/index.ts';

/**
 * An NPY v1.0 file of a row-major float32 `h x w` array: the magic `\x93NUMPY`, version 1.0, the header
 * length (uint16 LE), a Python dict literal padded with spaces and ended by `\n` so the data starts at a
 * multiple of 64 bytes, then the little-endian values.
 */
export function npyBytes(map: Float32Array, [h, w]: MapSize): Buffer {
  if (map.length !== h * w) throw new RangeError(`map has ${map.length} values, shape ${h}x${w} needs ${h * w}`);
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${h}, ${w}), }`;
  const unpadded = 10 + dict.length + 1;
  const header = `${dict}${' '.repeat((64 - (unpadded % 64)) % 64)}\n`;
  const out = Buffer.alloc(10 + header.length + map.length * 4);
  out.write('\x93NUMPY', 0, 'latin1');
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  for (let i = 0; i < map.length; i++) out.writeFloatLE(map[i], 10 + header.length + i * 4);
  return out;
}

/**
 * The map as 16-bit grey at the frame's size: min-max scaled to 0-65535 (a constant map is all 0) and
 * sampled bilinearly at each frame pixel's centre, through the frame-to-input geometry (letterbox padding
 * off) and half-pixel map cells. Separable, so the per-pixel work is two lerps.
 */
export async function mapPng16(map: Float32Array, [h, w]: MapSize, geometry: FrameGeometry): Promise<Buffer> {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of map) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const scale = hi > lo ? 65535 / (hi - lo) : 0;
  const { frameWidth: fw, frameHeight: fh, inputWidth: iw, inputHeight: ih } = geometry;
  const taps = (n: number, cells: number, toInput: (p: number) => number, inputSize: number) =>
    Array.from({ length: n }, (_, p) => {
      const u = Math.min(cells - 1, Math.max(0, (toInput(p + 0.5) * cells) / inputSize - 0.5));
      const i0 = Math.floor(u);
      return { i0, i1: Math.min(cells - 1, i0 + 1), t: u - i0 };
    });
  const xs = taps(fw, w, (x) => frameToInputPoint(geometry, x, 0)[0], iw);
  const ys = taps(fh, h, (y) => frameToInputPoint(geometry, 0, y)[1], ih);
  const out = new Uint16Array(fw * fh);
  for (let y = 0; y < fh; y++) {
    const { i0: r0, i1: r1, t: ty } = ys[y];
    for (let x = 0; x < fw; x++) {
      const { i0: c0, i1: c1, t: tx } = xs[x];
      const top = map[r0 * w + c0] + (map[r0 * w + c1] - map[r0 * w + c0]) * tx;
      const bottom = map[r1 * w + c0] + (map[r1 * w + c1] - map[r1 * w + c0]) * tx;
      out[y * fw + x] = Math.round((top + (bottom - top) * ty - lo) * scale);
    }
  }
  return sharp(out, { raw: { width: fw, height: fh, channels: 1 } }).toColourspace('grey16').png().toBuffer();
}

