/**
 * Still images from disk as packed RGB frames, decoded by libvips (sharp): JPEG, PNG, WebP, GIF, TIFF, AVIF.
 * EXIF orientation is applied, alpha dropped, grey expanded to RGB.
 */
import sharp from 'sharp';
import { stat } from 'node:fs/promises';
import { InputError, type Frame } from '../../models/index.ts';

export interface ImageFrame extends Frame {
  path: string;
}

/**
 * Decodes an image file to a packed RGB frame.
 * @throws InputError naming the file when it is missing, a folder, or not an image libvips can read.
 */
export async function readImageFrame(path: string): Promise<ImageFrame> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new InputError(`image not found: ${path}`);
  }
  if (!info.isFile()) throw new InputError(`not a file: ${path}`);
  try {
    const { data, info: out } = await sharp(path, { failOn: 'error' })
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
