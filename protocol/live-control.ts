/**
 * The live protocol's text side (docs/protocol.md): JSON control messages with a `type`, both ways, and
 * `parseClientMessage`, the validator every client message goes through. A bad message is refused with a
 * ProtocolViolation whose close code is BadMessage or MessageTooLarge and whose reason names the field and
 * the value. Like live.ts it runs in the browser and in Node, and imports nothing but live.ts.
 */
import { CloseCode, ProtocolViolation, type WireLimits } from './live.ts';

// ---------------------------------------------------------------------------------------------------------
// JSON control messages

/** A source a viewer can select. File paths are relative to the server's media root. */
export type SourceSpec =
  | { kind: 'webcam' }
  | { kind: 'file'; path: string; loop?: boolean }
  | { kind: 'url'; url: string }
  | { kind: 'device'; path: string };

export type BoxRuleSetting = 'paper' | 'official' | 'off';

/** What a viewer may change on its source (applies to every viewer of a shared source). */
export interface SourceSettings {
  /** Classes with maps per frame, best first, in [1, maxTopK]. */
  topK: number;
  /** Maps for exactly these class ids instead of the top-k; null for top-k. */
  classes: number[] | null;
  /** EMA weight of the past in [0, 1); 0 turns smoothing off (see pipelines' smoothCams). */
  smoothing: number;
  boxRule: BoxRuleSetting;
  /** Paper rule threshold, a fraction of the map maximum in [0, 1). */
  threshold: number;
}

export type ClientMessage =
  | { type: 'select'; source: SourceSpec }
  | { type: 'settings'; settings: Partial<SourceSettings> }
  | { type: 'pause'; paused: boolean }
  | { type: 'seek'; seconds: number }
  /** Run the selected source on another model of `hello.models` (by id: a viewer never names a path). */
  | { type: 'model'; id: string }
  | { type: 'ping'; t: number };

export interface ModelSummary {
  engine: string;
  backend: string;
  /** The model's file or folder name, or a URL's scheme, host and last segment: never a server path or a URL's secrets. */
  source: string;
  /** `[height, width]`. */
  inputSize: [number, number];
  resize: 'stretch' | 'letterbox';
  /** `[h, w, k]`. */
  featureShape: [number, number, number];
  numClasses: number;
  /** What the model is for, in a few words for the page (e.g. the embedded digits model's); absent if unknown. */
  note?: string;
  /** The name the server lists it under (`hello.models`); absent from older servers. */
  name?: string;
}

/** One model a viewer may pick (`hello.models`): an id and what the page shows, never a path. */
export interface ModelChoice {
  id: string;
  name: string;
  /** What the model is for (the embedded digits model's note), if known. */
  note?: string;
}

/** Where a model being loaded for a source stands (`model-status`). */
export type ModelLoadState = 'loading' | 'ready' | 'failed';

export type SourceState = 'starting' | 'live' | 'paused' | 'restarting' | 'ended' | 'error';

