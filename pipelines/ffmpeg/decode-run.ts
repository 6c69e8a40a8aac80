/**
 * The state of one `decodeFrames$` subscription: the child, the frames on their way from the pipes to
 * the subscriber, the credits, and the pause/resume of the pipes. The scheme is described in decode.ts.
 */
import type { Readable } from 'node:stream';
import type { Subscriber, Subscription } from 'rxjs';
import { ConfigError } from '../../models/index.ts';
import { buildDecodeArgs, type SizedOutput } from './decode-args.ts';
import {
  BYTES_PER_PIXEL,
  resolveDecodeConfig,
  type DecodeConfig,
  type DecodedFrame,
  type DecodeStats,
  type ResolvedDecodeConfig,
} from './decode-config.ts';
import { FrameTimestamps, isShowinfoLine } from './decode-timestamps.ts';
import { confineInput, referenceRefusal } from './confine.ts';
import { FfmpegError } from './errors.ts';
import { FrameAssembler } from './frame-assembler.ts';
import { resolveInput, type ResolvedInput } from './input.ts';
import { locateFfmpeg, type FfmpegTools } from './locate.ts';
import { parseFfmpegInputListing, probeMedia, type MediaInfo } from './probe.ts';
import { spawnFfmpeg, type FfmpegProcess, type LogLine } from './spawn.ts';

/**
 * One run of ffmpeg feeding one subscriber. Frames move pipe -> `FrameAssembler` -> per-output queue ->
 * (joined with their timestamp and sibling outputs) `ready` -> subscriber, one per credit.
 * The constructor validates the options (ConfigError); `begin()` starts; `end()` is the teardown.
 */
export class DecodeRun {
  private readonly resolved: ResolvedDecodeConfig;
  private source: ResolvedInput;
  private readonly timestamps: FrameTimestamps;
  private closed = false;
  /** Aborted on teardown: ends a probe still running before ffmpeg starts. */
  private readonly stopping = new AbortController();
  private proc: FfmpegProcess | undefined;
  private creditsSub: Subscription | undefined;
  private credits: number;
  /** Whole frames, timed, waiting for a credit. */
  private readonly ready: DecodedFrame[] = [];
  /** Per output: images waiting for their timestamp and for the same frame on the other outputs. */
  private queues: Uint8Array[][] = [];
  private assemblers: FrameAssembler[] = [];
  private sized: SizedOutput[] = [];
  private nextIndex = 0;
  private emitted = 0;
  private decoded = 0;
  private paused = false;
  /** ffmpeg exited 0 and every frame it wrote is in `ready`. */
  private ended = false;
  /** Guards `deliver` against re-entry from a subscriber that grants credits synchronously. */
  private delivering = false;
  /** Info-level lines of ffmpeg's input listing, until it is parsed (`onInputInfo`). */
  private listing: Array<{ level: string; message: string }> | undefined;

  constructor(
    private readonly input: string,
    private readonly config: DecodeConfig,
    private readonly subscriber: Subscriber<DecodedFrame>,
  ) {
    this.resolved = resolveDecodeConfig(config);
    this.source = resolveInput(input, config.schemes);
    this.credits = config.credits$ ? 0 : Number.POSITIVE_INFINITY;
    this.timestamps = new FrameTimestamps(this.resolved.timestamps, this.resolved.startSeconds);
  }

  /** Listens for credits and starts ffmpeg (after locating it and, when a size or rate is missing, a probe). */
  begin(): void {
    if (this.config.credits$) {
      this.creditsSub = this.config.credits$.subscribe({
        next: (n) => this.grant(n),
        error: (err: unknown) => this.fail(err),
      });
    }
    this.start().catch((err: unknown) => this.fail(err));
  }

  /** Teardown on unsubscribe: stops listening and ends the child (stdin, pipes, SIGTERM, SIGKILL). */
  end(): void {
    this.closed = true;
    this.stopping.abort();
    this.creditsSub?.unsubscribe();
    void this.proc?.stop();
  }

  private grant(n: number): void {
    if (!Number.isFinite(n) || n < 0) {
      this.fail(new ConfigError(`credits$ must emit non-negative numbers of frames, got ${n}`));
      return;
    }
    this.credits += n;
    this.deliver();
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.stopping.abort();
    this.creditsSub?.unsubscribe();
    void this.proc?.stop();
    this.subscriber.error(err);
  }

