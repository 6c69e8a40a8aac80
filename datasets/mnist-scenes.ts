/**
 * Scenes made of real handwritten digits (the `mnist` package, see mnist.ts), beside the procedural
 * generator of scenes.ts. Recipes:
 * - `dm100`: DeepMind's cluttered MNIST exactly (the GAP paper's seed experiment): a 100x100 black
 *   canvas, the 28x28 digit added at a random position, 8 distractor patches of 8x8 cut at random from
 *   other random digits of the same split and added at random positions, the sum clamped to [0, 1];
 * - `stn60`: the Spatial Transformer paper's variant: 60x60 with 4 distractors of 6x6;
 * - `webcam`: a digit on paper as a camera sees it (internal/webcam.ts);
 * - `none`: no digit at all (class `no digit`): distractor patches on black, paper with fragments and
 *   strokes, or textures and gradients.
 * Each scene is a pure function of (split, recipe, seed, index): labels are balanced as in scenes.ts
 * (each block of ten indices holds each digit once). The box is the digit's tight ink box (cells of its
 * own layer >= 0.5, pixel edges), null without a digit.
 */
import { ConfigError, createRng, type Rng } from '../common/index.ts';
import { DIGIT_LABELS, sceneLabel } from './scenes.ts';
import { MNIST_SIDE, type MnistSample, type MnistSampler } from './mnist.ts';
import { maskBox, resizeRgbBilinear, type Box4 } from './internal/raster.ts';
import { INK_THRESHOLD, camera, paintPaper, paintWebcamScene } from './internal/webcam.ts';
import { MNIST_RECIPES, type MnistRecipe } from './names.ts';

export { MNIST_RECIPES, type MnistRecipe };

/** Name of the 11th class, the answer for a frame without a digit. */
export const NO_DIGIT_LABEL = 'no digit';
/** Class index of `no digit`. */
export const NO_DIGIT = 10;
/** The embedded model's classes: `zero` ... `nine`, then `no digit`. */
export const CLASS_LABELS: readonly string[] = Object.freeze([...DIGIT_LABELS, NO_DIGIT_LABEL]);

/** The cluttered recipes' constants: canvas side, distractor count and distractor side (pixels). */
export const CLUTTERED_RECIPES = Object.freeze({
  dm100: Object.freeze({ size: 100, distractors: 8, patch: 8 }),
  stn60: Object.freeze({ size: 60, distractors: 4, patch: 6 }),
});

/** One real-digit scene. */
export interface MnistScene {
  /** Packed RGB, `height * width * 3` bytes. */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** 0-9 for a digit, NO_DIGIT (10) for none. */
  label: number;
  /** The digit's tight ink box `[x1, y1, x2, y2]` (pixel edges); null without a digit. */
  box: Box4 | null;
  recipe: MnistRecipe;
  /** Every MNIST digit the scene used (class and index in its file): the digit first, then clutter sources. */
  sources: Array<{ label: number; index: number }>;
}

/** A distractor patch of a cluttered scene: source digit, crop corner in it, paste corner on the canvas. */
export interface Distractor {
  label: number;
  index: number;
  sx: number;
  sy: number;
  dx: number;
  dy: number;
  side: number;
}

/** A cluttered scene with what it was made of (for tests): the digit's own layer and each distractor. */
export interface ClutteredLayers extends MnistScene {
  /** The digit alone on the canvas (values 0-1, `width * height`), zeros for `none`. */
  digit: Float32Array;
  distractors: Distractor[];
  /** The clamped sum, values 0-1, before quantization to bytes. */
  canvas: Float32Array;
}

/** Per-recipe salt of the random stream, so recipes with the same seed draw unrelated scenes. */
const SALT: Record<MnistRecipe, number> = { dm100: 0xd3100, stn60: 0x57060, webcam: 0xcae, none: 0x9090 };

/** Options of `generateMnistScene`. */
export interface MnistSceneOptions {
  /** Side of `webcam` and textured `none` scenes in pixels (16-1024). Default 100. */
  size?: number;
}

/**
 * Scene `index` of stream `seed` of `recipe`, drawn from `sampler`'s split only. Deterministic.
 * @throws ConfigError on an unknown recipe or a bad seed, index or size.
 */
export function generateMnistScene(sampler: MnistSampler, recipe: MnistRecipe, seed: number, index: number, options: MnistSceneOptions = {}): MnistScene {
  if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(index) || index < 0) {
    throw new ConfigError(`seed and index must be integers (index >= 0), got seed ${seed}, index ${index}`);
  }
  const size = options.size ?? 100;
  if (!Number.isInteger(size) || size < 16 || size > 1024) throw new ConfigError(`size must be an integer in [16, 1024], got ${size}`);
  switch (recipe) {
    case 'dm100':
    case 'stn60': {
      const { digit: _d, distractors: _x, canvas: _c, ...scene } = generateClutteredLayers(sampler, recipe, seed, index);
      return scene;
    }
    case 'webcam': {
      const { digit: _d, clutter: _c, fragments: _f, ...scene } = generateWebcamLayers(sampler, seed, index, size);
      return scene;
    }
    case 'none':
      return noDigitScene(sampler, seed, index, size);
    default:
      throw new ConfigError(`recipe must be one of ${MNIST_RECIPES.join(', ')}, got '${String(recipe)}'`);
  }
}

const ids = (s: MnistSample): { label: number; index: number } => ({ label: s.label, index: s.index });

/** A `dm100` or `stn60` scene with its layers (DeepMind's recipe; see the module doc). */
export function generateClutteredLayers(sampler: MnistSampler, recipe: 'dm100' | 'stn60', seed: number, index: number): ClutteredLayers {
  const rng = createRng(seed, index, SALT[recipe]);
  const label = sceneLabel(seed, index);
  return cluttered(rng, sampler, recipe, label, CLUTTERED_RECIPES[recipe]);
}

