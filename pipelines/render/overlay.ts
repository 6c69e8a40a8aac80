/**
 * The image overlay renderer: a class activation map coloured, enlarged and blended over the ORIGINAL image,
 * with boxes and the top-k labels drawn on top, at the original resolution.
 *
 * Cost model: the map is tiny (7x7 to 28x28). JS only touches a small grid (about `samplesPerCell` pixels
 * per map cell, a few tens of thousands of pixels), where the map is bilinearly resampled and coloured;
 * libvips (through sharp) then enlarges that small RGBA image to the full frame, blends it over the image and
 * composites the vector annotations. No per-pixel JS loop runs at full resolution.
 */
import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import sharp, { type OverlayOptions, type Sharp } from 'sharp';
import {
  ConfigError,
  InputError,
  checkMap,
  resampleMap,
  colormapLut,
  COLORMAP_NAMES,
  checkGeometry,
  contentRect,
  frameGrid,
  type Frame,
  type MapSize,
  type ColormapName,
  type Box,
  type FrameGeometry,
} from '../../models/index.ts';

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
  /** The top-k classes, listed in the top-left corner. */
  topLabels?: readonly OverlayLabel[];
  /** Told when something degraded gracefully (for example text could not be rendered). */
  onWarning?: (message: string) => void;
}

/** A small RGBA image: the coloured map over the frame, ready to be enlarged to `frameWidth x frameHeight`. */
export interface HeatLayer {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * Colours a normalized map on a small grid spanning the frame (see `samplesPerCell`), with the alpha of
 * `alphaMode`. This is the part of the overlay done in JS; enlarging it (sharp here, or ffmpeg's scale and
 * overlay filters in a video pipeline) gives the full-size layer. Returns a new buffer owned by the caller.
 */
export function colourizeMap(
  map: Float32Array,
  mapSize: MapSize,
  geometry: FrameGeometry,
  config: OverlayConfig = {},
): HeatLayer {
  checkMap(map, mapSize);
  checkGeometry(geometry);
  return colourizeGrid(map, mapSize, geometry, resolveOverlayConfig(config), false);
}

/**
 * `colourizeMap`, optionally pre-compensating libvips' upsampling: its `linear` resize samples output pixel
 * `j` at input position `j / s - 0.5` (s = enlargement), half an output pixel left of the half-pixel-centre
 * convention `(j + 0.5) / s - 0.5` that the boxes and `upsampleBilinear` use. Sampling the grid half a frame
 * pixel further along cancels it (checked against a per-pixel reference in the render tests). An axis that is
 * not enlarged is not shifted.
 */
function colourizeGrid(
  map: Float32Array,
  mapSize: MapSize,
  geometry: FrameGeometry,
  c: Required<OverlayConfig>,
  forLibvips: boolean,
): HeatLayer {
  const content = contentRect(geometry);
  // Map cells lying over the frame along each axis (fewer than the map's when letterbox padding is cut off).
  const cellsX = (mapSize[1] * content.width) / geometry.inputWidth;
  const cellsY = (mapSize[0] * content.height) / geometry.inputHeight;
  const width = Math.max(1, Math.min(geometry.frameWidth, Math.round(cellsX * c.samplesPerCell)));
  const height = Math.max(1, Math.min(geometry.frameHeight, Math.round(cellsY * c.samplesPerCell)));
  const { transform } = frameGrid(mapSize, geometry, width, height);
  if (forLibvips && width < geometry.frameWidth) transform.offsetX += (0.5 * transform.scaleX * width) / geometry.frameWidth;
  if (forLibvips && height < geometry.frameHeight) transform.offsetY += (0.5 * transform.scaleY * height) / geometry.frameHeight;
  const values = resampleMap(map, mapSize, [height, width], transform);
  const lut = colormapLut(c.colormap);
  const data = new Uint8Array(width * height * 4);
  const alpha255 = c.alpha * 255;
  const byValue = c.alphaMode === 'value';
  for (let i = 0, o = 0; i < values.length; i++, o += 4) {
    const v = values[i];
    const q = v > 0 ? (v >= 1 ? 255 : Math.round(v * 255)) : 0;
    const k = 3 * q;
    data[o] = lut[k];
    data[o + 1] = lut[k + 1];
    data[o + 2] = lut[k + 2];
    data[o + 3] = Math.round(byValue ? (alpha255 * q) / 255 : alpha255);
  }
  return { data, width, height };
}

/**
 * Renders the overlay at the image's own resolution and returns a sharp pipeline (RGB, no alpha) to encode
 * as the caller likes (`.png().toBuffer()`, `.jpeg()`, ...). The caller's frame is never modified, but the
 * pipeline reads its pixels when it runs: leave them untouched until the output is produced. Throws InputError
 * when the image, map or geometry do not fit together or the image file cannot be read.
 *
 * Cost (1920x1080, loaded 2-core machine): ~90 ms to raw, ~170 ms to JPEG with boxes and labels, almost all
 * in libvips (enlarging the layer, compositing, encoding).
 */
export async function renderOverlay(input: OverlayInput): Promise<Sharp> {
  const config = resolveOverlayConfig(input);
  checkMap(input.map, input.mapSize);
  const frame = await loadFrame(input.image);
  const geometry = frameGeometry(input.geometry, frame);
  const layer = colourizeGrid(input.map, input.mapSize, geometry, config, true);
  // libvips enlarges the small coloured grid; 'linear' keeps colours between neighbouring grid samples,
  // which are at most 1/samplesPerCell of a cell apart, so no ringing and no hue errors.
  const heat = await sharp(layer.data, { raw: { width: layer.width, height: layer.height, channels: 4 } })
    .resize(frame.width, frame.height, { kernel: 'linear', fit: 'fill' })
    .raw()
    .toBuffer();
  const layers: OverlayOptions[] = [
    { input: heat, raw: { width: frame.width, height: frame.height, channels: 4 } },
  ];
  const annotations = await renderAnnotations(input, frame.width, frame.height, config);
  if (annotations) layers.push({ input: annotations, raw: { width: frame.width, height: frame.height, channels: 4 } });
  return sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .composite(layers)
    .removeAlpha();
}

/** `renderOverlay` encoded in memory. */
export async function renderOverlayBuffer(input: OverlayInput, format: OverlayFormat = 'png'): Promise<Buffer> {
  const config = resolveOverlayConfig(input);
  const pipeline = await renderOverlay(input);
  return encode(pipeline, format, config.quality).toBuffer();
}

/** The output format for a file name: `.jpg`/`.jpeg`, `.png` or `.webp` (case-insensitive). */
export function overlayFormatFor(path: string): OverlayFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  if (ext === '.png') return 'png';
  if (ext === '.webp') return 'webp';
  throw new ConfigError(`output file ${JSON.stringify(path)} must end in .jpg, .jpeg, .png or .webp (got ${JSON.stringify(ext)})`);
}

