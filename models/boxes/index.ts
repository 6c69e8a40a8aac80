/**
 * Boxes and points from class activation maps, in original frame pixels: the geometry placing a map over
 * a frame, the paper's rule and the released code's rule for boxes, and the measures (IoU, pointing game,
 * MaxBoxAcc). Every function is synchronous and owns no tensors.
 */
export {
  checkGeometry,
  contentRect,
  frameGrid,
  frameToInputPoint,
  inputToFramePoint,
  type Box,
  type BoxResolution,
  type ContentRect,
  type FrameGeometry,
  type MapGrid,
} from './geometry.ts';
export { paperBox, paperComponents, thresholdSweep, DEFAULT_PAPER_BOX_OPTIONS, type PaperBoxOptions, type PaperComponent } from './paper.ts';
export {
  officialBox,
  officialBoxes,
  DEFAULT_OFFICIAL_BOX_OPTIONS,
  OFFICIAL_THRESHOLDS,
  type OfficialBoxOptions,
} from './official.ts';
export {
  area,
  boxInside,
  iou,
  maxBoxAcc,
  maxBoxAccV2,
  peakPoint,
  type BoxPrediction,
  type MaxBoxAccOptions,
  type MaxBoxAccResult,
  type PeakPoint,
} from './metrics.ts';
