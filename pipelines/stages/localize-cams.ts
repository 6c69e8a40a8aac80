/**
 * `localizeCams`: boxes from the smoothed maps, as a stage (the box rules themselves live in localize.ts
 * and models/boxes.ts). Boxes are taken from the smoothed raw maps, so they are as steady as the display.
 */
import { map, type OperatorFunction } from 'rxjs';
import type { Box, FrameGeometry, Preprocess } from '../../models/index.ts';
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

/**
 * Adds `boxes`: one per class of `cams.ids` (frame pixels `[x1, y1, x2, y2]`), null where the map holds no
 * positive evidence or past `maxBoxes`. Lossless, synchronous, one output per input.
 */
export function localizeCams<T extends LocalizeInput>(
  preprocess: Preprocess,
  config: LocalizeConfig = {},
): OperatorFunction<T, T & { boxes: Array<Box | null> }> {
  const resolved = resolveLocalizeConfig(config);
  let cached: { key: string; geometry: FrameGeometry } | undefined;
  return map((frame) => {
    const t0 = performance.now();
    const key = `${frame.width}x${frame.height}`;
    if (cached?.key !== key) cached = { key, geometry: frameGeometry(frame.width, frame.height, preprocess) };
    const boxes = localize(frame.cams, cached.geometry, resolved);
    if (frame.ms) frame.ms.localize = performance.now() - t0;
    return { ...frame, boxes };
  });
}
