/**
 * A procedural scene generator modelled on cluttered MNIST (Mnih et al. 2014; the GAP paper's seed
 * experiment): one digit at a random position and scale in a larger canvas, clutter fragments cut from
 * other digits, noise, and camera-like changes (colour backgrounds, mild perspective, blur, brightness
 * and contrast). Digits are stroked procedurally from a few control points per glyph (random stroke
 * width, slant, aspect, rotation and jitter), so nothing depends on fonts or downloaded data.
 *
 * Every sample is a pure function of (seed, index, config): the same call gives the same bytes on every
 * machine, samples can be made in any order, and labels are balanced (each block of ten consecutive
 * indices holds each digit once, in a seeded order).
 */
import { ConfigError } from '../common/errors.ts';
import { createRng, type Rng } from '../common/rng.ts';

/** Class names of the ten digits, index = digit. */
export const DIGIT_LABELS: readonly string[] = Object.freeze([
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
]);

export interface SceneConfig {
  /** Canvas side in pixels (square). Default 56, the embedded model's input size. */
  size?: number;
  /** Digit height as a fraction of the canvas side, [min, max]. Default [0.36, 0.66]. */
  digitScale?: [number, number];
  /** Number of clutter fragments, [min, max] inclusive. Default [2, 5]. */
  clutter?: [number, number];
  /** Standard deviation of the additive pixel noise, [min, max] in 0-255 units. Default [0, 10]. */
  noise?: [number, number];
  /** Probability that a sample is blurred (Gaussian, sigma 0.4-1.1 px at size 56). Default 0.5. */
  blurProbability?: number;
  /** Strength of the perspective change (corner displacement, fraction of the side). Default 0.06. */
  perspective?: number;
}

export const DEFAULT_SCENE_CONFIG: Readonly<Required<SceneConfig>> = Object.freeze({
  size: 56,
  digitScale: [0.36, 0.66] as [number, number],
  clutter: [2, 5] as [number, number],
  noise: [0, 10] as [number, number],
  blurProbability: 0.5,
  perspective: 0.06,
});

/** Merges and validates; throws ConfigError naming the field, the value and the allowed range. */
export function resolveSceneConfig(config: SceneConfig = {}): Required<SceneConfig> {
  const c = { ...DEFAULT_SCENE_CONFIG, ...config };
  const range = (name: string, v: [number, number], lo: number, hi: number): void => {
    if (!Array.isArray(v) || v.length !== 2 || !(v[0] >= lo && v[0] <= v[1] && v[1] <= hi)) {
      throw new ConfigError(`${name} must be [min, max] with ${lo} <= min <= max <= ${hi}, got ${JSON.stringify(v)}`);
    }
  };
  if (!Number.isInteger(c.size) || c.size < 16 || c.size > 2048) {
    throw new ConfigError(`size must be an integer in [16, 2048], got ${c.size}`);
  }
  range('digitScale', c.digitScale, 0.1, 0.9);
  range('clutter', c.clutter, 0, 64);
  range('noise', c.noise, 0, 128);
  if (!(c.blurProbability >= 0 && c.blurProbability <= 1)) {
    throw new ConfigError(`blurProbability must be in [0, 1], got ${c.blurProbability}`);
  }
  if (!(c.perspective >= 0 && c.perspective <= 0.2)) {
    throw new ConfigError(`perspective must be in [0, 0.2], got ${c.perspective}`);
  }
  return c;
}

/** One generated sample. */
export interface Scene {
  /** Packed RGB, `height * width * 3` bytes. */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** Digit class, 0-9 (index into DIGIT_LABELS). */
  label: number;
  /**
   * The digit's ink box `[x1, y1, x2, y2]` in pixel-edge coordinates: pixels x1..x2-1 and y1..y2-1 hold
   * ink (alpha >= 0.5 before blur), so `x2 - x1` is the width in pixels.
   */
  box: [number, number, number, number];
}

// ---------------------------------------------------------------------------------------------------
// Glyphs: strokes in a unit box (x right, y down), a few variants per digit.

