import { describe, expect, it } from 'vitest';
import { ConfigError, InputError } from '../../../common/index.ts';
import {
  boxInside,
  contentRect,
  iou,
  maxBoxAcc,
  maxBoxAccV2,
  officialBox,
  officialBoxes,
  OFFICIAL_THRESHOLDS,
  paperBox,
  peakPoint,
  thresholdSweep,
  type Box,
  type FrameGeometry,
} from '../../../models/boxes/index.ts';
import { fitGeometry } from '../../../models/index.ts';

/** A `[h, w]` map of zeros with the given cells set: `[row, col, value]`. */
function mapWith(h: number, w: number, cells: Array<[number, number, number]>): Float32Array {
  const m = new Float32Array(h * w);
  for (const [r, c, v] of cells) m[r * w + c] = v;
  return m;
}

/** All cells of an inclusive block. */
function block(r0: number, r1: number, c0: number, c1: number, v = 1): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) out.push([r, c, v]);
  return out;
}

/**
 * A geometry under which the 'input' work grid IS the map grid (input size = map size, so each grid cell
 * samples exactly one map cell centre) and each cell is 10x10 frame pixels: boxes read off in cells x 10.
 */
function identity(h: number, w: number): FrameGeometry {
  return { frameWidth: w * 10, frameHeight: h * 10, inputWidth: w, inputHeight: h, resize: 'stretch' };
}

function expectBoxClose(actual: Box | null, expected: Box, tolerance: number): void {
  expect(actual).not.toBeNull();
  actual!.forEach((v, i) => expect(Math.abs(v - expected[i]), `coordinate ${i}: ${v} vs ${expected[i]}`).toBeLessThanOrEqual(tolerance));
}

describe('geometry', () => {
  it('places the letterboxed frame as the preprocessor does (fitGeometry)', () => {
    const sizes = [
      [400, 200],
      [200, 400],
      [1920, 1080],
      [333, 777],
      [224, 224],
      [225, 224],
      [1, 500],
    ];
    for (const [fw, fh] of sizes) {
      for (const [inH, inW] of [
        [224, 224],
        [256, 320],
      ]) {
        const fit = fitGeometry(fw, fh, { inputSize: [inH, inW], resize: 'letterbox' });
        const c = contentRect({ frameWidth: fw, frameHeight: fh, inputWidth: inW, inputHeight: inH, resize: 'letterbox' });
        expect(c, `${fw}x${fh} into ${inW}x${inH}`).toEqual({
          x: fit.padLeft,
          y: fit.padTop,
          width: fit.contentSize[1],
          height: fit.contentSize[0],
        });
      }
    }
  });
});

