/**
 * The live page with a 640x480 camera (Chromium's fake camera fed a y4m made here by ffmpeg): the page
 * shows the camera at its own aspect and resolution, and draws the map over it, upsampled smoothly and
 * aligned. The model is built here: one 8x8-stride conv that averages the pixels, GAP, and a dense layer
 * whose winning class weighs that average positively, so its class map is the frame's brightness and the
 * test does not depend on what a trained model sees. The frame is black with one white square near the
 * top-right corner; the hottest part of the overlay must lie over that square.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toOnnxModel, type NetSpec } from '../../lab/builders/index.ts';
import { load, type CamModel } from '../../models/index.ts';
import type { LiveServer } from '../../server/index.ts';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { ROOT } from '../helpers/fixtures.ts';
import { disposeAll, startTestServer, tempDir } from '../integration/server-harness.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const run = promisify(execFile);

/** The white square in the camera frame, in fractions of the 640x480 frame: x0, y0, x1, y1. */
const SQUARE = [480 / 640, 40 / 480, 600 / 640, 160 / 480] as const;

/** A GAP model whose class-0 map is the mean brightness of each 8x8 cell of its 64x64 input. */
function brightnessNet(): NetSpec {
  return {
    name: 'brightness',
    inputSize: [64, 64],
    nodes: [
      { op: 'conv', name: 'cells', input: 'input', filters: 1, kernel: [8, 8], strides: 8, padding: 'valid', activation: 'relu', kernelWeights: new Float32Array(8 * 8 * 3).fill(1 / 192), bias: new Float32Array([0]) },
      { op: 'gap', name: 'gap', input: 'cells' },
      { op: 'dense', name: 'logits', input: 'gap', units: 2, kernelWeights: new Float32Array([1, 0]), bias: new Float32Array([5, 0]) },
    ],
    output: 'logits',
  };
}

interface CameraFigures {
  naturalWidth: number;
  naturalHeight: number;
  shownWidth: number;
  shownHeight: number;
  frames: number;
  renderer: string | undefined;
  /** Overlay canvas size and the hottest point of the overlay (colour mapped back through the LUT), fractions. */
  overlayWidth: number;
  overlayHeight: number;
  hotX: number;
  hotY: number;
  /** Overlay pixels drawn (alpha > 0), as a fraction of the overlay. */
  covered: number;
  /** Largest step of the map value between neighbouring pixels along the row through the hottest point (0..255). */
  maxRowStep: number;
}

/** Reads the camera <video>'s sizes and the overlay's pixels, mapped back to map values by the LUT. */
function readCamera(page: Page): Promise<CameraFigures> {
  return page.evaluate(() => {
    const app = document.querySelector('camstream-app') as unknown as { stats: { frames: number }; renderRoot: ShadowRoot };
    const viewer = app.renderRoot.querySelector('cam-viewer') as unknown as { renderRoot: ShadowRoot; rendererKind?: string; luts: Record<string, Uint8Array>; colormap: string };
    const video = viewer.renderRoot.querySelector('video') as HTMLVideoElement;
    const canvas = viewer.renderRoot.querySelector(viewer.rendererKind === 'webgl' ? 'canvas.gl' : 'canvas.c2d') as HTMLCanvasElement;
    const copy = document.createElement('canvas');
    copy.width = canvas.width;
    copy.height = canvas.height;
    const ctx = copy.getContext('2d')!;
    ctx.drawImage(canvas, 0, 0);
    const data = ctx.getImageData(0, 0, copy.width, copy.height).data;
    const lut = viewer.luts[viewer.colormap];
    // Nearest LUT entry of each pixel's colour, memoised by colour.
    const memo = new Map<number, number>();
    const valueOf = (i: number): number => {
      const key = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
      let v = memo.get(key);
      if (v === undefined) {
        let best = Infinity;
        v = 0;
        for (let k = 0; k < 256; k++) {
          const d = (lut[3 * k] - data[i]) ** 2 + (lut[3 * k + 1] - data[i + 1]) ** 2 + (lut[3 * k + 2] - data[i + 2]) ** 2;
          if (d < best) {
            best = d;
            v = k;
          }
        }
        memo.set(key, v);
      }
      return v;
    };
    const w = copy.width;
    const h = copy.height;
    let hot = -1;
    let sumX = 0;
    let sumY = 0;
    let n = 0;
    const values = new Uint8Array(w * h);
    for (let p = 0; p < w * h; p++) values[p] = data[4 * p + 3] > 0 ? valueOf(4 * p) : 0;
    let drawn = 0;
    for (let p = 0; p < w * h; p++) {
      hot = Math.max(hot, values[p]);
      if (data[4 * p + 3] > 0) drawn++;
    }
    // Centroid of the pixels within 2% of the hottest value.
    for (let p = 0; p < w * h; p++) {
      if (values[p] >= hot - 5) {
        sumX += p % w;
        sumY += Math.floor(p / w);
        n++;
      }
    }
    const row = Math.round(sumY / n);
    let maxRowStep = 0;
    for (let x = 1; x < w; x++) maxRowStep = Math.max(maxRowStep, Math.abs(values[row * w + x] - values[row * w + x - 1]));
    const box = video.getBoundingClientRect();
    return {
      naturalWidth: video.videoWidth,
      naturalHeight: video.videoHeight,
      shownWidth: box.width,
      shownHeight: box.height,
      frames: app.stats.frames,
      renderer: viewer.rendererKind,
      overlayWidth: w,
      overlayHeight: h,
      hotX: (sumX / n + 0.5) / w,
      hotY: (sumY / n + 0.5) / h,
      maxRowStep,
      covered: drawn / (w * h),
    };
  });
}

