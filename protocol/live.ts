/**
 * The camstream live wire protocol, version 1 (documented in docs/protocol.md): the binary side. One
 * WebSocket per viewer, at `WS_PATH`.
 *
 * - Binary, server -> client: a `result` message per processed frame: a fixed 88-byte little-endian header,
 *   then the top-k class ids, logits, probabilities, boxes, the maps quantized to uint8 at feature
 *   resolution (the client upsamples and colours them), the labels, and for server-side sources the JPEG
 *   of the very frame the maps were computed on (so picture and maps stay in sync).
 * - Binary, client -> server: a `frame` message (browser webcam): a 24-byte header and a JPEG or packed
 *   RGB payload at (about) the model's input size.
 * - Text, both ways: JSON control messages, in live-control.ts.
 * - Errors that end a connection are typed close codes (`CloseCode`); every message has a size limit.
 *
 * This is the one codec: the server and the browser client both import it at run time, so it imports
 * nothing and uses only what browsers and Node share (DataView, TextEncoder, TextDecoder).
 */

export const PROTOCOL_VERSION = 1;

/** Path of the WebSocket endpoint, on the same host and port as the page. */
export const WS_PATH = '/ws';


/** First byte after the version: which binary message this is. */
export const BinaryType = Object.freeze({ Result: 1, Frame: 2 } as const);

/** Close codes. 1000-1011 are the WebSocket standard's; 4000-4999 are camstream's. */
export const CloseCode = Object.freeze({
  Normal: 1000,
  /** The server is shutting down. */
  GoingAway: 1001,
  /** Larger than the connection's `maxPayload` (sent by `ws` itself before the message is read). */
  TooBig: 1009,
  /** The server is over a shared limit (bytes of unfinished messages from all clients): try again later. */
  TryAgainLater: 1013,
  /** Not JSON, unknown `type`, or a field of the wrong type or out of range. */
  BadMessage: 4000,
  /** Missing or wrong token (normally refused at the HTTP upgrade with 401 instead). */
  Unauthorized: 4001,
  /** The message names a protocol version the server does not speak. */
  UnsupportedVersion: 4002,
  /** Within `maxPayload` but over the per-type limit (a control message over `maxControlBytes`...). */
  MessageTooLarge: 4003,
  /** A binary frame whose header, size or pixels are invalid (a JPEG that does not decode). */
  BadFrame: 4004,
  /** No pong to the keep-alive ping in time. */
  KeepAliveTimeout: 4008,
  /** An unexpected server error on this connection. */
  InternalError: 4011,
});
export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

/** Reason strings sent with each close code (short: a close frame's reason is at most 123 bytes). */
export const CLOSE_REASONS: Readonly<Record<number, string>> = Object.freeze({
  [CloseCode.BadMessage]: 'bad message',
  [CloseCode.Unauthorized]: 'unauthorized',
  [CloseCode.UnsupportedVersion]: 'unsupported protocol version',
  [CloseCode.MessageTooLarge]: 'message too large',
  [CloseCode.BadFrame]: 'bad frame',
  [CloseCode.KeepAliveTimeout]: 'keep-alive timeout',
  [CloseCode.InternalError]: 'internal error',
  [CloseCode.TryAgainLater]: 'server busy, try again later',
});

/** Size limits, bytes. Sent to the client in `hello`. */
export interface WireLimits {
  /** A JSON control message. */
  maxControlBytes: number;
  /** A webcam frame's JPEG payload. */
  maxJpegBytes: number;
  /** A webcam frame's raw RGB payload (the model input size x 3). */
  maxRawBytes: number;
  /** Largest side of a webcam frame, pixels. */
  maxFrameSide: number;
  /** The socket's `maxPayload`: the largest message of any kind (header included). */
  maxPayload: number;
}

// ---------------------------------------------------------------------------------------------------------
// Binary layouts

/** Client -> server frame header: 24 bytes, little-endian. */
export const FRAME_HEADER_BYTES = 24;
/** Payload encodings of a client frame. */
export const FrameEncoding = Object.freeze({ Jpeg: 0, Rgb: 1 } as const);
export type FrameEncodingValue = (typeof FrameEncoding)[keyof typeof FrameEncoding];

/**
 * A webcam frame. Layout: u8 version | u8 type=2 | u8 encoding | u8 0 | u32 frameId | f64 captureMs |
 * u16 width | u16 height | u32 payloadBytes | payload.
 */
export interface FrameMessage {
  frameId: number;
  /** The client's clock when the frame was captured (ms, any epoch): echoed back in the result. */
  captureMs: number;
  encoding: FrameEncodingValue;
  width: number;
  height: number;
  payload: Uint8Array;
}