describe('paperBox', () => {
  // 14x14 map over a 280x140 frame (stretch): a map cell is 20 x 10 frame pixels.
  const stretch: FrameGeometry = { frameWidth: 280, frameHeight: 140, inputWidth: 224, inputHeight: 224, resize: 'stretch' };
  // Blob A: 2x2 cells; blob B: 3x3 cells (larger).
  const twoBlobs = mapWith(14, 14, [...block(2, 3, 2, 3), ...block(8, 10, 8, 10)]);

  it('boxes the larger of two blobs, mapped back to frame pixels (stretch)', () => {
    // Bilinear upsampling: between a 1-cell centre and a 0-cell centre the value falls linearly, so it stays
    // above 0.2 up to 0.8 cell beyond the blob's last centre: B spans map x in (7.7, 11.3), the same in y.
    // In frame pixels: x (154, 226), y (77, 113).
    expect(paperBox(twoBlobs, [14, 14], stretch, { resolution: 'frame' })).toEqual([154, 77, 226, 113]);
    // At model-input resolution one work cell is 1.25 x 0.625 frame pixels: within one cell of the same box.
    expectBoxClose(paperBox(twoBlobs, [14, 14], stretch), [154, 77, 226, 113], 1.25);
  });

  it('joins diagonal neighbours (8-connectivity), which 4-connectivity would split', () => {
    // A diagonal chain of 3 cells and a horizontal pair of 2: with 8-connectivity the chain is the larger
    // component; with 4-connectivity it would be three singletons and the pair would win.
    const map = mapWith(6, 6, [
      [1, 1, 1],
      [2, 2, 1],
      [3, 3, 1],
      [5, 3, 1],
      [5, 4, 1],
    ]);
    expect(paperBox(map, [6, 6], identity(6, 6))).toEqual([10, 10, 40, 40]);
  });

  it('keeps cells strictly above threshold * max', () => {
    // One cell at 1 and a 3-cell blob at exactly 0.25 of the max.
    const map = mapWith(6, 6, [[0, 0, 1], ...[[2, 2], [2, 3], [3, 2]].map(([r, c]) => [r, c, 0.25] as [number, number, number])]);
    expect(paperBox(map, [6, 6], identity(6, 6), { threshold: 0.25 })).toEqual([0, 0, 10, 10]);
    expect(paperBox(map, [6, 6], identity(6, 6), { threshold: 0.24 })).toEqual([20, 20, 40, 40]);
  });

  it('threshold 0 keeps every positive cell; the threshold is relative to the raw max, not min-max', () => {
    const map = mapWith(6, 6, [...block(1, 2, 1, 4, 0.1), [4, 4, 1]]);
    map.forEach((v, i) => (map[i] = v === 0 ? -5 : v));
    // Negative background: min-max would lift 0.1 to ~0.83, but the paper rule compares with 0.2 * max = 0.2.
    expect(paperBox(map, [6, 6], identity(6, 6), { threshold: 0.2 })).toEqual([40, 40, 50, 50]);
    expect(paperBox(map, [6, 6], identity(6, 6), { threshold: 0 })).toEqual([10, 10, 50, 30]);
  });

  it('returns null for a map with no positive value', () => {
    expect(paperBox(new Float32Array(49), [7, 7], identity(7, 7))).toBeNull();
    expect(paperBox(new Float32Array(49).fill(-1), [7, 7], identity(7, 7))).toBeNull();
  });

  it('maps letterboxed maps back to the frame and ignores the padding', () => {
    // 400x200 frame in a 224x224 input: scale 0.56, content 224x112 at y = 56. Map cells are 16 input px.
    const letterbox: FrameGeometry = { frameWidth: 400, frameHeight: 200, inputWidth: 224, inputHeight: 224, resize: 'letterbox' };
    // Object: rows 6..7, cols 3..5. A bigger blob fills map rows 0..2, which lie entirely in the top padding.
    const map = mapWith(14, 14, [...block(6, 7, 3, 5), ...block(0, 2, 0, 13)]);
    // Above 0.2 over map x (2.7, 6.3), y (5.7, 8.3) -> input x (43.2, 100.8), y (91.2, 132.8)
    // -> frame x = input / 0.56, y = (input - 56) / 0.56.
    const expected: Box = [43.2 / 0.56, (91.2 - 56) / 0.56, 100.8 / 0.56, (132.8 - 56) / 0.56];
    expectBoxClose(paperBox(map, [14, 14], letterbox), expected, 400 / 224);
    expectBoxClose(paperBox(map, [14, 14], letterbox, { resolution: 'frame' }), expected, 1);
    // Portrait: the same object transposed lands transposed.
    const portrait: FrameGeometry = { ...letterbox, frameWidth: 200, frameHeight: 400 };
    const mapT = new Float32Array(196);
    for (let r = 0; r < 14; r++) for (let c = 0; c < 14; c++) mapT[c * 14 + r] = map[r * 14 + c];
    const [x1, y1, x2, y2] = expected;
    expectBoxClose(paperBox(mapT, [14, 14], portrait, { resolution: 'frame' }), [y1, x1, y2, x2], 1);
  });

  it('maps stretched maps back with separate x and y scales', () => {
    const geometry: FrameGeometry = { frameWidth: 640, frameHeight: 480, inputWidth: 224, inputHeight: 224, resize: 'stretch' };
    const map = mapWith(7, 7, block(1, 2, 4, 5));
    // Map x (3.7, 6.3) of 7 cells -> 640 px; map y (0.7, 3.3) of 7 -> 480 px.
    const expected: Box = [(3.7 * 640) / 7, (0.7 * 480) / 7, (6.3 * 640) / 7, (3.3 * 480) / 7];
    expectBoxClose(paperBox(map, [7, 7], geometry, { resolution: 'frame' }), expected, 1);
    expectBoxClose(paperBox(map, [7, 7], geometry), expected, 640 / 224);
  });

  it('rejects bad thresholds, sizes and geometry with errors naming them', () => {
    const map = new Float32Array(49);
    expect(() => paperBox(map, [7, 7], identity(7, 7), { threshold: 1 })).toThrow(/threshold.*1/);
    expect(() => paperBox(map, [7, 7], identity(7, 7), { threshold: -0.1 })).toThrow(ConfigError);
    expect(() => paperBox(map, [7, 7], identity(7, 7), { threshold: NaN })).toThrow(ConfigError);
    expect(() => paperBox(map, [7, 6], identity(7, 7))).toThrow(InputError);
    expect(() => paperBox(map, [7, 7], { ...identity(7, 7), frameWidth: 0 })).toThrow(/frameWidth.*0/);
    expect(() => paperBox(map, [7, 7], { ...identity(7, 7), resize: 'crop' as never })).toThrow(/"crop"/);
    expect(() => paperBox(map, [7, 7], identity(7, 7), { resolution: 'full' as never })).toThrow(/"full"/);
  });
});

