import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { colormapLut, type Preprocess } from '../../../models/index.ts';
import { CamSmoother, compositeFilter, coarseGeometry, frameGeometry, overlayLayout, renderOverlays } from '../../../pipelines/index.ts';

const PRE: Preprocess = { inputSize: [224, 224], channelOrder: 'rgb', layout: 'nhwc', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], resize: 'stretch', resizeFilter: 'triangle', normalization: 'default' };

describe('overlay layout and compositing graph', () => {
  it('packs a reduced annotation layer above the small heat grid', () => {
    const l = overlayLayout(1280, 720, [7, 7], PRE, { samplesPerCell: 8, overlayMaxSide: 640 });
    expect([l.annWidth, l.annHeight, l.heatWidth, l.heatHeight, l.width, l.height]).toEqual([640, 360, 56, 56, 640, 416]);
    const small = overlayLayout(320, 240, [14, 14], PRE, { samplesPerCell: 8 });
    // Never larger than the frame: a 320x240 video keeps its own size, the heat grid is capped at it.
    expect([small.annWidth, small.annHeight, small.heatWidth, small.heatHeight]).toEqual([320, 240, 112, 112]);
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
    expect(buf.length).toBe(layout.width * layout.height * 4);
    expect(out.ms.render).toBeGreaterThan(0);
    const px = (x: number, y: number) => Array.from(buf.subarray(4 * (y * layout.width + x), 4 * (y * layout.width + x) + 4));
    const lut = colormapLut('turbo');
    // Heat grid: 16x16 below the 320x240 annotation layer; constant alpha 0.5.
    const cold = px(0, layout.annHeight);
    const hot = px(layout.heatWidth - 1, layout.annHeight + layout.heatHeight - 1);
    expect(cold).toEqual([lut[0], lut[1], lut[2], 128]);
    expect(hot.slice(0, 3)).toEqual([lut[3 * 255], lut[3 * 255 + 1], lut[3 * 255 + 2]]);
    expect(hot[3]).toBe(128);
    // The box's left edge at x = 480 * 0.5 = 240 in the annotation layer: opaque white.
    expect(px(240, 200)).toEqual([255, 255, 255, 255]);
    // The panel in the top-left corner is drawn; the middle of the frame is untouched.
    expect(px(2, 2)[3]).toBeGreaterThan(100);
    expect(px(150, 150)).toEqual([0, 0, 0, 0]);
  });
});
