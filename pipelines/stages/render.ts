/**
 * `renderOverlays`: the per-frame overlay, drawn small in JS and composited at full resolution by ffmpeg.
 *
 * Each frame becomes ONE packed yuva420p image (planar Y, U, V, alpha: what ffmpeg's overlay filter
 * blends without converting) holding two layers one above the other:
 *   rows [0, annHeight)                  the annotation layer (top-k panel, box, box label) at a reduced
 *                                        resolution (`overlayMaxSide`), transparent elsewhere;
 *   rows [heatTop, heatTop + heatHeight) the coloured heat map on its small grid (colourizeMap); heatTop is
 *                                        annHeight rounded up to even, so the crop keeps whole chroma rows.
 * The compositor (`compositeFilter`, `timedCompositeFilter`) crops the two apart, scales them to the full
 * frame size and overlays them onto the original video, which ffmpeg decodes itself. So no
 * full-resolution pixel passes through JS: per frame JS colours a ~100x60 grid straight into Y, U, V and
 * alpha, paints a few thousand annotation pixels in RGBA and converts just the painted ones
 * (internal/yuva.ts). Sent as RGBA, the same frames cost ffmpeg about 1 core-ms more per 720p frame in
 * conversions, and the pipe 1.6x the bytes.
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import { colormapLut, ConfigError, COLORMAP_NAMES, type Box, type ColormapName, type FrameGeometry, type Preprocess } from '../../models/index.ts';
import { formatRational, rawFrameBytes, type Rational } from '../ffmpeg/index.ts';
import { colourizeMap, heatOpacities, heatValues, labelText, panelLine, type AlphaMode } from '../render/index.ts';
import type { StageTimings } from './frame.ts';
import { blit, fillRect, strokeRect, type Canvas, type Rgba } from './internal/draw.ts';
import { FrameBuffers } from './internal/frame-buffers.ts';
import { TextSprites } from './internal/sprites.ts';
import { blankYuva, clearRects, packHeatYuva, packYuva, type HeatColours, type PixelRect } from './internal/yuva.ts';
import { frameGeometry } from './localize.ts';
import type { SmoothedCams } from './smooth.ts';

export interface VideoOverlayConfig {
  /** Default `turbo`. */
  colormap?: ColormapName;
  /** Opacity of the heat layer, in [0, 1]. Default 0.5. */
  alpha?: number;
  /** `constant` (default): even opacity; `value`: opacity grows with the map value (cold areas untouched). */
  alphaMode?: AlphaMode;
  /** Heat grid pixels per map cell along each axis, integer in [1, 64]; ffmpeg enlarges the rest. Default 8. */
  samplesPerCell?: number;
  /** Longest side of the annotation layer, pixels, integer in [64, 4096] (capped at the frame's). Default 640. */
  overlayMaxSide?: number;
  /** Draw the top-k list and the box label. Default true. */
  labels?: boolean;
  /** Draw the displayed class's box. Default true. */
  box?: boolean;
  /** Pango font family list. Default `DejaVu Sans, Verdana, sans-serif`. */
  fontFamily?: string;
}

export const DEFAULT_VIDEO_OVERLAY_CONFIG: Readonly<Required<VideoOverlayConfig>> = Object.freeze({
  colormap: 'turbo',
  alpha: 0.5,
  alphaMode: 'constant',
  samplesPerCell: 8,
  overlayMaxSide: 640,
  labels: true,
  box: true,
  fontFamily: 'DejaVu Sans, Verdana, sans-serif',
});