describe('thresholdSweep', () => {
  const geometry: FrameGeometry = { frameWidth: 320, frameHeight: 240, inputWidth: 224, inputHeight: 224, resize: 'stretch' };
  const gaussian = new Float32Array(196);
  for (let r = 0; r < 14; r++) {
    for (let c = 0; c < 14; c++) gaussian[r * 14 + c] = Math.exp(-((r - 5.3) ** 2 + (c - 8.1) ** 2) / (2 * 2.5 ** 2)) - 0.05;
  }
  const thresholds = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

  it('gives nested, shrinking boxes on a single-peak map as the threshold rises', () => {
    const boxes = thresholdSweep(gaussian, [14, 14], geometry, thresholds);
    for (let i = 1; i < boxes.length; i++) {
      expect(boxInside(boxes[i]!, boxes[i - 1]!)).toBe(1);
      expect(iou(boxes[i]!, boxes[i - 1]!)).toBeLessThan(1);
    }
  });

  it('equals paperBox at each threshold', () => {
    const boxes = thresholdSweep(gaussian, [14, 14], geometry, thresholds);
    thresholds.forEach((t, i) => expect(boxes[i]).toEqual(paperBox(gaussian, [14, 14], geometry, { threshold: t })));
  });

  it('gives null at every threshold for a non-positive map', () => {
    expect(thresholdSweep(new Float32Array(196), [14, 14], geometry, [0.1, 0.5])).toEqual([null, null]);
  });

  it('rejects an empty threshold list', () => {
    expect(() => thresholdSweep(gaussian, [14, 14], geometry, [])).toThrow(ConfigError);
  });
});

