/**
 * The image overlay renderer: a class activation map coloured, enlarged and blended over the ORIGINAL image,
 * with boxes and the top-k labels drawn on top, at the original resolution. Its config and input types are
 * in overlay-config.ts, the heat layer in heat-layer.ts, the boxes and labels in internal/annotations.ts.
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
import { checkGeometry, checkMap, ConfigError, InputError, type Frame, type FrameGeometry } from '../../models/index.ts';
import { colourizeGrid } from './heat-layer.ts';
import { renderAnnotations } from './internal/annotations.ts';
import { resolveOverlayConfig, type OverlayFormat, type OverlayGeometry, type OverlayInput } from './overlay-config.ts';

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
