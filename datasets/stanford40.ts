/**
 * The Stanford 40 Actions layout (Yao et al. 2011), which the CAM paper's sec. 4 uses for its generic
 * localizable features experiment, written for generated scenes and read back for any dataset in it:
 *
 *   JPEGImages/<class>_<NNN>.jpg
 *   XMLAnnotations/<class>_<NNN>.xml   Pascal-VOC style, one <object> with <action>, <name> and <bndbox>
 *   ImageSplits/actions.txt            "action_name<TAB>number_of_images" header, then one row per class
 *   ImageSplits/<class>_train.txt      image file names, one per line (as the real dataset: with ".jpg")
 *   ImageSplits/<class>_test.txt
 *   ImageSplits/train.txt, test.txt    all classes together
 *
 * Boxes in the XML follow VOC: 1-based pixel indices, inclusive at both ends. camstream boxes are
 * continuous `[x1, y1, x2, y2]` pixel-edge coordinates (see models/boxes.ts), so xmin = x1 + 1 and
 * xmax = x2 when writing, and the reverse when reading.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../common/index.ts';
import { findElement, findElements, readXmlTree, type XmlElement } from './xml.ts';

export type Box = [number, number, number, number];

/** XML special characters escaped for element text. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The annotation XML of one image (one person-like object whose action is the class). */
export function annotationXml(a: { filename: string; width: number; height: number; action: string; box: Box }): string {
  const [x1, y1, x2, y2] = a.box;
  return [
    '<annotation>',
    `    <filename>${escapeXml(a.filename)}</filename>`,
    '    <object>',
    `        <action>${escapeXml(a.action)}</action>`,
    '        <bndbox>',
    `            <xmax>${Math.round(x2)}</xmax>`,
    `            <xmin>${Math.round(x1) + 1}</xmin>`,
    `            <ymax>${Math.round(y2)}</ymax>`,
    `            <ymin>${Math.round(y1) + 1}</ymin>`,
    '        </bndbox>',
    '        <name>person</name>',
    '    </object>',
    '    <size>',
    '        <depth>3</depth>',
    `        <height>${a.height}</height>`,
    `        <width>${a.width}</width>`,
    '    </size>',
    '</annotation>',
    '',
  ].join('\n');
}

/** One parsed annotation file. */
export interface Stanford40Annotation {
  filename: string;
  width: number;
  height: number;
  depth: number;
  objects: Array<{ action: string; name: string | undefined; box: Box }>;
}

/** Text of the first `<tag>` element below `el`, or undefined. */
function text(el: XmlElement, tag: string): string | undefined {
  return findElement(el, tag)?.text;
}

function numberField(el: XmlElement, tag: string, where: string): number {
  const t = text(el, tag);
  const value = t === undefined ? NaN : Number(t.trim());
  if (t === undefined || !Number.isFinite(value)) {
    throw new InputError(`${where}: <${tag}> missing or not a number (got ${t === undefined ? 'nothing' : `'${t.trim()}'`})`);
  }
  return value;
}

/** Default for `maxAnnotationBytes`: 256 KiB, hundreds of times a real annotation (under 1 KB). */
export const DEFAULT_MAX_ANNOTATION_BYTES = 256 * 1024;

/**
 * Reads an annotation file of at most `maxBytes` bytes. The size is checked before the text is read, so a
 * huge file costs nothing. ENOENT passes through as is (callers report a missing file their own way).
 * @throws InputError naming the file, its size and the limit when it is larger.
 */
export async function readAnnotationFile(path: string, maxBytes: number = DEFAULT_MAX_ANNOTATION_BYTES): Promise<string> {
  const tooBig = (bytes: number) =>
    new InputError(`${path}: annotation file of ${bytes} bytes is larger than the limit of ${maxBytes} bytes (maxAnnotationBytes)`);
  const { size } = await stat(path);
  if (size > maxBytes) throw tooBig(size);
  const bytes = await readFile(path);
  // The file may have grown between the two calls.
  if (bytes.length > maxBytes) throw tooBig(bytes.length);
  return bytes.toString('utf8');
}

