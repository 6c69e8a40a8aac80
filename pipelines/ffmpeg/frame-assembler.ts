import { ConfigError } from '../../models/index.ts';

/**
 * Cuts a byte stream of raw frames (ffmpeg `-f rawvideo`) into frames of exactly `frameBytes` bytes.
 *
 * Pipe reads arrive in chunks of any size (64 KiB is typical), unrelated to frame boundaries. A frame
 * lying wholly inside one chunk is returned as a view on that chunk (no copy); a frame spanning chunks
 * is copied once into its own buffer. Views keep their chunk alive and start at a non-zero
 * `byteOffset`: read them through the view, never through `.buffer` alone.
 *
 * Ownership: each returned frame belongs to the caller; the assembler never writes to it again.
 */
export class FrameAssembler {
  readonly frameBytes: number;
  private partial: Uint8Array | undefined;
  private filled = 0;
  private copied = 0;
  private viewed = 0;

  constructor(frameBytes: number) {
    if (!Number.isInteger(frameBytes) || frameBytes <= 0) {
      throw new ConfigError(`frameBytes must be a positive integer, got ${frameBytes}`);
    }
    this.frameBytes = frameBytes;
  }

  /** Bytes held towards the next, incomplete frame. */
  get pendingBytes(): number {
    return this.filled;
  }

  /** Frames returned as views (zero-copy) and as copies so far. */
  get stats(): { viewed: number; copied: number } {
    return { viewed: this.viewed, copied: this.copied };
  }

  /** Feeds one chunk; returns the frames it completed, in order (often none, sometimes several). */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    const size = this.frameBytes;
    let offset = 0;
    if (this.filled > 0) {
      const take = Math.min(size - this.filled, chunk.length);
      this.partial!.set(chunk.subarray(0, take), this.filled);
      this.filled += take;
      offset = take;
      if (this.filled === size) {
        out.push(this.partial!);
        this.copied++;
        this.partial = undefined;
        this.filled = 0;
      }
    }
    while (chunk.length - offset >= size) {
      // A plain Uint8Array view, not a Buffer slice: consumers get the standard type.
      out.push(new Uint8Array(chunk.buffer, chunk.byteOffset + offset, size));
      this.viewed++;
      offset += size;
    }
    if (offset < chunk.length) {
      this.partial = new Uint8Array(size);
      this.partial.set(chunk.subarray(offset), 0);
      this.filled = chunk.length - offset;
    }
    return out;
  }
}
