/**
 * The webcam-like real-digit scene (mnist-scenes.ts, recipes `webcam` and part of `none`): a real MNIST
 * digit drawn on paper-like backgrounds as a camera would see it: dark ink on light paper or light on
 * dark, colour casts, gradients and textures, a mild perspective, rotation, digit heights of 15-70% of
 * the frame, fragments of other digits and plain strokes as clutter, then blur, noise and JPEG artefacts.
 * Clutter keeps clear of the digit and fragments come from smaller digits, so the label can be read off
 * every scene (see `drawClutter`).
 */
import type { Rng } from '../../common/index.ts';
import { blurRgb, perspectiveMap, strokeInto, type PointMap, type Pt } from './draw.ts';
import { jpegArtefacts, maskBox, noiseSample, sampleBilinear, type Box4 } from './raster.ts';
import { MNIST_SIDE, type MnistSample, type MnistSampler } from '../mnist.ts';

/** Ink threshold of an MNIST digit's coverage; its tight box is the extent of the cells at or above it. */
export const INK_THRESHOLD = 0.5;

export interface WebcamScene {
  rgb: Uint8Array;
  size: number;
  /** The digit's ink box, null without a digit. */
  box: Box4 | null;
  /** MNIST digits used (the main digit first, then fragments). */
  sources: MnistSample[];
  /** The digit's coverage alone (0-1, `size * size`), zeros without a digit. */
  digit: Float32Array;
  /** The clutter's coverage (fragments and strokes), 0-1. */
  clutter: Float32Array;
  /** The canvas window each fragment was drawn in, `[x1, y1, x2, y2]`. */
  fragments: Box4[];
}

/** Where and how large a digit lands: centre, height fraction of the canvas, x stretch, rotation. */
interface Placement {
  cx: number;
  cy: number;
  scale: number;
  stretch: number;
  angle: number;
}

/** The 28x28 digit's own ink box (cells > 0.1), as `[x1, y1, x2, y2]`. */
function digitExtent(pixels: Float32Array): Box4 {
  return maskBox(pixels, MNIST_SIDE, MNIST_SIDE, 0.1) ?? [0, 0, MNIST_SIDE, MNIST_SIDE];
}

/** A random placement of a digit whose ink is `heightFraction` of the canvas, kept inside it. */
function place(rng: Rng, size: number, extent: Box4, heightFraction: number): Placement {
  const inkH = Math.max(1, extent[3] - extent[1]);
  const inkW = Math.max(1, extent[2] - extent[0]);
  const scale = (heightFraction * size) / inkH;
  const stretch = rng.uniform(0.85, 1.15);
  const angle = rng.uniform(-0.26, 0.26);
  const half = 0.5 * Math.max(inkH * scale, inkW * scale * stretch) * 1.12 + 1;
  const pick = (): number => (half * 2 >= size ? size / 2 : rng.uniform(half, size - half));
  return { cx: pick(), cy: pick(), scale, stretch, angle };
}

/**
 * Renders `digit` into `into` (max of coverages) through the canvas map `warp`, only inside `clip`
 * (canvas pixels) when given.
 */
function renderDigit(into: Float32Array, size: number, digit: Float32Array, at: Placement, warp: PointMap, clip?: Box4): void {
  const extent = digitExtent(digit);
  const icx = (extent[0] + extent[2]) / 2;
  const icy = (extent[1] + extent[3]) / 2;
  const cos = Math.cos(at.angle);
  const sin = Math.sin(at.angle);
  const [x1, y1, x2, y2] = clip ?? [0, 0, size, size];
  for (let y = y1; y < y2; y++) {
    for (let x = x1; x < x2; x++) {
      const [qx, qy] = warp([x + 0.5, y + 0.5]);
      const dx = qx - at.cx;
      const dy = qy - at.cy;
      const u = (cos * dx + sin * dy) / (at.scale * at.stretch) + icx;
      const v = (-sin * dx + cos * dy) / at.scale + icy;
      if (u < -1 || v < -1 || u > MNIST_SIDE + 1 || v > MNIST_SIDE + 1) continue;
      const a = sampleBilinear(digit, MNIST_SIDE, MNIST_SIDE, u, v);
      const j = y * size + x;
      if (a > into[j]) into[j] = a;
    }
  }
}

/**
 * Where clutter may not go in a scene with a digit: the digit's visible extent grown by a margin, and how
 * tall the digit is (fraction of the canvas). Clutter drawn over the digit, or a fragment of a larger
 * digit beside a small one, makes scenes whose label nobody could read off the image.
 */
