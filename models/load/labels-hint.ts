/**
 * A model run without labels whose folder holds one text file that looks like them (one line per class,
 * `imagenet_classes.txt`, `synset.txt`...): camstream does not guess that it is the labels file, but says
 * so, naming the file and how to use it, instead of silently printing `class_<i>`.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CamModel, ResolvedSource } from '../types.ts';
import { parseLabels } from './config.ts';
import { confinedPath, readIfPresent } from './model-files.ts';

/** Larger text files are not read (a labels file of 100 000 classes is well under this). */
const MAX_HINT_BYTES = 4 * 1024 * 1024;

/** The single `*.txt` of a local model folder and its number of non-empty lines. */
export interface LabelsCandidate {
  path: string;
  lines: number;
}

/**
 * The one `*.txt` file in `modelDir` (inside it once symlinks are followed, at most 4 MiB), with its line
 * count as `parseLabels` reads it; undefined when there are none or several, or it cannot be read.
 */
export async function findLabelsCandidate(modelDir: string): Promise<LabelsCandidate | undefined> {
  let names: string[];
  try {
    names = (await readdir(modelDir)).filter((n) => n.toLowerCase().endsWith('.txt'));
  } catch {
    return undefined;
  }
  if (names.length !== 1) return undefined;
  const path = join(modelDir, names[0]);
  try {
    const real = await confinedPath(modelDir, names[0]);
    if (real === null || real === 'outside') return undefined;
    const info = await stat(real);
    if (!info.isFile() || info.size > MAX_HINT_BYTES) return undefined;
    const text = await readIfPresent(real);
    return text === undefined ? undefined : { path, lines: parseLabels(text).filter((l) => l !== '').length };
  } catch {
    return undefined;
  }
}

/** Models already warned about (once per model file per process). */
const warned = new Set<string>();

/**
 * The warning for a model that loaded without labels, or undefined when it has labels or its folder holds
 * no text file with exactly one line per class.
 */
export function unusedLabelsWarning(source: ResolvedSource, model: CamModel): string | undefined {
  const candidate = source.labelsCandidate;
  if (source.labels !== undefined || candidate === undefined || candidate.lines !== model.info.numClasses) return undefined;
  const n = model.info.numClasses;
  return (
    `camstream: ${source.original} has no labels configured (no --labels, no "labels" in camstream.json, no labels.txt), ` +
    `so classes show as class_0..class_${n - 1}; ${candidate.path} has one line per class (${n}): ` +
    `if those are the class names, pass --labels ${candidate.path} or rename it labels.txt`
  );
}

/** Emits `unusedLabelsWarning` as a process warning (stderr), once per model. */
export function warnUnusedLabels(source: ResolvedSource, model: CamModel): void {
  const message = unusedLabelsWarning(source, model);
  if (message === undefined || warned.has(source.path)) return;
  warned.add(source.path);
  process.emitWarning(message, { code: 'CAMSTREAM_LABELS_NOT_CONFIGURED' });
}
