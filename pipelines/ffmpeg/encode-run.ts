/**
 * A running encoder (`VideoEncoder`): frames written to ffmpeg's stdin with backpressure, then either
 * finished (stdin ended, exit 0 awaited, temporary file renamed onto the target) or aborted (child
 * ended, temporary file deleted). Started by `encodeVideo` in encode.ts.
 */
import { rename, rm } from 'node:fs/promises';
import { InputError } from '../../models/index.ts';
import type { EncodePixFmt } from './encode-args.ts';
import { FfmpegError } from './errors.ts';
import type { Rational } from './rational.ts';
import { ivfFrameHeader } from './ivf.ts';
import { mendLastFrameDuration } from './mp4-last-duration.ts';
import { registerCleanup, type CpuTime, type FfmpegProcess } from './spawn.ts';

/** What `VideoEncoder.finish()` resolves with once the file is in place. */
export interface EncodeResult {
  out: string;
  /** Frames written to stdin. */
  frames: number;
  /** Size of the encoded frames without `filterComplex` (odd sizes padded to even); with it, the graph decides. */
  width: number;
  height: number;
  frameRate: Rational;
  audio: 'copy' | 'aac' | 'none';
  /** Wall time from start to rename, ms. */
  elapsedMs: number;
}

/** A running encoder. Call `finish()` or `abort()` exactly once at the end. */
export interface VideoEncoder {
  readonly pid: number | undefined;
  readonly commandLine: string;
  /** Where ffmpeg writes until the rename. */
  readonly tempPath: string;
  readonly out: string;
  /** Bytes each `write` must receive: `rawFrameBytes(width, height, inputPixFmt)`. */
  readonly frameBytes: number;
  readonly framesWritten: number;
  /**
   * Hands one frame to ffmpeg. Resolves at once while the pipe takes data, else after 'drain'
   * (`write() === false`). The encoder keeps a reference to `frame` until ffmpeg has read it: do not
   * modify it afterwards. Rejects with the FfmpegError when ffmpeg has failed. `ptsSeconds` is required
   * (and only allowed) with `frameTimestamps`, and must not decrease. `onReleased`, when given, is called
   * once the pipe has taken all of `frame`'s bytes (or the pipe failed): from then on the caller may reuse
   * the buffer. It is not called when `write` rejects before handing the frame to the pipe.
   */
  write(frame: Uint8Array, ptsSeconds?: number, onReleased?: () => void): Promise<void>;
  /** CPU time ffmpeg reported at exit (`measureCpu`), once it has ended. */
  cpu(): CpuTime | undefined;
  /** Ends stdin, awaits exit 0 and renames the temporary file to `out`. On failure deletes it and rejects. */
  finish(): Promise<EncodeResult>;
  /** Ends ffmpeg (stdin closed, SIGTERM, SIGKILL after the grace) and deletes the temporary file. */
  abort(): Promise<void>;
}

/** What an `EncodeRun` knows besides its process: the files, the frame layout and the figures it reports. */
export interface EncodePlan {
  /** Frames go as IVF with their timestamps (ivf.ts). */
  timed: boolean;
  /**
   * A timestamped MP4: should ffmpeg leave its last frame without a duration, give it one, lasting until
   * `endsAt` (seconds on the frames' clock) or, unknown, as long as the frame before it.
   */
  mendLastFrame?: { endsAt: number | undefined };
  out: string;
  /** The temporary name ffmpeg writes to, beside `out`. */
  temp: string;
  /** Size and layout of the frames written. */
  width: number;
  height: number;
  inputPixFmt: EncodePixFmt;
  frameBytes: number;
  /** Size of the encoded frames (odd sizes padded), for the result. */
  outWidth: number;
  outHeight: number;
  rate: Rational;
  audio: EncodeResult['audio'];
  /** `performance.now()` just before the spawn. */
  startedMs: number;
}

type EncodeState = 'open' | 'finishing' | 'finished' | 'aborted' | 'failed';

/** The `VideoEncoder` over one ffmpeg process that reads raw frames on stdin. */
export class EncodeRun implements VideoEncoder {
  readonly pid: number | undefined;
  readonly commandLine: string;
  readonly tempPath: string;
  readonly out: string;
  readonly frameBytes: number;
  private written = 0;
  /** Timestamps of the last two frames written (timed runs), newest last. */
  private readonly lastPts: number[] = [];
  private state: EncodeState = 'open';
  /** Waiters for 'drain' that must also wake when ffmpeg exits (one listener each, removed when settled). */
  private readonly exitWaiters = new Set<(err: unknown) => void>();
  private readonly removeTemp = (): Promise<void> => rm(this.plan.temp, { force: true });
  private readonly unregister: () => void;

  /** Takes ownership of `proc`: its temporary file is removed on failure, abort or `shutdownFfmpeg()`. */
  constructor(
    private readonly proc: FfmpegProcess,
    private readonly plan: EncodePlan,
  ) {
    this.pid = proc.pid;
    this.commandLine = proc.commandLine;
    this.tempPath = plan.temp;
    this.out = plan.out;
    this.frameBytes = plan.frameBytes;
    this.unregister = registerCleanup(this.removeTemp);
    void proc.closed.then(() => this.onClosed()).catch(() => {
      // Removing the temp file failed (permissions): finish()/abort() try again and report it.
    });
  }

