/**
 * The browser's side of the wire protocol (docs/protocol.md): reading result messages and writing webcam
 * frames. The client imports no runtime code from the server, so these byte layouts are written out here
 * again; test/unit/server/wire-agreement.test.ts checks they agree with server/protocol.ts.
 */
import type { FrameEncodingValue, ResultMessage } from '../../server/protocol.ts';

export const PROTOCOL_VERSION = 1;
const RESULT = 1;
const FRAME = 2;
export const RESULT_HEADER_BYTES = 88;
export const FRAME_HEADER_BYTES = 24;

const text = new TextDecoder();

/** Parses a result message; throws RangeError on a malformed one. Arrays are views where possible. */
export function readResult(buffer: ArrayBuffer): ResultMessage {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < RESULT_HEADER_BYTES) throw new RangeError(`result too short: ${bytes.length} bytes`);
  const v = new DataView(buffer);
  if (v.getUint8(0) !== PROTOCOL_VERSION || v.getUint8(1) !== RESULT) throw new RangeError(`not a v${PROTOCOL_VERSION} result (version ${v.getUint8(0)}, type ${v.getUint8(1)})`);
  const flags = v.getUint8(2);
  const k = v.getUint8(3);
  const mapW = v.getUint16(24, true);
  const mapH = v.getUint16(26, true);
  const labelsBytes = v.getUint32(76, true);
  const jpegBytes = v.getUint32(80, true);
  const cells = mapW * mapH;
  if (bytes.length !== RESULT_HEADER_BYTES + 28 * k + k * cells + labelsBytes + jpegBytes) throw new RangeError('result length does not match its header');
  let o = RESULT_HEADER_BYTES;
  const ints = new Int32Array(k);
  for (let i = 0; i < k; i++, o += 4) ints[i] = v.getInt32(o, true);
  const floats = (n: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++, o += 4) a[i] = v.getFloat32(o, true);
    return a;
  };
  const scores = floats(k);
  const probabilities = floats(k);
  const boxes = floats(4 * k);
  const maps = bytes.subarray(o, o + k * cells);
  o += k * cells;
  const labels = labelsBytes > 0 ? text.decode(bytes.subarray(o, o + labelsBytes)).split('\n') : [];
  o += labelsBytes;
  return {
    frameId: v.getUint32(4, true),
    captureMs: v.getFloat64(8, true),
    pts: v.getFloat64(16, true),
    cut: (flags & 2) !== 0,
    switched: (flags & 4) !== 0,
    ids: ints,
    scores,
    probabilities,
    boxes,
    mapSize: [mapH, mapW],
    maps,
    displayScale: v.getFloat32(48, true),
    mapContent: [v.getFloat32(32, true), v.getFloat32(36, true), v.getFloat32(40, true), v.getFloat32(44, true)],
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
    jpeg: flags & 1 ? bytes.subarray(o, o + jpegBytes) : undefined,
  };
}

/** A webcam frame message: header + payload (JPEG bytes or packed RGB). */
export function writeFrame(frameId: number, captureMs: number, encoding: FrameEncodingValue, width: number, height: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const v = new DataView(out.buffer);
  v.setUint8(0, PROTOCOL_VERSION);
  v.setUint8(1, FRAME);
  v.setUint8(2, encoding);
  v.setUint32(4, frameId >>> 0, true);
  v.setFloat64(8, captureMs, true);
  v.setUint16(16, width, true);
  v.setUint16(18, height, true);
  v.setUint32(20, payload.length, true);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}