/** Server -> client result header: 88 bytes, little-endian. */
export const RESULT_HEADER_BYTES = 88;
export const ResultFlags = Object.freeze({ Jpeg: 1, Cut: 2, Switched: 4 } as const);

/**
 * One processed frame. Header: u8 version | u8 type=1 | u8 flags | u8 k | u32 frameId | f64 captureMs |
 * f64 pts | u16 mapWidth | u16 mapHeight | u16 frameWidth | u16 frameHeight | f32 x4 mapContent |
 * f32 displayScale | u32 dropped | f32 decodeMs | f32 inferMs | f32 smoothMs | f32 localizeMs | f32 serverMs |
 * u32 labelsBytes | u32 jpegBytes | u8 shown | 3 bytes 0. Body: i32 ids[k] | f32 scores[k] |
 * f32 probabilities[k] | f32 boxes[4k] | u8 maps[k * mapHeight * mapWidth] | labels (UTF-8, '\n'-joined) |
 * JPEG.
 *
 * `shown` (byte 84) took a byte that was reserved and always 0, when the classes were sent with the
 * displayed one first: a message from such a sender still decodes right (shown 0), so the version stays 1.
 */
export interface ResultMessage {
  /** The webcam frame's id, or the server source's frame counter. */
  frameId: number;
  /** Webcam: the client's capture time, echoed. Server source: the server's `Date.now()` at decode. */
  captureMs: number;
  /** Presentation time, seconds (server sources: position in the file; webcam: 0). */
  pts: number;
  /** Set on the frame where smoothing detected a scene cut and reset. */
  cut: boolean;
  /** The displayed class (`shown`) changed at this frame. */
  switched: boolean;
  /** Classes by smoothed probability, best first. */
  ids: Int32Array;
  /**
   * Position in `ids` of the displayed class (the one smoothing holds on screen, whose map and box to
   * draw first); it may rank below a challenger that has not led long enough yet. 0 when k is 0.
   */
  shown: number;
  /** Smoothed logits of `ids`. */
  scores: Float32Array;
  /** Smoothed softmax probabilities of `ids`. */
  probabilities: Float32Array;
  /**
   * `4k` floats, box i = `[x1, y1, x2, y2]` as fractions of the frame's width and height; NaN for no box
   * (no positive evidence, or boxes off).
   */
  boxes: Float32Array;
  /** `[height, width]` of each map: the feature resolution. */
  mapSize: [number, number];
  /** `k` maps, row-major, 0..255 = 0..displayScale of the raw map (smoothed when smoothing is on). */
  maps: Uint8Array;
  /** The raw map value shown as 255. */
  displayScale: number;
  /**
   * The part of the map covering the frame, as fractions of the map `[x, y, width, height]`: the whole
   * map for stretching models, the unpadded centre for letterboxing ones.
   */
  mapContent: [number, number, number, number];
  /** Size of the frame the boxes refer to, pixels. */
  frameSize: [number, number];
  /** Labels of `ids`. */
  labels: string[];
  /** Frames of this source the model had no time for, since it started (latest frame wins). */
  dropped: number;
  /** Milliseconds: JPEG decode, inference, smoothing, boxes, and arrival-to-send on the server. */
  timings: { decodeMs: number; inferMs: number; smoothMs: number; localizeMs: number; serverMs: number };
  /** The frame itself (server-side sources only). */
  jpeg?: Uint8Array;
}

// ---------------------------------------------------------------------------------------------------------
// Codecs

/** Why a message was refused: the close code and a one-line reason naming the bad field or value. */
export class ProtocolViolation extends Error {
  readonly closeCode: CloseCodeValue;
  constructor(closeCode: CloseCodeValue, message: string) {
    super(message);
    this.name = 'ProtocolViolation';
    this.closeCode = closeCode;
  }
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: false });