/**
 * Renders and writes the overlay to `outPath`, format from its extension. The image is written to a
 * temporary name in the same folder and renamed onto `outPath` only once complete, so a failure never leaves
 * a partial file (and never clobbers an existing `outPath` with one).
 */
export async function writeOverlayFile(outPath: string, input: OverlayInput): Promise<void> {
  const format = overlayFormatFor(outPath);
  const config = resolveOverlayConfig(input);
  const pipeline = await renderOverlay(input);
  const tmp = join(dirname(outPath), `.${basename(outPath)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    await encode(pipeline, format, config.quality).toFile(tmp);
    await rename(tmp, outPath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function encode(pipeline: Sharp, format: OverlayFormat, quality: number): Sharp {
  switch (format) {
    case 'jpeg':
      return pipeline.jpeg({ quality });
    case 'webp':
      return pipeline.webp({ quality });
    case 'png':
      return pipeline.png();
  }
}

async function loadFrame(image: Frame | string): Promise<Frame> {
  if (typeof image === 'string') {
    try {
      const { data, info } = await sharp(image, { autoOrient: true })
        .removeAlpha()
        .toColourspace('srgb')
        .raw()
        .toBuffer({ resolveWithObject: true });
      return { data, width: info.width, height: info.height };
    } catch (err) {
      throw new InputError(`cannot read image ${JSON.stringify(image)}: ${(err as Error).message}`);
    }
  }
  if (!image || !(image.data instanceof Uint8Array)) {
    throw new InputError('image must be a file path or { data: Uint8Array, width, height } of packed RGB');
  }
  const { width, height, data } = image;
  if (!Number.isInteger(width) || width <= 0 || !Number.isInteger(height) || height <= 0) {
    throw new InputError(`image size must be positive integers, got ${String(width)}x${String(height)}`);
  }
  if (data.length !== width * height * 3) {
    throw new InputError(
      `image data has ${data.length} bytes but ${width}x${height} packed RGB needs ${width * height * 3}`,
    );
  }
  return image;
}

function frameGeometry(g: OverlayGeometry | undefined, frame: Frame): FrameGeometry {
  if (!g) {
    return { frameWidth: frame.width, frameHeight: frame.height, inputWidth: frame.width, inputHeight: frame.height, resize: 'stretch' };
  }
  if (
    (g.frameWidth !== undefined && g.frameWidth !== frame.width) ||
    (g.frameHeight !== undefined && g.frameHeight !== frame.height)
  ) {
    throw new InputError(
      `geometry frame size ${String(g.frameWidth)}x${String(g.frameHeight)} does not match the image's ` +
        `${frame.width}x${frame.height}`,
    );
  }
  const geometry: FrameGeometry = { ...g, frameWidth: frame.width, frameHeight: frame.height };
  checkGeometry(geometry);
  return geometry;
}

