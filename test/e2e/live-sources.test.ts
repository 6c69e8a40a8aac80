/**
 * The live page's figures and file controls in headless Chromium, with a slow model (a small random ONNX
 * model behind a delay that holds the thread, as a model running on the main thread does): latency stats
 * start afresh per source (webcam -> file -> webcam), a 10 fps file plays at its own rate with the frames
 * the model has no time for dropped and counted, and the seek bar follows the file and seeks.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CamModel } from '../../models/index.ts';
import type { LiveServer } from '../../server/index.ts';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { ROOT } from '../helpers/fixtures.ts';
import { disposeAll, makeClip, smallOnnxModel, startTestServer, tempDir } from '../integration/server-harness.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const run = promisify(execFile);

/** How long each inference holds the thread, ms: about 6 maps a second, slower than the 10 fps file. */
const MODEL_DELAY_MS = 160;

/** `model` with each inference holding the thread `ms` first (a busy wait, like a model computing on it). */
function slowModel(model: CamModel, ms: number): CamModel {
  const slow = Object.create(model) as CamModel;
  slow.infer = (frames, options) => {
    const until = performance.now() + ms;
    while (performance.now() < until) {
      // the model "computes"
    }
    return model.infer(frames, options);
  };
  return slow;
}

interface AppFigures {
  frames: number;
  fps: number;
  p50: number;
  p95: number;
  dropped: number;
  /** The last result's position in the source, seconds, and the seek bar's value and maximum. */
  pts: number;
  seekValue: number | undefined;
  seekMax: number | undefined;
  time: string | undefined;
}

function readApp(page: Page): Promise<AppFigures> {
  return page.evaluate(() => {
    const app = document.querySelector('camstream-app') as unknown as {
      stats: { frames: number; fps: number; p50: number; p95: number; dropped: number; pts: number };
      renderRoot: ShadowRoot;
    };
    const controls = app.renderRoot.querySelector('cam-controls') as unknown as { renderRoot: ShadowRoot };
    const seek = controls.renderRoot.querySelector<HTMLInputElement>('#seek');
    const s = app.stats;
    return {
      frames: s.frames,
      fps: s.fps,
      p50: s.p50,
      p95: s.p95,
      dropped: s.dropped,
      pts: s.pts,
      seekValue: seek ? Number(seek.value) : undefined,
      seekMax: seek ? Number(seek.max) : undefined,
      time: controls.renderRoot.querySelector('#time')?.textContent ?? undefined,
    };
  });
}