type Pt = [number, number];
interface Stroke {
  points: Pt[];
  /** Catmull-Rom smoothing through the points (curves) instead of straight segments (corners). */
  smooth: boolean;
  closed?: boolean;
}

/** Points on an ellipse arc; angles in radians, y down (-PI/2 is the top). */
function arc(cx: number, cy: number, rx: number, ry: number, from: number, to: number, n: number): Pt[] {
  const pts: Pt[] = [];
  for (let i = 0; i <= n; i++) {
    const t = from + ((to - from) * i) / n;
    pts.push([cx + rx * Math.cos(t), cy + ry * Math.sin(t)]);
  }
  return pts;
}

const PI = Math.PI;

/** Glyph variants per digit; the generator picks one and perturbs its points. */
function glyph(digit: number, rng: Rng): Stroke[] {
  const v = rng.next();
  switch (digit) {
    case 0:
      return [{ points: arc(0.5, 0.5, 0.36, 0.47, -PI / 2, (3 * PI) / 2, 10).slice(0, 10), smooth: true, closed: true }];
    case 1: {
      const strokes: Stroke[] = [{ points: [[0.52, 0.03], [0.5, 0.97]], smooth: false }];
      if (v < 0.6) strokes.push({ points: [[0.25, 0.28], [0.52, 0.03]], smooth: false });
      if (v < 0.25) strokes.push({ points: [[0.28, 0.97], [0.72, 0.97]], smooth: false });
      return strokes;
    }
    case 2:
      return [
        { points: [...arc(0.5, 0.3, 0.36, 0.27, -PI + 0.35, 0.55, 6), [0.12, 0.96]], smooth: true },
        { points: [[0.12, 0.96], [0.9, 0.96]], smooth: false },
      ];
    case 3:
      return [
        { points: arc(0.47, 0.27, 0.33, 0.23, -PI + 0.55, PI / 2, 6), smooth: true },
        { points: arc(0.47, 0.72, 0.38, 0.26, -PI / 2, PI - 0.45, 6), smooth: true },
      ];
    case 4:
      return v < 0.6
        ? [{ points: [[0.68, 0.97], [0.68, 0.03], [0.08, 0.66], [0.92, 0.66]], smooth: false }]
        : [
            { points: [[0.32, 0.03], [0.12, 0.62], [0.92, 0.62]], smooth: false },
            { points: [[0.68, 0.28], [0.68, 0.97]], smooth: false },
          ];
    case 5:
      return [
        { points: [[0.86, 0.04], [0.25, 0.04], [0.21, 0.44]], smooth: false },
        { points: arc(0.5, 0.67, 0.37, 0.3, -2.25, 2.55, 7), smooth: true },
      ];
    case 6:
      return [
        { points: [[0.76, 0.03], [0.42, 0.2], [0.2, 0.5], [0.18, 0.72]], smooth: true },
        { points: arc(0.5, 0.71, 0.32, 0.26, 0, 2 * PI, 10).slice(0, 10), smooth: true, closed: true },
      ];
    case 7: {
      const strokes: Stroke[] = [{ points: [[0.08, 0.04], [0.92, 0.04], [0.4, 0.97]], smooth: false }];
      if (v < 0.3) strokes.push({ points: [[0.36, 0.5], [0.8, 0.5]], smooth: false });
      return strokes;
    }
    case 8:
      return [
        { points: arc(0.5, 0.26, 0.28, 0.23, 0, 2 * PI, 10).slice(0, 10), smooth: true, closed: true },
        { points: arc(0.5, 0.72, 0.35, 0.26, 0, 2 * PI, 10).slice(0, 10), smooth: true, closed: true },
      ];
    default:
      return [
        { points: arc(0.5, 0.3, 0.33, 0.27, 0, 2 * PI, 10).slice(0, 10), smooth: true, closed: true },
        v < 0.5
          ? { points: [[0.83, 0.3], [0.76, 0.97]], smooth: false }
          : { points: [[0.83, 0.3], [0.8, 0.66], [0.55, 0.97]], smooth: true },
      ];
  }
}

