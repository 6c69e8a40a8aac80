/** Rendering of maps over images: the full-resolution overlay (heat layer, boxes, labels) and its file writer. */
export {
  DEFAULT_OVERLAY_CONFIG,
  colourizeMap,
  overlayFormatFor,
  renderOverlay,
  renderOverlayBuffer,
  resolveOverlayConfig,
  writeOverlayFile,
} from './overlay.ts';
export type {
  AlphaMode,
  HeatLayer,
  OverlayBox,
  OverlayConfig,
  OverlayFormat,
  OverlayGeometry,
  OverlayInput,
  OverlayLabel,
} from './overlay.ts';