interface KeepOut {
  box: Box4;
  heightFraction: number;
}

/** Placements tried per clutter item before it is left out. */
const CLUTTER_TRIES = 8;

const intersects = (a: Box4, b: Box4): boolean => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];

/** The digit's extent (coverage >= 0.05) grown by 15% of its height (at least 2 pixels), inside the canvas. */
function keepOutOf(digit: Float32Array, size: number, heightFraction: number): KeepOut | null {
  const e = maskBox(digit, size, size, 0.05);
  if (e === null) return null;
  const m = Math.max(2, Math.round(0.15 * (e[3] - e[1])));
  return { box: [Math.max(0, e[0] - m), Math.max(0, e[1] - m), Math.min(size, e[2] + m), Math.min(size, e[3] + m)], heightFraction };
}

/**
 * Fragments of other digits (a window of 25-50% of the digit's side each) and plain strokes, into
 * `clutter`. With `keep` (a scene with a digit) every item stays outside `keep.box` (up to CLUTTER_TRIES
 * placements, then it is left out) and fragments come from digits 50-100% of the digit's height, so the
 * digit is the largest digit-like shape and no clutter touches it. Without it, as for `none` scenes,
 * fragments are 15-70% of the frame and go anywhere.
 */
function drawClutter(
  rng: Rng,
  sampler: MnistSampler,
  size: number,
  clutter: Float32Array,
  warp: PointMap,
  counts: [number, number],
  sources: MnistSample[],
  windows: Box4[],
  keep: KeepOut | null,
): void {
  const fragments = rng.int(counts[0] + 1);
  for (let f = 0; f < fragments; f++) {
    const d = sampler.pick(rng);
    for (let t = 0; t < CLUTTER_TRIES; t++) {
      const at = place(rng, size, digitExtent(d.pixels), keep ? keep.heightFraction * rng.uniform(0.5, 1) : rng.uniform(0.15, 0.7));
      const side = at.scale * 20;
      const w = Math.max(2, Math.round(side * rng.uniform(0.25, 0.5)));
      const h = Math.max(2, Math.round(side * rng.uniform(0.25, 0.5)));
      const x1 = Math.max(0, Math.round(at.cx + rng.uniform(-0.4, 0.4) * side - w / 2));
      const y1 = Math.max(0, Math.round(at.cy + rng.uniform(-0.4, 0.4) * side - h / 2));
      const window: Box4 = [x1, y1, Math.min(size, x1 + w), Math.min(size, y1 + h)];
      if (keep && intersects(window, keep.box)) continue;
      sources.push(d);
      windows.push(window);
      renderDigit(clutter, size, d.pixels, at, warp, window);
      break;
    }
  }
  const strokes = rng.int(counts[1] + 1);
  // Strokes are drawn into `probe` inside the keep-out box first; any coverage there rejects the stroke.
  const probe = keep ? new Float32Array(size * size) : null;
  for (let s = 0; s < strokes; s++) {
    for (let t = 0; t < CLUTTER_TRIES; t++) {
      const points: Pt[] = [];
      const n = 2 + rng.int(3);
      let p: Pt = [rng.uniform(0, size), rng.uniform(0, size)];
      for (let i = 0; i < n; i++) {
        points.push(p);
        p = [p[0] + rng.uniform(-0.35, 0.35) * size, p[1] + rng.uniform(-0.35, 0.35) * size];
      }
      const radius = Math.max(0.5, rng.uniform(0.4, 2.2) * (size / 100));
      if (keep && probe && touches(probe, size, [points], radius, keep.box)) continue;
      strokeInto(clutter, size, [points], radius);
      break;
    }
  }
}

/** Whether a stroke would cover any pixel of `box`; leaves `probe` (scratch, zeros inside `box`) zeroed. */
function touches(probe: Float32Array, size: number, lines: Pt[][], radius: number, box: Box4): boolean {
  strokeInto(probe, size, lines, radius, box);
  let hit = false;
  for (let y = box[1]; y < box[3]; y++) {
    for (let x = box[0]; x < box[2]; x++) {
      const j = y * size + x;
      if (probe[j] > 0) {
        hit = true;
        probe[j] = 0;
      }
    }
  }
  return hit;
}