export type ServerMessage =
  | {
      type: 'hello';
      protocol: number;
      model: ModelSummary;
      labels: string[];
      /** 256-entry RGB lookup tables (768 bytes), base64, by name. */
      colormaps: Record<string, string>;
      limits: WireLimits;
      /** Files under the media root the viewer may select (relative paths); empty without a root. */
      media: string[];
      /** Which source kinds this server accepts. */
      sourceKinds: Array<SourceSpec['kind']>;
      settings: SourceSettings;
      maxTopK: number;
      /** Models a viewer may pick for its source (`model` message); the first is `hello.model`. */
      models?: ModelChoice[];
      /** Id of `hello.model` in `models`. */
      modelId?: string;
    }
  | {
      /** The model the viewer's source runs: sent with each `source`, and to every viewer after a switch. */
      type: 'model';
      id: string;
      model: ModelSummary;
      labels: string[];
      maxTopK: number;
      /**
       * Index of the class meaning "nothing to see" (a label `no digit`), or null: the page shows that class
       * leading, or a top probability under `lowConfidence`, as "no digit", and draws no map for it.
       */
      noneClass: number | null;
      /** Top probability under which a model with a `noneClass` is read as showing none, in [0, 1]. */
      lowConfidence: number;
    }
  | {
      /** A model being loaded for the viewer's source: `loading` (bytes when the loader reports them), then `ready` or `failed`. */
      type: 'model-status';
      id: string;
      name: string;
      state: ModelLoadState;
      /** Bytes fetched so far and in all (URL models; absent for local files or when unknown). */
      loaded?: number;
      total?: number;
      /** Why the load failed (`failed`); the source keeps its old model. */
      message?: string;
    }
  | {
      type: 'source';
      kind: SourceSpec['kind'];
      /** What the viewer asked for, for display (a relative path, a URL without credentials, a device). */
      name: string;
      width: number;
      height: number;
      durationSeconds: number | null;
      seekable: boolean;
      loop: boolean;
      viewers: number;
    }
  | { type: 'settings'; settings: SourceSettings }
  | {
      type: 'status';
      state: SourceState;
      message?: string;
      /** Restart attempt number (restarting). */
      attempt?: number;
      /** Milliseconds until the next attempt (restarting). */
      retryInMs?: number;
      /** Seconds into the source (paused, seek). */
      position?: number;
    }
  | { type: 'error'; code: ErrorCode; message: string }
  | {
      type: 'stats';
      /** Frames per second the source delivered / the model processed, over the last second. */
      sourceFps: number;
      processedFps: number;
      /** Frames dropped at the model (busy) since the source started. */
      dropped: number;
      /** Result messages this viewer was skipped (its socket was behind). */
      skipped: number;
      viewers: number;
    }
  | { type: 'pong'; t: number; serverMs: number };

/** Non-fatal errors answering a control message; the connection stays open. */
export type ErrorCode =
  | 'forbidden-path'
  | 'not-found'
  | 'bad-source'
  | 'source-disabled'
  | 'not-seekable'
  | 'no-source'
  | 'source-failed'
  /** A URL source whose host is (or resolves to) a loopback, private or link-local address. */
  | 'forbidden-url'
  /** Too many sources are being opened at once (server-wide or by this address); try again later. */
  | 'busy'
  /** A `model` id the server does not offer. */
  | 'unknown-model'
  /** Settings naming class ids the source's current model does not have (it changed under the viewer). */
  | 'bad-settings';

// ---------------------------------------------------------------------------------------------------------
// Control message schema: a small hand-written validator (no schema library), one rule per field.

/** Limits the validator needs: the model's class count and the top-k bound. */
export interface ControlLimits {
  numClasses: number;
  maxTopK: number;
  maxControlBytes: number;
}

type Check = (value: unknown, path: string) => void;

const utf8 = new TextEncoder();

