/**
 * What every live source shares: a source owns its live pipeline (compose/live.ts), subscribed once for
 * all its viewers, and fans each processed frame out to them. The kinds (webcam.ts, live-ffmpeg.ts) only
 * say where frames come from; registry.ts lists them.
 */
import { BehaviorSubject, type Observable, type Subscription, switchMap } from 'rxjs';
import type { CamModel } from '../../models/index.ts';
import type { FfmpegTools } from '../ffmpeg/index.ts';
import type { ServerMessage, SourceSettings, SourceSpec, SourceState } from '../../protocol/index.ts';
import { liveStages, type LiveContext, type LiveInput } from '../compose/live.ts';
import type { ModelLock } from '../../models/pool/model-lock.ts';

/** What a source needs of a viewer (a session). */
/** What a live source reads of the server's configuration: a flat view (the server builds it with `liveSourceConfig`). */
export interface LiveSourceConfig {
  settings: SourceSettings;
  maxFrameSide: number;
  jpegQuality: number;
  displaySide: number;
  deviceSize: [number, number];
  tools: FfmpegTools | undefined;
  restartInitialDelayMs: number;
  restartMaxDelayMs: number;
  restartMaxAttempts: number;
}

export interface SourceViewer {
  /** A result message; the viewer may skip it when its socket is behind. */
  deliver(message: Uint8Array): void;
  /** A control message (status, settings, source); always sent. */
  notify(message: ServerMessage): void;
  /** Results skipped so far for this viewer. */
  readonly skipped: number;
}

/** Figures of one source, for `stats` messages, tests and the soak bench. */
export interface SourceStats {
  id: string;
  kind: SourceSpec['kind'];
  name: string;
  state: SourceState;
  viewers: number;
  /** Frames that reached the live gate / left the pipeline / were dropped at the gate. */
  received: number;
  processed: number;
  dropped: number;
  /** The running ffmpeg's pid (ffmpeg sources), undefined between runs. */
  pid: number | undefined;
  /** Restarts after ffmpeg failed. */
  restarts: number;
  /** Seconds into the source. */
  position: number;
}

/** The model a source runs and its id in the server's list of models. */
export interface SourceModel {
  id: string;
  model: CamModel;
}

/** What a source is built with: the model it starts on, the lock all models share, the server's live settings. */
export interface SourceContext {
  model: CamModel;
  /** Id of `model` in the server's list (default `default`). */
  modelId?: string;
  lock: ModelLock;
  config: LiveSourceConfig;
  /** The control message telling a viewer which model the source runs (sent on join and after a switch). */
  describeModel?: (model: SourceModel) => ServerMessage;
}

/** What the stages are built from: rebuilt (smoothing afresh) whenever either changes. */
interface StageConfig {
  settings: SourceSettings;
  model: SourceModel;
}

/** A live source and its viewers; subclasses supply the frames (`frames$`) and the description. */
export abstract class LiveSource {
  readonly viewers = new Set<SourceViewer>();
  protected readonly stages$: BehaviorSubject<StageConfig>;
  protected state: SourceState = 'starting';
  protected lastStatus: ServerMessage & { type: 'status' } = { type: 'status', state: 'starting' };
  protected received = 0;
  protected processed = 0;
  protected dropped = 0;
  protected restarts = 0;
  protected position = 0;
  private sub: Subscription | undefined;
  private windowStart = { at: performance.now(), received: 0, processed: 0 };
  private rates = { sourceFps: 0, processedFps: 0 };

  constructor(
    readonly id: string,
    readonly kind: SourceSpec['kind'],
    readonly name: string,
    protected readonly ctx: SourceContext,
  ) {
    this.stages$ = new BehaviorSubject<StageConfig>({ settings: { ...ctx.config.settings }, model: { id: ctx.modelId ?? 'default', model: ctx.model } });
  }

  get settings(): SourceSettings {
    return this.stages$.value.settings;
  }

  /** The model this source runs now. */
  get model(): SourceModel {
    return this.stages$.value.model;
  }

  /** The frames entering the pipeline (cold or shared; subscribed again when settings change). */
  protected abstract frames$(): Observable<LiveInput>;
  /** The `source` message describing this source to a viewer. */
  abstract describe(): ServerMessage & { type: 'source' };
  /** The ffmpeg pid, where there is one. */
  protected pid(): number | undefined {
    return undefined;
  }

  /** Adds a viewer (starting the pipeline for the first one) and tells it what it is watching. */
  addViewer(viewer: SourceViewer): void {
    this.viewers.add(viewer);
    viewer.notify({ ...this.describe(), viewers: this.viewers.size });
    viewer.notify({ type: 'settings', settings: this.settings });
    const described = this.ctx.describeModel?.(this.model);
    if (described) viewer.notify(described);
    viewer.notify(this.lastStatus);
    if (!this.sub) this.start();
  }

