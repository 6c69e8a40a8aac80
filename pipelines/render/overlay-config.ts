/**
 * What the image overlay takes: its look (`OverlayConfig`, frozen defaults, `resolveOverlayConfig`) and its
 * input (the image, the map, where the map sits, boxes and labels).
 */
import { COLORMAP_NAMES, ConfigError, type Box, type ColormapName, type Frame, type FrameGeometry, type MapSize } from '../../models/index.ts';

/** How the heat layer is made transparent: evenly, or in proportion to the map value (cold areas untouched). */
export type AlphaMode = 'constant' | 'value';

/** Output encodings chosen from a file extension. */
export type OverlayFormat = 'jpeg' | 'png' | 'webp';

/** Look of the overlay. Every field optional for callers; see `DEFAULT_OVERLAY_CONFIG` for defaults. */
export interface OverlayConfig {
  /** Default `turbo`. */
  colormap?: ColormapName;
  /** Opacity of the heat layer, in [0, 1]. Default 0.5. */
  alpha?: number;
  /** Default `constant`: every pixel gets `alpha` (the classic CAM figure look). */
  alphaMode?: AlphaMode;
  /**
   * Colouring resolution: grid pixels per map cell along each axis before libvips enlarges the layer.
   * Colour is looked up per grid pixel, so the colormap's bands stay correct (a rainbow interpolated between
   * distant cells would pass through wrong hues). Integer in [1, 64]. Default 16.
   */
  samplesPerCell?: number;
  /** Box outline width in output pixels; 0 = from the image size (about 1/150 of the shorter side). Default 0. */
  lineWidth?: number;
  /** Label font size in output pixels; 0 = from the image size (about 1/28 of the shorter side). Default 0. */
  fontSize?: number;
  /** Default `DejaVu Sans, Verdana, sans-serif` (DejaVu ships with most Linux systems). */
  fontFamily?: string;
  /** Draw label text (box labels and the top-k list). Default true. */
  labels?: boolean;
  /** JPEG / WebP quality, integer 1..100. Default 90. */
  quality?: number;
}

export const DEFAULT_OVERLAY_CONFIG: Readonly<Required<OverlayConfig>> = Object.freeze({
  colormap: 'turbo',
  alpha: 0.5,
  alphaMode: 'constant',
  samplesPerCell: 16,
  lineWidth: 0,
  fontSize: 0,
  fontFamily: 'DejaVu Sans, Verdana, sans-serif',
  labels: true,
  quality: 90,
});

/** Merges `config` over the defaults and validates it; throws ConfigError naming the field and range. */
export function resolveOverlayConfig(config: OverlayConfig = {}): Required<OverlayConfig> {
  const c: Required<OverlayConfig> = { ...DEFAULT_OVERLAY_CONFIG };
  for (const key of Object.keys(DEFAULT_OVERLAY_CONFIG) as Array<keyof OverlayConfig>) {
    const v = config[key];
    if (v !== undefined) (c as Record<string, unknown>)[key] = v;
  }
  if (!(COLORMAP_NAMES as readonly string[]).includes(c.colormap)) {
    throw new ConfigError(`colormap must be one of ${COLORMAP_NAMES.join(', ')}; got ${JSON.stringify(c.colormap)}`);
  }
  if (typeof c.alpha !== 'number' || !(c.alpha >= 0 && c.alpha <= 1)) {
    throw new ConfigError(`alpha must be a number in [0, 1], got ${String(c.alpha)}`);
  }
  if (c.alphaMode !== 'constant' && c.alphaMode !== 'value') {
    throw new ConfigError(`alphaMode must be 'constant' or 'value', got ${JSON.stringify(c.alphaMode)}`);
  }
  if (!Number.isInteger(c.samplesPerCell) || c.samplesPerCell < 1 || c.samplesPerCell > 64) {
    throw new ConfigError(`samplesPerCell must be an integer in [1, 64], got ${String(c.samplesPerCell)}`);
  }
  for (const key of ['lineWidth', 'fontSize'] as const) {
    if (typeof c[key] !== 'number' || !(c[key] >= 0 && c[key] <= 1000)) {
      throw new ConfigError(`${key} must be a number in [0, 1000] (0 = automatic), got ${String(c[key])}`);
    }
  }
  if (typeof c.fontFamily !== 'string' || !/^[\w ,.'-]{1,200}$/.test(c.fontFamily)) {
    throw new ConfigError(`fontFamily must be a list of font names (letters, digits, spaces, commas), got ${JSON.stringify(c.fontFamily)}`);
  }
  if (typeof c.labels !== 'boolean') throw new ConfigError(`labels must be true or false, got ${String(c.labels)}`);
  if (!Number.isInteger(c.quality) || c.quality < 1 || c.quality > 100) {
    throw new ConfigError(`quality must be an integer in [1, 100], got ${String(c.quality)}`);
  }
  return c;
}

/** A box to draw, in frame pixels. */
export interface OverlayBox {
  box: Box;
  label?: string;
  score?: number;
  /** CSS colour (`#rgb`, `#rrggbb`, a colour name) or `[r, g, b]` bytes. Default: a fixed palette by index. */
  colour?: string | readonly [number, number, number];
}

export interface OverlayLabel {
  label: string;
  score: number;
  /** The class whose map and box this overlay draws: its panel line is marked. */
  shown?: boolean;
}

/** Where the map sits over the image: `FrameGeometry` whose frame size, when given, must match the image. */
export type OverlayGeometry = Omit<FrameGeometry, 'frameWidth' | 'frameHeight'> &
  Partial<Pick<FrameGeometry, 'frameWidth' | 'frameHeight'>>;

export interface OverlayInput extends OverlayConfig {
  /** Packed RGB frame, or an image file path (decoded with EXIF orientation applied). */
  image: Frame | string;
  /** Normalized map in [0, 1] at feature resolution, row-major `mapSize`. */
  map: Float32Array;
  mapSize: MapSize;
  /** Default: the map covers the whole image (`stretch`). Letterbox maps are cropped to the frame's part. */
  geometry?: OverlayGeometry;
  boxes?: readonly OverlayBox[];
  /** The top-k classes, listed in the given order (by score) in the top-left corner. */
  topLabels?: readonly OverlayLabel[];
  /** Told when something degraded gracefully (for example text could not be rendered). */
  onWarning?: (message: string) => void;
}