/** Polls the page's figures until `ok` holds (the page updates on its own; this only reads it). */
async function waitFor(page: Page, ok: (f: AppFigures) => boolean, what: string, timeoutMs = 30_000): Promise<AppFigures> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const f = await readApp(page);
    if (ok(f)) return f;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; page figures: ${JSON.stringify(f)}`);
    await page.waitForTimeout(100);
  }
}

/** Picks a source in the page's own source list, as a user does. */
async function choose(page: Page, value: string): Promise<void> {
  await page.locator('camstream-app cam-controls #source').selectOption(value);
}

describe.skipIf(!haveChromium)('live page figures and file controls with a slow model', () => {
  let dir: string;
  let server: LiveServer;
  let y4m: string;
  let browser: Browser;

  beforeAll(async () => {
    dir = await tempDir('camstream-e2e-sources-');
    const clientDir = join(dir, 'client');
    await build({ configFile: join(ROOT, 'client', 'vite.config.ts'), logLevel: 'error', build: { outDir: clientDir, sourcemap: false } });
    const media = join(dir, 'media');
    await run('mkdir', ['-p', media]);
    await makeClip(media, 'ten.mp4', { seconds: 30, fps: 10, size: [320, 240] });
    y4m = await makeClip(dir, 'camera.y4m', { seconds: 3, fps: 10, size: [640, 480] });
    await testFfmpeg();
    const model = slowModel(await smallOnnxModel(dir, { inputSize: [64, 64] }), MODEL_DELAY_MS);
    server = await startTestServer({ model, sources: { mediaRoot: media }, http: { clientDir }, review: { dbPath: join(dir, 'review.db') } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${y4m}`],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await disposeAll();
  });

  it('starts the latency figures afresh per source: webcam -> file -> webcam', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(`${server.url}?source=webcam&renderer=2d`);
    const sane = (f: AppFigures) => f.p50 > 0 && f.p95 >= f.p50 && f.p95 < 10_000 && f.fps > 0 && f.fps < 60;
    const webcam = await waitFor(page, (f) => f.frames >= 8, 'webcam maps');
    expect(sane(webcam), JSON.stringify(webcam)).toBe(true);
    for (const [value, what] of [['file:ten.mp4', 'file'], ['webcam', 'webcam again']]) {
      await choose(page, value);
      // The first maps of the new source: stale results of the old one must not enter its figures.
      const first = await waitFor(page, (f) => f.frames >= 3, `${what} maps`);
      expect(sane(first), `${what}: ${JSON.stringify(first)}`).toBe(true);
      const later = await waitFor(page, (f) => f.frames >= 10, `${what} maps`);
      expect(sane(later), `${what}: ${JSON.stringify(later)}`).toBe(true);
    }
    await page.close();
  }, 90_000);

  it('plays a 10 fps file at its own rate, drops and counts what the slow model misses, and seeks', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(`${server.url}?source=file:ten.mp4&renderer=2d`);
    const start = await waitFor(page, (f) => f.frames >= 3 && f.seekValue !== undefined, 'file maps');
    const t0 = Date.now();
    const ptsStart = start.pts;
    const fileStats = () => server.stats().sources.find((s) => s.kind === 'file')!;
    const received0 = fileStats().received;
    await page.waitForTimeout(4000);
    const f = await readApp(page);
    const wall = (Date.now() - t0) / 1000;
    const received = fileStats().received - received0;
    // The file's clock keeps up with the wall clock, and ffmpeg delivered its 10 frames a second...
    expect((f.pts - ptsStart) / wall).toBeGreaterThan(0.9);
    expect((f.pts - ptsStart) / wall).toBeLessThan(1.1);
    expect(received / wall).toBeGreaterThan(9);
    expect(received / wall).toBeLessThan(11);
    // ...of which the model had time for fewer; the rest were dropped and the page says how many.
    expect(f.fps).toBeLessThan(8);
    expect(f.dropped).toBeGreaterThan(0);
    // The seek bar follows the file and shows its time and duration.
    expect(f.seekMax).toBeCloseTo(30, 0);
    expect(f.seekValue).toBeGreaterThan(start.seekValue!);
    expect(f.time).toMatch(/0:\d\d(\.\d)? \/ 0:30/);
    // Seek to the middle through the bar, as a user lets go of it (playing on, the file is near 5 s).
    await page.evaluate(() => {
      const app = document.querySelector('camstream-app') as unknown as { renderRoot: ShadowRoot };
      const controls = app.renderRoot.querySelector('cam-controls') as unknown as { renderRoot: ShadowRoot };
      const seek = controls.renderRoot.querySelector<HTMLInputElement>('#seek')!;
      seek.value = '15';
      seek.dispatchEvent(new Event('input', { bubbles: true }));
      seek.dispatchEvent(new Event('change', { bubbles: true }));
    });
    const seeked = await waitFor(page, (g) => g.pts >= 13, 'a map from the middle of the file', 5000);
    expect(Math.abs(seeked.pts - 15)).toBeLessThan(1);
    expect(Math.abs(seeked.seekValue! - seeked.pts)).toBeLessThan(0.5);
    await page.close();
  }, 90_000);

  it('lists the top-k by score with the class on the map marked, and links / and /review both ways', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(`${server.url}?source=file:ten.mp4&renderer=2d`);
    await waitFor(page, (f) => f.frames >= 5, 'file maps');
    const items = await page.locator('camstream-app ol.top li').allTextContents();
    const scores = items.map((t) => Number(/([\d.]+)%/.exec(t)?.[1]));
    expect(scores.length).toBeGreaterThan(1);
    expect(scores.every((x) => Number.isFinite(x))).toBe(true);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    expect(await page.locator('camstream-app ol.top li.held').count()).toBe(1);
    await page.locator('camstream-app nav a', { hasText: 'review' }).click();
    await page.waitForURL(/\/review$/);
    await page.locator('review-app nav a', { hasText: 'live' }).click();
    await page.waitForURL((u) => u.pathname === '/');
    await page.waitForSelector('camstream-app');
    await page.close();
  }, 60_000);

  it('names every control for screen readers and outlines the keyboard focus', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(`${server.url}?source=file:ten.mp4&renderer=2d`);
    await waitFor(page, (f) => f.frames >= 2 && f.seekValue !== undefined, 'file maps');
    const unnamed = await page.evaluate(() => {
      const found: string[] = [];
      const visit = (root: Document | ShadowRoot): void => {
        for (const el of root.querySelectorAll<HTMLElement>('*')) {
          if (el.shadowRoot) visit(el.shadowRoot);
          if (!el.matches('input, select, button, a[href]')) continue;
          const labels = (el as HTMLInputElement).labels;
          const name = el.getAttribute('aria-label') ?? (labels && labels.length > 0 ? labels[0].textContent : null) ?? el.textContent;
          if (!name || !name.trim()) found.push(el.outerHTML.slice(0, 80));
        }
      };
      visit(document);
      return found;
    });
    expect(unnamed).toEqual([]);
    // Tab through the page: each stop is a control with a clear outline.
    const stops: string[] = [];
    for (let i = 0; i < 10; i++) {
      await page.keyboard.press('Tab');
      const stop = await page.evaluate(() => {
        let el = document.activeElement;
        while (el?.shadowRoot?.activeElement) el = el.shadowRoot.activeElement;
        const style = el ? getComputedStyle(el) : undefined;
        return { what: `${el?.tagName.toLowerCase()}#${el?.id}`, outline: style?.outlineStyle, width: parseFloat(style?.outlineWidth ?? '0') };
      });
      stops.push(stop.what);
      expect(stop.outline, stop.what).toBe('solid');
      expect(stop.width, stop.what).toBeGreaterThanOrEqual(2);
    }
    expect(stops).toEqual(expect.arrayContaining(['select#source', 'input#seek', 'button#snapshot']));
    await page.close();
  }, 60_000);
});