/** Catmull-Rom interpolation through `pts` (closed or open), `sub` segments per span. */
function smoothPolyline(pts: Pt[], closed: boolean, sub: number): Pt[] {
  const n = pts.length;
  const at = (i: number): Pt => (closed ? pts[(i + n) % n] : pts[Math.max(0, Math.min(n - 1, i))]);
  const spans = closed ? n : n - 1;
  const out: Pt[] = [];
  for (let i = 0; i < spans; i++) {
    const p0 = at(i - 1);
    const p1 = at(i);
    const p2 = at(i + 1);
    const p3 = at(i + 2);
    for (let s = 0; s < sub; s++) {
      const t = s / sub;
      const t2 = t * t;
      const t3 = t2 * t;
      const f = (a: number, b: number, c: number, d: number): number =>
        0.5 * (2 * b + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t2 + (-a + 3 * b - 3 * c + d) * t3);
      out.push([f(p0[0], p1[0], p2[0], p3[0]), f(p0[1], p1[1], p2[1], p3[1])]);
    }
  }
  out.push(closed ? out[0] : pts[n - 1]);
  return out;
}

/** A 2-D map applied to glyph points (unit box -> canvas pixels). */
type PointMap = (p: Pt) => Pt;

/**
 * The digit as polylines in canvas pixels: jitter, aspect, slant, rotation, scale and placement.
 * `heightPx` is the glyph height; the glyph's centre goes to (cx, cy).
 */
function layoutGlyph(digit: number, rng: Rng, heightPx: number, cx: number, cy: number, warp: PointMap): Pt[][] {
  const strokes = glyph(digit, rng);
  const aspect = rng.uniform(0.55, 0.95);
  const shear = rng.uniform(-0.35, 0.35);
  const angle = rng.uniform(-0.2, 0.2);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const jitter = 0.03;
  return strokes.map((stroke) => {
    const jittered = stroke.points.map(([x, y]): Pt => [x + jitter * rng.normal(), y + jitter * rng.normal()]);
    const line = stroke.smooth ? smoothPolyline(jittered, stroke.closed === true, 4) : jittered;
    return line.map(([x, y]) => {
      // Centre, squeeze the width, slant (shear with height), rotate, scale to pixels, place, warp.
      let u = (x - 0.5) * aspect + (0.5 - y) * shear * 0.5;
      const w = y - 0.5;
      const ru = u * cos - w * sin;
      const rw = u * sin + w * cos;
      u = ru;
      return warp([cx + u * heightPx, cy + rw * heightPx]);
    });
  });
}

/**
 * Draws thick anti-aliased polylines into `mask` (max-composited alpha in [0, 1]), only inside the clip
 * rectangle [cx0, cx1) x [cy0, cy1).
 */
function strokeInto(
  mask: Float32Array,
  size: number,
  lines: Pt[][],
  radius: number,
  clip: [number, number, number, number] = [0, 0, size, size],
): void {
  const [cx0, cy0, cx1, cy1] = clip;
  for (const line of lines) {
    for (let i = 0; i + 1 < line.length; i++) {
      const [ax, ay] = line[i];
      const [bx, by] = line[i + 1];
      const x0 = Math.max(cx0, Math.floor(Math.min(ax, bx) - radius - 1));
      const x1 = Math.min(cx1, Math.ceil(Math.max(ax, bx) + radius + 1));
      const y0 = Math.max(cy0, Math.floor(Math.min(ay, by) - radius - 1));
      const y1 = Math.min(cy1, Math.ceil(Math.max(ay, by) + radius + 1));
      const dx = bx - ax;
      const dy = by - ay;
      const len2 = dx * dx + dy * dy || 1e-9;
      for (let y = y0; y < y1; y++) {
        const py = y + 0.5;
        for (let x = x0; x < x1; x++) {
          const px = x + 0.5;
          // Distance from the pixel centre to the segment; coverage falls off over one pixel.
          let t = ((px - ax) * dx + (py - ay) * dy) / len2;
          t = t < 0 ? 0 : t > 1 ? 1 : t;
          const ex = ax + t * dx - px;
          const ey = ay + t * dy - py;
          const a = radius + 0.5 - Math.sqrt(ex * ex + ey * ey);
          if (a > 0) {
            const j = y * size + x;
            const v = a > 1 ? 1 : a;
            if (v > mask[j]) mask[j] = v;
          }
        }
      }
    }
  }
}

