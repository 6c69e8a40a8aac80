import { describe, expect, it } from 'vitest';
import {
  CloseCode,
  decodeFrame,
  decodeResult,
  encodeFrame,
  encodeResult,
  FRAME_HEADER_BYTES,
  parseClientMessage,
  ProtocolViolation,
  type ControlLimits,
  type ResultMessage,
  type WireLimits,
} from '../../../protocol/index.ts';
import { CamSmoother } from '../../../pipelines/stages/smooth.ts';

const LIMITS: WireLimits = { maxControlBytes: 4096, maxJpegBytes: 4096, maxRawBytes: 32 * 24 * 3, maxFrameSide: 640, maxPayload: FRAME_HEADER_BYTES + 4096 };
const CONTROL: ControlLimits = { numClasses: 1000, maxTopK: 10, maxControlBytes: 4096 };

function sample(withJpeg: boolean): ResultMessage {
  const k = 3;
  const [h, w] = [7, 9];
  return {
    frameId: 4_000_000_123,
    captureMs: 123456.789,
    pts: 12.345,
    cut: true,
    switched: false,
    // By probability; the held class (position 2) ranks last.
    ids: Int32Array.from([5, 0, 999]),
    shown: 2,
    scores: Float32Array.from([3.5, 0.5, -1.25]),
    probabilities: Float32Array.from([0.5, 0.25, 0.125]),
    boxes: Float32Array.from([0.1, 0.2, 0.5, 0.75, NaN, NaN, NaN, NaN, 0, 0, 1, 1]),
    mapSize: [h, w],
    maps: Uint8Array.from({ length: k * h * w }, (_, i) => (i * 37) % 256),
    displayScale: 4.5,
    mapContent: [0, 0.125, 1, 0.75],
    frameSize: [640, 360],
    labels: ['tabby cat', 'kit fox, Vulpes macrotis', 'toilet tissue'],
    dropped: 17,
    timings: { decodeMs: 1.5, inferMs: 20.25, smoothMs: 0.5, localizeMs: 0.75, serverMs: 23 },
    jpeg: withJpeg ? Uint8Array.from([0xff, 0xd8, 1, 2, 3, 0xff, 0xd9]) : undefined,
  };
}

function expectSame(a: ResultMessage, b: ResultMessage): void {
  const plain = (r: ResultMessage) => ({
    ...r,
    ids: Array.from(r.ids),
    scores: Array.from(r.scores),
    probabilities: Array.from(r.probabilities),
    boxes: Array.from(r.boxes).map((v) => (Number.isNaN(v) ? 'NaN' : v)),
    maps: Array.from(r.maps),
    jpeg: r.jpeg ? Array.from(r.jpeg) : undefined,
  });
  expect(plain(b)).toEqual(plain(a));
}

