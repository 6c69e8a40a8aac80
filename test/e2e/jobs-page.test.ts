/**
 * The /jobs page in a real headless Chromium: the client built by Vite, `startServer` with a token and a
 * real Redis, one `camstream worker` process. A running job's progress bar fills as frames are done, a
 * failed job shows its error, and its Retry button queues it again.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CamQueue, redisConnection } from '../../pipelines/jobs/index.ts';
import type { LiveServer } from '../../server/index.ts';
import { startCli, type CliProcess } from '../helpers/cli-process.ts';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { ROOT } from '../helpers/fixtures.ts';
import { haveRedis, startRedis } from '../helpers/redis.ts';
import { disposeAll, smallOnnxModel, startTestServer, tempDir } from '../integration/server-harness.ts';
import { makeClip, writeRandomOnnx } from '../integration/video-helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const BASE_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const TOKEN = 'jobs-e2e-token';

describe.skipIf(!existsSync(CHROMIUM) || !haveRedis)('the /jobs page in headless Chromium', () => {
  let server: LiveServer;
  let browser: Browser;
  let queue: CamQueue;
  let worker: CliProcess;
  let inRoot: string;
  let outRoot: string;

  beforeAll(async () => {
    const dir = await tempDir('camstream-jobs-e2e-');
    const clientDir = join(dir, 'client');
    await build({ configFile: join(ROOT, 'client', 'vite.config.ts'), logLevel: 'error', build: { outDir: clientDir, sourcemap: false } });
    inRoot = join(dir, 'in');
    outRoot = join(dir, 'out');
    await mkdir(inRoot);
    await mkdir(outRoot);
    const redis = await startRedis();
    queue = new CamQueue(redisConnection(redis.url));
    // Four minutes of tiny frames: a job of several seconds even on an idle machine, so the page (polling
    // once a second) sees its bar part-way.
    await makeClip(await testFfmpeg(), inRoot, 'long.mp4', ['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25:duration=240', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p']);
    worker = startCli(['worker', '--redis', redis.url, '--input-root', inRoot, '--out-root', outRoot, '--models', await writeRandomOnnx(dir, 4), '--name', 'w1', '--progress-ms', '100']);
    server = await startTestServer({ model: await smallOnnxModel(dir), http: { clientDir, token: TOKEN }, redis: redis.url });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: BASE_ARGS });
    await worker.waitFor(/ready/);
  }, 300_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await disposeAll();
    await queue?.close();
    if (worker) {
      worker.child.kill('SIGKILL');
      await worker.exited;
    }
  });

  it('shows the queue counts, a progress bar that fills, a failed job\'s error, and retries it', async () => {
    const page = await browser.newPage({ viewport: { width: 1300, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}jobs?token=${TOKEN}`);
    await page.locator('jobs-app .count[data-state=completed]').waitFor({ timeout: 30_000 });

    const opts = { top: 3, batch: 1, preset: 'ultrafast' };
    const [bad] = await queue.submit([{ kind: 'video', inputs: ['missing.mp4'], outDir: outRoot, video: opts }]);
    const [good] = await queue.submit([{ kind: 'video', inputs: ['long.mp4'], outDir: outRoot, video: opts }]);

    // The failed job's row carries ffmpeg's or the root check's words.
    await page.locator(`jobs-app tr[data-id="${bad}"].failed .err`).waitFor({ timeout: 60_000 });
    expect(await page.locator(`jobs-app tr[data-id="${bad}"] .err`).textContent()).toMatch(/missing\.mp4' does not exist/);

    // The running job's bar goes from part-way to full.
    const bar = page.locator(`jobs-app tr[data-id="${good}"] [role=progressbar]`);
    await page.waitForFunction(
      (id) => {
        const el = document.querySelector('jobs-app')!.shadowRoot!.querySelector(`tr[data-id="${id}"] [role=progressbar]`);
        const v = Number(el?.getAttribute('aria-valuenow') ?? 0);
        return v > 0 && v < 100;
      },
      good,
      { timeout: 120_000, polling: 50 },
    );
    const partWidth = await bar.locator('span').evaluate((s) => (s as HTMLElement).style.width);
    expect(Number.parseFloat(partWidth)).toBeGreaterThan(0);
    expect(Number.parseFloat(partWidth)).toBeLessThan(100);
    await page.locator(`jobs-app tr[data-id="${good}"].completed [role=progressbar][aria-valuenow="100"]`).waitFor({ timeout: 300_000 });
    expect(await page.locator('jobs-app .count[data-state=completed] b').textContent()).toBe('1');
    expect(await page.locator('jobs-app .count[data-state=failed] b').textContent()).toBe('1');

    // Retry from the page: the worker takes the job again.
    await page.locator(`jobs-app tr[data-id="${bad}"] button.retry`).click();
    await page.locator('jobs-app .notice', { hasText: 'queued again' }).waitFor({ timeout: 30_000 });
    await worker.waitFor(new RegExp(`(job ${bad}: failed[\\s\\S]*){2}`));
    expect(errors).toEqual([]);
  }, 600_000);
});
