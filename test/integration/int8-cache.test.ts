/**
 * The `--int8` cache key (cli/int8.ts): the fp32 model's bytes, the input settings the command line puts
 * over its camstream.json, and the calibration method, each changing the entry; labels do not (they do
 * not shape the calibrated ranges). Real ONNX files written to disk.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { int8CacheEntry, int8CacheRoot } from '../../cli/int8.ts';
import { smallClassConvNet, toOnnxModel } from '../../lab/builders/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'camstream-int8-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function onnxFile(name: string, seed: number): string {
  const path = join(dir, name);
  writeFileSync(path, toOnnxModel(smallClassConvNet(seed, { inputSize: [32, 32], numClasses: 4, width: 4 })));
  return path;
}

describe('--int8 cache key', () => {
  const cacheDir = join(dir, 'cache');
  const a = onnxFile('a.onnx', 1);

  it('lives under <cache>/int8, named <hash>-<method>, and is stable', async () => {
    const entry = await int8CacheEntry(a, 'mse', { cacheDir });
    expect(dirname(entry)).toBe(int8CacheRoot(cacheDir));
    expect(basename(entry)).toMatch(/^[0-9a-f]{16}-mse$/);
    expect(await int8CacheEntry(a, 'mse', { cacheDir })).toBe(entry);
  });

  it('changes with the method, the model bytes and the normalization, not with the labels', async () => {
    const base = await int8CacheEntry(a, 'mse', { cacheDir });
    const hashOf = (entry: string) => basename(entry).split('-')[0];
    const minmax = await int8CacheEntry(a, 'minmax', { cacheDir });
    expect(basename(minmax)).toBe(`${hashOf(base)}-minmax`);
    // A copy of the same bytes under another name is the same model.
    const copy = join(dir, 'copy.onnx');
    writeFileSync(copy, toOnnxModel(smallClassConvNet(1, { inputSize: [32, 32], numClasses: 4, width: 4 })));
    expect(await int8CacheEntry(copy, 'mse', { cacheDir })).toBe(base);
    expect(hashOf(await int8CacheEntry(onnxFile('b.onnx', 2), 'mse', { cacheDir }))).not.toBe(hashOf(base));
    const imagenet = await int8CacheEntry(a, 'mse', { cacheDir, config: { preset: 'imagenet' } });
    expect(imagenet).not.toBe(base);
    expect(await int8CacheEntry(a, 'mse', { cacheDir, config: { preset: 'tf' } })).not.toBe(imagenet);
    expect(await int8CacheEntry(a, 'mse', { cacheDir, config: { labels: join(dir, 'labels.txt') } })).toBe(base);
  });
});