describe('result messages', () => {
  it('round-trip through the server codec, with and without a JPEG', () => {
    for (const withJpeg of [false, true]) expectSame(sample(withJpeg), decodeResult(encodeResult(sample(withJpeg))));
  });

  it('decode from a fresh ArrayBuffer, as a browser socket delivers them', () => {
    const bytes = encodeResult(sample(true));
    const copy = bytes.slice().buffer;
    expectSame(sample(true), decodeResult(new Uint8Array(copy)));
  });

  it('carry the smoother\'s classes by score with the held class in `shown`', () => {
    // Class 7 is held on screen by hysteresis while class 4 has taken the lead.
    const smoother = new CamSmoother({ pastWeight: 0.5, switchFrames: 5 });
    const frame = (p7: number, p4: number) => ({ ids: Int32Array.from([7, 4]), scores: Float32Array.from([1, 1]), probabilities: Float32Array.from([p7, p4]), maps: new Float32Array(2 * 63).fill(1), mapSize: [7, 9] as [number, number] });
    smoother.update(frame(0.8, 0.1));
    let cams = smoother.update(frame(0.1, 0.8));
    cams = smoother.update(frame(0.1, 0.8));
    const r = decodeResult(encodeResult({ ...sample(false), ids: cams.ids, shown: cams.shown, scores: cams.scores, probabilities: cams.probabilities, boxes: new Float32Array(8).fill(Number.NaN), mapSize: cams.mapSize, maps: new Uint8Array(2 * 63), labels: ['a', 'b'] }));
    expect(Array.from(r.ids)).toEqual([4, 7]);
    expect(r.probabilities[0]).toBeGreaterThan(r.probabilities[1]);
    expect(r.ids[r.shown]).toBe(7);
  });

  it('read a message of a sender that put the shown class first (byte 84 zero) as shown 0, and refuse a shown class past k', () => {
    const bytes = encodeResult(sample(false));
    expect(bytes[84]).toBe(2);
    bytes[84] = 0;
    expect(decodeResult(bytes).shown).toBe(0);
    bytes[84] = 3;
    expect(() => decodeResult(bytes)).toThrow(/shows class position 3 of 3/);
    expect(() => encodeResult({ ...sample(false), shown: 3 })).toThrow(/shown must be a class position in 0..2, got 3/);
  });

  it('refuse a length that disagrees with the header', () => {
    const bytes = encodeResult(sample(false));
    expect(() => decodeResult(bytes.subarray(0, bytes.length - 1))).toThrow(/header says/);
    expect(() => decodeResult(new Uint8Array(bytes.slice(0, bytes.length - 1).buffer))).toThrow(RangeError);
  });
});

describe('frame messages', () => {
  const writeFrame = (frameId: number, captureMs: number, encoding: number, width: number, height: number, payload: Uint8Array): Uint8Array =>
    encodeFrame({ frameId, captureMs, encoding: encoding as 0 | 1, width, height, payload });
  const rgb = new Uint8Array(32 * 24 * 3).fill(7);
  it('encoded by the client codec are accepted by the server', () => {
    const f = decodeFrame(writeFrame(9, 1.5, 1, 32, 24, rgb), LIMITS);
    expect(f).toMatchObject({ frameId: 9, captureMs: 1.5, encoding: 1, width: 32, height: 24 });
    expect(f.payload.length).toBe(rgb.length);
  });

  const cases: Array<[string, Uint8Array, number, RegExp]> = [
    ['too short', new Uint8Array(5), CloseCode.BadFrame, /at least 24/],
    ['a future version', (() => { const b = writeFrame(1, 0, 1, 32, 24, rgb); b[0] = 9; return b; })(), CloseCode.UnsupportedVersion, /version 9/],
    ['an unknown type', (() => { const b = writeFrame(1, 0, 1, 32, 24, rgb); b[1] = 1; return b; })(), CloseCode.BadFrame, /type 1/],
    ['an unknown encoding', writeFrame(1, 0, 7 as 0, 32, 24, rgb), CloseCode.BadFrame, /encoding 7/],
    ['a zero side', writeFrame(1, 0, 1, 0, 24, rgb), CloseCode.BadFrame, /0x24/],
    ['a side over the limit', writeFrame(1, 0, 1, 641, 24, rgb), CloseCode.BadFrame, /641x24/],
    ['raw bytes that are not w*h*3', writeFrame(1, 0, 1, 31, 24, rgb), CloseCode.BadFrame, /31x24/],
    ['a raw frame over the raw limit', writeFrame(1, 0, 1, 64, 48, new Uint8Array(64 * 48 * 3)), CloseCode.MessageTooLarge, /limit/],
    ['a JPEG without its start marker', writeFrame(1, 0, 0, 32, 24, new Uint8Array(100)), CloseCode.BadFrame, /not a JPEG/],
    ['a JPEG over the limit', writeFrame(1, 0, 0, 32, 24, new Uint8Array(5000).fill(0xff)), CloseCode.MessageTooLarge, /4096-byte/],
    ['a payload length that lies', (() => { const b = writeFrame(1, 0, 1, 32, 24, rgb); new DataView(b.buffer).setUint32(20, 5, true); return b; })(), CloseCode.BadFrame, /says 5/],
  ];
  it.each(cases)('with %s are refused with a typed close code', (_name, bytes, code, message) => {
    try {
      decodeFrame(bytes, LIMITS);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ProtocolViolation);
      expect((err as ProtocolViolation).closeCode).toBe(code);
      expect((err as Error).message).toMatch(message);
    }
  });
});

