/**
 * `camstream generate --source mnist` writes real-digit scenes as a dataset: the recipe's canvas, the
 * digit's ink box in the annotations, the chosen split, and `no digit` scenes in their own class.
 */
import sharp from 'sharp';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIGIT_LABELS, generateMnistScene, loadMnistDigits, MnistSampler, readDataset } from '../../datasets/index.ts';
import { runCli } from '../helpers/cli.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'camstream-gen-mnist-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('camstream generate --source mnist', () => {
  it('writes dm100 test-split scenes in the Stanford 40 layout with the digits\' ink boxes', async () => {
    const out = join(root, 'dm100');
    const run = await runCli(['generate', '--source', 'mnist', '--recipe', 'dm100', '--split', 'test', '--n', '20', '--seed', '4', '--out', out, '-q']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const dataset = await readDataset(out);
    expect(dataset.classes).toEqual([...DIGIT_LABELS]);
    expect(dataset.items).toHaveLength(20);
    // The same stream regenerated here: each class's images in order carry these boxes.
    const sampler = new MnistSampler(loadMnistDigits(), 'test');
    const want = new Map<string, string[]>();
    for (let i = 0; i < 20; i++) {
      const s = generateMnistScene(sampler, 'dm100', 4, i);
      const name = DIGIT_LABELS[s.label];
      want.set(name, [...(want.get(name) ?? []), JSON.stringify(s.box)]);
    }
    for (const name of DIGIT_LABELS) {
      const items = dataset.items.filter((it) => it.className === name).sort((a, b) => a.id.localeCompare(b.id));
      expect(items.map((it) => JSON.stringify(it.boxes?.[0]))).toEqual(want.get(name));
    }
    const meta = await sharp(dataset.items[0].path).metadata();
    expect([meta.width, meta.height]).toEqual([100, 100]);
  });

  it('writes no-digit scenes in the folders layout as the single class "no digit"', async () => {
    const out = join(root, 'none');
    const run = await runCli(['generate', '--source', 'mnist', '--recipe', 'none', '--split', 'train', '--layout', 'folders', '--n', '12', '--out', out, '-q']);
    expect(run.code).toBe(0);
    const dataset = await readDataset(out);
    expect(dataset.classes).toEqual(['no digit']);
    expect(dataset.items).toHaveLength(12);
  });

  it('refuses --recipe without --source mnist, naming the options', async () => {
    const run = await runCli(['generate', '--recipe', 'stn60', '--n', '2', '--out', join(root, 'bad'), '-q']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--recipe and --split need --source mnist/);
  });
});
