/**
 * The ffmpeg source kinds (`file`, `url`, `device`): a file under the media root, an RTSP/HTTP(S) URL or a
 * v4l2 device, decoded by ffmpeg once and shared by every viewer that selects it. Files can pause, seek and
 * loop; a run that dies is restarted with exponential backoff.
 */
import { BehaviorSubject, concat, defer, map, NEVER, type Observable, retry, share, switchMap, tap, throwError, timer } from 'rxjs';
import { decodeFrames$, type DecodeHandle, type FfmpegTools, type InputScheme, type MediaInfo } from '../ffmpeg/index.ts';
import type { ServerMessage } from '../../protocol/index.ts';
import type { LiveInput } from '../compose/live.ts';
import { LiveSource, oneLine, type SourceContext } from './live-source.ts';
import { dropLateFrames } from './pace.ts';

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
    this.restartStages();
    return undefined;
  }

  /** ffmpeg scales frames to the model's input: a new model needs a new run (files go on where they were). */
  protected override modelChanged(): void {
    const run = this.run$.value;
    if (!run.paused) this.run$.next({ start: this.seekable ? this.position : 0, paused: false });
  }

  private decodeArgs(start: number) {
    const { config } = this.ctx;
    const pre = this.model.model.info.preprocess;
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
      // A media-root file may not name other files (HLS, ffconcat...): see ffmpeg/confine.ts.
      confine: this.src.kind === 'file',
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
      // A file plays at its own rate: frames late behind a slow model are dropped (and counted) here.
      if (this.src.kind === 'file') return decode$.pipe(dropLateFrames({ onLate: (pts) => this.lateFrame(pts) }));
      return concat(decode$, throwError(() => new Error(`${this.src.name}: the stream ended`)));
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
        this.position = this.positionOf(f.pts);
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

  /** Seconds into the file of a frame at `pts` (a looping file starts again at 0). */
  private positionOf(pts: number): number {
    const duration = this.src.probe?.duration;
    return this.src.loop && duration ? pts % duration : pts;
  }

  /** A frame the file's clock passed while the model was busy: played (the position moves), never inferred. */
  private lateFrame(pts: number): void {
    this.received++;
    this.dropped++;
    this.position = this.positionOf(pts);
  }

  override dispose(): void {
    super.dispose();
    this.run$.complete();
  }
}