/** Paper and ink colours with a colour cast: dark ink on light paper (70%) or light ink on dark. */
function palette(rng: Rng): { paperA: number[]; paperB: number[]; ink: number[]; clutterInk: number[] } {
  const light = rng.chance(0.7);
  const cast = [rng.uniform(0.75, 1.25), rng.uniform(0.75, 1.25), rng.uniform(0.75, 1.25)];
  const grey = (lo: number, hi: number): number[] => {
    const g = rng.uniform(lo, hi);
    return cast.map((k) => Math.min(255, g * k + rng.uniform(-12, 12)));
  };
  const paperA = light ? grey(140, 250) : grey(5, 80);
  const paperB = paperA.map((v) => Math.max(0, Math.min(255, v + rng.uniform(-45, 45))));
  const ink = light ? grey(0, 80) : grey(170, 255);
  const clutterInk = rng.chance(0.6) ? ink : light ? grey(0, 110) : grey(140, 255);
  return { paperA, paperB, ink, clutterInk };
}

/** Background (gradient, optional stripes texture) with digit and clutter composited: float RGB 0-255. */
export function paintPaper(rng: Rng, size: number, digit: Float32Array, clutter: Float32Array, textureProbability: number): Float32Array {
  const { paperA, paperB, ink, clutterInk } = palette(rng);
  const gx = rng.uniform(-1, 1);
  const gy = rng.uniform(-1, 1);
  const gn = Math.abs(gx) + Math.abs(gy) || 1;
  const textured = rng.chance(textureProbability);
  const amp = textured ? rng.uniform(6, 40) : 0;
  const freq = rng.uniform(0.05, 0.6);
  const theta = rng.uniform(0, Math.PI);
  const checker = rng.chance(0.3);
  const img = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const j = y * size + x;
      const t = 0.5 + ((x / size - 0.5) * gx + (y / size - 0.5) * gy) / gn;
      const along = (x * Math.cos(theta) + y * Math.sin(theta)) * freq;
      const tex = amp === 0 ? 0 : checker ? (Math.sin(x * freq) * Math.sin(y * freq) > 0 ? amp : -amp) : amp * Math.sin(along);
      const a = Math.max(digit[j], clutter[j]);
      const col = digit[j] >= clutter[j] ? ink : clutterInk;
      for (let c = 0; c < 3; c++) img[j * 3 + c] = (paperA[c] * (1 - t) + paperB[c] * t + tex) * (1 - a) + col[c] * a;
    }
  }
  return img;
}

/** Camera effects: blur, contrast and brightness, sensor noise, JPEG artefacts; returns the bytes. */
export function camera(rng: Rng, size: number, img: Float32Array): Uint8Array {
  if (rng.chance(0.6)) blurRgb(img, size, rng.uniform(0.3, 1.3) * (size / 100));
  const contrast = rng.uniform(0.7, 1.15);
  const brightness = rng.uniform(-30, 30);
  const noise = rng.uniform(0, 12);
  for (let i = 0; i < img.length; i++) img[i] = (img[i] - 128) * contrast + 128 + brightness + noise * noiseSample(rng);
  if (rng.chance(0.6)) jpegArtefacts(img, size, size, 15 + rng.int(71));
  const rgb = new Uint8Array(img.length);
  for (let i = 0; i < img.length; i++) rgb[i] = img[i] < 0 ? 0 : img[i] > 255 ? 255 : Math.round(img[i]);
  return rgb;
}

/**
 * A webcam-like scene of side `size`: the digit of class `label` (none when null) with clutter. Draws
 * from `rng` in a fixed order, so (rng state, sampler) fixes the bytes.
 */
export function paintWebcamScene(rng: Rng, sampler: MnistSampler, size: number, label: number | null): WebcamScene {
  const warp = perspectiveMap(rng, size, 0.08);
  const digit = new Float32Array(size * size);
  const sources: MnistSample[] = [];
  let heightFraction = 0;
  if (label !== null) {
    const d = sampler.pick(rng, label);
    sources.push(d);
    heightFraction = rng.uniform(0.15, 0.7);
    renderDigit(digit, size, d.pixels, place(rng, size, digitExtent(d.pixels), heightFraction), warp);
  }
  const clutter = new Float32Array(size * size);
  const fragments: Box4[] = [];
  const keep = label === null ? null : keepOutOf(digit, size, heightFraction);
  drawClutter(rng, sampler, size, clutter, warp, label === null ? [5, 4] : [3, 3], sources, fragments, keep);
  const img = paintPaper(rng, size, digit, clutter, label === null ? 0.5 : 0.25);
  const rgb = camera(rng, size, img);
  return { rgb, size, box: label === null ? null : maskBox(digit, size, size, INK_THRESHOLD), sources, digit, clutter, fragments };
}
