/**
 * Preprocessing shared by both engines: which numbers a model wants (`resolvePreprocess`) and how a frame
 * is fitted to the model input (`fitGeometry`). Pure functions, no tensors, so the TF.js and ONNX engines
 * and the box code all read the same definitions.
 *
 * What an engine does with a `Preprocess` (both engines must do exactly this, in this order):
 * 1. Fit the RGB uint8 frame to `inputSize` as `fitGeometry` describes: resize to the content size with
 *    `resizeFilter` (default `triangle`, antialiased as PIL and torchvision: the tap tables of
 *    models/internal/resize-taps.ts, columns then rows; `bilinear`: half-pixel 2x2 taps, TF
 *    `resizeBilinear(halfPixelCenters=true)`, ONNX `Resize` linear `half_pixel`), then, for
 *    `letterbox`, pad to `inputSize` with pixel value 0 (black, before normalization), the content centred
 *    (odd padding: the extra pixel goes to the bottom/right). A frame already at the content size is not
 *    resampled.
 * 2. Reorder channels to `channelOrder` (`bgr` reverses the RGB frame's channels).
 * 3. Normalize per channel, in the model's channel order: `x = (pixel * scale - mean[c]) / std[c]`.
 * 4. Transpose to NCHW when `layout` is `nchw`.
 */
import { ConfigError, InputError } from '../common/errors.ts';
import type { ModelFileConfig, NormalizationPreset, Preprocess, ResizeFilter, ResizeMode } from './types.ts';

/** Largest accepted input side in pixels (the same bound as `camstream.json` parsing). */
export const MAX_INPUT_SIDE = 8192;

/** Pixel value of letterbox padding, before normalization (black). */
export const LETTERBOX_PAD_VALUE = 0;

/**
 * Defaults for what neither the model nor `camstream.json` says: pixels scaled to [0, 1]
 * (scale 1/255, mean 0, std 1), RGB, frames stretched to the input size. Frozen.
 */
export const DEFAULT_PREPROCESS: Readonly<{
  scale: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  channelOrder: 'rgb' | 'bgr';
  resize: ResizeMode;
  resizeFilter: ResizeFilter;
}> = Object.freeze({
  scale: 1 / 255,
  mean: Object.freeze([0, 0, 0] as const),
  std: Object.freeze([1, 1, 1] as const),
  channelOrder: 'rgb' as const,
  resize: 'stretch' as const,
  resizeFilter: 'triangle' as const,
});

/** Resampling filters, default first. */
export const RESIZE_FILTERS: readonly ResizeFilter[] = Object.freeze(['triangle', 'area', 'bilinear'] as const);

type Normalization = Readonly<{ scale: number; mean: readonly [number, number, number]; std: readonly [number, number, number] }>;

const IMAGENET: Normalization = Object.freeze({
  scale: 1 / 255,
  mean: Object.freeze([0.485, 0.456, 0.406] as const),
  std: Object.freeze([0.229, 0.224, 0.225] as const),
});

/**
 * The named normalizations, `x = (pixel * scale - mean) / std` per channel (in the model's channel order):
 * - `imagenet`, `torchvision`: scale 1/255, mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225]
 *   (torchvision's and timm's ImageNet models);
 * - `tf`: scale 1/127.5, mean 1, std 1, that is x / 127.5 - 1 in [-1, 1] (Keras `mode='tf'`: MobileNet,
 *   Inception, EfficientNetV2 exports);
 * - `raw`: scale 1, mean 0, std 1 (pixels 0-255; Caffe-style models then set their own `mean`).
 * Frozen.
 */
export const NORMALIZATION_PRESETS: Readonly<Record<NormalizationPreset, Normalization>> = Object.freeze({
  imagenet: IMAGENET,
  torchvision: IMAGENET,
  tf: Object.freeze({ scale: 1 / 127.5, mean: Object.freeze([1, 1, 1] as const), std: Object.freeze([1, 1, 1] as const) }),
  raw: Object.freeze({ scale: 1, mean: Object.freeze([0, 0, 0] as const), std: Object.freeze([1, 1, 1] as const) }),
});

/** Preset names, for options and messages. */
export const PRESET_NAMES = Object.freeze(Object.keys(NORMALIZATION_PRESETS) as NormalizationPreset[]);

const round = (v: number): string => String(Number(v.toPrecision(6)));

/**
 * One line on what a model's pixels go through, for start-up lines and records:
 * `imagenet: (x/255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225], rgb, triangle resize, stretch`.
 */
