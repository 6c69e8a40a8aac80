import { CamstreamError } from '../../models/index.ts';

/** What an `FfmpegError` knows about the run that failed. Every field is optional: a missing binary has no exit. */
export interface FfmpegFailure {
  /** The file or URL the run was about (the input of a decode or probe, the output of an encode). */
  file?: string;
  /** Exit status, or null when the process ended by a signal or never started. */
  exitCode?: number | null;
  /** The signal that ended the process, if any. */
  signal?: NodeJS.Signals | null;
  /** The last lines ffmpeg wrote to stderr at warning level or worse, oldest first. */
  stderr?: readonly string[];
  /** The command line, shell-quoted for reading (it was never run through a shell). */
  command?: string;
}

/**
 * ffmpeg or ffprobe could not be found, could not start, exited with a non-zero status or produced
 * output camstream cannot use. The message names the file and quotes what ffmpeg said.
 */
export class FfmpegError extends CamstreamError {
  readonly file: string | undefined;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: readonly string[];
  readonly command: string | undefined;

  constructor(message: string, failure: FfmpegFailure = {}, options?: { cause?: unknown }) {
    super('FFMPEG', message, options);
    this.file = failure.file;
    this.exitCode = failure.exitCode ?? null;
    this.signal = failure.signal ?? null;
    this.stderr = Object.freeze([...(failure.stderr ?? [])]);
    this.command = failure.command;
  }
}
