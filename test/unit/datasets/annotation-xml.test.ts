/**
 * The annotation reader: a single forward pass (its work is bounded by the input's length, counted, not
 * timed), correct on large and hostile inputs, and a size cap checked before the file is read.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../common/index.ts';
import {
  DEFAULT_MAX_ANNOTATION_BYTES,
  annotationXml,
  findElements,
  parseAnnotationXml,
  readAnnotationFile,
  readXmlTree,
  type XmlScanStats,
} from '../../../datasets/index.ts';

/** A valid annotation with `n` objects, box i at [i, i, i + 10, i + 10] (1-based, inclusive). */
function manyObjects(n: number): string {
  const objects = Array.from(
    { length: n },
    (_, i) =>
      `<object><action>act&amp;${i % 7}</action><bndbox><xmin>${i + 1}</xmin><ymin>${i + 1}</ymin>` +
      `<xmax>${i + 11}</xmax><ymax>${i + 11}</ymax></bndbox><name>person</name></object>`,
  );
  return `<?xml version="1.0"?>\n<!-- generated --><annotation><filename>big.jpg</filename>${objects.join('\n')}` +
    `<size><depth>3</depth><height>${n + 20}</height><width>${n + 20}</width></size></annotation>\n`;
}

describe('the annotation XML reader', () => {
  it('parses 20 000 objects correctly in one pass over the text', () => {
    const xml = manyObjects(20_000);
    expect(xml.length).toBeGreaterThan(2_000_000);
    const stats: XmlScanStats = { examined: 0 };
    const tree = readXmlTree(xml, 'big.xml', stats);
    // Every character looked at about once: a search never restarts behind where the last one ended.
    expect(stats.examined).toBeLessThanOrEqual(xml.length);
    expect(findElements(tree, 'object')).toHaveLength(20_000);
    const ann = parseAnnotationXml(xml, 'big.xml');
    expect(ann.objects).toHaveLength(20_000);
    expect(ann.objects[12_345]).toEqual({ action: `act&${12_345 % 7}`, name: 'person', box: [12_345, 12_345, 12_356, 12_356] });
    expect([ann.width, ann.height, ann.filename]).toEqual([20_020, 20_020, 'big.jpg']);
  });

  it.each([
    ['many unclosed <object> tags', '<annotation>' + '<object>'.repeat(100_000)],
    ['many tags never ended', '<annotation><filename>a.jpg</filename>' + '<a '.repeat(100_000)],
    ['many comments never closed', '<annotation>' + '<!-- x'.repeat(100_000)],
    ['a long run of text without tags', '<annotation>' + 'x'.repeat(500_000)],
  ])('refuses %s after looking at each character about once', (_what, xml) => {
    const stats: XmlScanStats = { examined: 0 };
    expect(() => readXmlTree(xml, 'evil.xml', stats)).toThrow(InputError);
    expect(stats.examined).toBeLessThanOrEqual(xml.length);
    expect(() => parseAnnotationXml(xml, 'evil.xml')).toThrow(/evil\.xml/);
  });

  it('reads what the writer writes, entities, CDATA and comments included', () => {
    const box: [number, number, number, number] = [3, 4, 30, 40];
    const written = annotationXml({ filename: 'a&b.jpg', width: 64, height: 48, action: 'x<y', box });
    expect(parseAnnotationXml(written, 'w.xml')).toEqual({ filename: 'a&b.jpg', width: 64, height: 48, depth: 3, objects: [{ action: 'x<y', name: 'person', box }] });
    const tree = readXmlTree('<a><!-- <b> --><![CDATA[<not a tag>]]> &#65;&#x42;<c/></a>', 'c.xml');
    expect(tree.children[0]).toEqual({ name: 'a', text: '<not a tag> AB', children: [{ name: 'c', text: '', children: [] }] });
  });

  it('names a closing tag that does not match', () => {
    expect(() => readXmlTree('<a><b></a></b>', 'm.xml')).toThrow(/m\.xml: <\/a> at offset 6 does not close <b>/);
  });
});

describe('the annotation size cap', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'camstream-xml-cap-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has a documented default far above any real annotation', () => {
    expect(DEFAULT_MAX_ANNOTATION_BYTES).toBe(256 * 1024);
  });

  it('refuses a file over the cap, naming it, its size and the limit', async () => {
    const path = join(dir, 'huge.xml');
    const xml = manyObjects(3_000);
    await writeFile(path, xml);
    await expect(readAnnotationFile(path, 100_000)).rejects.toThrow(
      new RegExp(`huge\\.xml: annotation file of ${Buffer.byteLength(xml)} bytes is larger than the limit of 100000 bytes`),
    );
    expect(parseAnnotationXml(await readAnnotationFile(path, 1_000_000), path).objects).toHaveLength(3_000);
  });

  it('passes a missing file through as ENOENT', async () => {
    await expect(readAnnotationFile(join(dir, 'none.xml'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