describe('officialBoxes (released code rule)', () => {
  const plain = { erode: false, holes: false, edgeMargin: 0 };

  it('drops a nested box covering more than half of the larger box, keeps one covering less', () => {
    const big = mapWith(20, 20, [...block(2, 11, 2, 11, 0.5), ...block(3, 10, 3, 10, 1)]);
    // 10x10 cells at threshold 0.3, 8x8 at 0.6: 64 > 0.5 * 100 -> dropped.
    expect(officialBoxes(big, [20, 20], identity(20, 20), { ...plain, thresholds: [0.3, 0.6] })).toEqual([[20, 20, 120, 120]]);
    const small = mapWith(20, 20, [...block(2, 11, 2, 11, 0.5), ...block(4, 9, 4, 9, 1)]);
    // 6x6 inside: 36 <= 50 -> kept (an intersection-over-the-smaller-box rule would have dropped it).
    expect(officialBoxes(small, [20, 20], identity(20, 20), { ...plain, thresholds: [0.3, 0.6] })).toEqual([
      [20, 20, 120, 120],
      [40, 40, 100, 100],
    ]);
  });

  it('merges by intersection over the larger area, not IoU', () => {
    // A "C" (open to the right) with bounding box 10x14 cells, and a separate bar through its opening with
    // bounding box 14x10: intersection 8x10 = 80 > 0.5 * 140, though IoU = 80 / 200 = 0.4.
    const cells: Array<[number, number, number]> = [...block(0, 0, 0, 9), ...block(13, 13, 0, 9), ...block(0, 13, 0, 0), ...block(2, 11, 2, 15)];
    const map = mapWith(20, 20, cells);
    const boxes = officialBoxes(map, [20, 20], identity(20, 20), { ...plain, thresholds: [0.5] });
    expect(iou([0, 0, 100, 140], [20, 20, 160, 120])).toBeCloseTo(0.4, 6);
    // Equal areas: the first found (raster order) stays.
    expect(boxes).toEqual([[0, 0, 100, 140]]);
  });

  it('adds the box of a hole (the hole grown by its one-pixel border), as two-level contours do', () => {
    const ring = mapWith(20, 20, block(2, 13, 2, 13));
    for (let r = 6; r <= 9; r++) for (let c = 6; c <= 9; c++) ring[r * 20 + c] = 0;
    const g = identity(20, 20);
    expect(officialBoxes(ring, [20, 20], g, { erode: false, edgeMargin: 0, thresholds: [0.5] })).toEqual([
      [20, 20, 140, 140],
      [50, 50, 110, 110],
    ]);
    expect(officialBoxes(ring, [20, 20], g, { ...plain, thresholds: [0.5] })).toEqual([[20, 20, 140, 140]]);
  });

  it('erodes by the relative distance transform: thin parts vanish, blobs lose their outer pixel', () => {
    // A 60x60 blob (inner radius 30) with a one-cell-thick line sticking out to the right.
    const map = mapWith(120, 120, [...block(30, 89, 30, 89), ...block(60, 60, 90, 115)]);
    const g = identity(120, 120);
    expect(officialBoxes(map, [120, 120], g, { ...plain, thresholds: [0.5] })).toEqual([[300, 300, 1160, 900]]);
    // Distances rescaled so that 30 -> 255: distance 1 -> 8.5, rounded 9 <= 10, dropped; sqrt(2) -> 12, kept.
    // The line and the blob's outermost ring go, except the blob pixel next to the line's root (distance
    // sqrt(2)), which keeps the right edge at column 89.
    expect(officialBoxes(map, [120, 120], g, { holes: false, edgeMargin: 0, thresholds: [0.5] })).toEqual([
      [310, 310, 900, 890],
    ]);
    // Level 8.5 rounds half up to 9 (the released ROUND): above level 8, not above level 9.
    const at = (erodeLevel: number) => officialBoxes(map, [120, 120], g, { holes: false, edgeMargin: 0, thresholds: [0.5], erodeLevel });
    expect(at(8)).toEqual([[300, 300, 1160, 900]]);
    expect(at(9)).toEqual([[310, 310, 900, 890]]);
  });

  it('keeps boxes off the right and bottom edges by the edge margin', () => {
    const map = mapWith(20, 20, block(5, 9, 15, 19));
    expect(officialBoxes(map, [20, 20], identity(20, 20), { erode: false, thresholds: [0.5] })).toEqual([[150, 50, 195, 100]]);
    expect(officialBoxes(map, [20, 20], identity(20, 20), { ...plain, thresholds: [0.5] })).toEqual([[150, 50, 200, 100]]);
  });

  it('uses the released thresholds by default and agrees with the paper box on a single blob', () => {
    expect(OFFICIAL_THRESHOLDS.map((t) => Math.round(t * 255))).toEqual([20, 100, 110]);
    const geometry: FrameGeometry = { frameWidth: 640, frameHeight: 480, inputWidth: 224, inputHeight: 224, resize: 'stretch' };
    const map = new Float32Array(196);
    for (let r = 0; r < 14; r++) for (let c = 0; c < 14; c++) map[r * 14 + c] = Math.exp(-((r - 6) ** 2 + (c - 4) ** 2) / 8);
    const boxes = officialBoxes(map, [14, 14], geometry);
    expect(boxes.length).toBeGreaterThan(0);
    for (let i = 1; i < boxes.length; i++) {
      expect((boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])).toBeLessThanOrEqual(
        (boxes[i - 1][2] - boxes[i - 1][0]) * (boxes[i - 1][3] - boxes[i - 1][1]),
      );
    }
    expect(officialBox(map, [14, 14], geometry)).toEqual(boxes[0]);
    // Level 20/255 is a looser threshold than the paper's 0.2, so the box is larger but centred alike.
    const paper = paperBox(map, [14, 14], geometry)!;
    expect(boxInside(paper, boxes[0])).toBeGreaterThan(0.99);
    expect(iou(paper, boxes[0])).toBeGreaterThan(0.4);
  });

  it('returns nothing for a non-positive map', () => {
    expect(officialBoxes(new Float32Array(49).fill(-1), [7, 7], identity(7, 7))).toEqual([]);
    expect(officialBox(new Float32Array(49), [7, 7], identity(7, 7))).toBeNull();
  });

  it('rejects bad options with errors naming them', () => {
    const map = new Float32Array(49);
    expect(() => officialBoxes(map, [7, 7], identity(7, 7), { thresholds: [] })).toThrow(ConfigError);
    expect(() => officialBoxes(map, [7, 7], identity(7, 7), { thresholds: [0.1, 0] })).toThrow(/thresholds\[1\].*0/);
    expect(() => officialBoxes(map, [7, 7], identity(7, 7), { erodeLevel: 300 })).toThrow(/erodeLevel.*300/);
    expect(() => officialBoxes(map, [7, 7], identity(7, 7), { edgeMargin: -1 })).toThrow(/edgeMargin.*-1/);
  });
});

