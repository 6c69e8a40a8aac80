import { describe, expect, it } from 'vitest';
import { FrameAssembler } from '../../../pipelines/ffmpeg/index.ts';
// The seeded PRNG the builders use, so every run draws the same numbers and failures reproduce.
import { mulberry32 as rng } from '../../../common/index.ts';


function randomBytes(next: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
  return out;
}

/** Cuts `stream` into chunks whose sizes mix tiny reads, frame-sized reads and multi-frame reads. */
function cut(stream: Uint8Array, frameBytes: number, next: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  while (at < stream.length) {
    const kind = next();
    const size =
      kind < 0.3 ? 1 + Math.floor(next() * 3) : kind < 0.6 ? 1 + Math.floor(next() * frameBytes) : 1 + Math.floor(next() * frameBytes * 3.5);
    // Each chunk gets its own buffer at a random offset, as pipe reads do (views into larger allocations).
    const pad = Math.floor(next() * 8);
    const backing = new Uint8Array(pad + size);
    const chunk = backing.subarray(pad, pad + Math.min(size, stream.length - at));
    chunk.set(stream.subarray(at, at + chunk.length));
    chunks.push(chunk);
    at += chunk.length;
  }
  return chunks;
}

describe('FrameAssembler', () => {
  it('reassembles exactly the frames written, for 300 seeded random chunkings', () => {
    const next = rng(20160627);
    let viewedTotal = 0;
    let copiedTotal = 0;
    for (let trial = 0; trial < 300; trial++) {
      const frameBytes = 1 + Math.floor(next() * 3000);
      const frameCount = Math.floor(next() * 12);
      const stream = randomBytes(next, frameBytes * frameCount);
      const assembler = new FrameAssembler(frameBytes);
      const frames: Uint8Array[] = [];
      for (const chunk of cut(stream, frameBytes, next)) frames.push(...assembler.push(chunk));

      expect(frames.length).toBe(frameCount);
      expect(assembler.pendingBytes).toBe(0);
      frames.forEach((frame, i) => {
        expect(frame.byteLength).toBe(frameBytes);
        expect(Buffer.from(frame).equals(Buffer.from(stream.subarray(i * frameBytes, (i + 1) * frameBytes)))).toBe(true);
      });
      viewedTotal += assembler.stats.viewed;
      copiedTotal += assembler.stats.copied;
      expect(assembler.stats.viewed + assembler.stats.copied).toBe(frameCount);
    }
    // Both paths ran: frames inside one chunk as views, frames across chunks as copies.
    expect(viewedTotal).toBeGreaterThan(100);
    expect(copiedTotal).toBeGreaterThan(100);
  });

  it('returns views without copying when a chunk holds whole frames', () => {
    const frameBytes = 12;
    const chunk = randomBytes(rng(1), frameBytes * 5);
    const assembler = new FrameAssembler(frameBytes);
    const frames = assembler.push(chunk);
    expect(frames).toHaveLength(5);
    expect(assembler.stats).toEqual({ viewed: 5, copied: 0 });
    frames.forEach((f, i) => {
      expect(f.buffer).toBe(chunk.buffer);
      expect(f.byteOffset).toBe(chunk.byteOffset + i * frameBytes);
      expect(f).not.toBeInstanceOf(Buffer);
    });
  });

  it('keeps earlier frames intact while later chunks arrive', () => {
    const frameBytes = 10;
    const stream = randomBytes(rng(7), frameBytes * 4);
    const assembler = new FrameAssembler(frameBytes);
    const first = assembler.push(stream.subarray(0, 15)); // frame 0 (view) + half of frame 1
    const second = assembler.push(stream.slice(15, 40)); // rest of frame 1 (copy) + frames 2, 3
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(3);
    [...first, ...second].forEach((f, i) => expect([...f]).toEqual([...stream.subarray(i * 10, i * 10 + 10)]));
  });

  it('reports the bytes of an incomplete last frame', () => {
    const assembler = new FrameAssembler(100);
    expect(assembler.push(new Uint8Array(250))).toHaveLength(2);
    expect(assembler.pendingBytes).toBe(50);
  });

  it('rejects a frame size that is not a positive integer', () => {
    expect(() => new FrameAssembler(0)).toThrow(/frameBytes must be a positive integer, got 0/);
    expect(() => new FrameAssembler(1.5)).toThrow(/got 1.5/);
  });
});
