import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { ConfigError, InputError } from '../../../common/index.ts';
import { applyColormap, colormapLut, upsampleBilinear } from '../../../models/index.ts';
import { iou, paperBox, type Box, type FrameGeometry } from '../../../models/boxes/index.ts';
import {
  colourizeMap,
  renderOverlay,
  renderOverlayBuffer,
  resolveOverlayConfig,
  writeOverlayFile,
  type OverlayInput,
} from '../../../pipelines/render/index.ts';
import { fixture, fixturesPresent } from '../../helpers/fixtures.ts';

const W = 320;
const H = 240;
const GREY = 128;

/** A flat grey RGB frame. */
function greyFrame(width = W, height = H) {
  return { data: new Uint8Array(width * height * 3).fill(GREY), width, height };
}

/** A 7x7 normalized map: one hot cell in the top-left corner, zero elsewhere. */
function hotTopLeft(): Float32Array {
  const m = new Float32Array(49);
  m[0] = 1;
  return m;
}

async function rawPixels(input: OverlayInput) {
  const { data, info } = await (await renderOverlay(input)).raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
  return { data, info, at };
}

const dist = (a: number[], b: number[]) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-render-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('renderOverlay heat layer', () => {
  const jet = colormapLut('jet');
  const hot = Array.from(jet.subarray(765, 768)); // jet(1): dark red
  const cold = Array.from(jet.subarray(0, 3)); // jet(0): dark blue

  it('keeps the original size and shifts the hot corner toward the hot colour', async () => {
    const alpha = 0.3;
    const { info, at } = await rawPixels({ image: greyFrame(), map: hotTopLeft(), mapSize: [7, 7], colormap: 'jet', alpha });
    expect([info.width, info.height, info.channels]).toEqual([W, H, 3]);
    const orig = [GREY, GREY, GREY];
    const corner = at(5, 5);
    // Inside the hot cell's plateau the blend is exactly (1 - alpha) * grey + alpha * hot.
    corner.forEach((v, c) => expect(Math.abs(v - ((1 - alpha) * GREY + alpha * hot[c]))).toBeLessThanOrEqual(2));
    expect(dist(corner, hot)).toBeLessThan(dist(orig, hot) - 20);
    // Far away the map is 0: the pixel moves only alpha of the way to the cold colour.
    const far = at(W - 10, H - 10);
    far.forEach((v, c) => expect(Math.abs(v - ((1 - alpha) * GREY + alpha * cold[c]))).toBeLessThanOrEqual(2));
    expect(dist(far, orig)).toBeLessThanOrEqual(alpha * dist(cold, orig) + 3);
  });

  it('leaves cold pixels untouched with alphaMode value', async () => {
    const { at } = await rawPixels({ image: greyFrame(), map: hotTopLeft(), mapSize: [7, 7], colormap: 'jet', alpha: 0.6, alphaMode: 'value' });
    expect(at(W - 10, H - 10)).toEqual([GREY, GREY, GREY]);
    expect(at(W / 2, H / 2)).toEqual([GREY, GREY, GREY]);
    expect(dist(at(5, 5), hot)).toBeLessThan(dist([GREY, GREY, GREY], hot) - 50);
  });

  it('enlarges smoothly, matching a full-resolution bilinear upsampling coloured per pixel', async () => {
    // The reference is the slow, exact path (cv2-style bilinear to full size, then the colormap per pixel);
    // the renderer colours a small grid and lets libvips enlarge it.
    const map = hotTopLeft();
    map[3 * 7 + 4] = 0.6;
    map[6 * 7 + 6] = 0.3;
    const { at } = await rawPixels({ image: greyFrame(), map, mapSize: [7, 7], colormap: 'inferno', alpha: 1 });
    const ref = applyColormap(upsampleBilinear(map, [7, 7], [H, W]), 'inferno');
    let max = 0;
    let sum = 0;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const o = 3 * (y * W + x);
        const d = dist(at(x, y), [ref[o], ref[o + 1], ref[o + 2]]);
        max = Math.max(max, d);
        sum += d;
      }
    }
    // Measured: mean 0.2, max 25 (at the kink where the clamped border plateau meets the slope). Without
    // the compensation of libvips' half-pixel offset the mean is 0.67.
    expect(sum / (W * H)).toBeLessThan(0.4);
    expect(max).toBeLessThan(30);
  });

  it('crops letterboxed maps to the frame: padding rows never show', async () => {
    // 320x160 frame in 224x224: content 224x112 at y = 56, i.e. map rows 3.5..10.5 of 14.
    const geometry = { inputWidth: 224, inputHeight: 224, resize: 'letterbox' as const };
    const map = new Float32Array(196);
    for (let c = 0; c < 14; c++) for (let r = 0; r < 3; r++) map[r * 14 + c] = 1; // padding rows only
    map[7 * 14 + 0] = 1; // one hot cell at row 7, col 0: frame y = (112..128 - 56) / 0.7 = 80..102.9
    const { info, at } = await rawPixels({ image: greyFrame(320, 160), map, mapSize: [14, 14], geometry, colormap: 'jet', alpha: 1, alphaMode: 'value' });
    expect([info.width, info.height]).toEqual([320, 160]);
    for (let x = 0; x < 320; x += 20) expect(at(x, 0), `top row x=${x}`).toEqual([GREY, GREY, GREY]);
    expect(dist(at(4, 91), hot)).toBeLessThan(40);
    expect(at(4, 40)).toEqual([GREY, GREY, GREY]);
  });

  it('rejects a geometry that does not match the image', async () => {
    await expect(
      renderOverlay({ image: greyFrame(), map: hotTopLeft(), mapSize: [7, 7], geometry: { frameWidth: 100, inputWidth: 224, inputHeight: 224, resize: 'stretch' } }),
    ).rejects.toThrow(/100x.*320x240/);
    await expect(renderOverlay({ image: greyFrame(), map: new Float32Array(48), mapSize: [7, 7] })).rejects.toThrow(InputError);
    await expect(renderOverlay({ image: join(dir, 'missing.jpg'), map: hotTopLeft(), mapSize: [7, 7] })).rejects.toThrow(/missing\.jpg/);
    await expect(renderOverlay({ image: { data: new Uint8Array(10), width: 4, height: 4 }, map: hotTopLeft(), mapSize: [7, 7] })).rejects.toThrow(
      /10 bytes.*48/,
    );
  });
});

