import { from, lastValueFrom, tap, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { colormapLut, type Preprocess } from '../../../models/index.ts';
import { CamSmoother, compositeFilter, coarseGeometry, frameGeometry, overlayLayout, renderOverlays } from '../../../pipelines/index.ts';
import { labelText, SHOWN_MARK } from '../../../pipelines/render/index.ts';
import { overlayText, tagSpot, type OverlayLayout } from '../../../pipelines/stages/render.ts';
import { rgbToYuv } from '../../../pipelines/stages/internal/yuva.ts';

/** [Y, U, V, A] of pixel (x, y) of a packed yuva420p overlay frame (U and V are its 2x2 block's). */
function yuvaAt(frame: Uint8Array, layout: Pick<OverlayLayout, 'width' | 'height'>, x: number, y: number): number[] {
  const { width: w, height: h } = layout;
  const c = (y >> 1) * (w / 2) + (x >> 1);
  return [frame[y * w + x], frame[w * h + c], frame[w * h + (w * h) / 4 + c], frame[(w * h * 3) / 2 + y * w + x]];
}
/** The [Y, U, V, A] an RGBA colour packs to. */
const yuva = (r: number, g: number, b: number, a: number): number[] => [...rgbToYuv(r, g, b), a];

const PRE: Preprocess = { inputSize: [224, 224], channelOrder: 'rgb', layout: 'nhwc', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], resize: 'stretch', resizeFilter: 'triangle', normalization: 'default' };

describe('overlay layout and compositing graph', () => {
  it('packs a reduced annotation layer above the small heat grid', () => {
    const l = overlayLayout(1280, 720, [7, 7], PRE, { samplesPerCell: 8, overlayMaxSide: 640 });
    expect([l.annWidth, l.annHeight, l.heatWidth, l.heatHeight, l.heatTop, l.width, l.height]).toEqual([640, 360, 56, 56, 360, 640, 416]);
    const small = overlayLayout(320, 240, [14, 14], PRE, { samplesPerCell: 8 });
    // Never larger than the frame: a 320x240 video keeps its own size, the heat grid is capped at it.
    expect([small.annWidth, small.annHeight, small.heatWidth, small.heatHeight]).toEqual([320, 240, 112, 112]);
    // yuva420p needs even sides and whole chroma rows at the heat's top: an odd layer is padded.
    const odd = overlayLayout(641, 361, [7, 7], PRE, { samplesPerCell: 5, overlayMaxSide: 641 });
    expect([odd.annWidth, odd.annHeight, odd.heatWidth, odd.heatHeight, odd.heatTop, odd.width, odd.height]).toEqual([641, 361, 35, 35, 362, 642, 398]);
  });

  it('crops both layers apart, scales them to the frame and retimes both inputs to frame numbers', () => {
    const l = overlayLayout(1280, 720, [7, 7], PRE, { samplesPerCell: 8 });
    const g = compositeFilter(l, { num: 30000, den: 1001 });
    expect(g).toContain('[0:v]settb=1/(30000/1001),setpts=N,split=2[p0][p1]');
    expect(g).toContain('[p0]crop=640:360:0:0,scale=1280:720');
    expect(g).toContain('[p1]crop=56:56:0:360,scale=1280:720');
    expect(g).toContain('[1:v:0]settb=1/(30000/1001),setpts=N[base]');
    expect(g.endsWith('[vout]')).toBe(true);
  });

  it('coarsens the box grid but keeps the frame and the letterbox placement', () => {
    const lb: Preprocess = { ...PRE, resize: 'letterbox' };
    const g = frameGeometry(1280, 720, lb);
    const c = coarseGeometry(g, 112);
    expect([c.inputWidth, c.inputHeight, c.frameWidth, c.frameHeight]).toEqual([112, 112, 1280, 720]);
    expect(c.content!.y / c.inputHeight).toBeCloseTo(g.content!.y / g.inputHeight, 10);
    expect(c.content!.height / c.inputHeight).toBeCloseTo(g.content!.height / g.inputHeight, 10);
  });
});