describe('control messages', () => {
  it('accept every valid message type', () => {
    const valid = [
      { type: 'select', source: { kind: 'webcam' } },
      { type: 'select', source: { kind: 'file', path: 'clips/a.mp4', loop: false } },
      { type: 'select', source: { kind: 'url', url: 'rtsp://cam/stream' } },
      { type: 'select', source: { kind: 'device', path: '/dev/video0' } },
      { type: 'settings', settings: { topK: 3, smoothing: 0, boxRule: 'off', threshold: 0.5 } },
      { type: 'settings', settings: { classes: [1, 2, 999] } },
      { type: 'settings', settings: { classes: null } },
      { type: 'pause', paused: true },
      { type: 'seek', seconds: 12.5 },
      { type: 'ping', t: Date.now() },
    ];
    for (const m of valid) expect(parseClientMessage(JSON.stringify(m), CONTROL)).toEqual(m);
  });

  const invalid: Array<[string, string, RegExp]> = [
    ['not JSON', '{"type":', /not valid JSON/],
    ['an array', '[1,2]', /a JSON object/],
    ['no type', '{}', /message.type/],
    ['an unknown type', '{"type":"shutdown"}', /message.type must be one of/],
    ['a prototype key as type', '{"type":"constructor"}', /message.type/],
    ['an unknown field', '{"type":"pause","paused":true,"extra":1}', /message.extra/],
    ['a missing field', '{"type":"seek"}', /message.seconds must be present/],
    ['a string for a boolean', '{"type":"pause","paused":"yes"}', /true or false/],
    ['a negative seek', '{"type":"seek","seconds":-1}', /message.seconds/],
    ['an unknown source kind', '{"type":"select","source":{"kind":"ftp"}}', /source.kind/],
    ['an empty path', '{"type":"select","source":{"kind":"file","path":""}}', /source.path/],
    ['top-k over the limit', '{"type":"settings","settings":{"topK":11}}', /topK must be an integer in \[1, 10\]/],
    ['a fractional top-k', '{"type":"settings","settings":{"topK":1.5}}', /topK/],
    ['smoothing of 1', '{"type":"settings","settings":{"smoothing":1}}', /smoothing must be a number in \[0, 1\)/],
    ['a class id out of range', '{"type":"settings","settings":{"classes":[1000]}}', /classes\[0\]/],
    ['a repeated class id', '{"type":"settings","settings":{"classes":[3,3]}}', /classes\[1\]/],
    ['an unknown box rule', '{"type":"settings","settings":{"boxRule":"magic"}}', /boxRule/],
  ];
  it.each(invalid)('refuse %s as a bad message naming the field', (_name, text, message) => {
    try {
      parseClientMessage(text, CONTROL);
      expect.unreachable();
    } catch (err) {
      expect((err as ProtocolViolation).closeCode).toBe(CloseCode.BadMessage);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('refuse a message over the size limit as too large', () => {
    const text = JSON.stringify({ type: 'ping', t: 1, pad: 'x'.repeat(5000) });
    expect(() => parseClientMessage(text, CONTROL)).toThrow(expect.objectContaining({ closeCode: CloseCode.MessageTooLarge }));
    // Multi-byte characters count as their UTF-8 bytes.
    const wide = JSON.stringify({ type: 'select', source: { kind: 'file', path: '\u20ac'.repeat(1400) } });
    expect(wide.length).toBeLessThan(4096);
    expect(() => parseClientMessage(wide, CONTROL)).toThrow(expect.objectContaining({ closeCode: CloseCode.MessageTooLarge }));
  });
});
