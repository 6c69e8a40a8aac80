/**
 * IVF framing for raw frames sent to ffmpeg with a timestamp each. `-f rawvideo` carries none, so a
 * variable-rate video's frames would be spread on a constant grid; IVF is the smallest container ffmpeg
 * reads that does carry them: a 32-byte file header, then per frame its size and a 64-bit timestamp.
 * The header's fourcc names the raw pixel format as ffmpeg's raw decoder knows it (read with `-f ivf
 * -c:v rawvideo`); timestamps in microseconds.
 */
import type { EncodePixFmt } from './encode-args.ts';

/** Timestamps in the IVF stream count microseconds. */
export const IVF_TIME_BASE = 1_000_000;

/** The fourcc of each raw format in libavcodec's raw table (`ff_raw_pix_fmt_tags`). */
const FOURCC: Readonly<Record<EncodePixFmt, readonly number[]>> = Object.freeze({
  rgba: [0x52, 0x47, 0x42, 0x41], // 'RGBA'
  rgb24: [0x52, 0x47, 0x42, 24], // 'RGB' 24
  gray: [0x59, 0x38, 0x30, 0x30], // 'Y800'
  yuva420p: [0x59, 0x34, 11, 8], // 'Y4' 11 8
});

/** The file header of a stream of `width` x `height` frames in `pixFmt`. */
export function ivfHeader(width: number, height: number, pixFmt: EncodePixFmt): Uint8Array {
  const b = Buffer.alloc(32);
  b.write('DKIF', 0, 'latin1');
  b.writeUInt16LE(0, 4); // version
  b.writeUInt16LE(32, 6); // header size
  Buffer.from(FOURCC[pixFmt]).copy(b, 8);
  b.writeUInt16LE(width, 12);
  b.writeUInt16LE(height, 14);
  b.writeUInt32LE(IVF_TIME_BASE, 16); // time base denominator
  b.writeUInt32LE(1, 20); // numerator
  b.writeUInt32LE(0, 24); // frame count: unknown while streaming
  return b;
}

/**
 * The header of one frame of `bytes` bytes at `ptsSeconds`. The timestamp is rounded down to the
 * microsecond, and a thousandth of one below: ffmpeg's overlay pairs each frame of the video under it
 * with the last overlay frame at or before it, so an overlay frame must never land after the frame it
 * belongs to, whichever way the other side rounds its own timestamp to microseconds.
 */
export function ivfFrameHeader(bytes: number, ptsSeconds: number): Uint8Array {
  const b = Buffer.alloc(12);
  b.writeUInt32LE(bytes, 0);
  const us = Math.max(0, Math.floor(ptsSeconds * IVF_TIME_BASE - 1e-3));
  b.writeBigInt64LE(BigInt(us), 4);
  return b;
}