describe('renderOverlays', () => {
  it('draws the heat of the shown map below, the box and the top-k panel above, transparent elsewhere', async () => {
    const layout = overlayLayout(640, 480, [4, 4], PRE, { samplesPerCell: 4, overlayMaxSide: 320 });
    // One hot cell at row 3, col 3 (bottom right).
    const map = new Float32Array(16);
    map[15] = 4;
    const cams = new CamSmoother().update({
      ids: Int32Array.from([2]),
      scores: Float32Array.from([1]),
      probabilities: Float32Array.from([0.9]),
      maps: map,
      mapSize: [4, 4],
    });
    const box: [number, number, number, number] = [480, 360, 640, 480];
    const [out] = await lastValueFrom(
      from([{ cams, boxes: [box], ms: {} as { render?: number } }]).pipe(renderOverlays(layout, ['a', 'b', 'cat'], { samplesPerCell: 4, overlayMaxSide: 320, alpha: 0.5 }), toArray()),
    );
    const buf = out.overlay;
    expect(buf.length).toBe((layout.width * layout.height * 5) / 2);
    expect(out.ms.render).toBeGreaterThan(0);
    const px = (x: number, y: number) => yuvaAt(buf, layout, x, y);
    const lut = colormapLut('turbo');
    // Heat grid: 16x16 below the 320x240 annotation layer; constant alpha 0.5. Its coldest and hottest
    // corners are flat over their 2x2 chroma blocks.
    const cold = px(0, layout.heatTop);
    const hot = px(layout.heatWidth - 1, layout.heatTop + layout.heatHeight - 1);
    expect(cold).toEqual(yuva(lut[0], lut[1], lut[2], 128));
    expect(hot).toEqual(yuva(lut[3 * 255], lut[3 * 255 + 1], lut[3 * 255 + 2], 128));
    // The box's left edge at x = 480 * 0.5 = 240 in the annotation layer: opaque white.
    expect(px(240, 200)).toEqual(yuva(255, 255, 255, 255));
    // The panel in the top-left corner is drawn; the middle of the frame is untouched: transparent black.
    expect(px(2, 2)[3]).toBeGreaterThan(100);
    expect(px(150, 150)).toEqual(yuva(0, 0, 0, 0));
  });

  it('reuses a released overlay buffer and redraws it whole: a reused frame equals a fresh one', async () => {
    const layout = overlayLayout(640, 480, [4, 4], PRE, { samplesPerCell: 4, overlayMaxSide: 320 });
    const frameWith = (cell: number, box: [number, number, number, number]) => {
      const map = new Float32Array(16);
      map[cell] = 4;
      const cams = new CamSmoother().update({ ids: Int32Array.from([2]), scores: Float32Array.from([1]), probabilities: Float32Array.from([0.9]), maps: map, mapSize: [4, 4] });
      return { cams, boxes: [box] };
    };
    const a = frameWith(15, [480, 360, 640, 480]);
    const b = frameWith(0, [10, 10, 200, 150]);
    const copies: Uint8Array[] = [];
    const outs = await lastValueFrom(
      from([a, b, a]).pipe(
        renderOverlays(layout, ['a', 'b', 'cat'], { samplesPerCell: 4, overlayMaxSide: 320 }),
        tap((out) => {
          copies.push(out.overlay.slice());
          out.releaseOverlay(); // as the sink does once ffmpeg's pipe has the bytes
          out.releaseOverlay(); // a second call changes nothing
        }),
        toArray(),
      ),
    );
    expect(outs[1].overlay).toBe(outs[0].overlay);
    expect(outs[2].overlay).toBe(outs[0].overlay);
    expect(Buffer.compare(copies[1], copies[0])).not.toBe(0);
    // Nothing of frame b (its box, its heat) is left in the reused buffer.
    expect(Buffer.compare(copies[2], copies[0])).toBe(0);
  });

  it('allocates a new buffer while the earlier ones are not released', async () => {
    const layout = overlayLayout(640, 480, [4, 4], PRE, { samplesPerCell: 4, overlayMaxSide: 320 });
    const cams = new CamSmoother().update({ ids: Int32Array.from([0]), scores: Float32Array.from([1]), probabilities: Float32Array.from([1]), maps: new Float32Array(16), mapSize: [4, 4] });
    const outs = await lastValueFrom(from([{ cams, boxes: [null] }, { cams, boxes: [null] }]).pipe(renderOverlays(layout, ['a']), toArray()));
    expect(outs[1].overlay).not.toBe(outs[0].overlay);
  });
});

