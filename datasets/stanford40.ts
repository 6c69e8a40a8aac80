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
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../common/index.ts';

export type Box = [number, number, number, number];

/** XML special characters escaped for element text. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function unescapeXml(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
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

/** Text of the first `<tag>` element inside `xml`, or undefined. */
function element(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m === null ? undefined : m[1];
}

function elements(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]);
}

function numberField(xml: string, tag: string, where: string): number {
  const text = element(xml, tag);
  const value = text === undefined ? NaN : Number(text.trim());
  if (text === undefined || !Number.isFinite(value)) {
    throw new InputError(`${where}: <${tag}> missing or not a number (got ${text === undefined ? 'nothing' : `'${text.trim()}'`})`);
  }
  return value;
}

/**
 * Parses a Stanford 40 (Pascal-VOC style) annotation. Checks the fields the dataset defines: <filename>,
 * <size> with <width>, <height> (and <depth>, default 3), and per <object> an <action> and a <bndbox>
 * whose corners lie inside the image with xmin <= xmax and ymin <= ymax. Boxes come back in camstream's
 * pixel-edge convention. `where` names the file in errors.
 */
export function parseAnnotationXml(xml: string, where: string): Stanford40Annotation {
  const root = element(xml, 'annotation');
  if (root === undefined) throw new InputError(`${where}: no <annotation> root element`);
  const filename = element(root, 'filename');
  if (filename === undefined || filename.trim() === '') throw new InputError(`${where}: <filename> missing`);
  const size = element(root, 'size');
  if (size === undefined) throw new InputError(`${where}: <size> missing`);
  const width = numberField(size, 'width', where);
  const height = numberField(size, 'height', where);
  const depth = element(size, 'depth') === undefined ? 3 : numberField(size, 'depth', where);
  if (!(width >= 1 && height >= 1)) throw new InputError(`${where}: image size ${width}x${height} is not positive`);
  const objects = elements(root, 'object').map((obj, i) => {
    const action = element(obj, 'action');
    if (action === undefined || action.trim() === '') throw new InputError(`${where}: object ${i} has no <action>`);
    const bndbox = element(obj, 'bndbox');
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
    const name = element(obj, 'name');
    return { action: unescapeXml(action.trim()), name: name?.trim(), box: [xmin - 1, ymin - 1, xmax, ymax] as Box };
  });
  if (objects.length === 0) throw new InputError(`${where}: no <object> element`);
  return { filename: unescapeXml(filename.trim()), width, height, depth, objects };
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
