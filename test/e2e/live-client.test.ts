/**
 * The web client in a real headless Chromium (Debian's chromium driven by playwright-core): the browser's
 * fake camera plays a y4m made from a fixture video, the page sends its frames over the WebSocket and
 * draws the maps it gets back (we read the overlay's pixels); and a server-side file source is watched by
 * three pages at once. The client is built with vite into a temporary folder first.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load, type CamModel } from '../../models/index.ts';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import type { LiveServer } from '../../server/index.ts';
import { DARKNET_TINY, fixture, fixturesPresent, ROOT } from '../helpers/fixtures.ts';
import { disposeAll, startTestServer, tempDir } from '../integration/server-harness.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const run = promisify(execFile);

const BASE_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

interface PageFigures {
  frames: number;
  fps: number;
  p50: number;
  renderer: string | undefined;
  /** Overlay pixels that are not transparent, and how many distinct colours they have. */
  coloured: number;
  colours: number;
  total: number;
}

/** The app's stats and the overlay canvas's pixels, read inside the page. */
async function readPage(page: Page): Promise<PageFigures> {
  return page.evaluate(() => {
    const app = document.querySelector('camstream-app') as unknown as { stats: { frames: number; fps: number; p50: number; renderer?: string }; renderRoot: ShadowRoot };
    const viewer = app.renderRoot.querySelector('cam-viewer') as unknown as { renderRoot: ShadowRoot; rendererKind?: string };
    const canvas = viewer.renderRoot.querySelector(viewer.rendererKind === 'webgl' ? 'canvas.gl' : 'canvas.c2d') as HTMLCanvasElement;
    const copy = document.createElement('canvas');
    copy.width = canvas.width;
    copy.height = canvas.height;
    const ctx = copy.getContext('2d')!;
    ctx.drawImage(canvas, 0, 0);
    const data = ctx.getImageData(0, 0, copy.width, copy.height).data;
    let coloured = 0;
    const colours = new Set<number>();
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 0) {
        coloured++;
        colours.add((data[i] >> 3) * 1024 + (data[i + 1] >> 3) * 32 + (data[i + 2] >> 3));
      }
    }
    const s = app.stats;
    return { frames: s.frames, fps: s.fps, p50: s.p50, renderer: viewer.rendererKind, coloured, colours: colours.size, total: data.length / 4 };
  });
}

async function waitForFrames(page: Page, frames: number, timeoutMs = 60_000): Promise<PageFigures> {
  const start = Date.now();
  for (;;) {
    const f = await readPage(page);
    if (f.frames >= frames) return f;
    if (Date.now() - start > timeoutMs) throw new Error(`page drew ${f.frames} maps in ${timeoutMs} ms, wanted ${frames}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe.skipIf(!haveChromium || !fixturesPresent)('the web client in headless Chromium', () => {
  let dir: string;
  let model: CamModel;
  let server: LiveServer;
  let y4m: string;
  const browsers: Browser[] = [];

  beforeAll(async () => {
    dir = await tempDir('camstream-e2e-');
    const clientDir = join(dir, 'client');
    await build({ configFile: join(ROOT, 'client', 'vite.config.ts'), logLevel: 'error', build: { outDir: clientDir, sourcemap: false } });
    const media = join(dir, 'media');
    const { ffmpeg } = await testFfmpeg();
    await run('mkdir', ['-p', media]);
    // The fake camera's file: 4 s of the pedestrians clip at 320x240, and the same clip as a server-side file.
    y4m = join(dir, 'clip.y4m');
    await run(ffmpeg.path, ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-i', fixture('video', 'opencv_vtest.avi'), '-t', '4', '-vf', 'scale=320:240', '-pix_fmt', 'yuv420p', y4m]);
    await run(ffmpeg.path, ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-i', fixture('video', 'kivy_cityCC0.mpg'), '-t', '6', '-c:v', 'mpeg4', '-q:v', '4', join(media, 'city.mp4')]);
    model = await load(DARKNET_TINY, { backend: 'wasm', config: { labels: join(DARKNET_TINY, 'imagenet1k_darknet_shortnames.txt') } });
    server = await startTestServer({ model, sources: { mediaRoot: media }, http: { clientDir } });
  });

  afterAll(async () => {
    for (const b of browsers) await b.close().catch(() => {});
    await disposeAll();
    await model?.dispose();
  });

  async function launch(extra: string[] = []): Promise<Browser> {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...extra] });
    browsers.push(browser);
    return browser;
  }

  it('draws heatmaps over the fake camera and its stats report frames', async () => {
    const browser = await launch([
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      `--use-file-for-fake-video-capture=${y4m}`,
      // WebGL through SwiftShader in software: the GPU overlay path runs without a GPU.
      '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader',
    ]);
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}?source=webcam`);
    const f = await waitForFrames(page, 10);
    expect(errors).toEqual([]);
    // Non-zero colormap pixels across the overlay, in many colours (a heatmap, not a flat fill).
    expect(f.coloured / f.total).toBeGreaterThan(0.9);
    expect(f.colours).toBeGreaterThan(20);
    expect(f.fps).toBeGreaterThan(0);
    expect(f.p50).toBeGreaterThan(0);
    expect(f.p50).toBeLessThan(5000);
    expect(['webgl', '2d']).toContain(f.renderer);
    await page.screenshot({ path: join(process.env.CAMSTREAM_E2E_SHOTS ?? dir, 'webcam.png') });
    // The stats panel shows the same count the app reports.
    const shown = await page.evaluate(() => {
      const app = document.querySelector('camstream-app')!.shadowRoot!;
      const stats = app.querySelector('cam-stats')!.shadowRoot!;
      return Number(stats.querySelector('[data-stat="frames"]')!.textContent);
    });
    expect(shown).toBeGreaterThan(0);
    const sessions = server.stats().sessions;
    expect(sessions.some((s) => s.source?.startsWith('webcam:') && s.sent >= 10)).toBe(true);
    await page.close();
  });

  it('shares one server-side file source among three pages at once', async () => {
    const browser = await launch();
    const pages = await Promise.all([0, 1, 2].map(() => browser.newPage({ viewport: { width: 1000, height: 700 } })));
    await Promise.all(pages.map((p) => p.goto(`${server.url}?source=file:city.mp4&renderer=2d`)));
    const figures = await Promise.all(pages.map((p) => waitForFrames(p, 8)));
    for (const f of figures) {
      expect(f.renderer).toBe('2d');
      expect(f.coloured / f.total).toBeGreaterThan(0.5);
      expect(f.colours).toBeGreaterThan(20);
    }
    // One source, one ffmpeg, three viewers.
    const files = server.stats().sources.filter((s) => s.kind === 'file');
    expect(files).toHaveLength(1);
    expect(files[0].viewers).toBe(3);
    expect(files[0].pid).toBeGreaterThan(0);
    await pages[0].screenshot({ path: join(process.env.CAMSTREAM_E2E_SHOTS ?? dir, 'file-source.png') });
    await Promise.all(pages.map((p) => p.close()));
    // The last viewer gone, the source and its ffmpeg end.
    const deadline = Date.now() + 5000;
    while (server.stats().sources.some((s) => s.kind === 'file') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(server.stats().sources.filter((s) => s.kind === 'file')).toHaveLength(0);
  });
});