/**
 * Parses a Stanford 40 (Pascal-VOC style) annotation. Checks the fields the dataset defines: <filename>,
 * <size> with <width>, <height> (and <depth>, default 3), and per <object> an <action> and a <bndbox>
 * whose corners lie inside the image with xmin <= xmax and ymin <= ymax. Boxes come back in camstream's
 * pixel-edge convention. `where` names the file in errors. Linear in the size of `xml` (see xml.ts).
 */
export function parseAnnotationXml(xml: string, where: string): Stanford40Annotation {
  const root = findElement(readXmlTree(xml, where), 'annotation');
  if (root === undefined) throw new InputError(`${where}: no <annotation> root element`);
  const filename = text(root, 'filename');
  if (filename === undefined || filename.trim() === '') throw new InputError(`${where}: <filename> missing`);
  const size = findElement(root, 'size');
  if (size === undefined) throw new InputError(`${where}: <size> missing`);
  const width = numberField(size, 'width', where);
  const height = numberField(size, 'height', where);
  const depth = text(size, 'depth') === undefined ? 3 : numberField(size, 'depth', where);
  if (!(width >= 1 && height >= 1)) throw new InputError(`${where}: image size ${width}x${height} is not positive`);
  const objects = findElements(root, 'object').map((obj, i) => {
    const action = text(obj, 'action');
    if (action === undefined || action.trim() === '') throw new InputError(`${where}: object ${i} has no <action>`);
    const bndbox = findElement(obj, 'bndbox');
    if (bndbox === undefined) throw new InputError(`${where}: object ${i} has no <bndbox>`);
    const xmin = numberField(bndbox, 'xmin', where);
    const ymin = numberField(bndbox, 'ymin', where);
    const xmax = numberField(bndbox, 'xmax', where);
    const ymax = numberField(bndbox, 'ymax', where);
    if (!(xmin >= 1 && ymin >= 1 && xmin <= xmax && ymin <= ymax && xmax <= width && ymax <= height)) {
      throw new InputError(
        `${where}: object ${i} <bndbox> [${xmin}, ${ymin}, ${xmax}, ${ymax}] is not inside the ${width}x${height} image ` +
          '(1-based, inclusive corners)',
      );
    }
    const name = text(obj, 'name');
    return { action: action.trim(), name: name?.trim(), box: [xmin - 1, ymin - 1, xmax, ymax] as Box };
  });
  if (objects.length === 0) throw new InputError(`${where}: no <object> element`);
  return { filename: filename.trim(), width, height, depth, objects };
}

/** `actions.txt`: a header, then `name<TAB>count` per class. */
export function actionsTxt(counts: ReadonlyArray<[string, number]>): string {
  return ['action_name\tnumber_of_images', ...counts.map(([name, n]) => `${name}\t${n}`), ''].join('\n');
}

/** Parses `actions.txt` into class names (header optional, counts optional). */
export function parseActionsTxt(text: string, where: string): Array<{ name: string; count?: number }> {
  const rows = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const out: Array<{ name: string; count?: number }> = [];
  for (const [i, row] of rows.entries()) {
    const [name, count] = row.split(/\s+/);
    if (i === 0 && name === 'action_name') continue;
    const n = count === undefined ? undefined : Number(count);
    if (n !== undefined && !Number.isInteger(n)) throw new InputError(`${where}: line ${i + 1} count '${count}' is not an integer`);
    out.push({ name, count: n });
  }
  if (out.length === 0) throw new InputError(`${where}: no actions listed`);
  return out;
}

/** Reads a split file: image file names (or ids) one per line. */
export async function readSplitFile(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** Names of the files directly inside `dir`. */
export async function listFiles(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
}

export const STANFORD40_DIRS = { images: 'JPEGImages', annotations: 'XMLAnnotations', splits: 'ImageSplits' } as const;

/** Paths of the parts of a Stanford 40 folder. */
export function stanford40Paths(root: string): { images: string; annotations: string; splits: string } {
  return {
    images: join(root, STANFORD40_DIRS.images),
    annotations: join(root, STANFORD40_DIRS.annotations),
    splits: join(root, STANFORD40_DIRS.splits),
  };
}