describe('colourizeMap', () => {
  it('colours a small grid of about samplesPerCell pixels per cell', () => {
    const g: FrameGeometry = { frameWidth: 1920, frameHeight: 1080, inputWidth: 224, inputHeight: 224, resize: 'stretch' };
    const layer = colourizeMap(hotTopLeft(), [7, 7], g, { samplesPerCell: 16, colormap: 'jet', alpha: 0.5 });
    expect([layer.width, layer.height]).toEqual([112, 112]);
    expect(layer.data.length).toBe(112 * 112 * 4);
    expect(Array.from(layer.data.subarray(0, 4))).toEqual([128, 0, 0, 128]);
  });
});

describe('renderOverlay annotations', () => {
  const box: Box = [100, 60, 220, 180];

  it('draws the box outline where the box is', async () => {
    const { at } = await rawPixels({
      image: greyFrame(),
      map: hotTopLeft(),
      mapSize: [7, 7],
      alpha: 0,
      lineWidth: 4,
      boxes: [{ box, colour: '#ff00ff' }],
    });
    const magenta = [255, 0, 255];
    for (const [x, y] of [
      [100, 120],
      [220, 120],
      [160, 60],
      [160, 180],
    ]) {
      expect(dist(at(x, y), magenta), `edge pixel ${x},${y}`).toBeLessThan(30);
    }
    expect(at(160, 120)).toEqual([GREY, GREY, GREY]);
    expect(at(90, 120)).toEqual([GREY, GREY, GREY]);
    expect(at(230, 120)).toEqual([GREY, GREY, GREY]);
  });

  it('writes labels and the top-k list as text, and can leave text out', async () => {
    const warnings: string[] = [];
    const input: OverlayInput = {
      image: greyFrame(),
      map: hotTopLeft(),
      mapSize: [7, 7],
      alpha: 0,
      boxes: [{ box, label: 'fox squirrel', score: 0.45, colour: [0, 255, 0] }],
      topLabels: [
        { label: 'fox squirrel', score: 0.45 },
        { label: 'red fox <&>\u0001', score: 0.12 },
      ],
      onWarning: (m) => warnings.push(m),
    };
    const withText = await rawPixels(input);
    // Markup and control characters in labels are escaped, not a reason to drop the text.
    expect(warnings).toEqual([]);
    const without = await rawPixels({ ...input, labels: false });
    const changed = (p: Awaited<ReturnType<typeof rawPixels>>, x0: number, y0: number, x1: number, y1: number) => {
      let n = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (dist(p.at(x, y), [GREY, GREY, GREY]) > 30) n++;
      return n;
    };
    // Top-left list panel and the label tag above the box.
    expect(changed(withText, 0, 0, 60, 20)).toBeGreaterThan(200);
    expect(changed(without, 0, 0, 60, 20)).toBe(0);
    expect(changed(withText, 100, 40, 160, 56)).toBeGreaterThan(100);
    expect(changed(without, 100, 40, 160, 56)).toBe(0);
  });

  it('rejects unsafe colours and malformed boxes', async () => {
    const base = { image: greyFrame(), map: hotTopLeft(), mapSize: [7, 7] as [number, number] };
    await expect(renderOverlay({ ...base, boxes: [{ box, colour: 'red"/><script' }] })).rejects.toThrow(ConfigError);
    await expect(renderOverlay({ ...base, boxes: [{ box: [0, 0, NaN, 1] as Box }] })).rejects.toThrow(/boxes\[0\]\.box/);
    expect(() => resolveOverlayConfig({ alpha: 2 })).toThrow(/alpha.*2/);
    expect(() => resolveOverlayConfig({ colormap: 'parula' as never })).toThrow(/"parula"/);
  });
});

