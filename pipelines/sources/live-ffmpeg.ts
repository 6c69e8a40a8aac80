/**
 * Live sources. A source owns its live pipeline (live-pipeline.ts) and fans each processed frame out to
 * its viewers. Two kinds:
 * - `WebcamSource`: frames pushed by one browser (its own viewer), JPEG or raw at about model size.
 * - `FfmpegSource`: a file under the media root, an RTSP/HTTP(S) URL or a v4l2 device, decoded by ffmpeg
 *   once and shared by every viewer that selects it; restarted with exponential backoff when ffmpeg dies.
 */
import {
  BehaviorSubject,
  concat,
  defer,
  map,
  NEVER,
  type Observable,
  retry,
  share,
  Subject,
  type Subscription,
  switchMap,
  tap,
  throwError,
  timer,
} from 'rxjs';
import type { CamModel } from '../../models/index.ts';
import { decodeFrames$, type DecodeHandle, type FfmpegTools, type InputScheme, type MediaInfo } from '../ffmpeg/index.ts';
import type { ResolvedServerConfig } from '../../server/config.ts';
import type { ServerMessage, SourceSettings, SourceSpec, SourceState } from '../../protocol/live.ts';
import { liveStages, type LiveContext, type LiveInput } from '../compose/live.ts';
import type { ModelLock } from '../../models/pool/model-lock.ts';

/** What a source needs of a viewer (a session). */
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

export interface SourceContext {
  model: CamModel;
  lock: ModelLock;
  config: ResolvedServerConfig;
}

