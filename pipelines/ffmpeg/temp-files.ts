/**
 * camstream's temporary output names: `<target>.tmp-<pid>-<8 hex>[<ext>]` beside the target, renamed onto
 * it on success. The pid names the owner, so a later run can tell the leftovers of a killed run (owner
 * dead) from the files of a run still going, and remove only the former.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pidAlive } from '../../models/index.ts';

/** A fresh temporary name for `target`, owned by this process; `ext` keeps the muxer's extension. */
export function tempPathFor(target: string, ext = ''): string {
  return `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}${ext}`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Deletes the temporary files of `target` whose owner pid is dead (a run killed with SIGKILL). Touches
 * nothing else: only names of the form above, beside `target`. Returns the paths removed.
 */
export function removeStaleTemps(target: string): string[] {
  const dir = dirname(target);
  const re = new RegExp(`^${escapeRegExp(basename(target))}\\.tmp-(\\d+)-[0-9a-f]{8}(\\.[A-Za-z0-9]+)?$`);
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = re.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(join(dir, name));
  }
  return removed;
}
