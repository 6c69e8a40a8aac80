/**
 * A tolerant reading of a dataset folder for the review import. `pipelines/datasets`' `readDataset` is
 * strict (a bad file stops it, as `camstream eval` wants); an import must instead report each bad file and
 * carry on. The per-file parsing is the datasets module's (`parseAnnotationXml`, `parseActionsTxt`); what
 * is here is the walk and the decision to skip. Images are not decoded here: a file that is not an image
 * is found when the import decodes it.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, realpath } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, resolve } from 'node:path';
import { InputError } from '../common/index.ts';
import { type Box } from '../models/index.ts';
import { DEFAULT_MAX_ANNOTATION_BYTES, detectLayout, parseActionsTxt, parseAnnotationXml, readAnnotationFile, type DatasetLayout } from '../datasets/index.ts';
import type { ImportIssue } from './types.ts';

export interface ScannedItem {
  /** File name without extension, unique in the dataset. */
  key: string;
  path: string;
  label: number;
  /** Stanford 40: the split file that lists it; folders: undefined (the import splits). */
  split?: 'train' | 'test';
  /** Annotated boxes (Stanford 40: the objects whose action is the class), camstream pixel-edge convention. */
  boxes: Box[];
}

export interface ScannedDataset {
  root: string;
  layout: DatasetLayout;
  classes: string[];
  items: ScannedItem[];
  issues: ImportIssue[];
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

function message(err: unknown): string {
  return (err as Error).message.split('\n')[0];
}

/** Limits of a scan. */
export interface ScanOptions {
  /** Largest annotation file read, in bytes; a larger one is skipped. Default `DEFAULT_MAX_ANNOTATION_BYTES` (256 KiB). */
  maxAnnotationBytes?: number;
}

/**
 * Reads `root` in `layout` (detected when undefined). Throws InputError only when the dataset as a whole is
 * unreadable (missing folder, no actions.txt, no classes); each bad file becomes an issue. Every file kept
 * lies inside the dataset folder once symlinks are followed (items carry that real path); a split-file
 * entry or a link leading elsewhere is reported and skipped.
 */
export async function scanDataset(root: string, layout?: DatasetLayout, options: ScanOptions = {}): Promise<ScannedDataset> {
  const lexical = resolve(root);
  if (!existsSync(lexical)) throw new InputError(`dataset folder ${lexical} does not exist`);
  const dir = await realpath(lexical);
  const chosen = layout ?? detectLayout(dir);
  if (chosen !== 'stanford40' && chosen !== 'folders') throw new InputError(`layout must be stanford40 or folders, got '${String(layout)}'`);
  const maxBytes = options.maxAnnotationBytes ?? DEFAULT_MAX_ANNOTATION_BYTES;
  if (!(Number.isInteger(maxBytes) && maxBytes > 0)) throw new InputError(`maxAnnotationBytes must be a whole number > 0, got ${String(maxBytes)}`);
  return chosen === 'stanford40' ? scanStanford40(dir, maxBytes) : scanFolders(dir);
}

/**
 * The real path of `path` when it exists and lies inside `root` (a real path itself); `'missing'` when it
 * does not exist, `'outside'` when it is elsewhere, as written or once its links are followed.
 */
async function insideRoot(root: string, path: string): Promise<string | 'missing' | 'outside'> {
  const below = (p: string) => {
    const rel = relative(root, p);
    return rel !== '' && rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel);
  };
  if (!below(resolve(path))) return 'outside';
  try {
    const real = await realpath(path);
    return below(real) ? real : 'outside';
  } catch {
    return 'missing';
  }
}