  private async start(): Promise<void> {
    const { config, resolved } = this;
    const tools = config.tools ?? (await locateFfmpeg());
    if (this.closed) return;
    const needProbe = resolved.outputs.some((o) => o.width === undefined) || (resolved.timestamps === 'rate' && !resolved.fps);
    const info = config.probe ?? (needProbe ? await probeMedia(this.input, { tools, schemes: config.schemes, confine: config.confine, signal: this.stopping.signal }) : undefined);
    if (this.closed) return;
    if (config.confine) this.source = await confineInput(this.source, tools.ffmpeg.path, 'ffmpeg');
    if (this.closed) return;
    this.timestamps.rate = resolved.fps ?? info?.frameRate;
    this.sized = resolved.outputs.map((o) => ({
      ...o,
      width: o.width ?? info!.displayWidth,
      height: o.height ?? info!.displayHeight,
    }));
    this.spawn(tools);
  }

  private spawn(tools: FfmpegTools): void {
    const { resolved, sized } = this;
    const args = buildDecodeArgs(this.source, resolved, sized, tools);
    this.assemblers = sized.map((o) => new FrameAssembler(o.width * o.height * BYTES_PER_PIXEL[o.pixFmt]));
    this.queues = sized.map(() => []);
    const info = resolved.timestamps === 'pts';
    if (this.config.onInputInfo && info) this.listing = [];
    const running = spawnFfmpeg({
      binary: tools.ffmpeg.path,
      args,
      file: this.source.display,
      extraPipes: sized.length - 1 + (resolved.passthrough ? 1 : 0),
      inheritStdin: this.source.scheme === 'stdin',
      measureCpu: this.config.measureCpu === true && info,
      logLevel: info ? 'info' : 'error',
      // showinfo's own warnings (unknown side data) are not errors of the run.
      keepInTail: (line) => !isShowinfoLine(line),
      onLog: (line) => this.onLog(line),
      killGraceMs: resolved.killGraceMs,
    });
    this.proc = running;
    this.framePipes.forEach((pipe, i) => {
      pipe.on('data', (chunk: Buffer) => this.onChunk(i, chunk));
    });
    this.config.onStart?.({
      pid: running.pid,
      commandLine: running.commandLine,
      stats: () => this.stats(running),
      passthrough: resolved.passthrough ? running.pipes[sized.length] : undefined,
      cpu: () => running.cpu(),
    });
    running.done.then(
      () => this.onExit(running),
      (err: unknown) => this.fail((this.config.confine ? referenceRefusal(this.source.display, undefined, err) : undefined) ?? err),
    );
  }

  private onChunk(output: number, chunk: Buffer): void {
    if (this.closed) return;
    const frames = this.assemblers[output].push(chunk);
    if (frames.length === 0) return;
    this.queues[output].push(...frames);
    if (this.resolved.timestamps === 'rate' && output === 0) this.decoded += frames.length;
    this.join(false);
    this.deliver();
  }

  /** The pipes that carry raw frames to JS (the passthrough stream, if any, is the caller's to read). */
  private get framePipes(): readonly Readable[] {
    return this.proc ? this.proc.pipes.slice(0, this.sized.length) : [];
  }