export abstract class LiveSource {
  readonly viewers = new Set<SourceViewer>();
  protected readonly settings$: BehaviorSubject<SourceSettings>;
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
    this.settings$ = new BehaviorSubject<SourceSettings>({ ...ctx.config.settings });
  }

  get settings(): SourceSettings {
    return this.settings$.value;
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
    this.settings$.next(next);
    this.broadcast({ type: 'settings', settings: next });
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

  protected liveContext(): LiveContext {
    const { config } = this.ctx;
    return {
      model: this.ctx.model,
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
    const ctx = this.liveContext();
    this.sub = this.settings$
      .pipe(
        // A settings change rebuilds the stages over the same (shared) frames.
        switchMap((settings) => this.frames$().pipe(liveStages(settings, ctx))),
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

export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** Frames pushed by one browser; the owner is that browser's session, its only viewer. */
export class WebcamSource extends LiveSource {
  private readonly input$ = new Subject<LiveInput>();
  private size: [number, number] = [0, 0];
  /** Called when the pipeline fails on this client's data (a JPEG that does not decode). */
  onFailure: ((err: unknown) => void) | undefined;

  constructor(id: string, ctx: SourceContext) {
    super(id, 'webcam', 'webcam', ctx);
    this.state = 'live';
    this.lastStatus = { type: 'status', state: 'live' };
  }

  protected frames$(): Observable<LiveInput> {
    return this.input$;
  }

  push(frame: LiveInput): void {
    this.received++;
    if (frame.width !== this.size[0] || frame.height !== this.size[1]) {
      this.size = [frame.width, frame.height];
      this.broadcast({ ...this.describe(), viewers: this.viewers.size });
    }
    this.input$.next(frame);
  }

  describe(): ServerMessage & { type: 'source' } {
    return { type: 'source', kind: 'webcam', name: 'webcam', width: this.size[0], height: this.size[1], durationSeconds: null, seekable: false, loop: false, viewers: this.viewers.size };
  }

  protected override failed(err: unknown): void {
    super.failed(err);
    this.onFailure?.(err);
  }
}

/** How an ffmpeg source reads its input. */
export interface FfmpegInput {
  kind: 'file' | 'url' | 'device';
  /** The path or URL ffmpeg opens (files: the confined real path). */
  input: string;
  /** For display. */
  name: string;
  loop: boolean;
  /** From probing (files and URLs); devices have none. */
  probe: MediaInfo | undefined;
  schemes: readonly InputScheme[];
  tools: FfmpegTools | undefined;
}

interface Run {
  start: number;
  paused: boolean;
}

/** A server-side source decoded by ffmpeg and shared by its viewers. */
export class FfmpegSource extends LiveSource {
  private readonly run$: BehaviorSubject<Run>;
  private readonly shared$: Observable<LiveInput>;
  private handle: DecodeHandle | undefined;
  private counter = 0;
  private readonly fullSize: [number, number];
  private readonly displaySize: [number, number];

  constructor(id: string, private readonly src: FfmpegInput, ctx: SourceContext) {
    super(id, src.kind, src.name, ctx);
    const { config } = ctx;
    this.fullSize = src.probe ? [src.probe.displayWidth, src.probe.displayHeight] : [...config.deviceSize];
    const s = Math.min(1, config.displaySide / Math.max(...this.fullSize));
    // Even sides: JPEG's chroma subsampling and most players like them.
    this.displaySize = [Math.max(2, 2 * Math.round((this.fullSize[0] * s) / 2)), Math.max(2, 2 * Math.round((this.fullSize[1] * s) / 2))];
    this.run$ = new BehaviorSubject<Run>({ start: 0, paused: false });
    this.shared$ = this.run$.pipe(
      switchMap((run) => (run.paused ? NEVER : this.decodeWithRestart(run.start))),
      // Shared by the stages of every settings value: a settings change resubscribes synchronously, and
      // the reset waits a tick, so ffmpeg keeps running through it.
      share({ resetOnRefCountZero: () => timer(0) }),
    );
  }

  protected frames$(): Observable<LiveInput> {
    return this.shared$;
  }

  protected override pid(): number | undefined {
    return this.handle?.pid;
  }

  /** The decode run's live figures (for tests). */
  decodeHandle(): DecodeHandle | undefined {
    return this.handle;
  }

  describe(): ServerMessage & { type: 'source' } {
    return {
      type: 'source',
      kind: this.src.kind,
      name: this.src.name,
      width: this.fullSize[0],
      height: this.fullSize[1],
      durationSeconds: this.src.probe?.duration ?? null,
      seekable: this.seekable,
      loop: this.src.loop,
      viewers: this.viewers.size,
    };
  }

  private get seekable(): boolean {
    return this.src.kind === 'file' && this.src.probe?.duration !== undefined;
  }

  override pause(paused: boolean): string | undefined {
    const run = this.run$.value;
    if (run.paused === paused) return undefined;
    if (paused) {
      this.run$.next({ start: this.position, paused: true });
      this.setStatus({ state: 'paused', position: this.position });
    } else {
      // Live inputs resume at "now"; files where they stopped.
      this.setStatus({ state: 'starting', position: this.position });
      this.run$.next({ start: this.seekable ? this.position : 0, paused: false });
    }
    return undefined;
  }

  override seek(seconds: number): string | undefined {
    if (!this.seekable) return `${this.src.kind} source ${this.src.name} cannot seek`;
    const duration = this.src.probe!.duration!;
    const to = Math.max(0, Math.min(seconds, Math.max(0, duration - 0.05)));
    this.position = to;
    const paused = this.run$.value.paused;
    if (!paused) this.setStatus({ state: 'starting', position: to });
    else this.setStatus({ state: 'paused', position: to });
    this.run$.next({ start: to, paused });
    // New stages: smoothing must not carry maps across the jump.
    this.settings$.next({ ...this.settings });
    return undefined;
  }

  private decodeArgs(start: number) {
    const { config, model } = this.ctx;
    const pre = model.info.preprocess;
    const [inH, inW] = pre.inputSize;
    const live = this.src.kind !== 'file' && !this.src.input.startsWith('http');
    const inputOptions = [
      // -re: read at the native frame rate, as a live feed would arrive (files and HTTP files).
      ...(live ? [] : ['-re']),
      ...(this.src.loop ? ['-stream_loop', '-1'] : []),
      ...(this.src.kind === 'device' ? ['-f', 'v4l2', '-video_size', `${this.fullSize[0]}x${this.fullSize[1]}`] : []),
      ...(this.src.input.startsWith('rtsp:') ? ['-rtsp_transport', 'tcp'] : []),
    ];
    return {
      width: inW,
      height: inH,
      pixFmt: 'rgb24' as const,
      fit: pre.resize === 'letterbox' ? ('pad' as const) : ('stretch' as const),
      scaleFlags: 'area',
      extraOutputs: [{ width: this.displaySize[0], height: this.displaySize[1], pixFmt: 'rgb24' as const, scaleFlags: 'bilinear' }],
      startSeconds: start,
      inputOptions,
      probe: this.src.probe,
      tools: this.src.tools ?? config.tools,
      schemes: this.src.schemes,
      maxBufferedFrames: 2,
      killGraceMs: 1000,
      onStart: (h: DecodeHandle) => {
        this.handle = h;
      },
    };
  }

  /**
   * The decode, restarted with exponential backoff when ffmpeg fails (killed, stream dropped). A file
   * restarts where it was; a live stream at "now". Viewers get `restarting` with the attempt and delay,
   * then `live` with the next frame. A URL or device stream that simply ends counts as a failure; a file
   * played once ends with `ended`.
   */
  private decodeWithRestart(start: number): Observable<LiveInput> {
    const { config } = this.ctx;
    let first = true;
    const once$ = defer(() => {
      const from = first ? start : this.seekable ? this.position : 0;
      first = false;
      const decode$ = decodeFrames$(this.src.input, this.decodeArgs(from));
      return this.src.kind === 'file' ? decode$ : concat(decode$, throwError(() => new Error(`${this.src.name}: the stream ended`)));
    });
    return once$.pipe(
      retry({
        resetOnSuccess: true,
        delay: (err: unknown, attempt: number) => {
          this.handle = undefined;
          if (attempt > config.restartMaxAttempts) return throwError(() => err);
          this.restarts++;
          const retryInMs = Math.min(config.restartMaxDelayMs, config.restartInitialDelayMs * 2 ** (attempt - 1));
          this.setStatus({ state: 'restarting', attempt, retryInMs, message: oneLine(err) });
          return timer(retryInMs);
        },
      }),
      tap({
        complete: () => this.setStatus({ state: 'ended', position: this.position }),
        // Paused, ended, failed or unsubscribed: no ffmpeg runs for this source any more.
        finalize: () => {
          this.handle = undefined;
        },
      }),
      map((f): LiveInput => {
        this.received++;
        const duration = this.src.probe?.duration;
        this.position = this.src.loop && duration ? f.pts % duration : f.pts;
        return {
          frameId: this.counter++ >>> 0,
          pts: this.position,
          captureMs: Date.now(),
          arrivedAt: performance.now(),
          width: this.fullSize[0],
          height: this.fullSize[1],
          pixels: { data: f.data, width: f.width, height: f.height },
          display: f.extra[0],
        };
      }),
    );
  }

  override dispose(): void {
    super.dispose();
    this.run$.complete();
  }
}