describe('writeOverlayFile', () => {
  const input = (): OverlayInput => ({ image: greyFrame(), map: hotTopLeft(), mapSize: [7, 7], boxes: [{ box: [10, 10, 100, 100], label: 'x', score: 1 }] });

  it('writes jpg, png and webp chosen by extension, at the original size', async () => {
    for (const [name, format] of [
      ['a.jpg', 'jpeg'],
      ['b.PNG', 'png'],
      ['c.webp', 'webp'],
    ] as const) {
      const out = join(dir, name);
      await writeOverlayFile(out, input());
      const meta = await sharp(await readFile(out)).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual([format, W, H]);
    }
    const png = await renderOverlayBuffer(input(), 'png');
    expect((await sharp(png).metadata()).channels).toBe(3);
  });

  it('leaves no file behind when writing fails', async () => {
    const sub = join(dir, 'failing');
    await mkdir(sub);
    // The target is an existing folder: encoding succeeds, the final rename fails.
    await mkdir(join(sub, 'taken.png'));
    await expect(writeOverlayFile(join(sub, 'taken.png'), input())).rejects.toThrow();
    // Too wide for WebP: the encoder fails.
    await expect(
      writeOverlayFile(join(sub, 'wide.webp'), { ...input(), image: greyFrame(16400, 2), boxes: [] }),
    ).rejects.toThrow();
    // Bad extension and bad input: refused before anything is written.
    await expect(writeOverlayFile(join(sub, 'x.gif'), input())).rejects.toThrow(ConfigError);
    await expect(writeOverlayFile(join(sub, 'y.png'), { ...input(), map: new Float32Array(3) })).rejects.toThrow(InputError);
    expect((await readdir(sub)).sort()).toEqual(['taken.png']);
  });
});

describe.skipIf(!fixturesPresent)('renderOverlay on a real photo', () => {
  it('renders the squirrel photo with a map over its annotated box', async () => {
    const annotations = JSON.parse(await readFile(fixture('annotations.json'), 'utf8'));
    const entry = annotations.images['images/opencv_squirrel_cls.jpg'];
    const [fw, fh] = entry.size as [number, number];
    const gt = entry.objects[0].box as Box;
    // A synthetic 14x14 map: a Gaussian over the annotated object (no model involved in this unit test).
    const geometry: FrameGeometry = { frameWidth: fw, frameHeight: fh, inputWidth: 224, inputHeight: 224, resize: 'stretch' };
    const map = new Float32Array(196);
    const cx = ((gt[0] + gt[2]) / 2 / fw) * 14;
    const cy = ((gt[1] + gt[3]) / 2 / fh) * 14;
    const sx = ((gt[2] - gt[0]) / fw) * 14 * 0.35;
    const sy = ((gt[3] - gt[1]) / fh) * 14 * 0.35;
    for (let r = 0; r < 14; r++) {
      for (let c = 0; c < 14; c++) map[r * 14 + c] = Math.exp(-(((c + 0.5 - cx) / sx) ** 2 + ((r + 0.5 - cy) / sy) ** 2) / 2);
    }
    const box = paperBox(map, [14, 14], geometry)!;
    expect(iou(box, gt)).toBeGreaterThan(0.5);
    const out = join(dir, 'squirrel.png');
    await writeOverlayFile(out, {
      image: fixture('images', 'opencv_squirrel_cls.jpg'),
      map,
      mapSize: [14, 14],
      geometry,
      alpha: 0.45,
      boxes: [
        { box: gt, label: 'annotated' },
        { box, label: 'fox squirrel', score: 0.45 },
      ],
      topLabels: [
        { label: 'fox squirrel', score: 0.45 },
        { label: 'marmot', score: 0.08 },
      ],
    });
    const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([fw, fh]);
    // The overlay's hottest colour (turbo's dark red end) dominates at the Gaussian's centre.
    const px = Math.round((cx / 14) * fw);
    const py = Math.round((cy / 14) * fh);
    const o = (py * info.width + px) * info.channels;
    const { data: photo } = await sharp(fixture('images', 'opencv_squirrel_cls.jpg'), { autoOrient: true }).raw().toBuffer({ resolveWithObject: true });
    expect(data[o] - photo[o]).toBeGreaterThan(10);
  });
});
