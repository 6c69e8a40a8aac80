/**
 * Boxes from class activation maps, for every frame path (still images, video, live). Pure and synchronous:
 * works on the small raw maps an engine returned, never on tensors or full-resolution pixels.
 */
import {
  ConfigError,
  fitGeometry,
  officialBox,
  paperBox,
  type Box,
  type CamResult,
  type FrameGeometry,
  type Preprocess,
} from '../../models/index.ts';
import { iou, paperComponents } from '../../models/boxes/index.ts';

export type BoxRule = 'paper' | 'official';
export const BOX_RULES: readonly BoxRule[] = Object.freeze(['paper', 'official']);

export interface LocalizeConfig {
  /**
   * `paper`: keep > threshold x max, box of the largest 8-connected component (Zhou et al. 2016, sec. 3.1).
   * `official`: the authors' released code (several thresholds, contour boxes, merged). Default `paper`.
   */
  boxRule?: BoxRule;
  /** Paper rule threshold, a fraction of the map's maximum in [0, 1). Default 0.2. */
  threshold?: number;
  /** How many of a frame's classes get a box, best first. Default: all returned classes. */
  maxBoxes?: number;
  /**
   * Boxes over time (paper rule on video and live, `localizeCams`; still images always take the paper's
   * largest region). Above 0, each frame's regions are weighed by their heat (the sum of the smoothed map
   * over the region) rather than their size, and among those holding at least this fraction of the
   * hottest one's heat, the one overlapping the class's previous box most is kept: the box stays where
   * the heat is and does not jump between regions of similar weight from frame to frame. 0: the paper's
   * largest region on every frame. In [0, 1]. Default 0.5.
   */
  associate?: number;
}

export const DEFAULT_LOCALIZE_CONFIG: Readonly<Required<Omit<LocalizeConfig, 'maxBoxes'>>> = Object.freeze({
  boxRule: 'paper',
  threshold: 0.2,
  associate: 0.5,
});

export type ResolvedLocalizeConfig = Required<Omit<LocalizeConfig, 'maxBoxes'>> & { maxBoxes: number };

export function resolveLocalizeConfig(config: LocalizeConfig = {}): ResolvedLocalizeConfig {
  const boxRule = config.boxRule ?? DEFAULT_LOCALIZE_CONFIG.boxRule;
  if (!BOX_RULES.includes(boxRule)) {
    throw new ConfigError(`box rule must be one of ${BOX_RULES.join(', ')}; got ${JSON.stringify(boxRule)}`);
  }
  const threshold = config.threshold ?? DEFAULT_LOCALIZE_CONFIG.threshold;
  if (typeof threshold !== 'number' || !(threshold >= 0 && threshold < 1)) {
    throw new ConfigError(`threshold must be a number in [0, 1), got ${String(threshold)}`);
  }
  const maxBoxes = config.maxBoxes ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isInteger(maxBoxes) || maxBoxes < 0) {
    throw new ConfigError(`maxBoxes must be a whole number >= 0, got ${String(maxBoxes)}`);
  }
  const associate = config.associate ?? DEFAULT_LOCALIZE_CONFIG.associate;
  if (typeof associate !== 'number' || !(associate >= 0 && associate <= 1)) {
    throw new ConfigError(`associate must be a number in [0, 1], got ${String(associate)}`);
  }
  return { boxRule, threshold, maxBoxes, associate };
}

/** Where a frame of this size sits in the model input, in the form the box functions take. */
export function frameGeometry(frameWidth: number, frameHeight: number, pre: Pick<Preprocess, 'inputSize' | 'resize'>): FrameGeometry {
  const fit = fitGeometry(frameWidth, frameHeight, pre);
  const [inputHeight, inputWidth] = pre.inputSize;
  return {
    frameWidth,
    frameHeight,
    inputWidth,
    inputHeight,
    resize: pre.resize,
    content:
      pre.resize === 'letterbox'
        ? { x: fit.padLeft, y: fit.padTop, width: fit.contentSize[1], height: fit.contentSize[0] }
        : undefined,
  };
}

/**
 * A box in whole frame pixels, as JSON outputs give it: each edge rounded to the nearest pixel boundary
 * (boxes are continuous coordinates, pixel column c covering [c, c + 1)).
 */
export function boxPixels(b: Box): Box {
  return [Math.round(b[0]), Math.round(b[1]), Math.round(b[2]), Math.round(b[3])];
}

/** The map of the i-th returned class (a view, no copy). */
export function mapAt(result: CamResult, i: number): Float32Array {
  const cells = result.mapSize[0] * result.mapSize[1];
  return result.maps.subarray(i * cells, (i + 1) * cells);
}

/**
 * One box per returned class (in frame pixels), or null where the map has no positive evidence; classes past
 * `maxBoxes` get null. `previous` (class id -> last frame's box; empty on a stream's first frame) marks a
 * stream: the paper rule then weighs regions by heat and keeps the box on its region (see
 * `LocalizeConfig.associate`).
 */
export function localize(
  result: CamResult,
  geometry: FrameGeometry,
  config: ResolvedLocalizeConfig,
  previous?: ReadonlyMap<number, Box>,
): Array<Box | null> {
  const boxes: Array<Box | null> = [];
  for (let i = 0; i < result.ids.length; i++) {
    if (i >= config.maxBoxes) {
      boxes.push(null);
      continue;
    }
    const map = mapAt(result, i);
    if (config.boxRule === 'official') boxes.push(officialBox(map, result.mapSize, geometry));
    else if (!previous || config.associate === 0) boxes.push(paperBox(map, result.mapSize, geometry, { threshold: config.threshold }));
    else {
      const regions = paperComponents(map, result.mapSize, geometry, { threshold: config.threshold });
      boxes.push(associatedBox(regions, previous.get(result.ids[i]), config.associate));
    }
  }
  return boxes;
}

/**
 * The box of a stream's frame: among regions holding at least `ratio` x the hottest region's heat, the
 * one overlapping `previous` most; the hottest when there is no previous box or none overlaps it. While
 * two regions are of similar weight, the one the box was on wins, so noise in the map cannot make the box
 * alternate between them; a region that clearly outweighs it takes the box.
 */
export function associatedBox(regions: ReadonlyArray<{ box: Box; mass: number }>, previous: Box | undefined, ratio: number): Box | null {
  let hottest: { box: Box; mass: number } | null = null;
  for (const r of regions) if (!hottest || r.mass > hottest.mass) hottest = r;
  if (!hottest || !previous) return hottest?.box ?? null;
  let best = hottest;
  let bestOverlap = iou(hottest.box, previous);
  for (const r of regions) {
    if (r.mass < ratio * hottest.mass) continue;
    const overlap = iou(r.box, previous);
    if (overlap > bestOverlap) {
      best = r;
      bestOverlap = overlap;
    }
  }
  return best.box;
}
