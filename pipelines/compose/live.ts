/**
 * The live pipeline of one source, the counterpart of compose/video.ts:
 *
 *   frames (webcam messages or ffmpeg decode)
 *     -> processLatest(inferLive)  live policy: one frame in the engine, the latest one waiting, older dropped
 *     -> smoothCams               the video pipeline's stage: EMA of raw maps, stable scale, hysteresis, cuts
 *     -> localizeCams             the video pipeline's stage: boxes from the smoothed maps
 *     -> encodeLiveResult         the wire message (maps quantized to uint8 at feature resolution)
 *
 * This is the one place the stages are plugged in; everything after the live gate is synchronous, so no
 * frame can queue behind it. No tensors: engines return plain arrays.
 */
import { map, type Observable, type OperatorFunction } from 'rxjs';
import sharp, { type OutputInfo } from 'sharp';
import { fitGeometry, quantizeMap, type Box, type CamModel, type CamResult, type Frame } from '../../models/index.ts';
import type { StageTimings } from '../stages/frame.ts';
import { localizeCams } from '../stages/localize-cams.ts';
import { smoothCams, type SmoothedCams } from '../stages/smooth.ts';
import { CloseCode, encodeResult, ProtocolViolation, type SourceSettings } from '../../protocol/index.ts';
import type { ModelLock } from '../../models/pool/model-lock.ts';
import { processLatest } from '../stages/process-latest.ts';

/** A frame entering a live pipeline. */
export interface LiveInput {
  /** Webcam: the client's frame id. Server source: the source's frame counter. */
  frameId: number;
  /** Seconds into the source (0 for a webcam). */
  pts: number;
  /** Echoed to the client: its capture clock (webcam) or the server's Date.now() at decode. */
  captureMs: number;
  /** `performance.now()` when the frame reached the server (serverMs counts from here). */
  arrivedAt: number;
  /** Size of the frame the boxes refer to: the webcam frame as sent, or the source's display size. */
  width: number;
  height: number;
  /** Model-size RGB (server sources, raw webcam frames)... */
  pixels?: Frame;
  /** ...or a JPEG to decode first (webcam); decoded only if the frame is not dropped. */
  jpeg?: Uint8Array;
  /** Server sources: the display-size RGB frame, JPEG-encoded for viewers alongside inference. */
  display?: Frame;
}

/** After `inferLive`: the shape smoothCams and localizeCams take (see pipelines/stages/frame.ts). */
export interface LiveInferred extends LiveInput {
  pixels: Frame;
  result: CamResult;
  inferred: true;
  ms: StageTimings & { decode?: number };
  /** The display frame as JPEG (server sources). */
  frameJpeg?: Uint8Array;
}

export interface LiveContext {
  model: CamModel;
  lock: ModelLock;
  /** Largest accepted JPEG area (decompression bombs), pixels. */
  maxJpegPixels: number;
  jpegQuality: number;
  /** Counts a frame dropped at the live gate. */
  onDrop: () => void;
  /** The source's dropped count, written into each result. */
  dropped: () => number;
}

/** Decodes a webcam JPEG to packed RGB; the size must match the header's. Throws ProtocolViolation. */
export async function decodeJpeg(jpeg: Uint8Array, width: number, height: number, maxPixels: number): Promise<Frame> {
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await sharp(jpeg, { limitInputPixels: maxPixels, failOn: 'error' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new ProtocolViolation(CloseCode.BadFrame, `frame JPEG does not decode: ${(err as Error).message}`);
  }
  const { width: w, height: h, channels } = out.info;
  if (w !== width || h !== height || channels !== 3) {
    throw new ProtocolViolation(CloseCode.BadFrame, `frame JPEG is ${w}x${h}x${channels}, its header says ${width}x${height}x3`);
  }
  return { data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength), width, height };
}

/** Encodes a display frame for viewers. */
export async function encodeJpeg(frame: Frame, quality: number): Promise<Uint8Array> {
  const buf = await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } }).jpeg({ quality }).toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * One frame through the engine (under the model lock), the webcam JPEG decoded first and the display
 * JPEG encoded at the same time. Returns a promise: processLatest runs one at a time per source.
 */