/** A mild projective map of the canvas (the corners move by up to `strength * size`). */
function perspectiveMap(rng: Rng, size: number, strength: number): PointMap {
  if (strength === 0) return (p) => p;
  // Homography from the unit square to a randomly displaced quadrilateral (Heckbert's closed form).
  const d = (): number => rng.uniform(-strength, strength);
  const [x0, y0, x1, y1, x2, y2, x3, y3] = [d(), d(), 1 + d(), d(), 1 + d(), 1 + d(), d(), 1 + d()];
  const sx = x0 - x1 + x2 - x3;
  const sy = y0 - y1 + y2 - y3;
  const dx1 = x1 - x2;
  const dx2 = x3 - x2;
  const dy1 = y1 - y2;
  const dy2 = y3 - y2;
  const den = dx1 * dy2 - dx2 * dy1;
  const g = (sx * dy2 - dx2 * sy) / den;
  const h = (dx1 * sy - sx * dy1) / den;
  const a = x1 - x0 + g * x1;
  const b = x3 - x0 + h * x3;
  const c = x0;
  const dd = y1 - y0 + g * y1;
  const e = y3 - y0 + h * y3;
  const f = y0;
  return ([px, py]) => {
    const u = px / size;
    const v = py / size;
    const w = g * u + h * v + 1;
    return [((a * u + b * v + c) / w) * size, ((dd * u + e * v + f) / w) * size];
  };
}

/** sRGB-ish luma of a colour, 0-255. */
const luma = (c: number[]): number => 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];

function randomColour(rng: Rng): number[] {
  return [rng.int(256), rng.int(256), rng.int(256)];
}

/** An ink colour at least `minContrast` luma away from `bg` (black or white as the fallback). */
function contrastingColour(rng: Rng, bg: number, minContrast: number): number[] {
  for (let i = 0; i < 8; i++) {
    const c = randomColour(rng);
    if (Math.abs(luma(c) - bg) >= minContrast) return c;
  }
  return bg > 127 ? [rng.int(40), rng.int(40), rng.int(40)] : [215 + rng.int(40), 215 + rng.int(40), 215 + rng.int(40)];
}

/** Separable Gaussian blur of an RGB float image, in place (edges clamped). */
function blurRgb(img: Float32Array, size: number, sigma: number): void {
  const r = Math.max(1, Math.ceil(sigma * 2));
  const k = new Float32Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  const tmp = new Float32Array(img.length);
  // Pass 1 along x (img -> tmp), pass 2 along y (tmp -> img); stride is 3 floats per pixel in x.
  for (let pass = 0; pass < 2; pass++) {
    const src = pass === 0 ? img : tmp;
    const dst = pass === 0 ? tmp : img;
    const step = pass === 0 ? 3 : size * 3;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const pos = pass === 0 ? x : y;
        const base = (y * size + x) * 3;
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        for (let i = -r; i <= r; i++) {
          const q = pos + i;
          const off = base + ((q < 0 ? 0 : q >= size ? size - 1 : q) - pos) * step;
          const w = k[i + r];
          a0 += w * src[off];
          a1 += w * src[off + 1];
          a2 += w * src[off + 2];
        }
        dst[base] = a0;
        dst[base + 1] = a1;
        dst[base + 2] = a2;
      }
    }
  }
}

