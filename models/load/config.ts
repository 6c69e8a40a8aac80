/**
 * `camstream.json`: what head discovery cannot know about a model (preprocessing, labels, tensor names).
 * Parsed and validated here so that an engine receives only well-formed values; every error names the
 * file, the field, the bad value and what is allowed.
 */
import { ConfigError } from '../../common/errors.ts';
import type { ModelFileConfig } from '../types.ts';

/** The file read beside a model (local folder, or next to a model URL). */
export const MODEL_CONFIG_FILE = 'camstream.json';

/** Labels file looked for beside a model when `camstream.json` names none. */
export const DEFAULT_LABELS_FILE = 'labels.txt';

/** Largest accepted input side, in pixels: far above any classifier input, small enough to catch typos. */
const MAX_INPUT_SIDE = 8192;

type FieldCheck = (value: unknown) => string | undefined;

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function oneOf(...allowed: string[]): FieldCheck {
  return (v) => (typeof v === 'string' && allowed.includes(v) ? undefined : `one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
}

function triple(positive: boolean): FieldCheck {
  const what = positive ? 'three finite numbers > 0' : 'three finite numbers';
  return (v) =>
    Array.isArray(v) && v.length === 3 && v.every((x) => isFiniteNumber(x) && (!positive || x > 0)) ? undefined : what;
}

const nonEmptyString: FieldCheck = (v) => (typeof v === 'string' && v.trim() !== '' ? undefined : 'a non-empty string');

/** One check per field of `ModelFileConfig`; the returned text is the allowed range, used in the error. */
const CHECKS: Record<keyof ModelFileConfig, FieldCheck> = {
  inputSize: (v) =>
    Array.isArray(v) && v.length === 2 && v.every((x) => Number.isInteger(x) && x >= 1 && x <= MAX_INPUT_SIDE)
      ? undefined
      : `[height, width], two integers from 1 to ${MAX_INPUT_SIDE}`,
  channelOrder: oneOf('rgb', 'bgr'),
  layout: oneOf('nhwc', 'nchw'),
  scale: (v) => (isFiniteNumber(v) && v > 0 ? undefined : 'a finite number > 0 (for example 0.00392156862745098 = 1/255)'),
  mean: triple(false),
  std: triple(true),
  resize: oneOf('stretch', 'letterbox'),
  resizeFilter: oneOf('triangle', 'area', 'bilinear'),
  preset: oneOf('imagenet', 'torchvision', 'tf', 'raw'),
  labels: nonEmptyString,
  featureTensor: nonEmptyString,
  weights: nonEmptyString,
  bias: nonEmptyString,
  quantization: (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? undefined : 'an object (the report camstream quantize writes)'),
};

function show(value: unknown): string {
  // JSON.stringify would print NaN and Infinity as null.
  if (value === undefined || (typeof value === 'number' && !Number.isFinite(value))) return String(value);
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return String(value);
  }
}

/**
 * Validates a parsed `camstream.json` (or `LoadOptions.config`) and returns a fresh frozen copy holding only
 * the fields that were set. `where` names the origin in errors (a path, a URL, or `LoadOptions.config`).
 * Unknown fields are rejected: a misspelt field silently ignored would load a model with wrong preprocessing.
 * @throws ConfigError naming the field, the bad value and what is allowed.
 */
export function parseModelFileConfig(raw: unknown, where: string): Readonly<ModelFileConfig> {
  if (raw === undefined || raw === null) return Object.freeze({});
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${where}: expected a JSON object of model settings, got ${show(raw)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(raw)) {
    if (!Object.hasOwn(CHECKS, field)) {
      throw new ConfigError(
        `${where}: unknown field '${field}' (value ${show(value)}); allowed fields: ${Object.keys(CHECKS).join(', ')}`,
      );
    }
    // An explicit undefined (only possible from code, not JSON) means "not set".
    if (value === undefined) continue;
    const allowed = CHECKS[field as keyof ModelFileConfig](value);
    if (allowed !== undefined) {
      throw new ConfigError(`${where}: field '${field}' has invalid value ${show(value)}; allowed: ${allowed}`);
    }
    out[field] = Array.isArray(value) ? Object.freeze([...value]) : value;
  }
  return Object.freeze(out) as Readonly<ModelFileConfig>;
}

/**
 * Parses the text of a `camstream.json` file.
 * @throws ConfigError naming the file when the text is not JSON or a field is invalid.
 */
export function parseModelFileConfigText(text: string, where: string): Readonly<ModelFileConfig> {
  let raw: unknown;
  try {
    // A UTF-8 byte order mark is legal in a file but not in JSON.parse.
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new ConfigError(`${where}: not valid JSON (${(err as Error).message})`);
  }
  return parseModelFileConfig(raw, where);
}

/** Field-by-field merge: `overrides` (LoadOptions.config) win over `file` (camstream.json). */
export function mergeModelFileConfig(
  file: Readonly<ModelFileConfig>,
  overrides: Readonly<ModelFileConfig>,
): Readonly<ModelFileConfig> {
  return Object.freeze({ ...file, ...overrides });
}

/**
 * Splits a labels file into one label per line. Trailing blank lines are dropped; blank lines inside are
 * kept because a label's line number is its class index.
 */
export function parseLabels(text: string): string[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}
