/**
 * A model loaded without labels whose folder holds exactly one `*.txt` with one line per class (issue 16,
 * item 13): camstream does not take it as the labels, but warns naming the file and how to use it. A real
 * (small, random-weight) TF.js layers model written to a real folder, loaded through `load`.
 */
import { once } from 'node:events';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '@tensorflow/tfjs-backend-cpu';
import { smallGapDenseNet, writeLayersModel } from '../../../lab/builders/index.ts';
import { findLabelsCandidate, load, resolveSource, unusedLabelsWarning } from '../../../models/load/index.ts';

const CLASSES = 4;
let root: string;

/** A fresh model folder with the given extra files. */
async function modelFolder(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(root, name);
  await writeLayersModel(smallGapDenseNet(3, { inputSize: [16, 16], numClasses: CLASSES, width: 4 }), dir);
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
  return dir;
}

/** Loads `dir` and returns the labels warning it would give (the model is disposed). */
async function warningFor(dir: string): Promise<string | undefined> {
  const source = await resolveSource(dir);
  const model = await load(dir, { backend: 'cpu' });
  try {
    return unusedLabelsWarning(source, model);
  } finally {
    await model.dispose();
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'camstream-labels-hint-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('a model folder with one text file of one line per class and no labels configured', () => {
  it('warns (as a process warning) naming the file, --labels and labels.txt, and still labels classes class_<i>', async () => {
    const dir = await modelFolder('one-txt', { 'synset_words.txt': 'cat\ndog\nfox\nowl\n' });
    const warned = once(process, 'warning') as Promise<[Error & { code?: string }]>;
    const model = await load(dir, { backend: 'cpu' });
    try {
      const [warning] = await warned;
      expect(warning.code).toBe('CAMSTREAM_LABELS_NOT_CONFIGURED');
      expect(warning.message).toContain(`${dir} has no labels configured`);
      expect(warning.message).toContain(`${join(dir, 'synset_words.txt')} has one line per class (4)`);
      expect(warning.message).toContain(`pass --labels ${join(dir, 'synset_words.txt')} or rename it labels.txt`);
      expect(warning.message).toContain('class_0..class_3');
      // Not guessed: the labels stay the generic ones.
      expect(model.info.labels).toEqual(['class_0', 'class_1', 'class_2', 'class_3']);
    } finally {
      await model.dispose();
    }
  }, 60_000);

  it('counts the lines as the labels reader does (BOM, CRLF, trailing blank lines)', async () => {
    const dir = await modelFolder('crlf', { 'names.TXT': '\uFEFFa\r\nb\r\nc\r\nd\r\n\r\n' });
    expect(await findLabelsCandidate(dir)).toEqual({ path: join(dir, 'names.TXT'), lines: 4 });
  });
});

describe('no labels warning', () => {
  it('when the only text file has another number of lines than the model has classes', async () => {
    const dir = await modelFolder('wrong-count', { 'notes.txt': 'trained on 2024-01-01\nlr 0.01\nbatch 32\n' });
    expect(await findLabelsCandidate(dir)).toEqual({ path: join(dir, 'notes.txt'), lines: 3 });
    expect(await warningFor(dir)).toBeUndefined();
  }, 60_000);

  it('when the folder holds two text files (which one would be the labels is not said)', async () => {
    const dir = await modelFolder('two-txt', { 'names.txt': 'a\nb\nc\nd\n', 'wnids.txt': 'n1\nn2\nn3\nn4\n' });
    expect(await findLabelsCandidate(dir)).toBeUndefined();
    expect(await warningFor(dir)).toBeUndefined();
  }, 60_000);

  it('when labels are configured: labels.txt is read, or --labels names the file', async () => {
    const withLabelsTxt = await modelFolder('labels-txt', { 'labels.txt': 'a\nb\nc\nd\n' });
    const source = await resolveSource(withLabelsTxt);
    expect(source.labels).toEqual(['a', 'b', 'c', 'd']);
    expect(source.labelsCandidate).toBeUndefined();
    const named = await modelFolder('named', { 'classes.txt': 'a\nb\nc\nd\n' });
    const configured = await resolveSource(named, { config: { labels: 'classes.txt' } });
    expect(configured.labels).toEqual(['a', 'b', 'c', 'd']);
    expect(configured.labelsCandidate).toBeUndefined();
  });

  it('when the only text file is a link leading outside the model folder', async () => {
    const outside = join(root, 'outside.txt');
    await writeFile(outside, 'a\nb\nc\nd\n');
    const dir = await modelFolder('link-out', {});
    await symlink(outside, join(dir, 'classes.txt'));
    expect(await findLabelsCandidate(dir)).toBeUndefined();
    expect(await warningFor(dir)).toBeUndefined();
  }, 60_000);
});
