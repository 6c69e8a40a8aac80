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
import { ConfigError, createRng, type Rng } from '../common/index.ts';
import { blurRgb, contrastingColour, layoutGlyph, luma, perspectiveMap, randomColour, strokeInto, type PointMap } from './internal/draw.ts';

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
  // One stream per sample; the steps below draw from it in a fixed order (changing it changes every scene).
  const rng = createRng(seed, index);
  const label = sceneLabel(seed, index);
  const warp = perspectiveMap(rng, size, c.perspective);
  const digit = drawDigit(rng, c, label, warp);
  const clutter = drawClutter(rng, c);
  const img = paint(size, digit.ink, clutter, pickColours(rng));
  const rgb = applyCamera(rng, c, img);
  const box = inkBox(digit.ink, size) ?? centreBox(digit.cx, digit.cy);
  return { rgb, width: size, height: size, label, box, ink: digit.ink, clutter };
}

type Box4 = [number, number, number, number];

/** The digit's coverage mask: height, stroke width, then a centre that keeps its unwarped extent inside the canvas. */
function drawDigit(rng: Rng, c: Required<SceneConfig>, label: number, warp: PointMap): { ink: Float32Array; cx: number; cy: number } {
  const size = c.size;
  const heightPx = rng.uniform(c.digitScale[0], c.digitScale[1]) * size;
  const radius = Math.max(0.7, (rng.uniform(0.07, 0.14) * heightPx) / 2);
  const half = heightPx / 2 + radius + 1;
  const cx = rng.uniform(half * 0.8, size - half * 0.8);
  const cy = rng.uniform(half, size - half);
  const ink = new Float32Array(size * size);
  strokeInto(ink, size, layoutGlyph(label, rng, heightPx, cx, cy, warp), radius);
  return { ink, cx, cy };
}

/** Clutter coverage: windows cut from other digits of similar size, anywhere in the canvas (as cluttered MNIST). */
function drawClutter(rng: Rng, c: Required<SceneConfig>): Float32Array {
  const size = c.size;
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
  return clutter;
}

/** Background gradient ends, inks and gradient direction of one scene. */
interface Palette {
  bgA: number[];
  bgB: number[];
  ink: number[];
  clutterInk: number[];
  gx: number;
  gy: number;
}

/** A two-colour gradient background, a contrasting ink, clutter in the same or another ink. */
function pickColours(rng: Rng): Palette {
  const bgA = randomColour(rng);
  const bgB = rng.chance(0.5) ? bgA.map((v) => Math.max(0, Math.min(255, v + rng.uniform(-60, 60)))) : randomColour(rng);
  const bgLuma = (luma(bgA) + luma(bgB)) / 2;
  const ink = contrastingColour(rng, bgLuma, 90);
  const clutterInk = rng.chance(0.7) ? ink : contrastingColour(rng, bgLuma, 70);
  const gx = rng.uniform(-1, 1);
  const gy = rng.uniform(-1, 1);
  return { bgA, bgB, ink, clutterInk, gx, gy };
}

/** Composites digit and clutter over the gradient background: float RGB, `size * size * 3` values. */
function paint(size: number, target: Float32Array, clutter: Float32Array, p: Palette): Float32Array {
  const { bgA, bgB, ink, clutterInk, gx, gy } = p;
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
  return img;
}

/** Camera effects on `img` (blurred in place): blur, contrast and brightness, sensor noise; returns the bytes. */
function applyCamera(rng: Rng, c: Required<SceneConfig>, img: Float32Array): Uint8Array {
  const size = c.size;
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
  return rgb;
}

/** The true box: the extent of the digit's ink (alpha >= 0.5, before blur), or undefined when there is none. */
function inkBox(target: Float32Array, size: number): Box4 | undefined {
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
  return x2 <= x1 ? undefined : [x1, y1, x2, y2];
}

/** Degenerate stroke (cannot happen with the default ranges): the pixel under the digit's centre. */
function centreBox(cx: number, cy: number): Box4 {
  return [Math.floor(cx), Math.floor(cy), Math.floor(cx) + 1, Math.floor(cy) + 1];
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
