/**
 * `camstream image --json` with the real Darknet model: `top` sorted by score whatever order classes were
 * asked in, `shown` naming the class the overlay draws, and boxes in whole pixels inside the image.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { DARKNET_TINY, fixture, fixturesPresent } from '../helpers/fixtures.ts';

const LABELS = join(DARKNET_TINY, 'imagenet1k_darknet_shortnames.txt');

interface JsonRecord {
  file: string;
  width: number;
  height: number;
  top: Array<{ index: number; label: string; score: number; box: number[] | null; overlay?: string }>;
  shown: { index: number; label: string };
  overlay?: string;
}

function expectRecord(r: JsonRecord): void {
  const scores = r.top.map((t) => t.score);
  expect(scores).toEqual([...scores].sort((a, b) => b - a));
  expect(r.shown).toEqual({ index: r.top[0].index, label: r.top[0].label });
  for (const t of r.top) {
    if (!t.box) continue;
    for (const v of t.box) expect(Number.isInteger(v), JSON.stringify(t.box)).toBe(true);
    const [x1, y1, x2, y2] = t.box;
    expect(x1).toBeGreaterThanOrEqual(0);
    expect(y1).toBeGreaterThanOrEqual(0);
    expect(x2).toBeLessThanOrEqual(r.width);
    expect(y2).toBeLessThanOrEqual(r.height);
    expect(x2).toBeGreaterThan(x1);
    expect(y2).toBeGreaterThan(y1);
  }
}

describe.skipIf(!fixturesPresent)('image --json: sorted top, shown class, integer boxes (real Darknet model)', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'camstream-image-order-'));
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('top-k: sorted, shown = the best, boxes whole pixels', async () => {
    const run = await runCli(['image', fixture('images', 'opencv_orange.jpg'), fixture('images', 'darknet_dog.jpg'), '--model', DARKNET_TINY, '--labels', LABELS, '--top', '5', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const records = JSON.parse(run.stdout) as JsonRecord[];
    expect(records.length).toBe(2);
    for (const r of records) expectRecord(r);
  });

  it('requested classes in an order that is not the score order come out sorted, one overlay per class', async () => {
    const out = join(tmp, 'classes');
    // The orange photo: "orange" scores far above "fox squirrel"; ask for the squirrel first.
    const run = await runCli(['image', fixture('images', 'opencv_orange.jpg'), '--model', DARKNET_TINY, '--labels', LABELS, '--classes', 'fox squirrel,orange', '--json', '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    const [r] = JSON.parse(run.stdout) as JsonRecord[];
    expectRecord(r);
    expect(r.top.map((t) => t.label)).toEqual(['orange', 'fox squirrel']);
    expect(r.shown.label).toBe('orange');
    // The record's overlay is the shown class's.
    expect(r.overlay).toBe(r.top[0].overlay);
    const files = (await readdir(out)).sort();
    expect(files.length).toBe(2);
    const meta = await sharp(r.overlay!).metadata();
    expect([meta.width, meta.height]).toEqual([r.width, r.height]);
  });
});
