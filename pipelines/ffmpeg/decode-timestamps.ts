/**
 * Frame timestamps of a decode run. `-f rawvideo` carries none, so in `pts` mode they come from the
 * stderr lines of the `showinfo` filter at the end of the chain, one per frame, in pipe order; in
 * `rate` mode they are `index / rate`. See decode.ts for the whole scheme.
 */
import { rationalValue, type Rational } from './rational.ts';
import type { LogLine } from './spawn.ts';

const SHOWINFO_CONTEXT = /^Parsed_showinfo_(\d+)$/;
const SHOWINFO_FRAME = /^n:\s*(\d+)\s+pts:\s*(-?\d+|NOPTS)\s+pts_time:\s*(\S+)/;
const SHOWINFO_TIMEBASE = /^config in time_base:\s*(\d+)\/(\d+)/;

/** True for a line logged by a showinfo instance (ours, or one inside the caller's `filter`). */
export function isShowinfoLine(line: LogLine): boolean {
  return line.context !== undefined && SHOWINFO_CONTEXT.test(line.context);
}

function showinfoIndex(context: string): number {
  return Number(SHOWINFO_CONTEXT.exec(context)![1]);
}

/**
 * The timestamps waiting for their frames, in seconds from the start of the input. Fed with showinfo
 * lines (`readShowinfo`), read once per assembled frame (`take`).
 */
export class FrameTimestamps {
  /** Frame rate for `rate` mode and for filling gaps; set once the run knows it. */
  rate: Rational | undefined;
  private readonly queue: number[] = [];
  private lastPts: number | undefined;
  private timeBase: Rational | undefined;
  private showinfoContext: string | undefined;

  constructor(
    private readonly mode: 'pts' | 'rate',
    /** Added to ffmpeg's timestamps, which start at 0 after a seek. */
    private readonly startSeconds: number,
  ) {}

  /**
   * Reads one showinfo line (see `isShowinfoLine`). True when it announced one of our frames, whose
   * timestamp is then queued; false for a time base line or another instance's line.
   */
  readShowinfo(line: LogLine): boolean {
    const context = line.context!;
    const tb = SHOWINFO_TIMEBASE.exec(line.message);
    if (tb) {
      // Only the last showinfo of the chain is ours (a caller's `filter` may hold another one).
      if (this.showinfoContext === undefined || showinfoIndex(context) >= showinfoIndex(this.showinfoContext)) {
        this.showinfoContext = context;
        this.timeBase = { num: Number(tb[1]), den: Number(tb[2]) };
      }
      return false;
    }
    const m = SHOWINFO_FRAME.exec(line.message);
    if (!m) return false;
    // Should a build not log its time base, the first frame line names our instance.
    this.showinfoContext ??= context;
    if (context !== this.showinfoContext) return false;
    const pts = this.framePts(m[2], m[3]);
    // A missing timestamp takes its predecessor's plus one frame period.
    this.queue.push(Number.isNaN(pts) ? this.after(this.queue.at(-1) ?? this.lastPts) : this.startSeconds + pts);
    return true;
  }

  /**
   * The timestamp of the frame at `index`, or undefined while its showinfo line has not arrived yet.
   * `final`: the run has ended, so a missing line will never come and the timestamp is estimated.
   */
  take(index: number, final: boolean): number | undefined {
    let pts: number | undefined;
    if (this.mode === 'rate') pts = this.startSeconds + index / rationalValue(this.rate!);
    else if (this.queue.length > 0) pts = this.queue.shift()!;
    // Only reachable if ffmpeg wrote a frame whose showinfo line never arrived.
    else if (final) pts = this.after(this.lastPts);
    if (pts !== undefined) this.lastPts = pts;
    return pts;
  }

  /** Exact pts from the integer pts and the time base, not the 6-digit `pts_time`; NaN when unknown. */
  private framePts(pts: string, ptsTime: string): number {
    const tb = this.timeBase;
    if (pts !== 'NOPTS' && tb && tb.den > 0) return (Number(pts) * tb.num) / tb.den;
    if (ptsTime !== 'NOPTS' && Number.isFinite(Number(ptsTime))) return Number(ptsTime);
    return Number.NaN;
  }

  /** One frame period after `prev`, or the start when there is no earlier frame. */
  private after(prev: number | undefined): number {
    return prev === undefined ? this.startSeconds : prev + (this.rate ? 1 / rationalValue(this.rate) : 0);
  }
}
