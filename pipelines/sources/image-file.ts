/**
 * Still images from disk as packed RGB frames, decoded by libvips (sharp): JPEG, PNG, WebP, GIF, TIFF, AVIF.
 * EXIF orientation is applied, alpha dropped, grey expanded to RGB.
 */
import sharp from 'sharp';
import { stat } from 'node:fs/promises';
import { ConfigError, InputError, type Frame } from '../../models/index.ts';

export interface ImageFrame extends Frame {
  path: string;
}

/** Default pixel budget of one still image: 64 000 000 pixels (64 MP, about 190 MB decoded as RGB). */
export const DEFAULT_MAX_IMAGE_PIXELS = 64_000_000;

/** How much `readImageFrame` may decode. */
export interface ImageReadConfig {
  /** Largest width x height decoded; a larger image is refused from its header. Default `DEFAULT_MAX_IMAGE_PIXELS`. */
  maxPixels?: number;
}

/**
 * The width and height an image's header states, refused when over `maxPixels`: a small file can claim
 * a huge image (a 16000x16000 PNG decodes to 768 MB), so the budget is applied before any pixel is decoded.
 */
async function checkPixelBudget(path: string, maxPixels: number): Promise<void> {
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ width, height } = await sharp(path).metadata());
  } catch (err) {
    throw new InputError(`not an image camstream can read: ${path} (${(err as Error).message.split('\n')[0]})`);
  }
  if (width === undefined || height === undefined) throw new InputError(`not an image camstream can read: ${path} (no size in its header)`);
  if (width * height > maxPixels) {
    throw new InputError(
      `image too large: ${path} is ${width}x${height} = ${width * height} pixels, over the budget of ${maxPixels} pixels ` +
        '(raise it with --max-megapixels)',
    );
  }
}

/**
 * Decodes an image file to a packed RGB frame, within a pixel budget checked on the header first.
 * @throws InputError naming the file when it is missing, a folder, over the budget, or not an image
 *   libvips can read.
 * @throws ConfigError when `config.maxPixels` is not a whole number >= 1.
 */
export async function readImageFrame(path: string, config: ImageReadConfig = {}): Promise<ImageFrame> {
  const maxPixels = config.maxPixels ?? DEFAULT_MAX_IMAGE_PIXELS;
  if (!Number.isSafeInteger(maxPixels) || maxPixels < 1) throw new ConfigError(`maxPixels must be a whole number >= 1, got ${String(maxPixels)}`);
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new InputError(`image not found: ${path}`);
  }
  if (!info.isFile()) throw new InputError(`not a file: ${path}`);
  await checkPixelBudget(path, maxPixels);
  try {
    // limitInputPixels also holds if the file changed since its header was read.
    const { data, info: out } = await sharp(path, { failOn: 'error', limitInputPixels: maxPixels })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (out.channels !== 3) throw new Error(`decoded to ${out.channels} channels, expected 3`);
    return { path, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: out.width, height: out.height };
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0];
    throw new InputError(`not an image camstream can read: ${path} (${reason})`);
  }
}
