/** Rendering of maps over images: the full-resolution overlay (heat layer, boxes, labels) and its file writer. */
export { DEFAULT_OVERLAY_CONFIG, resolveOverlayConfig } from './overlay-config.ts';
export type {
  AlphaMode,
  OverlayBox,
  OverlayConfig,
  OverlayFormat,
  OverlayGeometry,
  OverlayInput,
  OverlayLabel,
} from './overlay-config.ts';
export { colourIndex, colourizeMap, heatOpacities, heatValues, type HeatLayer, type HeatTarget } from './heat-layer.ts';
export { labelText, panelLine, SHOWN_MARK } from './labels.ts';
export { overlayFormatFor, renderOverlay, renderOverlayBuffer, writeOverlayFile } from './overlay.ts';
