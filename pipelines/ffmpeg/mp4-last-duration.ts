/**
 * Mending the last frame's duration in an MP4 that ffmpeg wrote. ffmpegs before 5.1 (without `-fps_mode`,
 * such as the npm build) give the last packet of a timestamped encode no duration: the MP4's sample table
 * then ends with a sample of duration 0, and the video is one frame shorter than its input. This sets that
 * sample's duration and the durations derived from it (the media header, the track header, the movie
 * header and a one-entry edit list), in place: only numbers change, never a box's size, so the file's
 * offsets stay valid with the index at either end.
 *
 * The boxes are read from ISO/IEC 14496-12: a box is a 32-bit size (1: a 64-bit size follows the type;
 * 0: to the end of the file) and a four-character type; full boxes start with a version byte and 24 bits
 * of flags, and version 1 widens times and durations to 64 bits.
 */
import { open, type FileHandle } from 'node:fs/promises';

interface Box {
  type: string;
  /** Offset of the box's payload (after size, type and any 64-bit size) within the buffer or file. */
  payload: number;
  /** Offset just past the box. */
  end: number;
}

/** The boxes in `buf` between `start` and `end`. */
function boxesIn(buf: Buffer, start: number, end: number): Box[] {
  const boxes: Box[] = [];
  let at = start;
  while (at + 8 <= end) {
    let size = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    let header = 8;
    if (size === 1) {
      if (at + 16 > end) break;
      size = Number(buf.readBigUInt64BE(at + 8));
      header = 16;
    } else if (size === 0) {
      size = end - at;
    }
    if (size < header || at + size > end) break;
    boxes.push({ type, payload: at + header, end: at + size });
    at += size;
  }
  return boxes;
}

function child(buf: Buffer, parent: Box, type: string): Box | undefined {
  return boxesIn(buf, parent.payload, parent.end).find((b) => b.type === type);
}

/** Where a full box keeps its duration, and how wide it is. */
function durationField(buf: Buffer, box: Box, v0: number, v1: number): { at: number; wide: boolean } {
  const wide = buf[box.payload] === 1;
  return { at: box.payload + (wide ? v1 : v0), wide };
}

/** The timescale of a movie or media header (ticks per second). */
function timescaleOf(buf: Buffer, header: Box): number {
  return buf.readUInt32BE(header.payload + (buf[header.payload] === 1 ? 20 : 12));
}

function readField(buf: Buffer, f: { at: number; wide: boolean }): number {
  return f.wide ? Number(buf.readBigUInt64BE(f.at)) : buf.readUInt32BE(f.at);
}

function writeField(buf: Buffer, f: { at: number; wide: boolean }, value: number): void {
  if (f.wide) buf.writeBigUInt64BE(BigInt(value), f.at);
  else buf.writeUInt32BE(Math.min(value, 0xffffffff), f.at);
}

/** The top-level `moov` box of the file: its offset and its bytes. */
async function readMoov(file: FileHandle): Promise<{ offset: number; bytes: Buffer } | undefined> {
  const { size: fileSize } = await file.stat();
  const head = Buffer.alloc(16);
  let at = 0;
  while (at + 8 <= fileSize) {
    await file.read(head, 0, 16, at);
    let size = head.readUInt32BE(0);
    const type = head.toString('latin1', 4, 8);
    if (size === 1) size = Number(head.readBigUInt64BE(8));
    else if (size === 0) size = fileSize - at;
    if (size < 8 || at + size > fileSize) return undefined;
    if (type === 'moov') {
      const bytes = Buffer.alloc(size);
      await file.read(bytes, 0, size, at);
      return { offset: at, bytes };
    }
    at += size;
  }
  return undefined;
}

/**
 * Gives the last sample of the file's first video track `seconds` of duration when it has none, and
 * lengthens the track, the movie and a one-entry edit list to match. Resolves true when the file was
 * changed; false when there was nothing to mend (the last sample has a duration, `seconds` rounds to 0)
 * or the file is not an MP4 it can read.
 */
export async function mendLastFrameDuration(path: string, seconds: number): Promise<boolean> {
  if (!(seconds > 0) || !Number.isFinite(seconds)) return false;
  const file = await open(path, 'r+');
  try {
    const moovAt = await readMoov(file);
    if (!moovAt) return false;
    const buf = moovAt.bytes;
    const moov: Box = { type: 'moov', payload: 8, end: buf.length };
    const mvhd = child(buf, moov, 'mvhd');
    if (!mvhd) return false;
    const movieScale = timescaleOf(buf, mvhd);
    for (const trak of boxesIn(buf, moov.payload, moov.end).filter((b) => b.type === 'trak')) {
      const mdia = child(buf, trak, 'mdia');
      const hdlr = mdia && child(buf, mdia, 'hdlr');
      if (!mdia || !hdlr || buf.toString('latin1', hdlr.payload + 8, hdlr.payload + 12) !== 'vide') continue;
      const mdhd = child(buf, mdia, 'mdhd');
      const minf = child(buf, mdia, 'minf');
      const stbl = minf && child(buf, minf, 'stbl');
      const stts = stbl && child(buf, stbl, 'stts');
      const tkhd = child(buf, trak, 'tkhd');
      if (!mdhd || !stts || !tkhd) return false;
      const mediaScale = timescaleOf(buf, mdhd);
      const entries = buf.readUInt32BE(stts.payload + 4);
      if (entries === 0 || mediaScale === 0 || movieScale === 0) return false;
      const last = stts.payload + 8 + (entries - 1) * 8;
      // Only a last sample of its own with no duration is mended (a run of zero-length samples is not).
      if (buf.readUInt32BE(last) !== 1 || buf.readUInt32BE(last + 4) !== 0) return false;
      const added = Math.round(seconds * mediaScale);
      if (added === 0) return false;
      buf.writeUInt32BE(added, last + 4);
      const mediaDuration = durationField(buf, mdhd, 16, 24);
      writeField(buf, mediaDuration, readField(buf, mediaDuration) + added);
      const addedMovie = Math.round((added * movieScale) / mediaScale);
      const trackDuration = durationField(buf, tkhd, 20, 28);
      const newTrack = readField(buf, trackDuration) + addedMovie;
      writeField(buf, trackDuration, newTrack);
      const edts = child(buf, trak, 'edts');
      const elst = edts && child(buf, edts, 'elst');
      if (elst && buf.readUInt32BE(elst.payload + 4) === 1) {
        const segment = { at: elst.payload + 8, wide: buf[elst.payload] === 1 };
        writeField(buf, segment, readField(buf, segment) + addedMovie);
      }
      const movieDuration = durationField(buf, mvhd, 16, 24);
      if (readField(buf, movieDuration) < newTrack) writeField(buf, movieDuration, newTrack);
      await file.write(buf, 0, buf.length, moovAt.offset);
      return true;
    }
    return false;
  } finally {
    await file.close();
  }
}
