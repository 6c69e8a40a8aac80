import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ReviewStore, quantizeRawMap, dequantizeRawMap, summarizeImages, type ReviewSummary } from '../../../review/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'camstream-review-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const meta = { name: 'ds', root: '/data', layout: 'folders', classes: ['a', 'b'], modelSource: 'm', modelKey: 'k', issues: [] };
const image = (key: string, label: number) => ({ key, path: `/data/${key}.jpg`, sha256: key, width: 10, height: 10, label, split: 'test' as const, boxes: [[1, 1, 5, 5] as [number, number, number, number]] });

function analyse(store: ReviewStore, id: number): void {
  const imgs = store.images(id);
  const summary = { dataset: 'ds', ...summarizeImages([], ['a', 'b']) } as unknown as ReviewSummary;
  store.saveAnalysis(id, {
    head: { weights: new Float32Array(4), bias: new Float32Array(2), labels: ['a', 'b'] },
    summary,
    predictions: imgs.map((im) => ({ imageId: im.id, predicted: 0, confidence: 0.9, top: [], mapClass: im.label, paperBox: null, officialBox: null, iouPaper: 0.5, iouOfficial: 0.4, insidePaper: 1, insideOfficial: 1, pointing: true, peak: { x: 1, y: 1 } })),
    maps: imgs.map((im) => ({ imageId: im.id, map: quantizeRawMap(Float32Array.from([-1, 0, 2, 3]), im.label, [2, 2]) })),
  });
}

describe('the review store', () => {
  it('keeps decisions across closing, reopening and re-importing the dataset', () => {
    const path = join(dir, 'review.db');
    let store = ReviewStore.open(path);
    const id = store.replaceDataset(meta, [image('x', 0), image('y', 1)]);
    analyse(store, id);
    const x = store.rows(id).find((r) => r.key === 'x')!;
    store.setDecision(x.id, { status: 'accepted', tag: 'object', note: 'the cup' });
    store.close();

    store = ReviewStore.open(path);
    expect(store.row(x.id)!.decision).toMatchObject({ status: 'accepted', tag: 'object', note: 'the cup' });
    // Re-import: new image ids, same keys: the decision follows the key.
    const again = store.replaceDataset(meta, [image('x', 0), image('y', 1)]);
    expect(again).toBe(id);
    analyse(store, id);
    const x2 = store.rows(id).find((r) => r.key === 'x')!;
    expect(x2.decision).toMatchObject({ status: 'accepted', tag: 'object' });
    expect(store.rows(id, { status: 'accepted' }).map((r) => r.key)).toEqual(['x']);
    expect(store.rows(id, { status: 'undecided' }).map((r) => r.key)).toEqual(['y']);
    expect(store.rows(id, { correct: true }).map((r) => r.key)).toEqual(['x']);
    expect(() => store.setDecision(x2.id, { tag: 'nonsense' as never })).toThrow(/tag must be one of/);
    store.close();
  });

  it('caches feature vectors by model key and image hash', () => {
    const store = ReviewStore.open(join(dir, 'f.db'));
    store.cacheFeatures('m1', [{ sha256: 'h', features: Float32Array.from([1.5, -2, 3]) }]);
    expect(Array.from(store.cachedFeatures('m1', 'h')!)).toEqual([1.5, -2, 3]);
    expect(store.cachedFeatures('m2', 'h')).toBeUndefined();
    store.close();
  });

  it('stores maps in 8 bits over their own range', () => {
    const raw = Float32Array.from([-1, 0, 2, 3]);
    const q = quantizeRawMap(raw, 0, [2, 2]);
    expect(Array.from(q.data)).toEqual([0, 64, 191, 255]);
    const back = dequantizeRawMap(q);
    for (let i = 0; i < 4; i++) expect(Math.abs(back[i] - raw[i])).toBeLessThanOrEqual((3 - -1) / 510 + 1e-6);
  });
});
