/**
 * The error base class every camstream folder throws, and the subclasses more than one folder needs.
 * Each error carries a stable `code` from the closed `ErrorCode` union, so callers (the CLI's exit
 * statuses, the server's HTTP answers and close codes, the worker pool's messages) switch on the code
 * and never parse a message. A new code is added here, where every switch over it can see it.
 */

/**
 * Every code a `CamstreamError` may carry, and who throws it:
 * - `CONFIG`: a configuration value is out of range or of the wrong type (`ConfigError`).
 * - `MODEL_LOAD`: a model could not be found, fetched, parsed or adapted (`ModelLoadError`).
 * - `NO_GAP_HEAD`: the model has no head that gives class activation maps (`NoGapHeadError`).
 * - `INPUT`: input does not fit (frames of the wrong size, an unknown review item, ...) (`InputError`).
 * - `FFMPEG`: an ffmpeg or ffprobe run failed (`FfmpegError`, pipelines/ffmpeg/errors.ts).
 * - `INTERRUPTED`: a job was stopped by a signal (`InterruptedError`, pipelines/jobs/video.ts).
 * - `DISPOSED`: a model or worker pool was used after `dispose()` (models/).
 * - `WORKER_ERROR`: an infer worker thread failed or exited early (models/pool/).
 */
export type ErrorCode =
  | 'CONFIG'
  | 'MODEL_LOAD'
  | 'NO_GAP_HEAD'
  | 'INPUT'
  | 'FFMPEG'
  | 'INTERRUPTED'
  | 'DISPOSED'
  | 'WORKER_ERROR';

/** Base class of camstream's errors; `code` is stable, the message is for people. */
export class CamstreamError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A configuration value is out of range or of the wrong type. The message names field, value and range. */
export class ConfigError extends CamstreamError {
  constructor(message: string) {
    super('CONFIG', message);
  }
}

/** A model could not be found, fetched, parsed or adapted (for example: no GAP head). */
export class ModelLoadError extends CamstreamError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MODEL_LOAD', message, options);
  }
}

/** The model has no head camstream can turn into class activation maps. */
export class NoGapHeadError extends CamstreamError {
  constructor(message: string) {
    super('NO_GAP_HEAD', message);
  }
}

/** Input frames do not fit the model (wrong byte length, empty batch, ...). */
export class InputError extends CamstreamError {
  constructor(message: string) {
    super('INPUT', message);
  }
}