describe.skipIf(!haveChromium)('the live page with a 640x480 camera', () => {
  let dir: string;
  let model: CamModel;
  let server: LiveServer;
  let y4m: string;
  let browser: Browser | undefined;

  beforeAll(async () => {
    dir = await tempDir('camstream-e2e-camera-');
    const clientDir = join(dir, 'client');
    await build({ configFile: join(ROOT, 'client', 'vite.config.ts'), logLevel: 'error', build: { outDir: clientDir, sourcemap: false } });
    const { ffmpeg } = await testFfmpeg();
    y4m = join(dir, 'camera.y4m');
    // ffmpeg -f lavfi -i color=c=black:s=640x480:r=10:d=3,drawbox=x=480:y=40:w=120:h=120:color=white:t=fill -pix_fmt yuv420p camera.y4m
    await run(ffmpeg.path, ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', 'color=c=black:s=640x480:r=10:d=3,drawbox=x=480:y=40:w=120:h=120:color=white:t=fill', '-pix_fmt', 'yuv420p', y4m]);
    const file = join(dir, 'brightness.onnx');
    await writeFile(file, toOnnxModel(brightnessNet()));
    model = await load(file, { engine: 'onnx', threads: 1 });
    server = await startTestServer({ model, http: { clientDir } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await disposeAll();
    await model?.dispose();
  });

  it.each(['webgl', '2d'] as const)('shows the camera at 4:3 and full resolution, with a smooth map aligned over the bright square (%s)', async (renderer) => {
    browser ??= await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${y4m}`, '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
    });
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}?source=webcam&renderer=${renderer}`);
    await page.waitForFunction(() => {
      const app = document.querySelector('camstream-app') as unknown as { stats?: { frames: number } } | null;
      return (app?.stats?.frames ?? 0) >= 5;
    }, undefined, { timeout: 60_000 });
    const f = await readCamera(page);
    expect(errors).toEqual([]);
    expect(f.renderer).toBe(renderer);
    // The camera's own resolution and aspect, on the page too.
    expect(f.naturalWidth).toBeGreaterThanOrEqual(640);
    expect(f.naturalWidth / f.naturalHeight).toBeCloseTo(4 / 3, 2);
    expect(Math.abs(f.shownWidth / f.shownHeight / (4 / 3) - 1)).toBeLessThan(0.01);
    expect(Math.abs(f.overlayWidth / f.overlayHeight / (4 / 3) - 1)).toBeLessThan(0.01);
    expect(f.covered).toBeGreaterThan(0.99);
    // The hottest part of the map lies over the white square.
    expect(f.hotX).toBeGreaterThan(SQUARE[0]);
    expect(f.hotX).toBeLessThan(SQUARE[2]);
    expect(f.hotY).toBeGreaterThan(SQUARE[1]);
    expect(f.hotY).toBeLessThan(SQUARE[3]);
    // Bilinear, not blocks: an 8x8 map over ~650 px changes by a few levels per pixel, never in one jump.
    expect(f.maxRowStep).toBeLessThan(24);

    // The screenshot: the overlay colours the picture, hot (red) over the square, cold (blue) elsewhere.
    const stage = page.locator('camstream-app cam-viewer');
    const shot = await stage.screenshot({ path: join(process.env.CAMSTREAM_E2E_SHOTS ?? dir, `camera-4x3-${renderer}.png`) });
    const { data, info } = await sharp(shot).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const at = (fx: number, fy: number): [number, number, number] => {
      const i = 3 * (Math.round(fy * (info.height - 1)) * info.width + Math.round(fx * (info.width - 1)));
      return [data[i], data[i + 1], data[i + 2]];
    };
    const [hr, hg, hb] = at((SQUARE[0] + SQUARE[2]) / 2, (SQUARE[1] + SQUARE[3]) / 2);
    expect(hr).toBeGreaterThan(hg + 30);
    expect(hr).toBeGreaterThan(hb + 30);
    // Away from the square the picture is dark: far less red there than over the square.
    const [cr] = at(0.15, 0.85);
    expect(cr).toBeLessThan(hr / 3);

    // The snapshot is at the camera's resolution.
    const snap = await page.evaluate(async () => {
      const app = document.querySelector('camstream-app') as unknown as { renderRoot: ShadowRoot };
      const viewer = app.renderRoot.querySelector('cam-viewer') as unknown as { snapshot(): Promise<Blob> };
      const bitmap = await createImageBitmap(await viewer.snapshot());
      return [bitmap.width, bitmap.height];
    });
    expect(snap).toEqual([f.naturalWidth, f.naturalHeight]);
    await page.close();
  }, 120_000);
});
