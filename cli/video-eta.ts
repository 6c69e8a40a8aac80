/**
 * The time left of a `camstream video` run, from the frame throughput measured while frames flow. Start-up
 * (model load, probing, the batch-size choice, ffmpeg's first frame) is not throughput: counting it, or
 * guessing before frames come, gave an ETA of 0 s at the start. Until enough frames have been seen the
 * estimate is undefined ("estimating").
 */

/** How the estimate is made. */
export interface EtaConfig {
  /** Frames after the first one before an estimate is given. Default 3. */
  minFrames: number;
  /** Milliseconds after the first frame before an estimate is given. Default 500. */
  minSpanMs: number;
  /** Throughput is measured over the most recent window of this many milliseconds. Default 5000. */
  windowMs: number;
}

export const DEFAULT_ETA_CONFIG: Readonly<EtaConfig> = Object.freeze({ minFrames: 3, minSpanMs: 500, windowMs: 5000 });

/** Frames done at a time (ms, any monotonic clock). */
interface Sample {
  frames: number;
  atMs: number;
}

/** Throughput and time left, from `observe(frames, atMs)` calls as frames finish. */
export class FrameEta {
  private readonly config: EtaConfig;
  private readonly samples: Sample[] = [];

  constructor(config: Partial<EtaConfig> = {}) {
    this.config = { ...DEFAULT_ETA_CONFIG, ...config };
  }

  /** Records that `frames` frames in all were done at `atMs`. */
  observe(frames: number, atMs: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && frames <= last.frames) return;
    this.samples.push({ frames, atMs });
    // Keep the first sample (it tells whether enough has been seen) and the window.
    while (this.samples.length > 2 && atMs - this.samples[1].atMs > this.config.windowMs) this.samples.splice(1, 1);
  }

  /** Frames per second over the recent window; undefined while too little has been seen. */
  fps(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || last.frames - first.frames < this.config.minFrames || last.atMs - first.atMs < this.config.minSpanMs) return undefined;
    // The window's oldest sample, unless the window holds only the newest one.
    const from = this.samples.length > 2 ? this.samples[1] : first;
    const span = last.atMs - from.atMs;
    return span > 0 ? ((last.frames - from.frames) * 1000) / span : undefined;
  }

  /** Seconds left for `totalFrames`; undefined while estimating or when the total is unknown. */
  secondsLeft(totalFrames: number | undefined): number | undefined {
    const fps = this.fps();
    const last = this.samples[this.samples.length - 1];
    if (fps === undefined || totalFrames === undefined || !last) return undefined;
    return Math.max(0, totalFrames - last.frames) / fps;
  }
}

/** `1m05s`, `42s`, `1h02m`; "estimating" for undefined. */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return 'estimating';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
