/**
 * Server-side file sources are confined to the media root: a viewer names a path relative to it, which is
 * resolved, checked to stay inside, then resolved again through symlinks (realpath) and checked again, so
 * neither `../` nor a symlink pointing out of the root reaches another file.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

/** Why a path was refused: `forbidden-path` (outside the root) or `not-found` (no such regular file). */
export class MediaPathError extends Error {
  readonly code: 'forbidden-path' | 'not-found';
  constructor(code: 'forbidden-path' | 'not-found', message: string) {
    super(message);
    this.name = 'MediaPathError';
    this.code = code;
  }
}

/** True when `path` lies under `root`. Judged by whole segments: `....` and `..x` are names, only `..` climbs. */
function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !isAbsolute(rel) && !rel.split(sep).includes('..');
}

/**
 * The real path of `requested` (relative to `root`) when it is a regular file inside the root. Throws
 * MediaPathError otherwise. `root` should itself be a real path (`realpath` it once at start-up).
 */
export async function confineMediaPath(root: string, requested: string): Promise<string> {
  if (requested.includes('\0')) throw new MediaPathError('forbidden-path', 'media path contains a NUL byte');
  if (isAbsolute(requested)) throw new MediaPathError('forbidden-path', `media path '${requested}' must be relative to the media root`);
  if (requested.split(/[\\/]/).includes('..')) throw new MediaPathError('forbidden-path', `media path '${requested}' must not contain '..'`);
  const candidate = resolve(root, requested);
  if (!inside(root, candidate)) throw new MediaPathError('forbidden-path', `media path '${requested}' is outside the media root`);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    throw new MediaPathError('not-found', `media file '${requested}' does not exist`);
  }
  if (!inside(root, real)) throw new MediaPathError('forbidden-path', `media path '${requested}' leads outside the media root (symlink)`);
  const st = await stat(real);
  if (!st.isFile()) throw new MediaPathError('not-found', `media path '${requested}' is not a regular file`);
  return real;
}

/** Extensions listed to viewers as selectable videos. */
export const MEDIA_EXTENSIONS: readonly string[] = Object.freeze(['.mp4', '.m4v', '.mov', '.mkv', '.webm', '.avi', '.mpg', '.mpeg', '.ts', '.y4m', '.gif']);

/** Video files under `root` (relative paths, sorted), at most `limit` of them, `depth` folders deep. */
export async function listMedia(root: string, limit = 500, depth = 4): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, level: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (found.length >= limit || e.name.startsWith('.')) continue;
      const path = join(dir, e.name);
      // Symlinks are not followed here; selecting one still goes through confineMediaPath.
      if (e.isDirectory() && level < depth) await walk(path, level + 1);
      else if (e.isFile() && MEDIA_EXTENSIONS.some((x) => e.name.toLowerCase().endsWith(x))) found.push(relative(root, path).split(sep).join('/'));
    }
  };
  await walk(root, 0);
  return found;
}
