/**
 * Colormaps as 256-entry RGB lookup tables (`Uint8Array` of 768 bytes, entry `i` at `3 * i`), computed once
 * on first use, and `applyColormap` for normalized maps.
 */
import { ConfigError, InputError } from '../../common/errors.ts';

export type ColormapName = 'turbo' | 'jet' | 'inferno';

export const COLORMAP_NAMES: readonly ColormapName[] = Object.freeze(['turbo', 'jet', 'inferno']);

/**
 * Turbo (Mikhailov 2019, Google AI blog "Turbo, an improved rainbow colormap"), from Google's published
 * polynomial approximation (Ruofei Du's GLSL version): each channel is a degree-5 polynomial in x.
 */
function turbo(x: number): [number, number, number] {
  const x2 = x * x;
  const x3 = x2 * x;
  const x4 = x2 * x2;
  const x5 = x4 * x;
  return [
    0.13572138 + 4.6153926 * x - 42.66032258 * x2 + 132.13108234 * x3 - 152.94239396 * x4 + 59.28637943 * x5,
    0.09140261 + 2.19418839 * x + 4.84296658 * x2 - 14.18503333 * x3 + 4.27729857 * x4 + 2.82956604 * x5,
    0.1066733 + 12.64194608 * x - 60.58204836 * x2 + 110.36276771 * x3 - 89.90310912 * x4 + 27.34824973 * x5,
  ];
}

/** MATLAB's jet: three piecewise-linear ramps (dark blue, blue, cyan, yellow, red, dark red). */
function jet(x: number): [number, number, number] {
  const ramp = (c: number) => 1.5 - Math.abs(4 * x - c);
  return [ramp(3), ramp(2), ramp(1)];
}

/**
 * Inferno (van der Walt & Smith, matplotlib), 17 control points at x = k/16 sampled from matplotlib's table
 * and joined by Catmull-Rom splines: within 4/255 of the full 256-entry table on every channel.
 */
const INFERNO_POINTS: ReadonlyArray<readonly [number, number, number]> = [
  [0.001, 0.0, 0.014],
  [0.042, 0.028, 0.141],
  [0.128, 0.047, 0.29],
  [0.237, 0.037, 0.396],
  [0.34, 0.062, 0.429],
  [0.439, 0.099, 0.432],
  [0.539, 0.134, 0.416],
  [0.637, 0.17, 0.382],
  [0.733, 0.214, 0.332],
  [0.82, 0.273, 0.269],
  [0.892, 0.35, 0.197],
  [0.945, 0.445, 0.119],
  [0.977, 0.553, 0.038],
  [0.988, 0.669, 0.06],
  [0.976, 0.791, 0.197],
  [0.949, 0.911, 0.396],
  [0.988, 0.998, 0.645],
];

function inferno(x: number): [number, number, number] {
  const last = INFERNO_POINTS.length - 1;
  const pos = x * last;
  const k = Math.min(last - 1, Math.floor(pos));
  const t = pos - k;
  const p0 = INFERNO_POINTS[Math.max(0, k - 1)];
  const p1 = INFERNO_POINTS[k];
  const p2 = INFERNO_POINTS[k + 1];
  const p3 = INFERNO_POINTS[Math.min(last, k + 2)];
  const rgb: [number, number, number] = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    // Uniform Catmull-Rom: passes through p1 at t = 0 and p2 at t = 1 with smooth tangents.
    rgb[c] =
      0.5 *
      (2 * p1[c] +
        (p2[c] - p0[c]) * t +
        (2 * p0[c] - 5 * p1[c] + 4 * p2[c] - p3[c]) * t * t +
        (3 * p1[c] - p0[c] - 3 * p2[c] + p3[c]) * t * t * t);
  }
  return rgb;
}

const GENERATORS: Record<ColormapName, (x: number) => [number, number, number]> = { turbo, jet, inferno };

const cache = new Map<ColormapName, Uint8Array>();

function checkName(name: unknown): ColormapName {
  if (typeof name !== 'string' || !(COLORMAP_NAMES as readonly string[]).includes(name)) {
    throw new ConfigError(`colormap must be one of ${COLORMAP_NAMES.join(', ')}; got ${JSON.stringify(name)}`);
  }
  return name as ColormapName;
}

/**
 * The 256-entry RGB table of a colormap (768 bytes; entry i is the colour of value i / 255). The table is
 * shared and frozen in spirit: do not write to it.
 */
export function colormapLut(name: ColormapName): Uint8Array {
  const key = checkName(name);
  let lut = cache.get(key);
  if (!lut) {
    lut = new Uint8Array(768);
    const gen = GENERATORS[key];
    for (let i = 0; i < 256; i++) {
      const rgb = gen(i / 255);
      for (let c = 0; c < 3; c++) {
        const v = rgb[c];
        lut[3 * i + c] = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
      }
    }
    cache.set(key, lut);
  }
  return lut;
}

/**
 * Colours a normalized map (values in [0, 1]; outside clamps, NaN counts as 0) as packed RGB, 3 bytes per
 * value, through the 256-entry table (values are rounded to 1/255 steps). `out` (length `3 * n`) is written
 * when given; otherwise a new array is returned, owned by the caller.
 */
export function applyColormap(normalized: Float32Array, name: ColormapName, out?: Uint8Array): Uint8Array {
  const lut = colormapLut(name);
  const n = normalized.length;
  const dst = out ?? new Uint8Array(3 * n);
  if (dst.length !== 3 * n) throw new InputError(`out has ${dst.length} bytes, expected ${3 * n} (3 per value)`);
  for (let i = 0, o = 0; i < n; i++, o += 3) {
    const v = normalized[i];
    const k = 3 * (v > 0 ? (v >= 1 ? 255 : Math.round(v * 255)) : 0);
    dst[o] = lut[k];
    dst[o + 1] = lut[k + 1];
    dst[o + 2] = lut[k + 2];
  }
  return dst;
}