/** The label of sample `index`: each block of ten indices holds every digit once, in a seeded order. */
export function sceneLabel(seed: number, index: number): number {
  const block = Math.floor(index / 10);
  const rng = createRng(seed, block, 0x1abe1);
  const order = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  for (let i = 9; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order[index - block * 10];
}

/**
 * Generates sample `index` of the stream `seed`. Deterministic: the same (seed, index, config) always
 * gives the same bytes. `config` should be resolved once by the caller for speed (resolveSceneConfig);
 * a partial config is resolved here.
 */
export function generateScene(seed: number, index: number, config: SceneConfig = {}): Scene {
  const { rgb, width, height, label, box } = generateSceneLayers(seed, index, config);
  return { rgb, width, height, label, box };
}

/** A scene with the coverage masks it was composed from (row-major `size * size`, values 0-1). */
export interface SceneLayers extends Scene {
  /** Coverage of the digit's strokes (before blur and noise); the box is the extent of values >= 0.5. */
  ink: Float32Array;
  /** Coverage of the clutter fragments. */
  clutter: Float32Array;
}

/** `generateScene` plus its masks (for tests and for inspecting the generator). Same bytes as generateScene. */
export function generateSceneLayers(seed: number, index: number, config: SceneConfig = {}): SceneLayers {
  if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(index) || index < 0) {
    throw new ConfigError(`seed and index must be integers (index >= 0), got seed ${seed}, index ${index}`);
  }
  const c = resolveSceneConfig(config);
  const size = c.size;
  const rng = createRng(seed, index);
  const label = sceneLabel(seed, index);
  const warp = perspectiveMap(rng, size, c.perspective);

  // The digit: height, stroke width, then a centre that keeps its unwarped extent inside the canvas.
  const heightPx = rng.uniform(c.digitScale[0], c.digitScale[1]) * size;
  const radius = Math.max(0.7, (rng.uniform(0.07, 0.14) * heightPx) / 2);
  const half = heightPx / 2 + radius + 1;
  const cx = rng.uniform(half * 0.8, size - half * 0.8);
  const cy = rng.uniform(half, size - half);
  const target = new Float32Array(size * size);
  strokeInto(target, size, layoutGlyph(label, rng, heightPx, cx, cy, warp), radius);

  // Clutter: windows cut from other digits of similar size, anywhere in the canvas (as cluttered MNIST).
  const clutter = new Float32Array(size * size);
  const fragments = c.clutter[0] + rng.int(c.clutter[1] - c.clutter[0] + 1);
  for (let f = 0; f < fragments; f++) {
    const h = rng.uniform(c.digitScale[0], c.digitScale[1]) * size;
    const fw = Math.max(2, Math.round(rng.uniform(0.3, 0.5) * h));
    const fh = Math.max(2, Math.round(rng.uniform(0.3, 0.5) * h));
    const dx0 = rng.int(Math.max(1, size - fw));
    const dy0 = rng.int(Math.max(1, size - fh));
    // Place the source digit so that a random window of it lands on [dx0, dx0+fw) x [dy0, dy0+fh).
    const ox = dx0 + fw / 2 + rng.uniform(-0.3, 0.3) * h;
    const oy = dy0 + fh / 2 + rng.uniform(-0.3, 0.3) * h;
    const r = Math.max(0.7, (rng.uniform(0.07, 0.14) * h) / 2);
    const lines = layoutGlyph(rng.int(10), rng, h, ox, oy, (p) => p);
    strokeInto(clutter, size, lines, r, [dx0, dy0, Math.min(size, dx0 + fw), Math.min(size, dy0 + fh)]);
  }

  // Colours: a two-colour gradient background, a contrasting ink, clutter in the same or another ink.
  const bgA = randomColour(rng);
  const bgB = rng.chance(0.5) ? bgA.map((v) => Math.max(0, Math.min(255, v + rng.uniform(-60, 60)))) : randomColour(rng);
  const bgLuma = (luma(bgA) + luma(bgB)) / 2;
  const ink = contrastingColour(rng, bgLuma, 90);
  const clutterInk = rng.chance(0.7) ? ink : contrastingColour(rng, bgLuma, 70);
  const gx = rng.uniform(-1, 1);
  const gy = rng.uniform(-1, 1);
  const gn = Math.abs(gx) + Math.abs(gy) || 1;

  const img = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const j = y * size + x;
      const t = 0.5 + (((x / size - 0.5) * gx + (y / size - 0.5) * gy) / gn) * 1.0;
      const ta = target[j];
      const ca = clutter[j];
      const a = ta >= ca ? ta : ca;
      const col = ta >= ca ? ink : clutterInk;
      for (let ch = 0; ch < 3; ch++) {
        const bg = bgA[ch] * (1 - t) + bgB[ch] * t;
        img[j * 3 + ch] = bg * (1 - a) + col[ch] * a;
      }
    }
  }

  // Camera: blur, contrast and brightness, sensor noise.
  if (rng.chance(c.blurProbability)) blurRgb(img, size, rng.uniform(0.4, 1.1) * (size / 56));
  const contrast = rng.uniform(0.65, 1.2);
  const brightness = rng.uniform(-35, 35);
  const noise = rng.uniform(c.noise[0], c.noise[1]);
  const rgb = new Uint8Array(size * size * 3);
  // Noise: a sum of three uniforms (variance 1 after scaling), close to Gaussian and far cheaper than
  // Box-Muller per value, which dominated the generator's time.
  const next = rng.next;
  for (let i = 0; i < img.length; i++) {
    const n = noise > 0 ? noise * 2 * (next() + next() + next() - 1.5) : 0;
    const v = (img[i] - 128) * contrast + 128 + brightness + n;
    rgb[i] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
  }

  // The true box: the extent of the digit's ink (alpha >= 0.5), before blur.
  let x1 = size;
  let y1 = size;
  let x2 = 0;
  let y2 = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (target[y * size + x] >= 0.5) {
        if (x < x1) x1 = x;
        if (x + 1 > x2) x2 = x + 1;
        if (y < y1) y1 = y;
        if (y + 1 > y2) y2 = y + 1;
      }
    }
  }
  if (x2 <= x1) {
    // Degenerate stroke (cannot happen with the default ranges): fall back to the centre pixel.
    [x1, y1, x2, y2] = [Math.floor(cx), Math.floor(cy), Math.floor(cx) + 1, Math.floor(cy) + 1];
  }
  return { rgb, width: size, height: size, label, box: [x1, y1, x2, y2], ink: target, clutter };
}