/** Encodes a result message (one allocation: the message is shared by every viewer of a source). */
export function encodeResult(r: ResultMessage): Uint8Array {
  const k = r.ids.length;
  const [mapH, mapW] = r.mapSize;
  const cells = mapH * mapW;
  if (k > 255) throw new RangeError(`a result carries at most 255 classes, got ${k}`);
  if (r.maps.length !== k * cells) throw new RangeError(`maps hold ${r.maps.length} values, expected ${k} x ${mapH} x ${mapW}`);
  if (r.boxes.length !== 4 * k) throw new RangeError(`boxes hold ${r.boxes.length} values, expected 4 x ${k}`);
  if (!Number.isInteger(r.shown) || r.shown < 0 || r.shown >= Math.max(1, k)) throw new RangeError(`shown must be a class position in 0..${Math.max(0, k - 1)}, got ${r.shown}`);
  const labels = utf8.encode(r.labels.join('\n'));
  const jpeg = r.jpeg ?? new Uint8Array(0);
  const bytes = RESULT_HEADER_BYTES + 4 * k * 7 + k * cells + labels.length + jpeg.length;
  const out = new Uint8Array(bytes);
  const v = new DataView(out.buffer);
  v.setUint8(0, PROTOCOL_VERSION);
  v.setUint8(1, BinaryType.Result);
  v.setUint8(2, (r.jpeg ? ResultFlags.Jpeg : 0) | (r.cut ? ResultFlags.Cut : 0) | (r.switched ? ResultFlags.Switched : 0));
  v.setUint8(3, k);
  v.setUint32(4, r.frameId >>> 0, true);
  v.setFloat64(8, r.captureMs, true);
  v.setFloat64(16, r.pts, true);
  v.setUint16(24, mapW, true);
  v.setUint16(26, mapH, true);
  v.setUint16(28, r.frameSize[0], true);
  v.setUint16(30, r.frameSize[1], true);
  r.mapContent.forEach((x, i) => v.setFloat32(32 + 4 * i, x, true));
  v.setFloat32(48, r.displayScale, true);
  v.setUint32(52, Math.min(r.dropped, 0xffffffff), true);
  const t = r.timings;
  [t.decodeMs, t.inferMs, t.smoothMs, t.localizeMs, t.serverMs].forEach((x, i) => v.setFloat32(56 + 4 * i, x, true));
  v.setUint32(76, labels.length, true);
  v.setUint32(80, jpeg.length, true);
  v.setUint8(84, r.shown);
  // 85..87 reserved (0).
  let o = RESULT_HEADER_BYTES;
  for (let i = 0; i < k; i++, o += 4) v.setInt32(o, r.ids[i], true);
  for (let i = 0; i < k; i++, o += 4) v.setFloat32(o, r.scores[i], true);
  for (let i = 0; i < k; i++, o += 4) v.setFloat32(o, r.probabilities[i], true);
  for (let i = 0; i < 4 * k; i++, o += 4) v.setFloat32(o, r.boxes[i], true);
  out.set(r.maps, o);
  o += r.maps.length;
  out.set(labels, o);
  o += labels.length;
  out.set(jpeg, o);
  return out;
}

