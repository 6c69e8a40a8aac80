/**
 * A first visit to `camstream serve` (its embedded digits model, the client built into client/dist by
 * `npm run build:client`) in headless Chromium: the page says it runs a digits model, one click starts the
 * camera and the choice is remembered (a reload starts it at once), and a denied or missing camera gets a
 * message saying so and what to do.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliProcess } from '../helpers/cli-process.ts';
import { ROOT } from '../helpers/fixtures.ts';
import { disposeAll, makeClip, tempDir } from '../integration/server-harness.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const built = existsSync(join(ROOT, 'client', 'dist', 'index.html'));
const BASE = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'];

function framesDrawn(page: Page): Promise<number> {
  return page.evaluate(() => (document.querySelector('camstream-app') as unknown as { stats?: { frames: number } } | null)?.stats?.frames ?? 0);
}

describe.skipIf(!existsSync(CHROMIUM) || !built)('first visit to camstream serve', () => {
  let serve: CliProcess;
  let url: string;
  let y4m: string;
  const browsers: Browser[] = [];

  beforeAll(async () => {
    const dir = await tempDir('camstream-e2e-start-');
    y4m = await makeClip(dir, 'camera.y4m', { seconds: 2, fps: 10, size: [640, 480] });
    serve = startCli(['serve', '--port', '0', '--home', dir, '--quiet']);
    url = (await serve.waitFor(/camstream serve: (http:\S+)/, 120_000))[1];
    // The review URL is a second line that may arrive in a later chunk of stdout.
    await serve.waitFor(/camstream serve: review http:\S+\/review/, 30_000);
  }, 180_000);

  afterAll(async () => {
    for (const b of browsers) await b.close().catch(() => {});
    serve?.child.kill('SIGTERM');
    await serve?.exited;
    await disposeAll();
  });

  async function launch(args: string[]): Promise<Browser> {
    const b = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE, ...args] });
    browsers.push(b);
    return b;
  }

  it('prints both URLs, says it is a digits model, starts the camera on one click and remembers it', async () => {
    expect(serve.stdout()).toMatch(/camstream serve: review http:\S+\/review/);
    const browser = await launch(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${y4m}`]);
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    await page.goto(url);
    await expect.poll(() => page.locator('camstream-app #model-note').textContent().catch(() => null)).toMatch(/a digits model: hold up a handwritten digit/);
    expect(await page.locator('camstream-app #model').textContent()).toMatch(/digits-gap · tfjs\/\w+ · \d+x\d+ · 11 classes/);
    // Nothing starts by itself on a first visit: one click does.
    const start = page.locator('camstream-app #start-camera');
    await start.waitFor();
    expect(await framesDrawn(page)).toBe(0);
    await start.click();
    await page.waitForFunction(() => ((document.querySelector('camstream-app') as unknown as { stats: { frames: number } }).stats.frames ?? 0) >= 3, undefined, { timeout: 60_000 });
    expect(await page.evaluate(() => localStorage.getItem('camstream.source'))).toBe('webcam');
    // The next visit starts the camera at once.
    await page.reload();
    await page.waitForFunction(() => ((document.querySelector('camstream-app') as unknown as { stats?: { frames: number } }).stats?.frames ?? 0) >= 3, undefined, { timeout: 60_000 });
    expect(await page.locator('camstream-app #start-camera').count()).toBe(0);
    await context.close();
  }, 120_000);

  it('says so when the camera is denied, and when there is none', async () => {
    // A camera exists but the permission prompt is answered "block" (no fake UI: headless denies).
    const denied = await (await launch(['--use-fake-device-for-media-stream'])).newPage();
    await denied.goto(url);
    await denied.locator('camstream-app #start-camera').click();
    await expect.poll(() => denied.locator('camstream-app [role="alert"]').textContent().catch(() => '')).toMatch(/Camera access was denied/);
    expect(await denied.locator('camstream-app #start-camera').count()).toBe(1);
    // No camera at all (no fake device), the prompt accepted.
    const absent = await (await launch(['--use-fake-ui-for-media-stream'])).newPage();
    await absent.goto(url);
    await absent.locator('camstream-app #start-camera').click();
    await expect.poll(() => absent.locator('camstream-app [role="alert"]').textContent().catch(() => '')).toMatch(/No camera was found/);
  }, 60_000);
});