  /** Removes a viewer; returns true when none is left (the caller then disposes the source). */
  removeViewer(viewer: SourceViewer): boolean {
    this.viewers.delete(viewer);
    return this.viewers.size === 0;
  }

  /** Changes settings for every viewer; the stages are rebuilt, so smoothing starts afresh. */
  updateSettings(patch: Partial<SourceSettings>): void {
    const next: SourceSettings = { ...this.settings, ...patch };
    // Asking for top-k clears an explicit class list, and the other way round.
    if (patch.topK !== undefined && patch.classes === undefined) next.classes = null;
    this.stages$.next({ ...this.stages$.value, settings: next });
    this.broadcast({ type: 'settings', settings: next });
  }

  /**
   * Runs the source on `next` from the next frame on, for every viewer (the caller has loaded it: the old
   * model ran until now). The stages are rebuilt; class ids named in the settings belonged to the old model,
   * so the settings go back to top-k. Viewers get the new settings and the model message.
   */
  setModel(next: SourceModel): void {
    if (next.model === this.model.model) return;
    const settings: SourceSettings = { ...this.settings, classes: null, topK: Math.min(this.settings.topK, next.model.info.numClasses) };
    this.stages$.next({ settings, model: next });
    this.modelChanged();
    this.broadcast({ type: 'settings', settings });
    const described = this.ctx.describeModel?.(next);
    if (described) this.broadcast(described);
  }

  /** After a model switch: sources whose frames are sized for the model start them afresh (ffmpeg). */
  protected modelChanged(): void {}

  /** Rebuilds the stages with the same settings and model (smoothing starts afresh: a seek). */
  protected restartStages(): void {
    this.stages$.next({ ...this.stages$.value });
  }

  pause(_paused: boolean): string | undefined {
    return `${this.kind} sources cannot be paused`;
  }

  seek(_seconds: number): string | undefined {
    return `${this.kind} sources cannot seek`;
  }

  stats(): SourceStats {
    return {
      id: this.id,
      kind: this.kind,
      name: this.name,
      state: this.state,
      viewers: this.viewers.size,
      received: this.received,
      processed: this.processed,
      dropped: this.dropped,
      pid: this.pid(),
      restarts: this.restarts,
      position: this.position,
    };
  }

  /** Frames per second over the window since the last call (called once a second by the hub). */
  sampleRates(): { sourceFps: number; processedFps: number } {
    const now = performance.now();
    const dt = (now - this.windowStart.at) / 1000;
    if (dt > 0.2) {
      this.rates = {
        sourceFps: (this.received - this.windowStart.received) / dt,
        processedFps: (this.processed - this.windowStart.processed) / dt,
      };
      this.windowStart = { at: now, received: this.received, processed: this.processed };
    }
    return this.rates;
  }

  get droppedFrames(): number {
    return this.dropped;
  }

  protected broadcast(message: ServerMessage): void {
    for (const v of this.viewers) v.notify(message);
  }

  protected setStatus(status: Omit<ServerMessage & { type: 'status' }, 'type'>): void {
    this.state = status.state;
    this.lastStatus = { type: 'status', ...status };
    this.broadcast(this.lastStatus);
  }

  protected liveContext(model: CamModel): LiveContext {
    const { config } = this.ctx;
    return {
      model,
      lock: this.ctx.lock,
      maxJpegPixels: config.maxFrameSide * config.maxFrameSide,
      jpegQuality: config.jpegQuality,
      onDrop: () => {
        this.dropped++;
      },
      dropped: () => this.dropped,
    };
  }

  /** Subscribes the pipeline: the one subscription per source. */
  protected start(): void {
    this.sub = this.stages$
      .pipe(
        // A settings or model change rebuilds the stages over the same (shared) frames.
        switchMap(({ settings, model }) => this.frames$().pipe(liveStages(settings, this.liveContext(model.model)))),
      )
      .subscribe({
        next: (out) => {
          this.processed++;
          if (this.state !== 'live' && this.state !== 'paused') this.setStatus({ state: 'live' });
          // Fan-out point: one encoded message, every viewer; each viewer applies its own skip policy.
          for (const v of this.viewers) v.deliver(out.message);
        },
        error: (err: unknown) => this.failed(err),
      });
  }

  /** The pipeline ended with an error; the default tells the viewers and stops. */
  protected failed(err: unknown): void {
    this.sub = undefined;
    this.setStatus({ state: 'error', message: oneLine(err) });
  }

  /** Ends the pipeline (and any ffmpeg behind it). */
  dispose(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.viewers.clear();
  }
}

/** The first non-empty line of an error's message, at most 300 characters (for status messages). */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
