/**
 * Job data is untrusted: a submitter on another machine names the files. A worker only reads inputs under
 * its `--input-root` and only writes under its `--out-root`. A name is resolved against the root, checked
 * to stay inside, then resolved through symlinks (realpath) and checked again, so neither `..` nor a symlink
 * pointing out of the root reaches another file. Absolute names are accepted when they lie inside the root
 * (shared storage mounted at the same place on every machine).
 */
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { InputError } from '../../models/index.ts';

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && !rel.split(sep).includes('..'));
}

function checkName(what: string, requested: unknown): string {
  if (typeof requested !== 'string' || requested.length === 0) throw new InputError(`${what} must be a path, got ${JSON.stringify(requested)}`);
  if (requested.includes('\0')) throw new InputError(`${what} ${JSON.stringify(requested)} contains a NUL byte`);
  if (requested.split(/[\\/]/).includes('..')) throw new InputError(`${what} '${requested}' must not contain '..'`);
  return requested;
}

/**
 * The real path of `requested` when it names something of `kind` inside `root` (a real path itself: realpath
 * it once at start-up). Throws InputError naming the path when it is outside the root or missing.
 */
export async function confineJobPath(root: string, requested: unknown, kind: 'file' | 'dir', what: string): Promise<string> {
  const name = checkName(what, requested);
  const candidate = resolve(root, name);
  if (!inside(root, candidate)) throw new InputError(`${what} '${name}' is outside the worker's root ${root}`);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    throw new InputError(`${what} '${name}' does not exist under ${root}`);
  }
  if (!inside(root, real)) throw new InputError(`${what} '${name}' leads outside the worker's root ${root} (symlink)`);
  const st = await stat(real);
  if (kind === 'file' ? !st.isFile() : !st.isDirectory()) throw new InputError(`${what} '${name}' is not a ${kind === 'file' ? 'regular file' : 'folder'}`);
  return real;
}
