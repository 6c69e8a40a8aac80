/**
 * The model picker in headless Chromium, the fake camera fed a 640x480 test pattern: the page starts on the
 * server's own model (the embedded one, TF.js on wasm), the picker switches the webcam source to the real
 * Darknet Tiny ImageNet model (../shared/fixtures) and back, and the header, the labels and the top-k list
 * follow; a model entry that is a corrupt file shows its error while the old model keeps drawing maps. A
 * model with a `no digit` class says "no digit" (it leads, or nothing is confident) and draws no map for it.
 * Screenshots go to CAMSTREAM_E2E_SHOTS when set; the latency p50/p95 per model is printed.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModelDir } from '../../cli/model.ts';
import { load, type CamModel } from '../../models/index.ts';
import type { LiveServer } from '../../server/index.ts';
import { DARKNET_TINY, ROOT, fixturesPresent } from '../helpers/fixtures.ts';
import { disposeAll, makeClip, startTestServer, tempDir } from '../integration/server-harness.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const embeddedDir = defaultModelDir();
const DARKNET_LABELS = 'imagenet1k_darknet_shortnames.txt';

interface PageFigures {
  frames: number;
  p50: number;
  p95: number;
  header: string;
  top: string[];
  verdict: string | undefined;
  modelError: string | undefined;
  /** Overlay pixels drawn (alpha > 0) as a fraction of the 2D overlay canvas. */
  covered: number;
}

function readPage(page: Page): Promise<PageFigures> {
  return page.evaluate(() => {
    const app = document.querySelector('camstream-app') as unknown as { stats: { frames: number; p50: number; p95: number }; renderRoot: ShadowRoot };
    const root = app.renderRoot;
    const viewer = root.querySelector('cam-viewer') as unknown as { renderRoot: ShadowRoot };
    const canvas = viewer.renderRoot.querySelector('canvas.c2d') as HTMLCanvasElement;
    let drawn = 0;
    if (canvas.width > 0 && canvas.height > 0) {
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) drawn++;
    }
    return {
      frames: app.stats.frames,
      p50: app.stats.p50,
      p95: app.stats.p95,
      header: root.querySelector('#model')?.textContent ?? '',
      // "label — 12.3%" (the "on the map" tag after it dropped).
      top: [...root.querySelectorAll('ol.top li')].map((li) => (li.textContent ?? '').split(' — ')[0].trim()),
      verdict: root.querySelector('#verdict')?.textContent?.trim(),
      modelError: root.querySelector('#model-error')?.textContent ?? undefined,
      covered: canvas.width > 0 ? drawn / (canvas.width * canvas.height) : 0,
    };
  });
}