/** Decodes a result message (the browser client, Node clients, tests and benches). */
export function decodeResult(bytes: Uint8Array): ResultMessage {
  if (bytes.length < RESULT_HEADER_BYTES) throw new RangeError(`a result message has at least ${RESULT_HEADER_BYTES} bytes, got ${bytes.length}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint8(0) !== PROTOCOL_VERSION || v.getUint8(1) !== BinaryType.Result) {
    throw new RangeError(`not a v${PROTOCOL_VERSION} result message (version ${v.getUint8(0)}, type ${v.getUint8(1)})`);
  }
  const flags = v.getUint8(2);
  const k = v.getUint8(3);
  const mapW = v.getUint16(24, true);
  const mapH = v.getUint16(26, true);
  const labelsBytes = v.getUint32(76, true);
  const jpegBytes = v.getUint32(80, true);
  const shown = v.getUint8(84);
  if (shown >= Math.max(1, k)) throw new RangeError(`result message shows class position ${shown} of ${k}`);
  const cells = mapW * mapH;
  const expected = RESULT_HEADER_BYTES + 28 * k + k * cells + labelsBytes + jpegBytes;
  if (bytes.length !== expected) throw new RangeError(`result message has ${bytes.length} bytes, its header says ${expected}`);
  let o = RESULT_HEADER_BYTES;
  const floats = (n: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++, o += 4) a[i] = v.getFloat32(o, true);
    return a;
  };
  const ids = new Int32Array(k);
  for (let i = 0; i < k; i++, o += 4) ids[i] = v.getInt32(o, true);
  const scores = floats(k);
  const probabilities = floats(k);
  const boxes = floats(4 * k);
  const maps = bytes.slice(o, o + k * cells);
  o += k * cells;
  const labels = labelsBytes > 0 ? fromUtf8.decode(bytes.subarray(o, o + labelsBytes)).split('\n') : [];
  o += labelsBytes;
  return {
    frameId: v.getUint32(4, true),
    captureMs: v.getFloat64(8, true),
    pts: v.getFloat64(16, true),
    cut: (flags & ResultFlags.Cut) !== 0,
    switched: (flags & ResultFlags.Switched) !== 0,
    ids,
    shown,
    scores,
    probabilities,
    boxes,
    mapSize: [mapH, mapW],
    maps,
    displayScale: v.getFloat32(48, true),
    mapContent: [0, 1, 2, 3].map((i) => v.getFloat32(32 + 4 * i, true)) as [number, number, number, number],
    frameSize: [v.getUint16(28, true), v.getUint16(30, true)],
    labels,
    dropped: v.getUint32(52, true),
    timings: {
      decodeMs: v.getFloat32(56, true),
      inferMs: v.getFloat32(60, true),
      smoothMs: v.getFloat32(64, true),
      localizeMs: v.getFloat32(68, true),
      serverMs: v.getFloat32(72, true),
    },
    jpeg: flags & ResultFlags.Jpeg ? bytes.slice(o, o + jpegBytes) : undefined,
  };
}

/** Encodes a webcam frame (the browser client, Node clients, tests and benches). */
export function encodeFrame(f: FrameMessage): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + f.payload.length);
  const v = new DataView(out.buffer);
  v.setUint8(0, PROTOCOL_VERSION);
  v.setUint8(1, BinaryType.Frame);
  v.setUint8(2, f.encoding);
  v.setUint32(4, f.frameId >>> 0, true);
  v.setFloat64(8, f.captureMs, true);
  v.setUint16(16, f.width, true);
  v.setUint16(18, f.height, true);
  v.setUint32(20, f.payload.length, true);
  out.set(f.payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Checks a binary message from a client and returns the frame it carries (the payload is a view into
 * `bytes`, not a copy). Throws ProtocolViolation with the close code: UnsupportedVersion, BadFrame
 * (unknown type, header and size disagree, a side of 0 or over the limit, raw bytes != w*h*3),
 * MessageTooLarge (payload over its encoding's limit).
 */
export function decodeFrame(bytes: Uint8Array, limits: WireLimits): FrameMessage {
  if (bytes.length < FRAME_HEADER_BYTES) throw new ProtocolViolation(CloseCode.BadFrame, `a frame message has at least ${FRAME_HEADER_BYTES} bytes, got ${bytes.length}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint8(0);
  if (version !== PROTOCOL_VERSION) throw new ProtocolViolation(CloseCode.UnsupportedVersion, `protocol version ${version} is not supported (server speaks ${PROTOCOL_VERSION})`);
  const type = v.getUint8(1);
  if (type !== BinaryType.Frame) throw new ProtocolViolation(CloseCode.BadFrame, `binary message type ${type} is not a frame (${BinaryType.Frame})`);
  const encoding = v.getUint8(2);
  if (encoding !== FrameEncoding.Jpeg && encoding !== FrameEncoding.Rgb) throw new ProtocolViolation(CloseCode.BadFrame, `frame encoding ${encoding} is not 0 (jpeg) or 1 (rgb)`);
  const width = v.getUint16(16, true);
  const height = v.getUint16(18, true);
  if (width < 1 || height < 1 || width > limits.maxFrameSide || height > limits.maxFrameSide) {
    throw new ProtocolViolation(CloseCode.BadFrame, `frame size ${width}x${height} is outside 1..${limits.maxFrameSide} per side`);
  }
  const payloadBytes = v.getUint32(20, true);
  if (payloadBytes !== bytes.length - FRAME_HEADER_BYTES) {
    throw new ProtocolViolation(CloseCode.BadFrame, `frame header says ${payloadBytes} payload bytes, the message has ${bytes.length - FRAME_HEADER_BYTES}`);
  }
  const limit = encoding === FrameEncoding.Jpeg ? limits.maxJpegBytes : limits.maxRawBytes;
  if (payloadBytes > limit) throw new ProtocolViolation(CloseCode.MessageTooLarge, `frame payload of ${payloadBytes} bytes is over the ${limit}-byte limit`);
  if (encoding === FrameEncoding.Rgb && payloadBytes !== width * height * 3) {
    throw new ProtocolViolation(CloseCode.BadFrame, `a raw ${width}x${height} RGB frame has ${width * height * 3} bytes, got ${payloadBytes}`);
  }
  if (encoding === FrameEncoding.Jpeg && (payloadBytes < 4 || bytes[FRAME_HEADER_BYTES] !== 0xff || bytes[FRAME_HEADER_BYTES + 1] !== 0xd8)) {
    throw new ProtocolViolation(CloseCode.BadFrame, 'frame payload is not a JPEG (no FF D8 start marker)');
  }
  return {
    frameId: v.getUint32(4, true),
    captureMs: v.getFloat64(8, true),
    encoding: encoding as FrameEncodingValue,
    width,
    height,
    payload: bytes.subarray(FRAME_HEADER_BYTES),
  };
}
