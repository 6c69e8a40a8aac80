/**
 * `localizeCams`: boxes from the smoothed maps, as a stage (the box rules themselves live in localize.ts
 * and models/boxes.ts). Boxes are taken from the smoothed raw maps, so they are as steady as the display.
 *
 * Cost: the box rules upsample each map over a grid of model-input pixels (224x224 = 50k cells per class)
 * before thresholding and labelling components, a few milliseconds per frame for five classes, on the JS
 * thread that also feeds the encoder. For video the grid is capped at `gridMaxSide` cells per side: the
 * upsampled map is smooth at that scale (a 7x7 or 14x14 map), so the box edges move by under one grid
 * cell (frame size / gridMaxSide pixels), and the work drops fourfold at the default.
 *
 * Each subscription remembers every class's last box (forgotten at a scene cut) for the paper rule's
 * temporal association (`LocalizeConfig.associate`), and measures the box flicker of the displayed class.
 */
import { defer, map, tap, type OperatorFunction } from 'rxjs';
import { ConfigError, iou, type Box, type FrameGeometry, type Preprocess } from '../../models/index.ts';
import type { StageTimings } from './frame.ts';
import { frameGeometry, localize, resolveLocalizeConfig, type LocalizeConfig } from './localize.ts';
import type { SmoothedCams } from './smooth.ts';

/** What `localizeCams` needs of a frame record. */
export interface LocalizeInput {
  cams: SmoothedCams;
  /** Full frame size, pixels: boxes come out in these pixels. */
  width: number;
  height: number;
  ms?: StageTimings;
}

export interface LocalizeCamsConfig extends LocalizeConfig {
  /** Longest side of the grid boxes are found on, cells, integer in [16, 4096]. Default 112. */
  gridMaxSide?: number;
}

/**
 * The geometry with its model-input grid scaled down to at most `maxSide` cells per side (same frame,
 * same content placement): the box functions then work on the smaller grid and still answer in frame
 * pixels.
 */
export function coarseGeometry(geometry: FrameGeometry, maxSide: number): FrameGeometry {
  const s = Math.min(1, maxSide / Math.max(geometry.inputWidth, geometry.inputHeight));
  if (s === 1) return geometry;
  // Whole cells per side (the box functions count grid cells); each axis keeps its own exact ratio.
  const inputWidth = Math.max(1, Math.round(geometry.inputWidth * s));
  const inputHeight = Math.max(1, Math.round(geometry.inputHeight * s));
  const sx = inputWidth / geometry.inputWidth;
  const sy = inputHeight / geometry.inputHeight;
  const c = geometry.content;
  return {
    ...geometry,
    inputWidth,
    inputHeight,
    content: c ? { x: c.x * sx, y: c.y * sy, width: c.width * sx, height: c.height * sy } : undefined,
  };
}

/** Running figures of one `localizeCams` subscription. */
export interface LocalizeStats {
  frames: number;
  /**
   * Mean 1 - IoU of the displayed class's box between consecutive frames, in [0, 1]: 0 for a box that
   * never moves, 1 for one that jumps to a disjoint place (or appears or vanishes) every frame. Frame pairs
   * across a scene cut or a change of the displayed class, and pairs with no box on either side, are
   * left out. 0 when no pair counts.
   */
  boxFlicker: number;
}

/** Box flicker bookkeeping of one stream (see `LocalizeStats.boxFlicker`). */
export class BoxFlicker {
  private sum = 0;
  private pairs = 0;
  private frames = 0;
  private last: { id: number; box: Box | null } | undefined;

  /** The displayed class and its box at the next frame; `cut` starts a new shot. */
  add(id: number, box: Box | null, cut: boolean): void {
    this.frames++;
    const prev = this.last;
    this.last = { id, box };
    if (cut || !prev || prev.id !== id || (!prev.box && !box)) return;
    this.sum += prev.box && box ? 1 - iou(prev.box, box) : 1;
    this.pairs++;
  }

  stats(): LocalizeStats {
    return { frames: this.frames, boxFlicker: this.pairs > 0 ? this.sum / this.pairs : 0 };
  }
}

/**
 * Adds `boxes`: one per class of `cams.ids` (frame pixels `[x1, y1, x2, y2]`), null where the map holds no
 * positive evidence or past `maxBoxes`. Lossless, synchronous, one output per input. `onStats` gets the
 * box flicker when the stream completes.
 */
export function localizeCams<T extends LocalizeInput>(
  preprocess: Preprocess,
  config: LocalizeCamsConfig = {},
  onStats?: (stats: LocalizeStats) => void,
): OperatorFunction<T, T & { boxes: Array<Box | null> }> {
  const resolved = resolveLocalizeConfig(config);
  const gridMaxSide = config.gridMaxSide ?? 112;
  if (!Number.isInteger(gridMaxSide) || gridMaxSide < 16 || gridMaxSide > 4096) {
    throw new ConfigError(`gridMaxSide must be an integer in [16, 4096], got ${String(gridMaxSide)}`);
  }
  return (source) =>
    defer(() => {
      // Per subscription: each source has its own geometry, previous boxes and flicker figure.
      let cached: { key: string; geometry: FrameGeometry } | undefined;
      let previous = new Map<number, Box>();
      const flicker = new BoxFlicker();
      return source.pipe(
        map((frame) => {
          const t0 = performance.now();
          const { cams } = frame;
          const key = `${frame.width}x${frame.height}`;
          if (cached?.key !== key) {
            cached = { key, geometry: coarseGeometry(frameGeometry(frame.width, frame.height, preprocess), gridMaxSide) };
            previous = new Map();
          }
          if (cams.cut) previous = new Map();
          const boxes = localize(cams, cached.geometry, resolved, previous);
          previous = new Map();
          boxes.forEach((b, i) => {
            if (b) previous.set(cams.ids[i], b);
          });
          flicker.add(cams.ids[cams.shown], boxes[cams.shown] ?? null, cams.cut);
          if (frame.ms) frame.ms.localize = performance.now() - t0;
          return { ...frame, boxes };
        }),
        tap({ complete: () => onStats?.(flicker.stats()) }),
      );
    });
}