/** Polls the page's figures until `ok` holds (the page updates on its own; this only reads it). */
async function waitFor(page: Page, ok: (f: PageFigures) => boolean, what: string, timeoutMs = 120_000): Promise<PageFigures> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const f = await readPage(page);
    if (ok(f)) return f;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; page: ${JSON.stringify(f)}`);
    await page.waitForTimeout(100);
  }
}

/** The picker's options: value (model id) and text. */
function pickerOptions(page: Page): Promise<Array<{ value: string; text: string }>> {
  return page.locator('camstream-app cam-controls #model-picker option').evaluateAll((os) => os.map((o) => ({ value: (o as HTMLOptionElement).value, text: o.textContent ?? '' })));
}

describe.skipIf(!haveChromium || !fixturesPresent || !embeddedDir)('the model picker on the live page', () => {
  let dir: string;
  let clientDir: string;
  let embedded: CamModel;
  let imagenet: string[];
  let server: LiveServer;
  let browser: Browser;
  const shots = (): string => process.env.CAMSTREAM_E2E_SHOTS ?? dir;

  beforeAll(async () => {
    dir = await tempDir('camstream-e2e-models-');
    clientDir = join(dir, 'client');
    await build({ configFile: join(ROOT, 'client', 'vite.config.ts'), logLevel: 'error', build: { outDir: clientDir, sourcemap: false } });
    const y4m = await makeClip(dir, 'camera.y4m', { seconds: 3, fps: 10, size: [640, 480] });
    embedded = await load(embeddedDir!, { backend: 'wasm' });
    imagenet = (await readFile(join(DARKNET_TINY, DARKNET_LABELS), 'utf8')).trimEnd().split('\n');
    const broken = join(dir, 'broken.onnx');
    await writeFile(broken, new Uint8Array(4096).map((_, i) => (i * 7919) % 251));
    server = await startTestServer({
      model: embedded,
      modelNote: 'a digits model: hold up a handwritten digit',
      models: [
        { name: 'darknet', spec: DARKNET_TINY, options: { backend: 'wasm', config: { labels: DARKNET_LABELS } } },
        { name: 'broken', spec: broken },
      ],
      http: { clientDir },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${y4m}`],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await disposeAll();
    await embedded?.dispose();
  });

  it('switches the webcam between the embedded model and Darknet: header, labels and top-k follow', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}?source=webcam&renderer=2d`);
    const name = embeddedDir!.split('/').pop()!;
    const n = embedded.info.numClasses;
    const digits = await waitFor(page, (f) => f.frames >= 5 && f.top.length > 0, 'maps of the embedded model');
    expect(digits.header).toMatch(new RegExp(`^${name} · tfjs/wasm · \\d+x\\d+ · ${n} classes$`));
    expect(digits.top.every((l) => embedded.info.labels.includes(l)), JSON.stringify(digits.top)).toBe(true);
    expect(await page.locator('camstream-app #model-note').textContent()).toMatch(/digits model.*Other models: darknet, broken/);
    const embeddedFigures = await waitFor(page, (f) => f.frames >= 15, 'more maps of the embedded model');

    // The picker lists the models by name, the embedded one marked as the digits model.
    const options = await pickerOptions(page);
    expect(options.map((o) => o.text.split(' (')[0])).toEqual([name, 'darknet', 'broken']);
    expect(options[0].text).toContain('a digits model');
    // A native <select> does not draw its pop-up in a headless screenshot: show the list as a list box for it.
    const picker = page.locator('camstream-app cam-controls #model-picker');
    await picker.evaluate((s) => ((s as HTMLSelectElement).size = 3));
    await page.screenshot({ path: join(shots(), 'models-picker-open.png') });
    await picker.evaluate((s) => ((s as HTMLSelectElement).size = 0));

    await picker.selectOption(options.find((o) => o.text === 'darknet')!.value);
    const darknet = await waitFor(page, (f) => f.header.startsWith('darknet') && f.frames >= 5 && f.top.length > 0 && f.top.every((l) => imagenet.includes(l)), 'Darknet maps');
    expect(darknet.header).toBe('darknet · tfjs/wasm · 224x224 · 1000 classes');
    expect(darknet.top.some((l) => embedded.info.labels.includes(l))).toBe(false);
    // Darknet is no digits model: the note about the embedded model is gone.
    expect(await page.locator('camstream-app #model-note').count()).toBe(0);
    const darknetFigures = await waitFor(page, (f) => f.frames >= 15, 'more Darknet maps', 180_000);
    await page.screenshot({ path: join(shots(), 'models-darknet.png') });

    await picker.selectOption(options[0].value);
    const back = await waitFor(page, (f) => f.header.startsWith(name) && f.frames >= 3 && f.top.length > 0 && f.top.every((l) => embedded.info.labels.includes(l)), 'the embedded model again');
    expect(back.header).toMatch(/tfjs\/wasm/);
    expect(errors).toEqual([]);
    // Measured, not asserted beyond sanity: capture to map drawn, per model, on this (loaded) machine.
    for (const [what, f] of [['embedded', embeddedFigures], ['darknet', darknetFigures]] as const) {
      console.log(`[live-models] ${what}: latency p50 ${f.p50.toFixed(0)} ms, p95 ${f.p95.toFixed(0)} ms over the last ${Math.min(f.frames, 120)} maps`);
      expect(f.p95).toBeGreaterThanOrEqual(f.p50);
      expect(f.p95).toBeLessThan(10_000);
    }
    await page.close();
  }, 400_000);

  it('shows why a model failed to load and keeps drawing the old model\'s maps', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(`${server.url}?source=webcam&renderer=2d`);
    await waitFor(page, (f) => f.frames >= 3, 'maps of the embedded model');
    const options = await pickerOptions(page);
    await page.locator('camstream-app cam-controls #model-picker').selectOption(options.find((o) => o.text === 'broken')!.value);
    const failed = await waitFor(page, (f) => f.modelError !== undefined, 'the load error');
    expect(failed.modelError).toMatch(/^Could not load broken: .{10,}\. The source keeps its model\.$/);
    // The picker goes back with the failure itself, not whenever something else re-renders the controls.
    expect(await page.locator('camstream-app cam-controls #model-picker').inputValue()).toBe(options[0].value);
    // The old model goes on: more maps, still its labels, the picker back on it.
    const later = await waitFor(page, (f) => f.frames >= failed.frames + 5, 'maps after the failure');
    expect(later.top.every((l) => embedded.info.labels.includes(l))).toBe(true);
    expect(later.header).toMatch(/^\S+ · tfjs\/wasm/);
    expect(later.header.startsWith('broken')).toBe(false);
    expect(await page.locator('camstream-app cam-controls #model-picker').inputValue()).toBe(options[0].value);
    await page.screenshot({ path: join(shots(), 'models-failed-load.png') });
    await page.close();
  }, 200_000);

  it('says "no digit" when a model\'s no-digit class leads or nothing is confident, and draws no map for that class', async () => {
    // The embedded model's features with a head whose extra `no digit` class always wins (its bias), and one
    // where every class is equally likely (so nothing reaches the low-confidence level).
    const k = embedded.info.featureShape[2];
    const labels = [...embedded.info.labels.filter((l) => l !== 'no digit'), 'no digit'];
    const c = labels.length;
    const leads = embedded.withHead({ weights: new Float32Array(k * c), bias: new Float32Array(c).map((_, i) => (i === c - 1 ? 10 : 0)), labels });
    const unsure = embedded.withHead({ weights: new Float32Array(k * c), bias: new Float32Array(c), labels });
    try {
      for (const [model, what] of [[leads, 'leads'], [unsure, 'unsure']] as const) {
        const own = await startTestServer({ model, http: { clientDir } });
        const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
        await page.goto(`${own.url}?source=webcam&renderer=2d`);
        const f = await waitFor(page, (g) => g.frames >= 5 && g.verdict !== undefined, `maps (${what})`);
        expect(f.verdict, what).toBe('no digit');
        if (what === 'leads') {
          // The no-digit class is on the map, and its map is not drawn: the overlay stays clear.
          expect(f.top[0]).toBe('no digit');
          expect(f.covered).toBe(0);
          await page.screenshot({ path: join(shots(), 'models-no-digit.png') });
        } else {
          // A digit is on the map (at 1/c, under the 0.5 level): its map is drawn, the verdict is still "no digit".
          expect(f.covered).toBeGreaterThan(0.9);
        }
        await page.close();
        await own.dispose();
      }
    } finally {
      await leads.dispose();
      await unsure.dispose();
    }
  }, 200_000);
});