/** Samples `start .. start + count - 1` of stream `seed`, lazily. */
export function* generateScenes(seed: number, count: number, config: SceneConfig = {}, start = 0): Generator<Scene> {
  const resolved = resolveSceneConfig(config);
  for (let i = 0; i < count; i++) yield generateScene(seed, start + i, resolved);
}

/**
 * Fills a training batch: `images` gets `count` scenes as float32 NHWC, each value
 * `(pixel * scale - mean) / std` (length `count * size * size * 3`), `labels` their classes.
 */
export function fillBatch(
  seed: number,
  start: number,
  count: number,
  config: SceneConfig,
  images: Float32Array,
  labels: Int32Array,
  normalize: { scale: number; mean: readonly number[]; std: readonly number[] } = { scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1] },
): void {
  const resolved = resolveSceneConfig(config);
  const n = resolved.size * resolved.size * 3;
  if (images.length < count * n || labels.length < count) {
    throw new ConfigError(`fillBatch buffers too small for ${count} scenes of ${n} values`);
  }
  for (let i = 0; i < count; i++) {
    const s = generateScene(seed, start + i, resolved);
    const off = i * n;
    const { scale, mean, std } = normalize;
    for (let j = 0; j < n; j += 3) {
      images[off + j] = (s.rgb[j] * scale - mean[0]) / std[0];
      images[off + j + 1] = (s.rgb[j + 1] * scale - mean[1]) / std[1];
      images[off + j + 2] = (s.rgb[j + 2] * scale - mean[2]) / std[2];
    }
    labels[i] = s.label;
  }
}
