/**
 * Small readers of model files both kinds of spec (local and URL) share: the weight files a model.json
 * lists, and tolerant file checks.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';

import { ModelLoadError } from '../../common/errors.ts';
import { safeRelativePath } from './cache.ts';

/** The file a TF.js model folder is opened by. */
export const TFJS_MODEL_FILE = 'model.json';

/** Weight file paths listed by a model.json (layers or graph), after checking they stay in the folder. */
export function weightPaths(text: string, where: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new ModelLoadError(`${where}: not a valid model.json (${(err as Error).message})`);
  }
  const m = json as { modelTopology?: unknown; weightsManifest?: unknown };
  if (typeof m !== 'object' || m === null || typeof m.modelTopology !== 'object' || m.modelTopology === null) {
    throw new ModelLoadError(`${where}: not a TF.js model.json (no modelTopology object)`);
  }
  if (!Array.isArray(m.weightsManifest)) {
    throw new ModelLoadError(`${where}: not a TF.js model.json (no weightsManifest array)`);
  }
  const paths: string[] = [];
  for (const group of m.weightsManifest as Array<{ paths?: unknown }>) {
    if (!Array.isArray(group?.paths) || !group.paths.every((p) => typeof p === 'string')) {
      throw new ModelLoadError(`${where}: a weightsManifest group has no list of paths`);
    }
    for (const p of group.paths as string[]) {
      const safe = safeRelativePath(p);
      if (safe === undefined) {
        throw new ModelLoadError(`${where}: weight path '${p}' is not a relative path inside the model folder`);
      }
      if (!paths.includes(safe)) paths.push(safe);
    }
  }
  return paths;
}

/** Up to ten names, then how many more (for messages). */
export function listNames(names: readonly string[]): string {
  if (names.length === 0) return 'an empty folder';
  const shown = names.slice(0, 10).join(', ');
  return names.length > 10 ? `${shown} and ${names.length - 10} more` : shown;
}

/** Whether `path` is a regular file (false when missing or unreadable). */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The text of `path`, undefined when it does not exist. Other failures: ModelLoadError. */
export async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelLoadError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Whether `path` (absolute, normalized) lies below `root`. */
function isBelow(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel);
}

/**
 * Where `name` (relative to `root`, or absolute) really is, when it stays inside `root`: checked on the
 * path as written first (so a path outside is refused without touching it), then on the real path with
 * every symlink followed (so a link inside pointing out is refused too). Returns the real path, null when
 * the file does not exist, or `'outside'`.
 */
export async function confinedPath(root: string, name: string): Promise<string | null | 'outside'> {
  const candidate = resolve(root, name);
  if (!isBelow(root, candidate)) return 'outside';
  let real: string;
  try {
    real = await realpath(candidate);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new ModelLoadError(`cannot read ${candidate}: ${(err as Error).message}`, { cause: err });
  }
  return isBelow(await realpath(root), real) ? real : 'outside';
}