/** A webcam scene with what it was made of (for tests). */
export interface WebcamLayers extends MnistScene {
  /** The digit's coverage alone (0-1, `width * height`). */
  digit: Float32Array;
  /** The clutter's coverage (other digits' fragments and strokes), 0-1. */
  clutter: Float32Array;
  /** The canvas window each fragment of another digit was drawn in, `[x1, y1, x2, y2]`. */
  fragments: Box4[];
}

/** A `webcam` scene of side `size` with its layers (see internal/webcam.ts). */
export function generateWebcamLayers(sampler: MnistSampler, seed: number, index: number, size = 100): WebcamLayers {
  const label = sceneLabel(seed, index);
  const s = paintWebcamScene(createRng(seed, index, SALT.webcam), sampler, size, label);
  const { digit, clutter, fragments } = s;
  return { rgb: s.rgb, width: size, height: size, label, box: s.box, recipe: 'webcam', sources: s.sources.map(ids), digit, clutter, fragments };
}

/** The cluttered recipe on a black canvas of `spec.size`, with the digit of class `label` (none when null). */
function cluttered(
  rng: Rng,
  sampler: MnistSampler,
  recipe: MnistRecipe,
  label: number | null,
  spec: { size: number; distractors: number; patch: number },
): ClutteredLayers {
  const { size, distractors: count, patch } = spec;
  const digit = new Float32Array(size * size);
  const canvas = new Float32Array(size * size);
  const sources: Array<{ label: number; index: number }> = [];
  if (label !== null) {
    const d = sampler.pick(rng, label);
    sources.push(ids(d));
    const x0 = rng.int(size - MNIST_SIDE + 1);
    const y0 = rng.int(size - MNIST_SIDE + 1);
    for (let y = 0; y < MNIST_SIDE; y++) {
      for (let x = 0; x < MNIST_SIDE; x++) digit[(y0 + y) * size + x0 + x] = d.pixels[y * MNIST_SIDE + x];
    }
    canvas.set(digit);
  }
  const distractors: Distractor[] = [];
  for (let k = 0; k < count; k++) {
    const src = sampler.pick(rng);
    sources.push(ids(src));
    const p: Distractor = {
      label: src.label,
      index: src.index,
      sx: rng.int(MNIST_SIDE - patch + 1),
      sy: rng.int(MNIST_SIDE - patch + 1),
      dx: rng.int(size - patch + 1),
      dy: rng.int(size - patch + 1),
      side: patch,
    };
    distractors.push(p);
    for (let y = 0; y < patch; y++) {
      for (let x = 0; x < patch; x++) canvas[(p.dy + y) * size + p.dx + x] += src.pixels[(p.sy + y) * MNIST_SIDE + p.sx + x];
    }
  }
  const rgb = new Uint8Array(size * size * 3);
  for (let j = 0; j < canvas.length; j++) {
    const v = Math.min(1, Math.max(0, canvas[j]));
    canvas[j] = v;
    rgb[j * 3] = rgb[j * 3 + 1] = rgb[j * 3 + 2] = Math.round(v * 255);
  }
  const box = label === null ? null : maskBox(digit, size, size, INK_THRESHOLD);
  return { rgb, width: size, height: size, label: label ?? NO_DIGIT, box, recipe, sources, digit, distractors, canvas };
}

/**
 * A scene without a digit, one of three kinds: 8-16 distractor patches on black (dm100 or stn60 sized),
 * paper with digit fragments and strokes (the webcam look), or textures and gradients with strokes.
 */
function noDigitScene(sampler: MnistSampler, seed: number, index: number, size: number): MnistScene {
  const rng = createRng(seed, index, SALT.none);
  const kind = rng.int(3);
  if (kind === 0) {
    const small = rng.chance(0.4);
    const spec = small ? { size: 60, distractors: 4 + rng.int(5), patch: 6 } : { size: 100, distractors: 8 + rng.int(9), patch: 8 };
    const { digit: _d, distractors: _x, canvas: _c, ...scene } = cluttered(rng, sampler, 'none', null, spec);
    return scene;
  }
  if (kind === 1) {
    const s = paintWebcamScene(rng, sampler, size, null);
    return { rgb: s.rgb, width: size, height: size, label: NO_DIGIT, box: null, recipe: 'none', sources: s.sources.map(ids) };
  }
  const empty = new Float32Array(size * size);
  const rgb = camera(rng, size, paintPaper(rng, size, empty, empty, 1));
  return { rgb, width: size, height: size, label: NO_DIGIT, box: null, recipe: 'none', sources: [] };
}

/**
 * Scene `index` of `recipe` resized to `size x size` with the engines' bilinear rule, normalized
 * `(pixel * scale - mean) / std` into `images` at float offset `offset`. Returns the scene (its box in
 * the scene's own pixels).
 */
export function fillMnistSample(
  sampler: MnistSampler,
  recipe: MnistRecipe,
  seed: number,
  index: number,
  size: number,
  images: Float32Array,
  offset: number,
  normalize: { scale: number; mean: readonly number[]; std: readonly number[] },
): MnistScene {
  const s = generateMnistScene(sampler, recipe, seed, index, { size });
  const px = s.width === size && s.height === size ? s.rgb : resizeRgbBilinear(s.rgb, s.width, s.height, size, size);
  const { scale, mean, std } = normalize;
  for (let j = 0; j < size * size * 3; j += 3) {
    images[offset + j] = (px[j] * scale - mean[0]) / std[0];
    images[offset + j + 1] = (px[j + 1] * scale - mean[1]) / std[1];
    images[offset + j + 2] = (px[j + 2] * scale - mean[2]) / std[2];
  }
  return s;
}