export function resolveVideoOverlayConfig(config: VideoOverlayConfig = {}): Required<VideoOverlayConfig> {
  const c: Required<VideoOverlayConfig> = { ...DEFAULT_VIDEO_OVERLAY_CONFIG };
  for (const key of Object.keys(DEFAULT_VIDEO_OVERLAY_CONFIG) as Array<keyof VideoOverlayConfig>) {
    if (config[key] !== undefined) (c as Record<string, unknown>)[key] = config[key];
  }
  if (!(COLORMAP_NAMES as readonly string[]).includes(c.colormap)) {
    throw new ConfigError(`colormap must be one of ${COLORMAP_NAMES.join(', ')}; got ${JSON.stringify(c.colormap)}`);
  }
  if (typeof c.alpha !== 'number' || !(c.alpha >= 0 && c.alpha <= 1)) throw new ConfigError(`alpha must be a number in [0, 1], got ${String(c.alpha)}`);
  if (c.alphaMode !== 'constant' && c.alphaMode !== 'value') throw new ConfigError(`alphaMode must be constant or value, got ${JSON.stringify(c.alphaMode)}`);
  if (!Number.isInteger(c.samplesPerCell) || c.samplesPerCell < 1 || c.samplesPerCell > 64) {
    throw new ConfigError(`samplesPerCell must be an integer in [1, 64], got ${String(c.samplesPerCell)}`);
  }
  if (!Number.isInteger(c.overlayMaxSide) || c.overlayMaxSide < 64 || c.overlayMaxSide > 4096) {
    throw new ConfigError(`overlayMaxSide must be an integer number of pixels in [64, 4096], got ${String(c.overlayMaxSide)}`);
  }
  if (typeof c.labels !== 'boolean') throw new ConfigError(`labels must be true or false, got ${String(c.labels)}`);
  if (typeof c.box !== 'boolean') throw new ConfigError(`box must be true or false, got ${String(c.box)}`);
  if (typeof c.fontFamily !== 'string' || !/^[\w ,.'-]{1,200}$/.test(c.fontFamily)) {
    throw new ConfigError(`fontFamily must be a list of font names, got ${JSON.stringify(c.fontFamily)}`);
  }
  return c;
}

/** Sizes of the packed overlay frame and where the map sits over the video. */
export interface OverlayLayout {
  /** Full frame (display) size of the video, pixels. */
  frameWidth: number;
  frameHeight: number;
  /** The annotation layer's size (the frame scaled to `overlayMaxSide`). */
  annWidth: number;
  annHeight: number;
  /** The heat grid's size. */
  heatWidth: number;
  heatHeight: number;
  /** First row of the heat grid in the packed frame: `annHeight` rounded up to even. */
  heatTop: number;
  /** The packed yuva420p frame written to ffmpeg: `max(annWidth, heatWidth) x (heatTop + heatHeight)`, each rounded up to even. */
  width: number;
  height: number;
  geometry: FrameGeometry;
}

/** The layout for a video of `frameWidth x frameHeight` and a model with `mapSize` maps. */
export function overlayLayout(
  frameWidth: number,
  frameHeight: number,
  mapSize: readonly [number, number],
  preprocess: Preprocess,
  config: VideoOverlayConfig = {},
): OverlayLayout {
  const c = resolveVideoOverlayConfig(config);
  const geometry = frameGeometry(frameWidth, frameHeight, preprocess);
  const s = Math.min(1, c.overlayMaxSide / Math.max(frameWidth, frameHeight));
  const annWidth = Math.max(2, Math.round(frameWidth * s));
  const annHeight = Math.max(2, Math.round(frameHeight * s));
  // colourizeMap decides its grid from the geometry; a blank map tells its size once.
  const probe = colourizeMap(new Float32Array(mapSize[0] * mapSize[1]), mapSize, geometry, { samplesPerCell: c.samplesPerCell });
  const even = (n: number) => n + (n % 2);
  const heatTop = even(annHeight);
  return {
    frameWidth,
    frameHeight,
    annWidth,
    annHeight,
    heatWidth: probe.width,
    heatHeight: probe.height,
    heatTop,
    width: even(Math.max(annWidth, probe.width)),
    height: even(heatTop + probe.height),
    geometry,
  };
}

/**
 * The ffmpeg filter graph compositing the packed overlay stream (input 0, raw yuva420p from the pipe) over the
 * original video (input 1), ending in `[vout]`. Both streams are retimed to frame numbers in a 1/rate time
 * base (`settb`, `setpts=N`), so the n-th overlay lands exactly on the n-th decoded frame whatever the
 * container's timestamps (start offsets, edit lists, rounding), and the output has one frame per input
 * frame at the input's rate (`shortest=1`: a run cut short by `maxFrames` ends there too). Odd sizes are padded by one black row or column (H.264 4:2:0 needs even).
 *
 * Equivalent `-filter_complex` (1280x720 at 30/1, annotations 640x360, heat 128x72):
 *   [0:v]settb=1/(30/1),setpts=N,split=2[p0][p1];
 *   [p0]crop=640:360:0:0,scale=1280:720:flags=bilinear[ann];
 *   [p1]crop=128:72:0:360,scale=1280:720:flags=bilinear[heat];
 *   [1:v:0]settb=1/(30/1),setpts=N[base];
 *   [base][heat]overlay=format=yuv420:shortest=1[under];[under][ann]overlay=format=yuv420:shortest=1,pad=ceil(iw/2)*2:ceil(ih/2)*2[vout]
 */
export function compositeFilter(layout: OverlayLayout, rate: Rational): string {
  const r = formatRational(rate);
  const { frameWidth: W, frameHeight: H } = layout;
  return [
    `[0:v]settb=1/(${r}),setpts=N,split=2[p0][p1]`,
    `[p0]crop=${layout.annWidth}:${layout.annHeight}:0:0,scale=${W}:${H}:flags=bilinear[ann]`,
    `[p1]crop=${layout.heatWidth}:${layout.heatHeight}:0:${layout.heatTop},scale=${W}:${H}:flags=bilinear[heat]`,
    `[1:v:0]settb=1/(${r}),setpts=N[base]`,
    `[base][heat]overlay=format=yuv420:shortest=1[under]`,
    `[under][ann]overlay=format=yuv420:shortest=1,pad=ceil(iw/2)*2:ceil(ih/2)*2[vout]`,
  ].join(';');
}

/** What `renderOverlays` needs of a frame record. */
export interface RenderInput {
  cams: SmoothedCams;
  /** One per `cams.ids` entry, frame pixels. */
  boxes: ReadonlyArray<Box | null>;
  ms?: StageTimings;
}

const PANEL: Rgba = [0, 0, 0, 153];
const HALO: Rgba = [0, 0, 0, 153];
const BOX: Rgba = [255, 255, 255, 255];
const TAG: Rgba = [255, 255, 255, 217];

/** The words of one frame's annotation layer: the panel's lines (by score, the shown class marked) and the box tag. */
export function overlayText(cams: Pick<SmoothedCams, 'ids' | 'probabilities' | 'shown'>, labelOf: (id: number) => string): { lines: string[]; tag: string } {
  const lines = Array.from(cams.ids, (id, i) => panelLine(i + 1, labelOf(id), cams.probabilities[i], i === cams.shown));
  return { lines, tag: labelText(labelOf(cams.ids[cams.shown]), cams.probabilities[cams.shown]) };
}

interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

const overlaps = (a: Rect, b: Rect): boolean => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/**
 * Where the box tag goes: above the box, else just inside its top edge, else inside its bottom edge, each
 * left-aligned with the box, then right-aligned; the first spot inside the layer that keeps clear of the
 * top-k panel (a box touching the top-left corner would otherwise have its tag under the panel).
 */
export function tagSpot(box: Rect, tag: { w: number; h: number }, lineWidth: number, layer: { w: number; h: number }, panel: Rect | null): Rect {
  const rows = [box.y - tag.h - lineWidth, box.y + lineWidth, box.y + box.h - tag.h - lineWidth];
  const cols = [box.x, box.x + box.w - tag.w];
  const fit = (x: number, y: number): Rect => ({ x: Math.max(0, Math.min(x, layer.w - tag.w)), y, w: tag.w, h: tag.h });
  const spots = rows.flatMap((y) => cols.map((x) => fit(x, y))).filter((r) => r.y >= 0 && r.y + r.h <= layer.h);
  return spots.find((r) => !panel || !overlaps(r, panel)) ?? spots[0] ?? fit(box.x, Math.max(0, Math.min(box.y, layer.h - tag.h)));
}

/**
 * Adds `overlay`: the packed yuva420p frame of `layout`, and `releaseOverlay`, which the sink calls once
 * ffmpeg's pipe has taken it (`VideoEncoder.write`'s `onReleased`): the buffer then serves a later frame.
 * A frame never released is left to the garbage collector. The heat layer shows the displayed class's map
 * (`cams.shown`); the annotation layer lists the classes by smoothed probability with the displayed one
 * marked, and outlines the displayed class's box with its label and probability (the image overlay's
 * wording, render/labels.ts). Lossless, ordered, one output per input; asynchronous only when a new label
 * string must be rendered (a cache miss).
 */
export function renderOverlays<T extends RenderInput>(
  layout: OverlayLayout,
  labels: readonly string[],
  config: VideoOverlayConfig = {},
  onWarning?: (message: string) => void,
): OperatorFunction<T, T & { overlay: Uint8Array; releaseOverlay: () => void }> {
  const c = resolveVideoOverlayConfig(config);
  const short = Math.min(layout.annWidth, layout.annHeight);
  const fontPx = Math.max(10, Math.round(short / 24));
  const lineWidth = Math.max(1, Math.round(short / 200));
  const sx = layout.annWidth / layout.frameWidth;
  const sy = layout.annHeight / layout.frameHeight;
  const labelOf = (id: number): string => labels[id] ?? `class_${id}`;

  return (source) => {
    const sprites = new TextSprites(c.fontFamily, fontPx, 512, onWarning);
    const { width, height } = layout;
    const buffers = new FrameBuffers(rawFrameBytes(width, height, 'yuva420p'), 8, (b) => blankYuva(b, width, height));
    // Where each frame buffer was last painted: converting those places again from the next drawing blanks them.
    const painted = new WeakMap<Uint8Array, PixelRect[]>();
    // One RGBA drawing of the annotations, cleared where it was painted once its frame is packed.
    const rgba = new Uint8Array(width * height * 4);
    const scratch = new Float32Array(layout.heatWidth * layout.heatHeight);
    const colours: HeatColours = { lut: colormapLut(c.colormap), alpha: heatOpacities(c.alpha, c.alphaMode) };
    return source.pipe(
      concatMap(async (frame) => {
        const t0 = performance.now();
        const { cams } = frame;
        const cells = cams.mapSize[0] * cams.mapSize[1];
        const canvas: Canvas = { data: rgba, width, height: layout.annHeight, dirty: [] };

        const text = overlayText(cams, labelOf);
        const lines = c.labels ? text.lines : [];
        const box = c.box ? (frame.boxes[cams.shown] ?? null) : null;
        const tag = box && c.labels ? text.tag : '';
        const [lineSprites, tagSprite] = await Promise.all([
          Promise.all(lines.map((l) => sprites.get(l))),
          tag ? sprites.get(tag, '#000000') : Promise.resolve(null),
        ]);

        const drawn = lineSprites.filter((s) => s !== null);
        const panelPad = Math.round(fontPx * 0.4);
        const lh = Math.round(fontPx * 1.35);
        const panel: Rect | null =
          drawn.length > 0 ? { x: 0, y: 0, w: Math.max(...drawn.map((s) => s!.width)) + 2 * panelPad, h: lineSprites.length * lh + 2 * panelPad } : null;
        if (box) {
          const x1 = box[0] * sx;
          const y1 = box[1] * sy;
          const x2 = box[2] * sx;
          const y2 = box[3] * sy;
          strokeRect(canvas, x1, y1, x2, y2, lineWidth + 2, HALO);
          strokeRect(canvas, x1, y1, x2, y2, lineWidth, BOX);
          if (tagSprite) {
            const pad = Math.round(fontPx * 0.3);
            const size = { w: tagSprite.width + 2 * pad, h: tagSprite.height + 2 * pad };
            const spot = tagSpot({ x: x1, y: y1, w: x2 - x1, h: y2 - y1 }, size, lineWidth, { w: layout.annWidth, h: layout.annHeight }, panel);
            fillRect(canvas, spot.x, spot.y, spot.w, spot.h, TAG);
            blit(canvas, tagSprite, spot.x + pad, spot.y + pad);
          }
        }
        if (panel) {
          fillRect(canvas, panel.x, panel.y, panel.w, panel.h, PANEL);
          lineSprites.forEach((s, i) => {
            if (s) blit(canvas, s, panelPad, panelPad + i * lh + Math.max(0, lh - s.height) / 2);
          });
        }
        const out = buffers.take();
        // The heat grid goes straight to YUVA (it is most of the pixels); the annotations through RGBA.
        const heatMap = cams.normalized.subarray(cams.shown * cells, (cams.shown + 1) * cells);
        const heat = heatValues(heatMap, cams.mapSize, layout.geometry, c.samplesPerCell, scratch);
        packHeatYuva(heat.values, heat.width, heat.height, colours, out, width, height, layout.heatTop);
        const dirty = canvas.dirty!;
        packYuva(rgba, out, width, height, [...(painted.get(out) ?? []), ...dirty]);
        painted.set(out, dirty);
        clearRects(rgba, width, height, dirty);
        if (frame.ms) frame.ms.render = performance.now() - t0;
        return { ...frame, overlay: out, releaseOverlay: buffers.releaser(out) };
      }),
    );
  };
}
