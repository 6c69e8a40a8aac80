/**
 * The download cache for URL models.
 *
 * Layout: `<cacheDir>/<slug>-<hash of the URL>/` holds one model's files at their relative paths
 * (`model.json` and its shards, or `<name>.onnx`, plus `camstream.json` and a labels file when served),
 * and `complete.json`, the manifest that commits the entry.
 *
 * Why it is safe to crash or race:
 * - Each file is streamed to `<name>.part-<pid>-<random>` in its final folder and renamed over the final
 *   name only once every byte announced by Content-Length has arrived (rename is atomic on one filesystem).
 * - `complete.json` is written last, the same way. It lists every file with its byte size and sha256; an
 *   entry whose manifest is missing, unreadable, for another URL, or whose files no longer match it, is
 *   never used: it is downloaded again.
 * - Concurrent loaders of one URL each write their own temporary names; whichever rename lands last wins,
 *   and each loader re-hashes the final files against what it downloaded before it commits.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, posix } from 'node:path';


/** Default cache folder. Entry points map `CAMSTREAM_CACHE` to `LoadOptions.cacheDir`; this module never reads the environment. */
export const DEFAULT_CACHE_DIR = join(homedir(), '.cache', 'camstream');

/** Name of the manifest that commits a cache entry. */
export const MANIFEST_FILE = 'complete.json';

/** Marker in temporary download names: `<name>.part-<pid>-<random>`. */
const PART_MARKER = '.part-';

/** One file of a committed entry. */
export interface CachedFile {
  /** Relative path inside the entry, `/`-separated. */
  path: string;
  bytes: number;
  sha256: string;
}

/** The content of `complete.json`. */
export interface CacheManifest {
  version: 1;
  /** The URL the entry was fetched for (a hash collision or a copied folder is caught by comparing it). */
  url: string;
  format: 'tfjs' | 'onnx';
  /** Relative path of the model file: `model.json` or `<name>.onnx`. */
  main: string;
  files: CachedFile[];
  /** Optional files asked for and not served (404), so a cached load makes no request for them again. */
  absent: string[];
  /** ISO time of the commit, for people browsing the cache. */
  committedAt: string;
}

/** Folder of the cache entry for `url` (whether or not it exists yet). */
export function cacheEntryPath(cacheDir: string, url: string): string {
  const hash = createHash('sha256').update(url).digest('hex').slice(0, 32);
  // A readable prefix (host and last folder of the path) helps people find an entry to delete by hand.
  let slug = '';
  try {
    const u = new URL(url);
    const folder = u.pathname.split('/').filter(Boolean).slice(-2, -1)[0] ?? '';
    slug = `${u.hostname}_${folder}`.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 48);
  } catch {
    slug = 'model';
  }
  return join(cacheDir, `${slug}-${hash}`);
}

/**
 * Normalizes a relative path from a manifest or config, or returns undefined when it could leave the
 * entry folder or clash with the cache's own names.
 */
export function safeRelativePath(path: string): string | undefined {
  if (path === '' || path.includes('\0') || path.includes('\\') || path.startsWith('/') || /^[A-Za-z]:/.test(path)) {
    return undefined;
  }
  const norm = posix.normalize(path);
  if (norm === '.' || norm === '..' || norm.startsWith('../') || norm.endsWith('/')) return undefined;
  if (norm === MANIFEST_FILE || norm.split('/').some((seg) => seg.includes(PART_MARKER))) return undefined;
  return norm;
}