  get framesWritten(): number {
    return this.written;
  }

  cpu(): CpuTime | undefined {
    return this.proc.cpu();
  }

  async write(frame: Uint8Array, ptsSeconds?: number, onReleased?: () => void): Promise<void> {
    const { out, width, height, inputPixFmt, timed } = this.plan;
    if (timed !== (ptsSeconds !== undefined) || (ptsSeconds !== undefined && !Number.isFinite(ptsSeconds))) {
      throw new InputError(timed ? `a frame for ${out} needs its timestamp (frameTimestamps), got ${ptsSeconds}` : `the encoder for ${out} takes no timestamps (frameTimestamps is off)`);
    }
    if (this.state === 'failed') throw await this.exitError();
    if (this.state !== 'open') throw new FfmpegError(`write after ${this.state === 'aborted' ? 'abort' : 'finish'} on the encoder for ${out}`, { file: out });
    if (!(frame instanceof Uint8Array) || frame.byteLength !== this.frameBytes) {
      throw new InputError(`a frame for ${out} must be ${this.frameBytes} bytes (${width}x${height} ${inputPixFmt}), got ${frame?.byteLength}`);
    }
    if (this.proc.exited) throw await this.exitError();
    this.written++;
    if (ptsSeconds !== undefined) {
      this.proc.stdin!.write(ivfFrameHeader(frame.byteLength, ptsSeconds));
      if (this.lastPts.push(ptsSeconds) > 2) this.lastPts.shift();
    }
    if (this.proc.stdin!.write(frame, onReleased && (() => onReleased()))) return;
    await this.drainOrExit();
  }

  async finish(): Promise<EncodeResult> {
    const { out, temp } = this.plan;
    if (this.state === 'failed') throw await this.exitError();
    if (this.state !== 'open') throw new FfmpegError(`finish after ${this.state} on the encoder for ${out}`, { file: out });
    this.state = 'finishing';
    this.proc.stdin!.end();
    try {
      await this.proc.done;
      if (this.proc.stopping) throw new FfmpegError(`encoding ${out} was aborted`, { file: out });
      const lastDuration = this.lastFrameDuration();
      if (lastDuration !== undefined) await mendLastFrameDuration(temp, lastDuration);
      await rename(temp, out);
    } catch (err) {
      if (this.state === 'finishing') this.state = 'failed';
      await this.removeTemp();
      this.unregister();
      throw err;
    }
    this.state = 'finished';
    this.unregister();
    return this.result();
  }

  async abort(): Promise<void> {
    if (this.state === 'finished' || this.state === 'aborted') return;
    this.state = 'aborted';
    await this.proc.stop();
    await this.removeTemp();
    this.unregister();
  }

  /** Seconds the last frame should last where the MP4 must be mended; undefined where it need not or cannot be. */
  private lastFrameDuration(): number | undefined {
    const mend = this.plan.mendLastFrame;
    const [before, last] = this.lastPts.length === 2 ? this.lastPts : [undefined, this.lastPts[0]];
    if (!mend || last === undefined) return undefined;
    const seconds = mend.endsAt !== undefined ? mend.endsAt - last : before !== undefined ? last - before : undefined;
    // Under half a millisecond is rounding (the input's own last frame has no duration either); over a
    // minute is not a frame's duration but a wrong end.
    return seconds !== undefined && seconds >= 5e-4 && seconds <= 60 ? seconds : undefined;
  }

  private result(): EncodeResult {
    const { out, outWidth, outHeight, rate, audio, startedMs } = this.plan;
    return {
      out,
      frames: this.written,
      width: outWidth,
      height: outHeight,
      frameRate: rate,
      audio,
      elapsedMs: performance.now() - startedMs,
    };
  }

  /** Resolves on stdin's 'drain'; rejects with the exit error should ffmpeg exit first. */
  private drainOrExit(): Promise<void> {
    const stdin = this.proc.stdin!;
    return new Promise<void>((resolve, reject) => {
      const onExit = (err: unknown): void => {
        stdin.off('drain', onDrain);
        reject(err);
      };
      const onDrain = (): void => {
        this.exitWaiters.delete(onExit);
        resolve();
      };
      stdin.once('drain', onDrain);
      this.exitWaiters.add(onExit);
    });
  }

  /** The child and its pipes are gone: a run still open failed, and blocked writes are woken. */
  private async onClosed(): Promise<void> {
    if (this.state === 'open') {
      // ffmpeg died while frames were still coming: nothing will be renamed, drop the partial file.
      this.state = 'failed';
      await this.removeTemp();
      this.unregister();
    }
    if (this.exitWaiters.size === 0) return;
    const err = await this.exitError();
    for (const w of this.exitWaiters) w(err);
    this.exitWaiters.clear();
  }

  /** Why writing can no longer go on: aborted, ffmpeg's failure, or an exit 0 before the input ended. */
  private async exitError(): Promise<unknown> {
    const out = this.plan.out;
    if (this.state === 'aborted') return new FfmpegError(`encoding ${out} was aborted`, { file: out });
    try {
      await this.proc.done;
    } catch (err) {
      return err;
    }
    return new FfmpegError(`ffmpeg stopped reading frames for ${out} after ${this.written} (exit code 0)`, {
      file: out,
      exitCode: 0,
      command: this.proc.commandLine,
    });
  }
}
