/**
 * `camstream review report` and `review export` as a user runs them (issue 16, item 12): the dataset named
 * or given as the folder it was imported from (through a symlink too), the export format taken from the
 * output file's extension, `-o -` writing to stdout, and the HTML report's summary as a table. Real
 * processes, a real (small, random-weight) TF.js model, real PNG files and a real SQLite store.
 */
import { mkdir, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '@tensorflow/tfjs-backend-cpu';
import { smallGapDenseNet, writeLayersModel } from '../../lab/builders/index.ts';
import { runCli } from '../helpers/cli.ts';
import { ROOT } from '../helpers/fixtures.ts';

// In the order the import lists them (sorted folder names).
const CLASSES = ['blue', 'green', 'red'];
const COLOURS: Record<string, string[]> = {
  red: ['#c02020', '#d04030', '#a01010', '#e06050', '#b03020', '#f07060'],
  green: ['#20c020', '#40d030', '#10a010', '#60e050', '#30b020', '#70f060'],
  blue: ['#2020c0', '#3040d0', '#1010a0', '#5060e0', '#2030b0', '#6070f0'],
};

let tmp: string;
let home: string;
let photos: string;

interface Summary {
  dataset: string;
  images: number;
  accuracy: number;
  perClass: Array<{ name: string; images: number; accuracy: number }>;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'camstream-review-cli-'));
  home = join(tmp, 'home');
  photos = join(tmp, 'photos');
  const model = join(tmp, 'model');
  await writeLayersModel(smallGapDenseNet(5, { inputSize: [32, 32], numClasses: 4, width: 4 }), model);
  for (const cls of CLASSES) {
    await mkdir(join(photos, cls), { recursive: true });
    for (const [i, background] of COLOURS[cls].entries()) {
      const square = await sharp({ create: { width: 12, height: 12, channels: 3, background: '#ffffff' } }).png().toBuffer();
      await sharp({ create: { width: 48, height: 40, channels: 3, background } })
        .composite([{ input: square, left: 4 + i * 5, top: 3 + i * 4 }])
        .png()
        .toFile(join(photos, cls, `${cls}-${i}.png`));
    }
  }
  const run = await runCli(['review', 'import', photos, '--model', model, '--backend', 'cpu', '--home', home, '-q']);
  expect(run.code, run.stderr).toBe(0);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const report = async (ref: string) => {
  const run = await runCli(['review', 'report', ref, '--json', '--home', home]);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Summary;
};

describe('review report and export find the dataset by name or by the imported folder', () => {
  it('reports the same summary for the name, the folder, a relative path and a symlink to the folder', async () => {
    const byName = await report('photos');
    expect(byName.dataset).toBe('photos');
    expect(byName.perClass.map((c) => c.name)).toEqual(CLASSES);
    expect(await report(photos)).toEqual(byName);
    // runCli runs in ROOT: a path relative to the working directory, with a trailing slash.
    expect(await report(`${relative(ROOT, photos)}/`)).toEqual(byName);
    const link = join(tmp, 'link-to-photos');
    await symlink(photos, link);
    expect(await report(link)).toEqual(byName);
  });

  it('names the datasets and their folders when the argument matches neither (exit 3)', async () => {
    const run = await runCli(['review', 'report', join(tmp, 'elsewhere'), '--home', home]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`no review dataset named or imported from '${join(tmp, 'elsewhere')}'`);
    expect(run.stderr).toContain(`photos (${photos})`);
    const byPath = await runCli(['review', 'export', join(tmp, 'elsewhere'), '-o', join(tmp, 'x.csv'), '--home', home]);
    expect(byPath.code).toBe(3);
    await expect(stat(join(tmp, 'x.csv'))).rejects.toThrow(/ENOENT/);
  });
});

describe('review export', () => {
  it('takes the format from the extension of --out (.csv, .json, .htm) and accepts the folder as the dataset', async () => {
    for (const file of ['out.csv', 'out.json', 'out.htm']) {
      const run = await runCli(['review', 'export', photos, '-o', join(tmp, file), '--home', home]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain(`wrote ${join(tmp, file)}`);
    }
    const csv = (await readFile(join(tmp, 'out.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toMatch(/^key,split,class,predicted,/);
    expect(csv).toHaveLength(1 + 18);
    expect(JSON.parse(await readFile(join(tmp, 'out.json'), 'utf8')).images).toHaveLength(18);
    expect(await readFile(join(tmp, 'out.htm'), 'utf8')).toMatch(/^<!doctype html>/);
  });

  it('writes to stdout with -o - and --format, byte for byte what the file gets', async () => {
    const file = join(tmp, 'same.json');
    expect((await runCli(['review', 'export', 'photos', '--format', 'json', '-o', file, '--home', home])).code).toBe(0);
    const run = await runCli(['review', 'export', 'photos', '--format', 'json', '-o', '-', '--home', home]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe(await readFile(file, 'utf8'));
    const csv = await runCli(['review', 'export', 'photos', '--format', 'csv', '-o', '-', '--home', home]);
    expect(csv.stdout.split('\n')[0]).toMatch(/^key,split,class,/);
  });

  it('refuses (exit 2, naming the fix) -o - without --format and an extension that names no format', async () => {
    const toStdout = await runCli(['review', 'export', 'photos', '-o', '-', '--home', home]);
    expect(toStdout.code).toBe(2);
    expect(toStdout.stderr).toContain('--format is required when writing to stdout');
    expect(toStdout.stdout).toBe('');
    for (const name of ['report.txt', 'report']) {
      const run = await runCli(['review', 'export', 'photos', '-o', join(tmp, name), '--home', home]);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/cannot tell the export format from .*name the file \.csv, \.json or \.html, or give --format/);
      await expect(stat(join(tmp, name))).rejects.toThrow(/ENOENT/);
    }
    const bad = await runCli(['review', 'export', 'photos', '--format', 'pdf', '-o', join(tmp, 'r.pdf'), '--home', home]);
    expect(bad.code).toBe(2);
  });

  it("shows the HTML report's summary as a table with one row per class and the totals, as the served page does", async () => {
    const summary = await report('photos');
    const run = await runCli(['review', 'export', 'photos', '--format', 'html', '-o', '-', '--home', home]);
    expect(run.code, run.stderr).toBe(0);
    const html = run.stdout;
    expect(html).not.toContain('<pre>');
    const table = html.match(/<table class="summary"[^>]*>([\s\S]*?)<\/table>/);
    expect(table, 'summary table').not.toBeNull();
    const rows = [...table![1].matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map((m) => [...m[1].matchAll(/<t[hd]>([^<]*)<\/t[hd]>/g)].map((c) => c[1]));
    expect(rows[0]).toEqual(['class', 'images', 'accuracy', 'mean IoU', 'IoU (official)', 'inside', 'pointing', 'IoU&gt;=0.5']);
    expect(rows.slice(1).map((r) => r[0])).toEqual([...CLASSES, 'all']);
    for (const [i, c] of summary.perClass.entries()) {
      expect(rows[1 + i].slice(1, 3)).toEqual([String(c.images), `${(c.accuracy * 100).toFixed(1)}%`]);
      expect(rows[1 + i].slice(3)).toEqual(['–', '–', '–', '–', '–']); // no boxes in this layout
    }
    expect(rows[rows.length - 1].slice(0, 3)).toEqual(['all', String(summary.images), `${(summary.accuracy * 100).toFixed(1)}%`]);
    expect(html).toMatch(/<tr class="all">/);
  });
});
