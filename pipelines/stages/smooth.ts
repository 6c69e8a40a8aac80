/**
 * `smoothCams`: temporal smoothing of class activation maps, per source, transport-free (the offline video
 * pipeline and the live server share it). Four parts, each against a flicker seen in per-frame CAM videos:
 *
 * 1. An exponential moving average of the RAW maps M_c (Zhou et al. 2016, sec. 2) and of the class
 *    probabilities, per class id, before any normalization: averaging normalized maps would average
 *    differently scaled things. A class outside this frame's top-k counts as zero evidence (its state
 *    decays), and is forgotten once its smoothed probability is negligible.
 * 2. A stable display scale: the running maximum of the smoothed maps, decaying slowly, shared by all
 *    classes. Per-frame min-max stretches whatever is there to full brightness, so a class that is not in
 *    the picture glows, and the brightness pumps from frame to frame.
 * 3. Hysteresis on the displayed class: it changes only when another class leads it by `switchMargin`
 *    (smoothed probability) for `switchFrames` frames in a row. The classes are still listed by smoothed
 *    probability; the held one is named by `shown`, so a reader of `ids` sees the true ranking.
 * 4. Reset on scene cuts, found cheaply from the model-size frames: the mean absolute difference of two
 *    32x32 grey thumbnails. After a cut the old scene's maps would otherwise bleed into the new one.
 *
 * With `pastWeight` 0 everything is off: raw maps, per-frame min-max, the raw top class (the baseline the
 * flicker figure is compared with). No tensors: maps are the engines' plain Float32Arrays.
 */
import { map, Observable, type OperatorFunction } from 'rxjs';
import { ConfigError, normalizeMap, type CamResult, type Frame } from '../../models/index.ts';
import type { StageTimings } from './frame.ts';

export interface SmoothConfig {
  /**
   * EMA weight of the past, in [0, 1): smoothed = pastWeight x previous + (1 - pastWeight) x this frame.
   * 0 turns all smoothing off (raw maps, per-frame min-max, no hysteresis). Default 0.7 (a time constant of
   * about 3 frames).
   */
  pastWeight?: number;
  /**
   * The display scale (the raw value shown at full brightness) is the largest smoothed map value seen,
   * multiplied by this every frame, in (0, 1]. Default 0.99 (half-life about 69 frames, 2.3 s at 30 fps).
   */
  scaleDecayPerFrame?: number;
  /** Smoothed probability by which a challenger must lead the displayed class, in [0, 1]. Default 0.05. */
  switchMargin?: number;
  /** Consecutive frames the same challenger must lead before the display switches, integer >= 1. Default 3. */
  switchFrames?: number;
  /**
   * Scene cut threshold: mean absolute difference of grey levels (0-255) between consecutive frames'
   * 32x32 thumbnails. Above it, all state resets. Default 40 (camera motion and lighting changes stay well
   * below; a hard cut between unrelated shots is typically 50-100). Infinity disables cut detection.
   */
  cutMeanAbsDiff?: number;
  /** A class whose smoothed probability falls below this, and is not displayed, is forgotten. Default 1e-3. */
  forgetBelow?: number;
}

export const DEFAULT_SMOOTH_CONFIG: Readonly<Required<SmoothConfig>> = Object.freeze({
  pastWeight: 0.7,
  scaleDecayPerFrame: 0.99,
  switchMargin: 0.05,
  switchFrames: 3,
  cutMeanAbsDiff: 40,
  forgetBelow: 1e-3,
});

