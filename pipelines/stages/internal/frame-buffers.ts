/**
 * Reused frame buffers of one size. A fresh typed array of a packed 720p overlay (about 1.5 MB) costs its
 * page faults on every frame: the render stage alone took 3.6 ms a frame with fresh buffers and 0.8 with
 * reused ones; a reused buffer keeps its pixels, and its user repaints what changed (yuva.ts). A buffer
 * comes back through the releaser handed out with it, once its reader is done with it (for an overlay
 * frame: once ffmpeg's pipe has taken its bytes); one never released is simply collected.
 */
export class FrameBuffers {
  private readonly free: Uint8Array[] = [];

  /**
   * `keep`: how many returned buffers wait for reuse at most (more are dropped). `blank`: what a new
   * buffer is filled with (default: zeros).
   */
  constructor(
    readonly bytes: number,
    private readonly keep = 8,
    private readonly blank?: (buffer: Uint8Array) => void,
  ) {}

  /** A returned buffer as its last user left it (the caller redraws what it needs), else a new blank one. */
  take(): Uint8Array {
    return this.free.pop() ?? this.fresh();
  }

  private fresh(): Uint8Array {
    const buffer = new Uint8Array(this.bytes);
    this.blank?.(buffer);
    return buffer;
  }

  /** The function that gives `buffer` back for reuse; calls after the first do nothing. */
  releaser(buffer: Uint8Array): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (this.free.length < this.keep) this.free.push(buffer);
    };
  }

  /** Buffers waiting for reuse (tests). */
  get available(): number {
    return this.free.length;
  }
}
