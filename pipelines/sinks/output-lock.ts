/**
 * One writer per output: `lockOutput` creates `<out>.camstream-lock` exclusively (`O_EXCL`) with the
 * owner's pid in it. A second run for the same output finds the lock and fails while its owner lives; a
 * lock whose owner is dead (a run killed with SIGKILL) is stale and taken over. With the lock held, the
 * stale temporary files of dead runs beside the outputs are removed.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { ConfigError } from '../../models/index.ts';
import { pidAlive } from '../../models/index.ts';
import { removeStaleTemps } from '../ffmpeg/index.ts';

/** A held lock; `release()` removes the lock file (once, and only while it is still this process's). */
export interface OutputLock {
  readonly path: string;
  release(): void;
}

/** The lock file of `out`. */
export function lockPathFor(out: string): string {
  return `${out}.camstream-lock`;
}

function ownerOf(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function tryCreate(path: string): boolean {
  try {
    const fd = openSync(path, 'wx');
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * Takes the lock of `out` (ConfigError naming the output and the owner's pid when another live run holds
 * it), then deletes stale temporary files of `out` and of `others` (the JSONL and manifest paths).
 */
export function lockOutput(out: string, others: ReadonlyArray<string | undefined> = []): OutputLock {
  const path = lockPathFor(out);
  // Two tries: the second after removing a stale lock. A lock that reappears in between is a live run's.
  for (let attempt = 0; attempt < 2; attempt++) {
    if (tryCreate(path)) {
      for (const target of [out, ...others]) if (target !== undefined) removeStaleTemps(target);
      let held = true;
      return {
        path,
        release() {
          if (!held) return;
          held = false;
          if (ownerOf(path) === process.pid) rmSync(path, { force: true });
        },
      };
    }
    const owner = ownerOf(path);
    if (owner !== undefined && owner !== process.pid && pidAlive(owner)) {
      throw new ConfigError(`output ${JSON.stringify(out)} is being written by another camstream run (pid ${owner}, lock ${path})`);
    }
    if (owner === process.pid) throw new ConfigError(`output ${JSON.stringify(out)} is already being written by this process`);
    // The owner is dead (or the file holds no pid): a stale lock.
    rmSync(path, { force: true });
  }
  throw new ConfigError(`output ${JSON.stringify(out)}: could not take its lock ${path}`);
}