async function scanStanford40(root: string, maxAnnotationBytes: number): Promise<ScannedDataset> {
  const images = join(root, 'JPEGImages');
  const annotations = join(root, 'XMLAnnotations');
  const splits = join(root, 'ImageSplits');
  const actionsPath = join(splits, 'actions.txt');
  if (!existsSync(actionsPath)) throw new InputError(`${actionsPath} is missing: not a Stanford 40 layout (try --layout folders)`);
  const classes = parseActionsTxt(await readFile(actionsPath, 'utf8'), actionsPath).map((a) => a.name);
  const issues: ImportIssue[] = [];
  const items: ScannedItem[] = [];
  const seen = new Set<string>();
  for (const [label, className] of classes.entries()) {
    for (const split of ['train', 'test'] as const) {
      const splitPath = join(splits, `${className}_${split}.txt`);
      let entries: string[];
      try {
        entries = (await readFile(splitPath, 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
      } catch {
        issues.push({ path: splitPath, reason: `split file missing: no ${split} images for ${className}`, severity: 'warning' });
        continue;
      }
      for (const entry of entries) {
        const file = extname(entry) === '' ? `${entry}.jpg` : entry;
        const key = file.slice(0, -extname(file).length);
        if (seen.has(key)) {
          issues.push({ path: splitPath, reason: `${file} is listed twice; the first listing counts`, severity: 'warning' });
          continue;
        }
        const xmlPath = join(annotations, `${key}.xml`);
        const imagePath = join(images, file);
        const xmlWhere = await insideRoot(root, xmlPath);
        const imageWhere = await insideRoot(root, imagePath);
        if (xmlWhere === 'outside' || imageWhere === 'outside') {
          const path = imageWhere === 'outside' ? imagePath : xmlPath;
          issues.push({ path, reason: `entry '${entry}' of ${splitPath} leads outside the dataset folder ${root}`, severity: 'skipped' });
          continue;
        }
        let boxes: Box[];
        try {
          const ann = parseAnnotationXml(await readAnnotationFile(xmlWhere === 'missing' ? xmlPath : xmlWhere, maxAnnotationBytes), xmlPath);
          boxes = ann.objects.filter((o) => o.action === className).map((o) => o.box);
          if (boxes.length === 0) throw new InputError(`${xmlPath}: no object with <action>${className}</action>`);
        } catch (err) {
          const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'annotation file missing' : `malformed annotation: ${message(err)}`;
          issues.push({ path: xmlPath, reason, severity: 'skipped' });
          continue;
        }
        if (imageWhere === 'missing') {
          issues.push({ path: imagePath, reason: `image missing (listed in ${splitPath})`, severity: 'skipped' });
          continue;
        }
        seen.add(key);
        items.push({ key, path: imageWhere, label, split, boxes });
      }
    }
  }
  return { root, layout: 'stanford40', classes, items, issues };
}

async function scanFolders(root: string): Promise<ScannedDataset> {
  const classes = (await readdir(root, { withFileTypes: true }))
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
  if (classes.length === 0) throw new InputError(`${root}: no class folders (expected <class>/<image> or the Stanford 40 layout)`);
  const issues: ImportIssue[] = [];
  const items: ScannedItem[] = [];
  for (const [label, className] of classes.entries()) {
    const entries = (await readdir(join(root, className), { withFileTypes: true })).filter(
      (d) => (d.isFile() || d.isSymbolicLink()) && !d.name.startsWith('.'),
    );
    for (const name of entries.map((d) => d.name).sort()) {
      const path = join(root, className, name);
      if (!IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) {
        issues.push({ path, reason: `not an image file name (extension '${extname(name)}')`, severity: 'skipped' });
        continue;
      }
      const where = await insideRoot(root, path);
      if (where === 'outside' || where === 'missing') {
        const reason = where === 'outside' ? `a link leading outside the dataset folder ${root}` : 'a link to nothing';
        issues.push({ path, reason, severity: 'skipped' });
        continue;
      }
      // Keys carry the class so that equal file names in two folders stay distinct.
      items.push({ key: `${className}/${name.slice(0, -extname(name).length)}`, path: where, label, boxes: [] });
    }
  }
  return { root, layout: 'folders', classes, items, issues };
}