// ---------------------------------------------------------------------------------------------------------
// Annotations (SVG rasterized by sharp's librsvg)

const PALETTE = ['#ffffff', '#00e5ff', '#ff3df2', '#ffe600', '#4dff4d'];

function colourOf(box: OverlayBox, index: number): string {
  const c = box.colour;
  if (c === undefined) return PALETTE[index % PALETTE.length];
  if (Array.isArray(c)) {
    if (c.length === 3 && c.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)) return `rgb(${c.join(',')})`;
  } else if (typeof c === 'string' && /^(#[0-9a-f]{3,4}|#[0-9a-f]{6}|#[0-9a-f]{8}|[a-z]{3,30})$/i.test(c)) {
    return c;
  }
  throw new ConfigError(`boxes[${index}].colour must be #rgb, #rrggbb, a colour name or [r, g, b] bytes, got ${JSON.stringify(c)}`);
}

/** Text for SVG: markup characters escaped, characters XML cannot hold at all (controls) replaced by '?'. */
function escapeXml(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '?')
    .replace(/[<>&'"]/g, (ch) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', "'": 'apos', '"': 'quot' }[ch]};`);
}

function labelText(label: string | undefined, score: number | undefined): string {
  const parts: string[] = [];
  if (label) parts.push(label);
  if (typeof score === 'number' && Number.isFinite(score)) parts.push(score.toFixed(2));
  return parts.join(' ');
}

interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

const overlapArea = (a: Rect, b: Rect) =>
  Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x)) *
  Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));

/** Two decimals are plenty for SVG coordinates and keep the document small. */
const n2 = (v: number) => Math.round(v * 100) / 100;

/**
 * Builds the SVG; `withText` false leaves only the box outlines (the fallback when text rendering fails).
 * Outlines go first and label tags on top; each tag takes the first free spot among above the box, inside
 * its top edge, below it and inside its bottom edge (left-aligned, then right-aligned), else the least
 * covered one, so tags of nested or neighbouring boxes and the top-k panel stay readable.
 */
function annotationSvg(
  input: OverlayInput,
  width: number,
  height: number,
  config: Required<OverlayConfig>,
  withText: boolean,
): string | null {
  const boxes = input.boxes ?? [];
  const text = withText && config.labels;
  // The top-k panel takes at most about a third of the frame's height: small frames list fewer classes.
  const allTop = text ? (input.topLabels ?? []) : [];
  if (boxes.length === 0 && allTop.length === 0) return null;
  const short = Math.min(width, height);
  const lw = config.lineWidth || Math.max(2, Math.round(short / 150));
  // Automatic size: 1/28 of the shorter side, at least 8 px so small frames stay legible.
  const fs = config.fontSize || Math.max(8, Math.round(short / 28));
  const top = allTop.slice(0, Math.max(1, Math.floor((height / 3 - fs) / Math.round(fs * 1.3))));
  // DejaVu Sans averages ~0.6 em per character; the label backgrounds are sized from that estimate.
  const textWidth = (s: string) => Math.ceil(s.length * fs * 0.6) + fs;
  const font = `font-family="${escapeXml(config.fontFamily)}" font-size="${fs}"`;
  const outlines: string[] = [];
  const tags: string[] = [];
  const taken: Rect[] = [];
  const panel: string[] = [];
  if (top.length > 0) {
    const lines = top.map((l, i) => `${i + 1}. ${labelText(l.label, l.score)}`);
    const lh = Math.round(fs * 1.3);
    const pad = Math.round(fs * 0.4);
    const rect = { x: 0, y: 0, w: Math.max(...lines.map(textWidth)), h: lines.length * lh + 2 * pad };
    taken.push(rect);
    panel.push(`<rect x="0" y="0" width="${rect.w}" height="${rect.h}" fill="black" fill-opacity="0.6"/>`);
    lines.forEach((line, i) => {
      panel.push(`<text x="${n2(fs / 2)}" y="${pad + i * lh + fs}" ${font} fill="white">${escapeXml(line)}</text>`);
    });
  }
  boxes.forEach((b, i) => {
    if (!Array.isArray(b.box) || b.box.length !== 4 || !b.box.every((v) => Number.isFinite(v))) {
      throw new InputError(`boxes[${i}].box must be [x1, y1, x2, y2] of finite numbers, got ${JSON.stringify(b.box)}`);
    }
    const colour = colourOf(b, i);
    const [x1, y1, x2, y2] = b.box;
    const x = n2(Math.min(x1, x2));
    const y = n2(Math.min(y1, y2));
    const w = n2(Math.abs(x2 - x1));
    const h = n2(Math.abs(y2 - y1));
    // A dark halo under the coloured stroke keeps the outline visible on any background.
    outlines.push(
      `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="black" stroke-opacity="0.6" stroke-width="${lw + 2}"/>`,
      `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="${colour}" stroke-width="${lw}"/>`,
    );
    const label = text ? labelText(b.label, b.score) : '';
    if (!label) return;
    const tw = textWidth(label);
    const th = Math.round(fs * 1.35);
    const half = lw / 2;
    // Left-aligned spots first, then the same spots right-aligned with the box.
    const rows = [y - half - th, y + half, y + h + half, y + h - half - th];
    const candidates: Rect[] = [x - half, x + w + half - tw]
      .flatMap((cx) => rows.map((cy) => ({ x: Math.max(0, Math.min(cx, width - tw)), y: cy, w: tw, h: th })))
      .filter((r) => r.y >= 0 && r.y + r.h <= height);
    const covered = (r: Rect) => taken.reduce((sum, t) => sum + overlapArea(r, t), 0);
    // A free spot if there is one, else the least covered (the top-k panel and earlier tags stay readable).
    const spot =
      candidates.find((r) => covered(r) === 0) ??
      [...candidates].sort((a, b) => covered(a) - covered(b))[0] ?? {
        x: Math.max(0, Math.min(x, width - tw)),
        y: Math.max(0, Math.min(y, height - th)),
        w: tw,
        h: th,
      };
    taken.push(spot);
    tags.push(
      `<rect x="${n2(spot.x)}" y="${n2(spot.y)}" width="${tw}" height="${th}" fill="${colour}" fill-opacity="0.85"/>`,
      `<text x="${n2(spot.x + fs / 2)}" y="${n2(spot.y + fs * 1.05)}" ${font} fill="black">${escapeXml(label)}</text>`,
    );
  });
  const body = [...outlines, ...tags, ...panel].join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${body}</svg>`;
}

/**
 * The annotation layer as raw RGBA at full size, or null when there is nothing to draw. Rasterized here
 * (not lazily inside the final pipeline) so that a text failure can fall back to outlines only.
 */
async function renderAnnotations(
  input: OverlayInput,
  width: number,
  height: number,
  config: Required<OverlayConfig>,
): Promise<Buffer | null> {
  const rasterize = async (svg: string) => {
    const { data, info } = await sharp(Buffer.from(svg), { density: 72 })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width !== width || info.height !== height || info.channels !== 4) {
      throw new Error(`annotation layer came out ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x4`);
    }
    return data;
  };
  const full = annotationSvg(input, width, height, config, true);
  if (!full) return null;
  try {
    return await rasterize(full);
  } catch (err) {
    input.onWarning?.(`overlay text could not be rendered (${(err as Error).message}); drawing boxes only`);
    const plain = annotationSvg(input, width, height, config, false);
    if (!plain) return null;
    try {
      return await rasterize(plain);
    } catch (err2) {
      input.onWarning?.(`overlay boxes could not be rendered (${(err2 as Error).message}); heat map only`);
      return null;
    }
  }
}