export function resolveSmoothConfig(config: SmoothConfig = {}): Required<SmoothConfig> {
  const c: Required<SmoothConfig> = { ...DEFAULT_SMOOTH_CONFIG };
  for (const key of Object.keys(DEFAULT_SMOOTH_CONFIG) as Array<keyof SmoothConfig>) {
    if (config[key] !== undefined) c[key] = config[key]!;
  }
  const inRange = (key: keyof SmoothConfig, ok: (v: number) => boolean, range: string): void => {
    const v = c[key];
    if (typeof v !== 'number' || Number.isNaN(v) || !ok(v)) throw new ConfigError(`${key} must be ${range}, got ${String(v)}`);
  };
  inRange('pastWeight', (v) => v >= 0 && v < 1, 'a number in [0, 1)');
  inRange('scaleDecayPerFrame', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  inRange('switchMargin', (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
  inRange('switchFrames', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1');
  inRange('cutMeanAbsDiff', (v) => v >= 0, 'a number of grey levels >= 0 (Infinity disables)');
  inRange('forgetBelow', (v) => v >= 0 && v < 1, 'a number in [0, 1)');
  return c;
}

/**
 * One frame's smoothed maps. A CamResult (so the box functions take it as is) whose `ids` are the
 * tracked classes by smoothed probability, best first (the displayed class always among them, wherever
 * it ranks); as many as the engine returned for the frame.
 */
export interface SmoothedCams extends CamResult {
  /**
   * Position in `ids` of the displayed class, the one hysteresis holds (its map is drawn, its box is
   * outlined). Not always 0: a held class may rank below a challenger that has not yet led long enough.
   */
  shown: number;
  /** `ids.length` maps in [0, 1]: the smoothed raw maps over `displayScale` (clamped). Map `shown` is displayed. */
  normalized: Float32Array;
  /** Raw map value shown at full brightness (per-frame max of the shown map when smoothing is off). */
  displayScale: number;
  /** A scene cut was detected at this frame and the state was reset. */
  cut: boolean;
  /** The displayed class differs from the previous frame's. */
  switched: boolean;
  /**
   * Mean absolute change of the displayed normalized map from the previous frame (the flicker of this
   * frame), in [0, 1]; NaN on the first frame and after a cut.
   */
  change: number;
}

interface ClassState {
  map: Float32Array;
  probability: number;
  logit: number;
}

const THUMB = 32;

/**
 * A 32x32 grey thumbnail of a packed RGB frame (nearest samples, Rec. 601 luma weights). 1024 reads per
 * frame: the cut detector costs nothing next to inference.
 */
export function thumbnail(frame: Frame, out = new Float32Array(THUMB * THUMB)): Float32Array {
  const { data, width, height } = frame;
  for (let y = 0; y < THUMB; y++) {
    const sy = Math.min(height - 1, Math.floor(((y + 0.5) * height) / THUMB));
    for (let x = 0; x < THUMB; x++) {
      const sx = Math.min(width - 1, Math.floor(((x + 0.5) * width) / THUMB));
      const o = 3 * (sy * width + sx);
      out[y * THUMB + x] = 0.299 * data[o] + 0.587 * data[o + 1] + 0.114 * data[o + 2];
    }
  }
  return out;
}

/** Mean absolute difference of two equally long arrays. */
export function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return a.length === 0 ? 0 : s / a.length;
}

/** Running figures of one smoother. */
export interface SmoothStats {
  frames: number;
  cuts: number;
  /** Times the displayed class changed (cuts excluded). */
  switches: number;
  /** Mean of `change` over the frames where it is defined: the flicker figure. */
  flicker: number;
  /**
   * Box flicker, where the pipeline also computed boxes (`localizeCams`' `LocalizeStats`): mean 1 - IoU of
   * the displayed class's box between consecutive frames, cuts and class switches excluded, in [0, 1].
   */
  boxFlicker?: number;
}

/**
 * The smoothing state of ONE source. `update` per frame, in order; `reset()` clears temporal state (a
 * new shot, a seek, a reconnect). Holds plain arrays only, so there is nothing to dispose.
 */
export class CamSmoother {
  readonly config: Required<SmoothConfig>;
  private classes = new Map<number, ClassState>();
  private scale = 0;
  private displayed: number | undefined;
  private challenger: number | undefined;
  private challengerFrames = 0;
  private previousThumb: Float32Array | undefined;
  private thumbA = new Float32Array(THUMB * THUMB);
  private thumbB = new Float32Array(THUMB * THUMB);
  private previousDisplay: Float32Array | undefined;
  private fresh = true;
  private last: SmoothedCams | undefined;
  private changeSum = 0;
  private changeCount = 0;
  private counts = { frames: 0, cuts: 0, switches: 0 };

  constructor(config: SmoothConfig = {}) {
    this.config = resolveSmoothConfig(config);
  }

  /** Clears the temporal state (maps, scale, displayed class, previous thumbnail). Stats are kept. */
  reset(): void {
    this.classes.clear();
    this.scale = 0;
    this.displayed = undefined;
    this.challenger = undefined;
    this.challengerFrames = 0;
    this.previousThumb = undefined;
    this.previousDisplay = undefined;
    this.fresh = true;
    this.last = undefined;
  }

  stats(): SmoothStats {
    return { ...this.counts, flicker: this.changeCount > 0 ? this.changeSum / this.changeCount : 0 };
  }

  /**
   * The last output again, for a frame that reused its predecessor's result (`inferred: false`): nothing
   * new was observed, so the state must not count it twice.
   */
  repeat(): SmoothedCams | undefined {
    if (!this.last) return undefined;
    this.counts.frames++;
    this.changeCount++;
    return { ...this.last, cut: false, switched: false, change: 0 };
  }

  /**
   * Smooths one frame's result. `pixels` (the model-size frame) feeds the cut detector; without it no cut
   * is detected. The returned arrays are new and owned by the caller.
   */
  update(result: CamResult, pixels?: Frame): SmoothedCams {
    const cells = result.mapSize[0] * result.mapSize[1];
    if (this.last && (this.last.mapSize[0] !== result.mapSize[0] || this.last.mapSize[1] !== result.mapSize[1])) this.reset();
    const cut = this.detectCut(pixels);
    this.accumulate(result, cells);
    const before = this.displayed;
    const displayed = this.chooseDisplayed(this.leaderFrom(result.ids[0]));
    const { ids, maps, probabilities, scores, shown } = this.tracked(displayed, Math.min(result.ids.length, this.classes.size), cells);
    const { normalized, displayScale } = this.normalize(maps, ids.length, cells, shown);
    const change = this.measureChange(normalized.subarray(shown * cells, (shown + 1) * cells), cut, cells);
    const switched = !cut && before !== undefined && before !== displayed;
    this.counts.frames++;
    if (cut) this.counts.cuts++;
    if (switched) this.counts.switches++;

    this.last = { ids, scores, probabilities, maps, mapSize: result.mapSize, shown, normalized, displayScale, cut, switched, change };
    return this.last;
  }

  /** Part 4: true (and the state reset) when this frame's thumbnail differs from the last by more than the threshold. */
  private detectCut(pixels: Frame | undefined): boolean {
    if (!pixels || !Number.isFinite(this.config.cutMeanAbsDiff)) return false;
    let cut = false;
    const thumb = thumbnail(pixels, this.previousThumb === this.thumbA ? this.thumbB : this.thumbA);
    if (this.previousThumb && meanAbsDiff(thumb, this.previousThumb) > this.config.cutMeanAbsDiff) {
      this.reset();
      cut = true;
    }
    this.previousThumb = thumb;
    return cut;
  }

  /** Part 1: the EMA of each class's raw map, probability and logit; classes outside the top-k decay. */
  private accumulate(result: CamResult, cells: number): void {
    const w = this.config.pastWeight;
    const present = new Set<number>();
    for (let i = 0; i < result.ids.length; i++) {
      const id = result.ids[i];
      present.add(id);
      const raw = result.maps.subarray(i * cells, (i + 1) * cells);
      const p = result.probabilities[i];
      let st = this.classes.get(id);
      if (!st || w === 0) {
        // The first frame after a reset starts from what it sees; a class appearing later starts from
        // zero evidence, so one lucky frame cannot put it on screen.
        st = this.fresh || w === 0
          ? { map: Float32Array.from(raw), probability: p, logit: result.scores[i] }
          : { map: new Float32Array(cells), probability: 0, logit: result.scores[i] };
        this.classes.set(id, st);
        if (this.fresh || w === 0) continue;
      }
      for (let k = 0; k < cells; k++) st.map[k] = w * st.map[k] + (1 - w) * raw[k];
      st.probability = w * st.probability + (1 - w) * p;
      st.logit = w * st.logit + (1 - w) * result.scores[i];
    }
    for (const [id, st] of this.classes) {
      if (present.has(id)) continue;
      // Outside the top-k: zero evidence this frame.
      for (let k = 0; k < cells; k++) st.map[k] *= w;
      st.probability *= w;
      if (w === 0 || (st.probability < this.config.forgetBelow && id !== this.displayed)) this.classes.delete(id);
    }
    this.fresh = false;
  }

  /** The class with the highest smoothed probability; ties keep the engine's order (`first` is its top class). */
  private leaderFrom(first: number): number {
    let leader = first;
    for (const [id, st] of this.classes) if (st.probability > this.classes.get(leader)!.probability) leader = id;
    return leader;
  }

  /** Part 3: hysteresis. The displayed class after this frame, given this frame's leader. */
  private chooseDisplayed(leader: number): number {
    const c = this.config;
    if (c.pastWeight === 0 || this.displayed === undefined || !this.classes.has(this.displayed)) {
      this.displayed = leader;
      this.challenger = undefined;
      this.challengerFrames = 0;
    } else if (leader !== this.displayed && this.classes.get(leader)!.probability > this.classes.get(this.displayed)!.probability + c.switchMargin) {
      this.challengerFrames = leader === this.challenger ? this.challengerFrames + 1 : 1;
      this.challenger = leader;
      if (this.challengerFrames >= c.switchFrames) {
        this.displayed = leader;
        this.challenger = undefined;
        this.challengerFrames = 0;
      }
    } else {
      this.challenger = undefined;
      this.challengerFrames = 0;
    }
    return this.displayed;
  }

  /**
   * `count` tracked classes, copied into new arrays: the displayed one and the `count - 1` most probable
   * others, all by smoothed probability (the displayed one first among equals).
   */
  private tracked(displayed: number, count: number, cells: number): Pick<SmoothedCams, 'ids' | 'maps' | 'probabilities' | 'scores' | 'shown'> {
    const p = (id: number): number => this.classes.get(id)!.probability;
    const others = [...this.classes.keys()].filter((id) => id !== displayed).sort((a, b) => p(b) - p(a));
    // A stable sort: the displayed class stays ahead of any class tied with it.
    const ids = Int32Array.from([displayed, ...others.slice(0, count - 1)].sort((a, b) => p(b) - p(a)));
    const maps = new Float32Array(ids.length * cells);
    const probabilities = new Float32Array(ids.length);
    const scores = new Float32Array(ids.length);
    ids.forEach((id, i) => {
      const st = this.classes.get(id)!;
      maps.set(st.map, i * cells);
      probabilities[i] = st.probability;
      scores[i] = st.logit;
    });
    return { ids, maps, probabilities, scores, shown: ids.indexOf(displayed) };
  }

  /** Part 2: the maps over the stable display scale (or, with smoothing off, each over its own range). */
  private normalize(maps: Float32Array, count: number, cells: number, shown: number): { normalized: Float32Array; displayScale: number } {
    const normalized = new Float32Array(maps.length);
    if (this.config.pastWeight === 0) {
      // Off: each map stretched to its own range, the per-frame look smoothing is compared against.
      for (let i = 0; i < count; i++) {
        normalizeMap(maps.subarray(i * cells, (i + 1) * cells), 'minmax', { out: normalized.subarray(i * cells, (i + 1) * cells) });
      }
      return { normalized, displayScale: maxOf(maps.subarray(shown * cells, (shown + 1) * cells)) };
    }
    let frameMax = 0;
    for (const st of this.classes.values()) frameMax = Math.max(frameMax, maxOf(st.map));
    this.scale = Math.max(this.scale * this.config.scaleDecayPerFrame, frameMax);
    const displayScale = this.scale > 0 ? this.scale : 1;
    normalizeMap(maps, 'fixed', { scale: displayScale, out: normalized });
    return { normalized, displayScale };
  }

  /** The flicker of this frame: mean change of the displayed map since the last frame (NaN after a cut). */
  private measureChange(display: Float32Array, cut: boolean, cells: number): number {
    let change = Number.NaN;
    if (!cut && this.previousDisplay && this.previousDisplay.length === cells) {
      change = meanAbsDiff(display, this.previousDisplay);
      this.changeSum += change;
      this.changeCount++;
    }
    this.previousDisplay = Float32Array.from(display);
    return change;
  }
}

function maxOf(a: Float32Array): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
  return m;
}

/** What `smoothCams` needs of a frame record. */
export interface SmoothInput {
  result: CamResult;
  /** Model-size pixels for the cut detector (optional). */
  pixels?: Frame;
  /** False for a frame that reused its predecessor's result; it repeats the last output. Default true. */
  inferred?: boolean;
  ms?: StageTimings;
}

/**
 * Adds `cams` (SmoothedCams) to each frame. One CamSmoother per subscription, so each source has its own
 * state; `onStats` gets the smoother's figures when the stream completes (flicker, cuts, switches).
 * Lossless, synchronous, one output per input.
 */
export function smoothCams<T extends SmoothInput>(
  config: SmoothConfig = {},
  onStats?: (stats: SmoothStats) => void,
): OperatorFunction<T, T & { cams: SmoothedCams }> {
  const resolved = resolveSmoothConfig(config);
  return (source) => {
    return new Observable<T & { cams: SmoothedCams }>((subscriber) => {
      const s = new CamSmoother(resolved);
      return source
        .pipe(
          map((frame) => {
            const t0 = performance.now();
            const cams = (frame.inferred === false ? s.repeat() : undefined) ?? s.update(frame.result, frame.pixels);
            if (frame.ms) frame.ms.smooth = performance.now() - t0;
            return { ...frame, cams };
          }),
        )
        .subscribe({
          next: (v) => subscriber.next(v),
          error: (e: unknown) => subscriber.error(e),
          complete: () => {
            onStats?.(s.stats());
            subscriber.complete();
          },
        });
    });
  };
}