/** Byte size and sha256 of a file on disk. */
export async function hashFile(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

function isManifest(raw: unknown, url: string): raw is CacheManifest {
  if (typeof raw !== 'object' || raw === null) return false;
  const m = raw as Partial<CacheManifest>;
  return (
    m.version === 1 &&
    m.url === url &&
    (m.format === 'tfjs' || m.format === 'onnx') &&
    typeof m.main === 'string' &&
    Array.isArray(m.absent) &&
    m.absent.every((a) => typeof a === 'string') &&
    Array.isArray(m.files) &&
    m.files.every(
      (f) =>
        typeof f === 'object' &&
        f !== null &&
        typeof f.path === 'string' &&
        safeRelativePath(f.path) === f.path &&
        Number.isInteger(f.bytes) &&
        f.bytes >= 0 &&
        typeof f.sha256 === 'string' &&
        /^[0-9a-f]{64}$/.test(f.sha256),
    ) &&
    m.files.some((f) => f.path === m.main)
  );
}

/**
 * Reads and verifies a committed entry: the manifest must be for `url` and every listed file must have
 * the listed size and sha256. Returns undefined when there is no usable entry (never throws for a
 * damaged one: damage means "download again").
 */
export async function readCommittedEntry(entryDir: string, url: string): Promise<CacheManifest | undefined> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(join(entryDir, MANIFEST_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  if (!isManifest(raw, url)) return undefined;
  for (const file of raw.files) {
    const path = join(entryDir, file.path);
    try {
      // Size first: a truncated file is the common damage and costs no hashing to detect.
      if ((await stat(path)).size !== file.bytes) return undefined;
      const actual = await hashFile(path);
      if (actual.bytes !== file.bytes || actual.sha256 !== file.sha256) return undefined;
    } catch {
      return undefined;
    }
  }
  return raw;
}

/** Writes `complete.json` atomically (temporary name, then rename): the entry is committed from then on. */
export async function commitEntry(entryDir: string, manifest: CacheManifest): Promise<void> {
  await writeAtomically(join(entryDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
}

/** Withdraws an entry's commit so that nobody uses it while it is being downloaded again. */
export async function uncommitEntry(entryDir: string): Promise<void> {
  await rm(join(entryDir, MANIFEST_FILE), { force: true });
}

/**
 * Re-hashes the final files of a download against what this loader streamed. False means another loader
 * renamed different bytes over ours (the remote changed between two concurrent downloads), or removed one.
 */
export async function verifyFiles(entryDir: string, files: readonly CachedFile[]): Promise<boolean> {
  for (const file of files) {
    try {
      const actual = await hashFile(join(entryDir, file.path));
      if (actual.bytes !== file.bytes || actual.sha256 !== file.sha256) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** True while a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary files left by loaders that died mid-download (their pid is gone). Files of live
 * loaders, this one included, are left alone: they may still be renamed into place.
 */
export async function removeStaleParts(entryDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(entryDir, { recursive: true });
  } catch {
    return;
  }
  for (const name of names) {
    const m = /\.part-(\d+)-[0-9a-f]+$/.exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && !pidAlive(pid)) await rm(join(entryDir, name), { force: true });
  }
}

/** A temporary name beside `path` for this process: `<path>.part-<pid>-<random>`. */
export function tempName(path: string): string {
  return `${path}${PART_MARKER}${process.pid}-${randomBytes(6).toString('hex')}`;
}

function writeAtomically(path: string, content: string): Promise<void> {
  return writeFileVia(tempName(path), path, content);
}

/**
 * Writes `content` to `temp` (which must not exist yet), then renames it to `path`; on any failure the
 * temporary file is removed, so `path` is either the old file or the whole new one.
 */
export async function writeFileVia(temp: string, path: string, content: string | Uint8Array): Promise<void> {
  try {
    await writeFile(temp, content, { flag: 'wx' });
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/**
 * Removes what a failed download wrote into an entry that is still uncommitted: the files at `written`
 * (relative paths), then the folders they leave empty, the entry folder included. Files of other loaders
 * (their part files) are left alone, and so is the folder holding them.
 */
export async function discardDownload(entryDir: string, written: readonly string[]): Promise<void> {
  const folders = new Set<string>([entryDir]);
  for (const relative of written) {
    await rm(join(entryDir, relative), { force: true });
    for (let d = dirname(join(entryDir, relative)); d.length > entryDir.length; d = dirname(d)) folders.add(d);
  }
  // Deepest first; rmdir fails on a folder that is not empty, which is what keeps others' files.
  for (const folder of [...folders].sort((a, b) => b.length - a.length)) await rmdir(folder).catch(() => undefined);
}
