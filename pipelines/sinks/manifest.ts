/**
 * Small files written atomically: a temporary name beside the target (named with the writer's pid, so a
 * later run can clean up after a killed one), then a rename. A failed write never leaves a complete-looking
 * file.
 */
import { writeFileVia } from '../../models/index.ts';
import { tempPathFor } from '../ffmpeg/index.ts';

/** Writes `content` to `path` through a temporary file in the same folder, renamed on success. */
export function writeFileAtomic(path: string, content: string | Uint8Array): Promise<void> {
  return writeFileVia(tempPathFor(path), path, content);
}

/** Writes `value` as indented JSON to `path`, atomically (see `writeFileAtomic`). */
export function writeJsonFile(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}
