/**
 * Reading an image dataset from disk: the Stanford 40 layout (images, VOC-style XML boxes, split files)
 * or one folder per class. The layout is detected from the folder's contents. Used by `camstream eval`
 * and by the review feature; nothing here decodes images (items carry paths).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { InputError } from '../common/index.ts';
import { listFiles, parseActionsTxt, parseAnnotationXml, readAnnotationFile, readSplitFile, stanford40Paths, type Box } from './stanford40.ts';
import type { DatasetLayout } from './write.ts';

export interface DatasetItem {
  /** File name without extension (Stanford 40: `<class>_<NNN>`). */
  id: string;
  /** Absolute image path. */
  path: string;
  className: string;
  /** Index into `Dataset.classes`. */
  label: number;
  /** Stanford 40 only: which split file lists it. */
  split?: 'train' | 'test';
  /** Stanford 40 only: the annotated boxes of the class's action, camstream pixel-edge convention. */
  boxes?: Box[];
  /** Stanford 40 only: the size the annotation states. */
  width?: number;
  height?: number;
}

export interface Dataset {
  root: string;
  layout: DatasetLayout;
  classes: string[];
  items: DatasetItem[];
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

/** Which layout `root` holds, or throws InputError saying what is missing. */
export function detectLayout(root: string): DatasetLayout {
  const p = stanford40Paths(root);
  if (existsSync(p.images) || existsSync(p.annotations) || existsSync(p.splits)) {
    for (const [what, path] of Object.entries(p)) {
      if (!existsSync(path)) throw new InputError(`${root}: looks like the Stanford 40 layout but ${path} (${what}) is missing`);
    }
    return 'stanford40';
  }
  return 'folders';
}

/** Reads the dataset at `root` (layout detected). Throws InputError naming the bad file. */
export async function readDataset(root: string): Promise<Dataset> {
  const dir = resolve(root);
  if (!existsSync(dir)) throw new InputError(`dataset folder ${dir} does not exist`);
  return detectLayout(dir) === 'stanford40' ? readStanford40(dir) : readFolders(dir);
}

/**
 * Stanford 40: classes from ImageSplits/actions.txt; images from `<class>_train.txt` and
 * `<class>_test.txt`; each image's XML must exist, name the image in <filename> and give the class as the
 * <action> of at least one object.
 */
export async function readStanford40(root: string): Promise<Dataset> {
  const p = stanford40Paths(root);
  const actionsPath = join(p.splits, 'actions.txt');
  if (!existsSync(actionsPath)) throw new InputError(`${actionsPath} is missing`);
  const actions = parseActionsTxt(await readFile(actionsPath, 'utf8'), actionsPath);
  const classes = actions.map((a) => a.name);
  const items: DatasetItem[] = [];
  for (const [label, className] of classes.entries()) {
    let listed = 0;
    for (const split of ['train', 'test'] as const) {
      const splitPath = join(p.splits, `${className}_${split}.txt`);
      if (!existsSync(splitPath)) throw new InputError(`${splitPath} is missing (every action has a train and a test list)`);
      for (const entry of await readSplitFile(splitPath)) {
        const file = extname(entry) === '' ? `${entry}.jpg` : entry;
        const id = file.slice(0, -extname(file).length);
        const xmlPath = join(p.annotations, `${id}.xml`);
        if (!existsSync(xmlPath)) throw new InputError(`${splitPath} lists ${file} but ${xmlPath} is missing`);
        const ann = parseAnnotationXml(await readAnnotationFile(xmlPath), xmlPath);
        if (ann.filename !== file) throw new InputError(`${xmlPath}: <filename> is '${ann.filename}', expected '${file}'`);
        const boxes = ann.objects.filter((o) => o.action === className).map((o) => o.box);
        if (boxes.length === 0) {
          throw new InputError(`${xmlPath}: no object with <action>${className}</action> (found ${ann.objects.map((o) => o.action).join(', ')})`);
        }
        const path = join(p.images, file);
        if (!existsSync(path)) throw new InputError(`${xmlPath} annotates ${path}, which is missing`);
        items.push({ id, path, className, label, split, boxes, width: ann.width, height: ann.height });
        listed++;
      }
    }
    const expected = actions[label].count;
    if (expected !== undefined && expected !== listed) {
      throw new InputError(`${actionsPath}: ${className} has ${expected} images but its split files list ${listed}`);
    }
  }
  return { root, layout: 'stanford40', classes, items };
}

/** One folder per class (sorted by name), images directly inside. */
export async function readFolders(root: string): Promise<Dataset> {
  const classes = (await readdir(root, { withFileTypes: true }))
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
  if (classes.length === 0) throw new InputError(`${root}: no class folders (expected <class>/<image> or the Stanford 40 layout)`);
  const items: DatasetItem[] = [];
  for (const [label, className] of classes.entries()) {
    const files = (await listFiles(join(root, className))).filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase())).sort();
    for (const file of files) {
      items.push({ id: file.slice(0, -extname(file).length), path: join(root, className, file), className, label });
    }
  }
  if (items.length === 0) throw new InputError(`${root}: the class folders hold no images`);
  return { root, layout: 'folders', classes, items };
}