export async function inferLive(input: LiveInput, settings: SourceSettings, ctx: LiveContext): Promise<LiveInferred> {
  const ms: LiveInferred['ms'] = {};
  let pixels = input.pixels;
  if (!pixels) {
    const t0 = performance.now();
    pixels = await decodeJpeg(input.jpeg!, input.width, input.height, ctx.maxJpegPixels);
    ms.decode = performance.now() - t0;
  }
  const frameJpeg = input.display ? encodeJpeg(input.display, ctx.jpegQuality) : undefined;
  const options = settings.classes ? { classes: settings.classes } : { topK: Math.min(settings.topK, ctx.model.info.numClasses) };
  const frame = pixels;
  const [result] = await ctx.lock.run(async () => {
    const t0 = performance.now();
    const r = await ctx.model.infer([frame], options);
    ms.infer = performance.now() - t0;
    return r;
  });
  return { ...input, pixels, result, inferred: true, ms, frameJpeg: await frameJpeg };
}

/** A record after the shared stages. */
export type LiveLocalized = LiveInferred & { cams: SmoothedCams; boxes: Array<Box | null> };

/** The wire message of one processed frame; `Uint8Array` shared by every viewer. */
export function encodeLiveResult(f: LiveLocalized, model: CamModel, dropped: number): Uint8Array {
  const { cams } = f;
  const k = cams.ids.length;
  const pre = model.info.preprocess;
  const fit = fitGeometry(f.width, f.height, pre);
  const [inH, inW] = pre.inputSize;
  const boxes = new Float32Array(4 * k).fill(Number.NaN);
  f.boxes.forEach((b, i) => {
    if (!b) return;
    boxes[4 * i] = b[0] / f.width;
    boxes[4 * i + 1] = b[1] / f.height;
    boxes[4 * i + 2] = b[2] / f.width;
    boxes[4 * i + 3] = b[3] / f.height;
  });
  const labels = Array.from(cams.ids, (id) => model.info.labels[id] ?? `class_${id}`);
  return encodeResult({
    frameId: f.frameId,
    captureMs: f.captureMs,
    pts: f.pts,
    cut: cams.cut,
    switched: cams.switched,
    ids: cams.ids,
    shown: cams.shown,
    scores: cams.scores,
    probabilities: cams.probabilities,
    boxes,
    mapSize: cams.mapSize,
    maps: quantizeMap(cams.normalized),
    displayScale: cams.displayScale,
    mapContent: [fit.padLeft / inW, fit.padTop / inH, fit.contentSize[1] / inW, fit.contentSize[0] / inH],
    frameSize: [f.width, f.height],
    labels,
    dropped,
    timings: {
      decodeMs: f.ms.decode ?? 0,
      inferMs: f.ms.infer ?? 0,
      smoothMs: f.ms.smooth ?? 0,
      localizeMs: f.ms.localize ?? 0,
      serverMs: performance.now() - f.arrivedAt,
    },
    jpeg: f.frameJpeg,
  });
}

/** A processed frame ready to fan out. */
export interface LiveOutput {
  message: Uint8Array;
  frameId: number;
  pts: number;
}

/** The live stages for one settings value (rebuilt when a viewer changes them: smoothing restarts). */
export function liveStages(settings: SourceSettings, ctx: LiveContext): OperatorFunction<LiveInput, LiveOutput> {
  const pre = ctx.model.info.preprocess;
  return (frames$: Observable<LiveInput>) => {
    const smoothed$ = frames$.pipe(
      processLatest((f: LiveInput) => inferLive(f, settings, ctx), ctx.onDrop),
      smoothCams({ pastWeight: settings.smoothing }),
    );
    const localized$: Observable<LiveLocalized> =
      settings.boxRule === 'off'
        ? smoothed$.pipe(map((f) => ({ ...f, boxes: Array.from(f.cams.ids, () => null) })))
        : smoothed$.pipe(localizeCams(pre, { boxRule: settings.boxRule, threshold: settings.threshold }));
    return localized$.pipe(map((f) => ({ message: encodeLiveResult(f, ctx.model, ctx.dropped()), frameId: f.frameId, pts: f.pts })));
  };
}