describe('overlay text and the shown class', () => {
  /** A smoother holding class 1 on screen while class 2 leads (hysteresis), maps with one hot cell each. */
  function heldCams() {
    const s = new CamSmoother({ pastWeight: 0.5, switchMargin: 0.05, switchFrames: 5 });
    const map1 = new Float32Array(16);
    map1[0] = 4; // top left
    const map2 = new Float32Array(16);
    map2[15] = 4; // bottom right
    const frame = (p1: number, p2: number) => ({
      ids: Int32Array.from([1, 2]),
      scores: Float32Array.from([1, 1]),
      probabilities: Float32Array.from([p1, p2]),
      maps: Float32Array.from([...map1, ...map2]),
      mapSize: [4, 4] as [number, number],
    });
    s.update(frame(0.8, 0.1));
    let cams = s.update(frame(0.1, 0.8));
    for (let t = 0; t < 2; t++) cams = s.update(frame(0.1, 0.8));
    return cams;
  }

  it('lists the classes by score with the shown one marked, and tags the box like the image overlay', () => {
    const cams = heldCams();
    // Class 2 leads, class 1 is still held: listed second, marked.
    expect(Array.from(cams.ids)).toEqual([2, 1]);
    expect(cams.shown).toBe(1);
    const names = ['zero', 'nail', 'switch'];
    const text = overlayText(cams, (id) => names[id]);
    const [p2, p1] = [cams.probabilities[0].toFixed(2), cams.probabilities[1].toFixed(2)];
    expect(text.lines).toEqual([`1. switch ${p2}`, `2. nail ${p1} ${SHOWN_MARK}`]);
    // One space between label and score, and the tag carries the score: the image overlay's wording.
    expect(text.tag).toBe(`nail ${p1}`);
    expect(text.tag).toBe(labelText('nail', cams.probabilities[1]));
  });

  it('draws the shown class map and box, not the first listed', async () => {
    const cams = heldCams();
    const layout = overlayLayout(640, 480, [4, 4], PRE, { samplesPerCell: 4, overlayMaxSide: 320 });
    const boxes: Array<[number, number, number, number]> = [[480, 360, 640, 480], [100, 100, 200, 200]];
    const [out] = await lastValueFrom(from([{ cams, boxes }]).pipe(renderOverlays(layout, ['zero', 'nail', 'switch'], { samplesPerCell: 4, overlayMaxSide: 320, labels: false }), toArray()));
    const px = (x: number, y: number) => yuvaAt(out.overlay, layout, x, y);
    const lut = colormapLut('turbo');
    // The held class's hot cell is top-left: the heat grid is hot there and cold bottom-right.
    const topLeft = px(0, layout.heatTop);
    const bottomRight = px(layout.heatWidth - 1, layout.heatTop + layout.heatHeight - 1);
    expect(topLeft).not.toEqual(yuva(lut[0], lut[1], lut[2], 128));
    expect(bottomRight).toEqual(yuva(lut[0], lut[1], lut[2], 128));
    // Its box (left edge x = 100 -> 50 in the half-size layer) is outlined; the other's (x = 480 -> 240) is not.
    expect(px(50, 75)).toEqual(yuva(255, 255, 255, 255));
    expect(px(240, 200)).toEqual(yuva(0, 0, 0, 0));
  });

  it('keeps the box tag clear of the top-k panel when the box fills the frame from the top-left corner', async () => {
    const cams = new CamSmoother().update({ ids: Int32Array.from([2]), scores: Float32Array.from([1]), probabilities: Float32Array.from([0.9]), maps: new Float32Array(16).fill(1), mapSize: [4, 4] });
    const layout = overlayLayout(640, 480, [4, 4], PRE, { samplesPerCell: 4, overlayMaxSide: 320 });
    const [out] = await lastValueFrom(from([{ cams, boxes: [[0, 0, 640, 480] as [number, number, number, number]] }]).pipe(renderOverlays(layout, ['a', 'b', 'cat'], { samplesPerCell: 4, overlayMaxSide: 320 }), toArray()));
    // The tag's background (white at 217/255) shows: it was not painted over by the panel.
    let tagPixels = 0;
    let tagMinX = Infinity;
    const tagColour = yuva(255, 255, 255, 217).join();
    for (let y = 0; y < layout.annHeight; y++) {
      for (let x = 0; x < layout.annWidth; x++) {
        if (yuvaAt(out.overlay, layout, x, y).join() === tagColour) {
          tagPixels++;
          tagMinX = Math.min(tagMinX, x);
        }
      }
    }
    expect(tagPixels).toBeGreaterThan(100);
    // Right-aligned inside the top edge, away from the panel on the left.
    expect(tagMinX).toBeGreaterThan(layout.annWidth / 2);
  });

  it('tagSpot: above the box when there is room, else the first spot that keeps clear of the panel', () => {
    const layer = { w: 320, h: 240 };
    const tag = { w: 40, h: 16 };
    const panel = { x: 0, y: 0, w: 90, h: 80 };
    expect(tagSpot({ x: 150, y: 100, w: 50, h: 50 }, tag, 1, layer, panel)).toEqual({ x: 150, y: 83, w: 40, h: 16 });
    expect(tagSpot({ x: 0, y: 0, w: 320, h: 240 }, tag, 1, layer, panel)).toEqual({ x: 280, y: 1, w: 40, h: 16 });
    expect(tagSpot({ x: 0, y: 0, w: 320, h: 240 }, tag, 1, layer, null)).toEqual({ x: 0, y: 1, w: 40, h: 16 });
  });
});
