/**
 * `camstream review` end to end on a generated Stanford 40 layout dataset (true boxes known) with the real
 * Darknet Tiny backbone: bad files are reported and skipped, and the accuracy and IoU the report prints
 * equal what this test computes on its own (its own decode, its own model calls with the stored head, its
 * own box parsing).
 */
import sharp from 'sharp';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iou, load, paperBox, peakPoint, type Box, type CamModel, type Frame } from '../../models/index.ts';
import { writeGeneratedDataset } from '../../datasets/index.ts';
import { headLogits } from '../../review/index.ts';
import { runCli } from '../helpers/cli.ts';
import { DARKNET_TINY, fixturesPresent } from '../helpers/fixtures.ts';

async function decode(path: string): Promise<Frame> {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

/** VOC boxes (1-based inclusive) to pixel edges, parsed here without the project's parser. */
function boxesOf(xml: string): Box[] {
  return [...xml.matchAll(/<bndbox>([\s\S]*?)<\/bndbox>/g)].map((m) => {
    const v = (t: string) => Number(new RegExp(`<${t}>\\s*([\\d.]+)\\s*</${t}>`).exec(m[1])![1]);
    return [v('xmin') - 1, v('ymin') - 1, v('xmax'), v('ymax')];
  });
}

describe.skipIf(!fixturesPresent)('camstream review on a Stanford 40 layout', () => {
  let dir: string;
  let data: string;
  let home: string;
  let model: CamModel;
  let imported: Awaited<ReturnType<typeof runCli>>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'camstream-review-s40-'));
    data = join(dir, 'actions');
    home = join(dir, 'home');
    await writeGeneratedDataset(data, { layout: 'stanford40', n: 40, seed: 11 });
    // Three bad files: a malformed annotation, a missing image, a file that is not an image.
    await writeFile(join(data, 'XMLAnnotations', 'zero_001.xml'), '<annotation><filename>zero_001.jpg</filename><object><action>ze');
    await unlink(join(data, 'JPEGImages', 'one_002.jpg'));
    await writeFile(join(data, 'JPEGImages', 'two_001.jpg'), 'this is text, not a JPEG\n');
    imported = await runCli(['review', 'import', data, '--model', DARKNET_TINY, '--backend', 'wasm', '--batch', '1', '--home', home, '--name', 's40']);
    model = await load(DARKNET_TINY, { backend: 'wasm' });
  }, 240_000);

  afterAll(async () => {
    await model?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports the three bad files, skips them and completes the import', () => {
    expect(imported.code).toBe(0);
    expect(imported.stderr).toMatch(/skipped: .*zero_001\.xml: malformed annotation/);
    expect(imported.stderr).toMatch(/skipped: .*one_002\.jpg: image missing/);
    expect(imported.stderr).toMatch(/skipped: .*two_001\.jpg: not an image camstream can read/);
    expect(imported.stdout).toMatch(/imported 37 images as 's40' \(3 skipped; features: 37 computed, 0 cached\)/);
  });

  it('prints accuracy and IoU equal to an independent recomputation with the stored head', async () => {
    const report = await runCli(['review', 'report', 's40', '--json', '--home', home]);
    expect(report.code).toBe(0);
    const summary = JSON.parse(report.stdout);
    for (const k of ['images', 'accuracy', 'meanIoU', 'pointingGame', 'perClass']) expect(summary).toHaveProperty(k);
    const out = join(dir, 'export.json');
    expect((await runCli(['review', 'export', 's40', '--format', 'json', '--out', out, '--home', home])).code).toBe(0);
    const exported = JSON.parse(await readFile(out, 'utf8'));
    const classes: string[] = summary.classes;
    const head = { weights: Float32Array.from(exported.head.weights), bias: Float32Array.from(exported.head.bias) };
    const cam = model.withHead(head);
    const test = exported.images.filter((r: { split: string }) => r.split === 'test');
    expect(test.length).toBe(summary.images);
    let correct = 0;
    let iouSum = 0;
    let hits = 0;
    try {
      for (const r of test) {
        const frame = await decode(join(data, 'JPEGImages', `${r.key}.jpg`));
        const label = classes.indexOf(r.class);
        const truth = boxesOf(await readFile(join(data, 'XMLAnnotations', `${r.key}.xml`), 'utf8'));
        // The prediction from the new head, and the head really is the classifier: logits = GAP . W + b.
        const [top] = await cam.infer([frame], { topK: 1 });
        const [gap] = await model.infer([frame], { topK: 1, features: true });
        const z = headLogits(head, gap.features!);
        expect(top.ids[0]).toBe(z.indexOf(Math.max(...z)));
        expect(top.scores[0]).toBeCloseTo(Math.max(...z), 3);
        if (top.ids[0] === label) correct++;
        // The true class's map, its paper box and peak against the annotated box.
        const [m] = await cam.infer([frame], { classes: [label] });
        const geometry = { frameWidth: frame.width, frameHeight: frame.height, inputWidth: 224, inputHeight: 224, resize: model.info.preprocess.resize };
        const box = paperBox(m.maps, m.mapSize, geometry);
        const best = box === null ? 0 : Math.max(...truth.map((t) => iou(box, t)));
        expect(r.iou_paper).toBeCloseTo(best, 6);
        iouSum += best;
        const p = peakPoint(m.maps, m.mapSize, geometry);
        if (truth.some((t) => p.x >= t[0] && p.x <= t[2] && p.y >= t[1] && p.y <= t[3])) hits++;
      }
    } finally {
      await cam.dispose();
    }
    expect(summary.accuracy).toBeCloseTo(correct / test.length, 12);
    expect(summary.meanIoU).toBeCloseTo(iouSum / test.length, 6);
    expect(summary.pointingGame).toBeCloseTo(hits / test.length, 12);
    // The printed table shows the same figures.
    const table = await runCli(['review', 'report', 's40', '--home', home]);
    expect(table.stdout).toMatch(new RegExp(`all\\s+${test.length}\\s+${((correct / test.length) * 100).toFixed(1)}%\\s+${(iouSum / test.length).toFixed(3)}`));
  }, 240_000);

  it('reuses the cached features on a second import', async () => {
    const again = await runCli(['review', 'import', data, '--model', DARKNET_TINY, '--backend', 'wasm', '--home', home, '--name', 's40', '-q']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/features: 0 computed, 37 cached/);
  }, 240_000);
});
