/**
 * The review UI in a real headless Chromium: a generated Stanford 40 dataset imported with the Darknet Tiny
 * backbone, `startServer` with the review store and a token, then /review: filter, open an image, accept
 * it, reload: the decision is still there (it lives in SQLite). A screenshot is kept for a human to look at.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load, type CamModel } from '../../models/index.ts';
import { writeGeneratedDataset } from '../../datasets/index.ts';
import { importForReview, ReviewStore } from '../../review/index.ts';
import type { LiveServer } from '../../server/index.ts';
import { DARKNET_TINY, fixturesPresent, ROOT } from '../helpers/fixtures.ts';
import { disposeAll, startTestServer, tempDir } from '../integration/server-harness.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const BASE_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const TOKEN = 'review-e2e-token';
/** Where the screenshot goes (kept after the run so it can be looked at). */
const SHOT = process.env.CAMSTREAM_REVIEW_SHOT ?? join(tmpdir(), 'camstream-review-ui.png');

describe.skipIf(!existsSync(CHROMIUM) || !fixturesPresent)('the review UI in headless Chromium', () => {
  let model: CamModel;
  let server: LiveServer;
  let browser: Browser;
  let dbPath: string;

  beforeAll(async () => {
    const dir = await tempDir('camstream-review-e2e-');
    const clientDir = join(dir, 'client');
    await build({ configFile: join(ROOT, 'client', 'vite.config.ts'), logLevel: 'error', build: { outDir: clientDir, sourcemap: false } });
    await writeGeneratedDataset(join(dir, 'actions'), { layout: 'stanford40', n: 30, seed: 5 });
    model = await load(DARKNET_TINY, { backend: 'wasm' });
    dbPath = join(dir, 'home', 'review.db');
    const store = ReviewStore.open(dbPath);
    try {
      await importForReview(store, model, join(dir, 'actions'), { name: 'actions' });
    } finally {
      store.close();
    }
    server = await startTestServer({ model, http: { clientDir, token: TOKEN }, review: { dbPath } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: BASE_ARGS });
  }, 240_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await disposeAll();
    await model?.dispose();
  });

  it('refuses the API without the token', async () => {
    expect((await fetch(new URL('/api/review/datasets', server.url))).status).toBe(401);
    expect((await fetch(new URL(`/api/review/datasets?token=${TOKEN}`, server.url))).status).toBe(200);
  });

  it('filters, accepts an image, and still shows the decision after a reload', async () => {
    const page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}review?token=${TOKEN}`);
    await page.locator('review-grid .card').first().waitFor({ timeout: 30_000 });
    const all = await page.locator('review-grid .card').count();
    expect(all).toBeGreaterThan(1);

    // Filter: one class only, all splits.
    await page.locator('select[name=split]').selectOption('all');
    await page.locator('select[name=class]').selectOption({ label: 'three' });
    await page.waitForFunction(() => {
      const app = document.querySelector('review-app')!.shadowRoot!;
      const cards = app.querySelector('review-grid')!.shadowRoot!.querySelectorAll('.card');
      return cards.length > 0 && [...cards].every((c) => (c as HTMLElement).dataset.key!.startsWith('three_'));
    });
    const card = page.locator('review-grid .card').first();
    const key = await card.getAttribute('data-key');
    await card.click();
    await page.locator('review-detail button[data-action=accept]').click();
    await page.locator(`review-grid .card[data-key="${key}"][data-status=accepted]`).waitFor({ timeout: 10_000 });
    // The keyboard: 1 tags the open image "object of interaction".
    await page.keyboard.press('1');
    await page.locator('review-detail button[data-tag=object].on').waitFor({ timeout: 10_000 });

    await page.reload();
    await page.locator('review-grid .card').first().waitFor({ timeout: 30_000 });
    await page.locator('select[name=split]').selectOption('all');
    await page.locator('select[name=status]').selectOption('accepted');
    // The accepted card is already in the unfiltered grid: wait for the filter itself to have applied.
    await page.waitForFunction(() => {
      const app = document.querySelector('review-app')!.shadowRoot!;
      const cards = app.querySelector('review-grid')!.shadowRoot!.querySelectorAll('.card');
      return cards.length > 0 && [...cards].every((c) => (c as HTMLElement).dataset.status === 'accepted');
    });
    await page.locator(`review-grid .card[data-key="${key}"][data-status=accepted]`).waitFor({ timeout: 10_000 });
    expect(await page.locator('review-grid .card').count()).toBe(1);
    await page.locator(`review-grid .card[data-key="${key}"]`).click();
    await page.locator('review-detail button[data-action=accept].on').waitFor({ timeout: 10_000 });
    await page.locator('review-detail button[data-tag=object].on').waitFor({ timeout: 10_000 });
    // Overlay thumbnails really loaded (server-rendered JPEGs).
    await page.waitForFunction(() => {
      const detail = document.querySelector('review-app')!.shadowRoot!.querySelector('review-detail')!.shadowRoot!;
      const imgs = [...detail.querySelectorAll('img')];
      return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
    });
    await page.locator('select[name=status]').selectOption('');
    await page.waitForTimeout(500);
    await page.screenshot({ path: SHOT, fullPage: true });
    expect(errors).toEqual([]);

    // And in the store itself.
    const store = ReviewStore.open(dbPath);
    try {
      const d = store.requireDataset('actions');
      const row = store.rows(d.id, { split: 'all' }).find((r) => r.key === key)!;
      expect(row.decision).toMatchObject({ status: 'accepted', tag: 'object' });
    } finally {
      store.close();
    }
  }, 120_000);
});