describe('iou and boxInside', () => {
  it('measure overlap on continuous extents', () => {
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(1 / 3, 9);
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(iou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(iou([0, 0, 0, 0], [0, 0, 0, 0])).toBe(0);
    expect(boxInside([0, 0, 10, 10], [5, 0, 15, 10])).toBe(0.5);
    expect(boxInside([2, 2, 4, 4], [0, 0, 10, 10])).toBe(1);
    expect(boxInside([0, 0, 10, 10], [2, 2, 4, 4])).toBe(0.04);
    expect(boxInside([3, 3, 3, 9], [0, 0, 10, 10])).toBe(0);
  });
});

describe('peakPoint', () => {
  it('is the centre of the maximum cell in frame pixels', () => {
    const map = mapWith(7, 7, [[2, 5, 3], [4, 1, 2]]);
    const g: FrameGeometry = { frameWidth: 700, frameHeight: 350, inputWidth: 224, inputHeight: 224, resize: 'stretch' };
    expect(peakPoint(map, [7, 7], g)).toEqual({ x: 550, y: 125, value: 3 });
  });

  it('ignores cells over letterbox padding', () => {
    const g: FrameGeometry = { frameWidth: 400, frameHeight: 200, inputWidth: 224, inputHeight: 224, resize: 'letterbox' };
    const map = mapWith(14, 14, [[0, 0, 10], [8, 3, 5]]);
    const p = peakPoint(map, [14, 14], g);
    // Cell (8, 3) centre: input (56, 136) -> frame (56 / 0.56, (136 - 56) / 0.56).
    expect(p.value).toBe(5);
    expect(p.x).toBeCloseTo(100, 6);
    expect(p.y).toBeCloseTo(80 / 0.56, 6);
  });
});

describe('maxBoxAcc', () => {
  const gt: Box[][] = [
    [[0, 0, 10, 10]],
    [
      [0, 0, 10, 10],
      [20, 20, 30, 30],
    ],
    [],
  ];
  const predictions = [
    [[0, 0, 10, 10] as Box, [0, 0, 5, 10] as Box, null],
    [[0, 0, 20, 20] as Box, [[21, 21, 30, 30]] as Box[], [[0, 0, 1, 1], [20, 20, 30, 30]] as Box[]],
    [[0, 0, 10, 10] as Box, null, [0, 0, 10, 10] as Box],
  ];

  it('is the best box accuracy over thresholds', () => {
    // IoUs: image 0: 1, 0.5, none; image 1: 0.25, 0.81, 1; image 2 has no ground truth.
    const r = maxBoxAcc(predictions, gt, { thresholds: [0.1, 0.2, 0.3] });
    expect(r.accuracies.map((a) => a * 3)).toEqual([1, 2, 1]);
    expect(r.value).toBeCloseTo(2 / 3, 12);
    expect(r.bestIndex).toBe(1);
    expect(r.bestThreshold).toBe(0.2);
  });

  it('uses the IoU threshold with >= and picks the first threshold on ties', () => {
    const r = maxBoxAcc(predictions, gt, { iouThreshold: 0.9 });
    expect(r.accuracies.map((a) => a * 3)).toEqual([1, 0, 1]);
    expect(r.bestIndex).toBe(0);
    expect(r.bestThreshold).toBeUndefined();
  });

  it('V2 averages over IoU 0.3, 0.5 and 0.7', () => {
    const r = maxBoxAccV2(predictions, gt);
    expect(r.perIou.map((p) => p.value * 3)).toEqual([2, 2, 1]);
    expect(r.value).toBeCloseTo(5 / 9, 12);
  });

  it('rejects mismatched inputs', () => {
    expect(() => maxBoxAcc(predictions, gt.slice(0, 2))).toThrow(/3 images.*2/);
    expect(() => maxBoxAcc([[null], [null, null]], [[], []])).toThrow(InputError);
    expect(() => maxBoxAcc(predictions, gt, { iouThreshold: 0 })).toThrow(ConfigError);
    expect(() => maxBoxAcc(predictions, gt, { thresholds: [0.1] })).toThrow(ConfigError);
  });
});