function bad(path: string, value: unknown, want: string): never {
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  if (shown.length > 60) shown = `${shown.slice(0, 57)}...`;
  throw new ProtocolViolation(CloseCode.BadMessage, `${path} must be ${want}, got ${shown}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const bool: Check = (v, p) => {
  if (typeof v !== 'boolean') bad(p, v, 'true or false');
};
const numberIn = (lo: number, hi: number, hiOpen = false): Check => (v, p) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || (hiOpen ? v >= hi : v > hi)) bad(p, v, `a number in [${lo}, ${hi}${hiOpen ? ')' : ']'}`);
};
const intIn = (lo: number, hi: number): Check => (v, p) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(p, v, `an integer in [${lo}, ${hi}]`);
};
const text = (maxLength: number): Check => (v, p) => {
  if (typeof v !== 'string' || v.length === 0 || v.length > maxLength || v.includes('\0')) bad(p, v, `a non-empty string of at most ${maxLength} characters`);
};
const oneOf = (values: readonly string[]): Check => (v, p) => {
  if (typeof v !== 'string' || !values.includes(v)) bad(p, v, `one of ${values.join(', ')}`);
};

/** An object with exactly these keys (optional ones marked), each checked; unknown keys are refused. */
function shape(fields: Record<string, Check>, optional: readonly string[] = []): Check {
  return (v, p) => {
    if (!isObject(v)) bad(p, v, 'an object');
    for (const key of Object.keys(v)) if (!Object.hasOwn(fields, key)) bad(`${p}.${key}`, v[key], 'absent (unknown field)');
    for (const [key, check] of Object.entries(fields)) {
      if (!Object.hasOwn(v, key) || v[key] === undefined) {
        if (!optional.includes(key)) bad(`${p}.${key}`, undefined, 'present');
        continue;
      }
      check(v[key], `${p}.${key}`);
    }
  };
}

function sourceCheck(): Check {
  const variants: Record<string, Check> = {
    webcam: shape({ kind: oneOf(['webcam']) }),
    file: shape({ kind: oneOf(['file']), path: text(1024), loop: bool }, ['loop']),
    url: shape({ kind: oneOf(['url']), url: text(2048) }),
    device: shape({ kind: oneOf(['device']), path: text(256) }),
  };
  return (v, p) => {
    if (!isObject(v)) bad(p, v, 'an object');
    const check = typeof v.kind === 'string' && Object.hasOwn(variants, v.kind) ? variants[v.kind] : undefined;
    if (!check) bad(`${p}.kind`, v.kind, `one of ${Object.keys(variants).join(', ')}`);
    check(v, p);
  };
}

/** A model id of `hello.models` (which ids exist is the server's check). */
const modelIdCheck = text(128);

function settingsCheck(limits: ControlLimits): Check {
  const classes: Check = (v, p) => {
    if (v === null) return;
    if (!Array.isArray(v) || v.length < 1 || v.length > limits.maxTopK) bad(p, v, `null or an array of 1 to ${limits.maxTopK} class ids`);
    const seen = new Set<number>();
    v.forEach((id, i) => {
      intIn(0, limits.numClasses - 1)(id, `${p}[${i}]`);
      if (seen.has(id as number)) bad(`${p}[${i}]`, id, 'a class id not already listed');
      seen.add(id as number);
    });
  };
  return shape(
    {
      topK: intIn(1, Math.min(limits.maxTopK, limits.numClasses)),
      classes,
      smoothing: numberIn(0, 1, true),
      boxRule: oneOf(['paper', 'official', 'off']),
      threshold: numberIn(0, 1, true),
    },
    ['topK', 'classes', 'smoothing', 'boxRule', 'threshold'],
  );
}

/**
 * Parses and validates one text message from a client. Throws ProtocolViolation: MessageTooLarge over
 * `maxControlBytes`, BadMessage for anything else wrong (the message names the field and value).
 */
export function parseClientMessage(text: string, limits: ControlLimits): ClientMessage {
  // A JS string's length counts UTF-16 units; UTF-8 needs at most 3 bytes per unit, so this bounds cheaply.
  if (text.length > limits.maxControlBytes || (text.length * 3 > limits.maxControlBytes && utf8.encode(text).length > limits.maxControlBytes)) {
    throw new ProtocolViolation(CloseCode.MessageTooLarge, `control message over the ${limits.maxControlBytes}-byte limit`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolViolation(CloseCode.BadMessage, 'control message is not valid JSON');
  }
  if (!isObject(value)) bad('message', value, 'a JSON object');
  const checks: Record<ClientMessage['type'], Check> = {
    select: shape({ type: oneOf(['select']), source: sourceCheck() }),
    settings: shape({ type: oneOf(['settings']), settings: settingsCheck(limits) }),
    pause: shape({ type: oneOf(['pause']), paused: bool }),
    seek: shape({ type: oneOf(['seek']), seconds: numberIn(0, 1e7) }),
    model: shape({ type: oneOf(['model']), id: modelIdCheck }),
    ping: shape({ type: oneOf(['ping']), t: numberIn(-1e15, 1e15) }),
  };
  // hasOwn: `constructor` or `__proto__` must not find Object.prototype's members.
  const check = typeof value.type === 'string' && Object.hasOwn(checks, value.type) ? checks[value.type as ClientMessage['type']] : undefined;
  if (!check) bad('message.type', value.type, `one of ${Object.keys(checks).join(', ')}`);
  check(value, 'message');
  return value as ClientMessage;
}