export function describePreprocess(pre: Preprocess): string {
  const s = pre.scale === 1 ? 'x' : Number.isInteger(1 / pre.scale) || Number.isInteger(2 / pre.scale) ? `x/${round(1 / pre.scale)}` : `x*${round(pre.scale)}`;
  const m = pre.mean.every((v) => v === 0) ? s : `${s} - [${pre.mean.map(round).join(', ')}]`;
  const formula = pre.std.every((v) => v === 1) ? m : `(${m}) / [${pre.std.map(round).join(', ')}]`;
  return `${pre.normalization}: ${formula}, ${pre.channelOrder}, ${pre.resizeFilter} resize, ${pre.resize}`;
}

/** The normalization fields of records (JSON lines, `image --json`): what ran, for reproducing it. */
export function normalizationRecord(pre: Preprocess): {
  preset: Preprocess['normalization'];
  scale: number;
  mean: number[];
  std: number[];
  channelOrder: 'rgb' | 'bgr';
  resizeFilter: ResizeFilter;
} {
  return {
    preset: pre.normalization,
    scale: pre.scale,
    mean: [...pre.mean],
    std: [...pre.std],
    channelOrder: pre.channelOrder,
    resizeFilter: pre.resizeFilter,
  };
}

/** What an engine learnt from the model file itself. */
export interface DiscoveredInput {
  /** `[height, width]` when the model fixes it; undefined for models taking any size. */
  inputSize?: [number, number];
  /** Layout of the model's input tensor. */
  layout: 'nhwc' | 'nchw';
}

function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function bad(field: string, value: unknown, allowed: string): ConfigError {
  return new ConfigError(`preprocessing field '${field}' has invalid value ${show(value)}; allowed: ${allowed}`);
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function checkSize(field: string, v: unknown): [number, number] {
  if (
    !Array.isArray(v) ||
    v.length !== 2 ||
    !v.every((x) => Number.isInteger(x) && (x as number) >= 1 && (x as number) <= MAX_INPUT_SIDE)
  ) {
    throw bad(field, v, `[height, width], two integers from 1 to ${MAX_INPUT_SIDE}`);
  }
  return [v[0] as number, v[1] as number];
}

function checkTriple(field: string, v: unknown, positive: boolean): [number, number, number] {
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => isFiniteNumber(x) && (!positive || x > 0))) {
    throw bad(field, v, positive ? 'three finite numbers > 0' : 'three finite numbers');
  }
  return [v[0] as number, v[1] as number, v[2] as number];
}

function checkOneOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw bad(field, v, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  }
  return v as T;
}

/**
 * Resolves the preprocessing of a model: `camstream.json` fields (already merged with LoadOptions.config)
 * win over what the model says, which wins over `DEFAULT_PREPROCESS`.
 *
 * - `inputSize`: the model's fixed size, else `fileConfig.inputSize`. When both exist they must agree.
 * - `layout`: `fileConfig.layout`, else the model's.
 * - `scale`, `mean`, `std`: each from its own field, else from `preset` (`NORMALIZATION_PRESETS`), else
 *   1/255, [0, 0, 0], [1, 1, 1]. `normalization` records which (`custom` as soon as a field is set).
 * - `channelOrder` rgb, `resize` stretch, `resizeFilter` triangle by default.
 *   `mean` and `std` are in the model's channel order (for `bgr`, mean[0] is the blue channel's).
 *
 * Every field is validated (config may come from a hand-written file or from code).
 * @returns a fresh, frozen `Preprocess`.
 * @throws ConfigError naming the field, the bad value and the allowed range, or when the input size is
 *   neither fixed by the model nor configured.
 */
export function resolvePreprocess(fileConfig: ModelFileConfig, discovered: DiscoveredInput): Preprocess {
  const fc = fileConfig ?? {};
  const layout = checkOneOf('layout', fc.layout ?? discovered.layout, ['nhwc', 'nchw'] as const);
  let inputSize: [number, number];
  const modelSize = discovered.inputSize !== undefined ? checkSize('inputSize', discovered.inputSize) : undefined;
  if (fc.inputSize !== undefined) {
    inputSize = checkSize('inputSize', fc.inputSize);
    if (modelSize !== undefined && (modelSize[0] !== inputSize[0] || modelSize[1] !== inputSize[1])) {
      throw bad('inputSize', fc.inputSize, `the model's fixed input size ${show(modelSize)} ([height, width])`);
    }
  } else if (modelSize !== undefined) {
    inputSize = modelSize;
  } else {
    throw new ConfigError(
      "preprocessing field 'inputSize' is undefined and the model does not fix its input size; " +
        'set "inputSize": [height, width] in camstream.json beside the model (or LoadOptions.config)',
    );
  }
  const preset = fc.preset === undefined ? undefined : checkOneOf('preset', fc.preset, PRESET_NAMES);
  const base = preset === undefined ? DEFAULT_PREPROCESS : NORMALIZATION_PRESETS[preset];
  const custom = fc.scale !== undefined || fc.mean !== undefined || fc.std !== undefined;
  const scale = fc.scale ?? base.scale;
  if (!isFiniteNumber(scale) || scale <= 0) {
    throw bad('scale', scale, 'a finite number > 0 (for example 0.00392156862745098 = 1/255)');
  }
  const pre: Preprocess = {
    inputSize,
    channelOrder: checkOneOf('channelOrder', fc.channelOrder ?? DEFAULT_PREPROCESS.channelOrder, ['rgb', 'bgr'] as const),
    layout,
    scale,
    mean: checkTriple('mean', fc.mean ?? base.mean, false),
    std: checkTriple('std', fc.std ?? base.std, true),
    resize: checkOneOf('resize', fc.resize ?? DEFAULT_PREPROCESS.resize, ['stretch', 'letterbox'] as const),
    resizeFilter: checkOneOf('resizeFilter', fc.resizeFilter ?? DEFAULT_PREPROCESS.resizeFilter, RESIZE_FILTERS),
    normalization: custom ? 'custom' : (preset ?? 'default'),
  };
  Object.freeze(pre.inputSize);
  Object.freeze(pre.mean);
  Object.freeze(pre.std);
  return Object.freeze(pre);
}

