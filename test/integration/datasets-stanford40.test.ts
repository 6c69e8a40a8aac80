/**
 * Generated datasets on disk: the Stanford 40 layout parses as the real dataset would (XML fields, split
 * files, actions.txt), the folder-per-class layout reads back, and writes are atomic.
 */
import sharp from 'sharp';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, InputError } from '../../models/index.ts';
import {
  DIGIT_LABELS,
  generateScene,
  resolveSceneConfig,
  parseActionsTxt,
  parseAnnotationXml,
  readDataset,
  writeGeneratedDataset,
} from '../../datasets/index.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'camstream-datasets-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const N = 40;
const SEED = 5;
const SIZE = 64;

describe('Stanford 40 layout', () => {
  let out: string;
  const progress: number[] = [];
  beforeAll(async () => {
    out = join(root, 'stanford');
    await writeGeneratedDataset(out, { layout: 'stanford40', n: N, seed: SEED, size: SIZE, trainFraction: 0.5 }, (done) => progress.push(done));
  });

  it('has the real dataset folders and one JPEG and one XML per image', async () => {
    expect((await readdir(out)).sort()).toEqual(['ImageSplits', 'JPEGImages', 'XMLAnnotations']);
    const jpgs = (await readdir(join(out, 'JPEGImages'))).sort();
    const xmls = (await readdir(join(out, 'XMLAnnotations'))).sort();
    expect(jpgs).toHaveLength(N);
    expect(xmls.map((f) => f.replace('.xml', '.jpg'))).toEqual(jpgs);
    expect(jpgs.every((f) => /^[a-z]+_\d{3}\.jpg$/.test(f))).toBe(true);
    expect(progress.at(-1)).toBe(N);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it('writes annotations whose fields match the image and the generated scene', async () => {
    const config = resolveSceneConfig({ size: SIZE });
    // Regenerate the stream to know each image's class and box (ids number each class from 001).
    const perClass = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const scene = generateScene(SEED, i, config);
      const name = DIGIT_LABELS[scene.label];
      const count = (perClass.get(name) ?? 0) + 1;
      perClass.set(name, count);
      const id = `${name}_${String(count).padStart(3, '0')}`;
      const xml = await readFile(join(out, 'XMLAnnotations', `${id}.xml`), 'utf8');
      const ann = parseAnnotationXml(xml, id);
      expect(ann.filename).toBe(`${id}.jpg`);
      const meta = await sharp(join(out, 'JPEGImages', `${id}.jpg`)).metadata();
      expect([ann.width, ann.height, ann.depth]).toEqual([meta.width, meta.height, 3]);
      expect(ann.objects).toHaveLength(1);
      expect(ann.objects[0].action).toBe(name);
      expect(ann.objects[0].name).toBe('person');
      expect(ann.objects[0].box).toEqual(scene.box);
      // VOC corners: 1-based and inclusive, as in the real files.
      expect(xml).toContain(`<xmin>${scene.box[0] + 1}</xmin>`);
      expect(xml).toContain(`<xmax>${scene.box[2]}</xmax>`);
    }
  });

  it('lists every image in exactly one of its class split files, and in train.txt or test.txt', async () => {
    const splits = join(out, 'ImageSplits');
    const actions = parseActionsTxt(await readFile(join(splits, 'actions.txt'), 'utf8'), 'actions.txt');
    expect(actions.map((a) => a.name)).toEqual([...DIGIT_LABELS]);
    expect(actions.reduce((s, a) => s + (a.count ?? 0), 0)).toBe(N);
    const lines = async (f: string): Promise<string[]> => (await readFile(join(splits, f), 'utf8')).split('\n').filter(Boolean);
    const all = (await readdir(join(out, 'JPEGImages'))).sort();
    const fromClasses: string[] = [];
    for (const { name, count } of actions) {
      const train = await lines(`${name}_train.txt`);
      const test = await lines(`${name}_test.txt`);
      expect(train.length + test.length).toBe(count);
      expect(train.length).toBe(Math.round((count ?? 0) * 0.5));
      expect([...train, ...test].every((f) => f.startsWith(`${name}_`) && f.endsWith('.jpg'))).toBe(true);
      fromClasses.push(...train, ...test);
    }
    expect(fromClasses.sort()).toEqual(all);
    expect([...(await lines('train.txt')), ...(await lines('test.txt'))].sort()).toEqual(all);
  });

  it('reads back through the dataset reader with classes, splits and boxes', async () => {
    const dataset = await readDataset(out);
    expect(dataset.layout).toBe('stanford40');
    expect(dataset.classes).toEqual([...DIGIT_LABELS]);
    expect(dataset.items).toHaveLength(N);
    for (const item of dataset.items) {
      expect(dataset.classes[item.label]).toBe(item.className);
      expect(item.id.startsWith(`${item.className}_`)).toBe(true);
      expect(['train', 'test']).toContain(item.split);
      expect(item.boxes).toHaveLength(1);
      const [x1, y1, x2, y2] = item.boxes![0];
      expect(0 <= x1 && x1 < x2 && x2 <= SIZE && 0 <= y1 && y1 < y2 && y2 <= SIZE).toBe(true);
    }
  });

  it('refuses to write over an existing folder and leaves no temporary folder behind', async () => {
    await expect(writeGeneratedDataset(out, { n: 2 })).rejects.toThrow(ConfigError);
    expect((await readdir(root)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('annotation parser', () => {
  // Element order, whitespace and extra fields as VOC-style files have them.
  const REAL_STYLE = `<annotation>
	<folder>Stanford40</folder>
	<filename>riding_a_horse_042.jpg</filename>
	<size><width>400</width><height>300</height><depth>3</depth></size>
	<segmented>0</segmented>
	<object>
		<name>person</name>
		<bndbox><xmin>11</xmin><ymin>21</ymin><xmax>210</xmax><ymax>300</ymax></bndbox>
		<action>riding_a_horse</action>
	</object>
</annotation>`;

  it('reads a real-style file in camstream box coordinates', () => {
    const ann = parseAnnotationXml(REAL_STYLE, 'x.xml');
    expect(ann).toMatchObject({ filename: 'riding_a_horse_042.jpg', width: 400, height: 300, depth: 3 });
    expect(ann.objects).toEqual([{ action: 'riding_a_horse', name: 'person', box: [10, 20, 210, 300] }]);
  });

  it('names the file and field that are wrong', () => {
    expect(() => parseAnnotationXml(REAL_STYLE.replace('<xmax>210</xmax>', '<xmax>500</xmax>'), 'bad.xml')).toThrow(/bad\.xml.*bndbox/);
    expect(() => parseAnnotationXml(REAL_STYLE.replace(/<action>.*<\/action>/, ''), 'a.xml')).toThrow(/a\.xml.*<action>/);
    expect(() => parseAnnotationXml(REAL_STYLE.replace('<width>400</width>', ''), 'w.xml')).toThrow(/w\.xml.*<width>/);
    expect(() => parseAnnotationXml('<foo/>', 'r.xml')).toThrow(InputError);
  });

  it('rejects a dataset whose split file lists an image without annotation', async () => {
    const bad = join(root, 'broken');
    await writeGeneratedDataset(bad, { layout: 'stanford40', n: 10, seed: 1, size: 32 });
    const victim = (await readdir(join(bad, 'XMLAnnotations')))[0];
    await rm(join(bad, 'XMLAnnotations', victim));
    await expect(readDataset(bad)).rejects.toThrow(new RegExp(victim.replace('.', '\\.')));
  });
});

describe('folder-per-class layout', () => {
  it('writes <class>/<id>.jpg and reads back with labels from the folder names', async () => {
    const out = join(root, 'folders');
    const result = await writeGeneratedDataset(out, { layout: 'folders', n: 20, seed: 2, size: 48 });
    expect(result.counts.reduce((a, b) => a + b, 0)).toBe(20);
    const dataset = await readDataset(out);
    expect(dataset.layout).toBe('folders');
    expect(dataset.classes).toEqual([...DIGIT_LABELS].sort());
    expect(dataset.items).toHaveLength(20);
    for (const item of dataset.items) {
      expect(item.path).toContain(join(out, item.className));
      expect(item.boxes).toBeUndefined();
      const meta = await sharp(item.path).metadata();
      expect([meta.width, meta.height, meta.format]).toEqual([48, 48, 'jpeg']);
    }
    // The image of sample 0 sits in the folder of its class.
    const first = generateScene(2, 0, { size: 48 });
    expect(existsSync(join(out, DIGIT_LABELS[first.label], '000000.jpg'))).toBe(true);
  });

  it('says when a folder holds no class folders', async () => {
    const empty = join(root, 'empty');
    await mkdir(empty);
    await writeFile(join(empty, 'note.txt'), 'x');
    await expect(readDataset(empty)).rejects.toThrow(/no class folders/);
  });
});
