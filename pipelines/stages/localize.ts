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
}

export const DEFAULT_LOCALIZE_CONFIG: Readonly<Required<Omit<LocalizeConfig, 'maxBoxes'>>> = Object.freeze({
  boxRule: 'paper',
  threshold: 0.2,
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
  return { boxRule, threshold, maxBoxes };
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

/** The map of the i-th returned class (a view, no copy). */
export function mapAt(result: CamResult, i: number): Float32Array {
  const cells = result.mapSize[0] * result.mapSize[1];
  return result.maps.subarray(i * cells, (i + 1) * cells);
}

/**
 * One box per returned class (in frame pixels), or null where the map has no positive evidence; classes past
 * `maxBoxes` get null.
 */
export function localize(result: CamResult, geometry: FrameGeometry, config: ResolvedLocalizeConfig): Array<Box | null> {
  const boxes: Array<Box | null> = [];
  for (let i = 0; i < result.ids.length; i++) {
    if (i >= config.maxBoxes) {
      boxes.push(null);
      continue;
    }
    const map = mapAt(result, i);
    boxes.push(
      config.boxRule === 'paper'
        ? paperBox(map, result.mapSize, geometry, { threshold: config.threshold })
        : officialBox(map, result.mapSize, geometry),
    );
  }
  return boxes;
}