/**
 * Where a frame lands inside the model input, and the way back.
 *
 * Coordinates are continuous pixel edges: x in [0, width], y in [0, height] (a pixel's centre is at +0.5).
 * A point (inputX, inputY) in model-input pixels maps to frame pixels as
 *   frameX = (inputX - padLeft) * scaleX,   frameY = (inputY - padTop) * scaleY
 * (`inputToFrame` does this). For `stretch` the pads are 0 and the content fills the input; for
 * `letterbox` the content keeps the frame's aspect ratio and is centred, the rest is padding.
 */
export interface FitGeometry {
  /** Size the frame is resized to, in model-input pixels (`[height, width]`, the content). */
  contentSize: [number, number];
  /** Padding above the content, in model-input pixels (0 for stretch). */
  padTop: number;
  /** Padding left of the content, in model-input pixels (0 for stretch). */
  padLeft: number;
  /** Padding below and right of the content (for the pad op). */
  padBottom: number;
  padRight: number;
  /** Frame pixels per model-input pixel, horizontally and vertically. */
  scaleX: number;
  scaleY: number;
}

/**
 * How a `frameWidth` x `frameHeight` frame is fitted to `pre.inputSize` under `pre.resize`.
 * Letterbox: the content size is the frame size times min(inputH / frameH, inputW / frameW), rounded to
 * whole pixels (at least 1); the padding is split evenly, the odd pixel at the bottom/right.
 * @throws InputError when the frame size is not two positive integers.
 */
export function fitGeometry(frameWidth: number, frameHeight: number, pre: Pick<Preprocess, 'inputSize' | 'resize'>): FitGeometry {
  if (!Number.isInteger(frameWidth) || frameWidth < 1 || !Number.isInteger(frameHeight) || frameHeight < 1) {
    throw new InputError(`frame size must be two positive integers, got ${frameWidth}x${frameHeight}`);
  }
  const [inH, inW] = pre.inputSize;
  if (pre.resize === 'stretch') {
    return {
      contentSize: [inH, inW],
      padTop: 0,
      padLeft: 0,
      padBottom: 0,
      padRight: 0,
      scaleX: frameWidth / inW,
      scaleY: frameHeight / inH,
    };
  }
  const s = Math.min(inH / frameHeight, inW / frameWidth);
  const h = Math.min(inH, Math.max(1, Math.round(frameHeight * s)));
  const w = Math.min(inW, Math.max(1, Math.round(frameWidth * s)));
  const padTop = Math.floor((inH - h) / 2);
  const padLeft = Math.floor((inW - w) / 2);
  return {
    contentSize: [h, w],
    padTop,
    padLeft,
    padBottom: inH - h - padTop,
    padRight: inW - w - padLeft,
    scaleX: frameWidth / w,
    scaleY: frameHeight / h,
  };
}

/** Maps a point in model-input pixels to frame pixels (see `FitGeometry`). Not clamped to the frame. */
export function inputToFrame(geometry: FitGeometry, inputX: number, inputY: number): [number, number] {
  return [(inputX - geometry.padLeft) * geometry.scaleX, (inputY - geometry.padTop) * geometry.scaleY];
}

/** Whether an engine resizes `pre`'s frames by tap tables (the antialiased filters) rather than bilinear. */
export function usesResizeTaps(pre: Pick<Preprocess, 'resizeFilter'>): pre is { resizeFilter: 'triangle' | 'area' } {
  return pre.resizeFilter !== 'bilinear';
}
