/**
 * Error classes of the models layer. Each carries a stable `code` so callers (CLI, server) can map
 * errors to exit codes and wire close codes without parsing messages.
 */
export class CamstreamError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
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