  /** Collects the `Input #0` listing; once ffmpeg moves on to its outputs, parses it for `onInputInfo`. */
  private readListing(line: LogLine): void {
    const listing = this.listing!;
    if (line.level === 'info' && line.context === undefined && /^(Stream mapping:|Output #0)/.test(line.message)) {
      this.listing = undefined;
      let info: MediaInfo;
      try {
        info = parseFfmpegInputListing(this.source, listing);
      } catch (err) {
        this.fail(err);
        return;
      }
      try {
        this.config.onInputInfo!(info);
      } catch (err) {
        // The caller refused the input (too large, say): the run ends with that error.
        this.fail(err);
      }
      return;
    }
    if (listing.length < 500) listing.push({ level: line.level, message: line.message });
  }

  private onLog(line: LogLine): void {
    if (this.listing) this.readListing(line);
    if (isShowinfoLine(line)) {
      if (this.timestamps.readShowinfo(line)) {
        this.decoded++;
        this.join(false);
        this.deliver();
      }
      return;
    }
    if (line.level === 'warning' || line.level === 'error') {
      this.config.onDiagnostic?.(line.context ? `[${line.context}] ${line.message}` : line.message);
    }
  }

  /** ffmpeg exited 0: fail on a torn last frame, else flush what is left and complete once delivered. */
  private onExit(running: FfmpegProcess): void {
    if (this.closed || running.stopping) return;
    const partial = this.assemblers.find((a) => a.pendingBytes > 0);
    if (partial) {
      const display = this.source.display;
      this.fail(new FfmpegError(
        `ffmpeg ended ${display} in the middle of a frame (${partial.pendingBytes} of ${partial.frameBytes} bytes)`,
        { file: display, exitCode: 0, stderr: running.stderrTail(), command: running.commandLine },
      ));
      return;
    }
    this.join(true);
    this.ended = true;
    this.deliver();
  }

  /** Moves every frame that has all its outputs and its timestamp to `ready`; pauses the pipes when full. */
  private join(final: boolean): void {
    while (this.queues.every((q) => q.length > 0)) {
      const pts = this.timestamps.take(this.nextIndex, final);
      if (pts === undefined) {
        // showinfo lines precede their frames by a few at most; a long wait means this ffmpeg
        // does not print them as expected, and frames would pile up here without a bound.
        if (this.queues[0].length > this.resolved.maxBufferedFrames + 32) {
          this.fail(new FfmpegError(
            `ffmpeg printed no frame timestamps (showinfo) for ${this.source.display}; decode with timestamps: 'rate' instead`,
            { file: this.source.display, command: this.proc?.commandLine },
          ));
        }
        break;
      }
      this.ready.push(this.takeFrame(pts));
    }
    if (!this.paused && this.held() >= this.resolved.maxBufferedFrames) this.setPaused(true);
  }

  /**
   * Frames held in JS: ready ones plus whole ones (every output's pixels in) still waiting for their
   * showinfo timestamp. Counting the second kind keeps the bound when stderr lags behind stdout (a loaded
   * machine); pausing then never holds anything back, since stderr is never paused and ffmpeg prints a
   * frame's showinfo line before writing it. A frame with only some outputs in is not counted: pausing
   * for it would stop the pipe that still owes its other part.
   */
  private held(): number {
    return this.ready.length + (this.queues.length > 0 ? Math.min(...this.queues.map((q) => q.length)) : 0);
  }

  /** The next frame: the head of every output queue, the first as the frame, the others as `extra`. */
  private takeFrame(pts: number): DecodedFrame {
    const images = this.queues.map((q, i) => ({ data: q.shift()!, width: this.sized[i].width, height: this.sized[i].height }));
    return {
      index: this.nextIndex++,
      pts,
      pixFmt: this.sized[0].pixFmt,
      data: images[0].data,
      width: images[0].width,
      height: images[0].height,
      extra: images.slice(1),
    };
  }

  /** Emits ready frames while credits last; resumes the pipes below the bound; completes at the end. */
  private deliver(): void {
    if (this.delivering) return;
    this.delivering = true;
    try {
      while (!this.closed && this.ready.length > 0 && this.credits > 0) {
        this.credits--;
        this.emitted++;
        this.subscriber.next(this.ready.shift()!);
      }
      if (this.closed) return;
      if (this.paused && this.held() < this.resolved.maxBufferedFrames) this.setPaused(false);
      if (this.ended && this.ready.length === 0) {
        this.closed = true;
        this.creditsSub?.unsubscribe();
        this.subscriber.complete();
      }
    } finally {
      this.delivering = false;
    }
  }

  private setPaused(on: boolean): void {
    if (!this.proc || this.paused === on) return;
    this.paused = on;
    for (const p of this.framePipes) {
      if (on) p.pause();
      else p.resume();
    }
  }

  private stats(running: FfmpegProcess): DecodeStats {
    const frameBytes = (f: DecodedFrame): number => f.data.byteLength + f.extra.reduce((e, x) => e + x.data.byteLength, 0);
    return {
      framesDecoded: this.decoded,
      framesEmitted: this.emitted,
      bufferedFrames: this.ready.length,
      bufferedBytes:
        this.ready.reduce((s, f) => s + frameBytes(f), 0) +
        this.queues.reduce((s, q) => s + q.reduce((t, d) => t + d.byteLength, 0), 0) +
        this.assemblers.reduce((s, a) => s + a.pendingBytes, 0) +
        this.framePipes.reduce((s, p) => s + p.readableLength, 0),
      paused: this.paused,
    };
  }
}
