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
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, posix } from 'node:path';

import { ModelLoadError } from '../../common/errors.ts';
import type { LoadOptions } from '../types.ts';

/** Default cache folder. Entry points map `CAMSTREAM_CACHE` to `LoadOptions.cacheDir`; this module never reads the environment. */
export const DEFAULT_CACHE_DIR = join(homedir(), '.cache', 'camstream');

/** Default for `DownloadOptions.timeoutMs`: 30 s without a byte aborts a download. */
export const DEFAULT_DOWNLOAD_TIMEOUT_MS = 30_000;

/** Name of the manifest that commits a cache entry. */
export const MANIFEST_FILE = 'complete.json';

/** Marker in temporary download names: `<name>.part-<pid>-<random>`. */
const PART_MARKER = '.part-';

/** Status codes that mean "this optional file is not there". S3-style buckets answer 403 for a missing key. */
const ABSENT_STATUS = new Set([403, 404, 410]);

/** Download tuning beyond `LoadOptions` (kept here so the core contract stays small). */
export interface DownloadOptions {
  /**
   * Milliseconds without any progress (no response headers, or no body bytes) after which a download is
   * aborted with a ModelLoadError. An idle timeout, not a total one, so large models on slow links still
   * load. Default `DEFAULT_DOWNLOAD_TIMEOUT_MS` (30 000).
   */
  timeoutMs?: number;
}

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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
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
    if (pid !== process.pid && !isAlive(pid)) await rm(join(entryDir, name), { force: true });
  }
}

function tempName(path: string): string {
  return `${path}${PART_MARKER}${process.pid}-${randomBytes(6).toString('hex')}`;
}

async function writeAtomically(path: string, content: string): Promise<void> {
  const temp = tempName(path);
  try {
    await writeFile(temp, content, { flag: 'wx' });
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** What `downloadFile` needs: the progress callback and the idle timeout. */
export type DownloadFileOptions = Pick<LoadOptions, 'onProgress'> &
  DownloadOptions & {
    /** When set, a 403/404/410 answer means "not there" and resolves to null instead of throwing. */
    optional?: boolean;
  };

function describeFetchError(err: unknown): string {
  const e = err as Error & { cause?: unknown };
  const cause = e.cause as (Error & { code?: string }) | undefined;
  const parts = [e.message];
  if (cause !== undefined && cause !== null) {
    const text = String(cause.message ?? cause);
    parts.push(cause.code !== undefined && !text.includes(cause.code) ? `${cause.code} ${text}` : text);
  }
  return parts.filter(Boolean).join(': ');
}

/** An abort signal that fires after `timeoutMs` without progress; each `arm()` restarts the count. */
interface IdleWatch {
  readonly signal: AbortSignal;
  /** Whether the watch fired (the abort was a timeout, not something else). */
  readonly timedOut: boolean;
  arm(): void;
  stop(): void;
}

function watchIdle(timeoutMs: number): IdleWatch {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const watch = {
    signal: controller.signal,
    timedOut: false,
    arm(): void {
      clearTimeout(timer);
      timer = setTimeout(() => {
        watch.timedOut = true;
        controller.abort();
      }, timeoutMs);
    },
    stop(): void {
      clearTimeout(timer);
    },
  };
  return watch;
}

/** Content-Length when it counts the bytes stored (no content encoding), else undefined. */
function storedLength(res: Response): number | undefined {
  const encoding = res.headers.get('content-encoding');
  const lengthHeader = res.headers.get('content-length');
  return lengthHeader !== null && /^\d+$/.test(lengthHeader) && (encoding === null || encoding === 'identity')
    ? Number(lengthHeader)
    : undefined;
}

/** What `writeBody` needs to know about the download it belongs to. */
interface BodyContext {
  url: string;
  total: number | undefined;
  watch: IdleWatch;
  onProgress: DownloadFileOptions['onProgress'];
  /** The error to report for `err`, cut after `progress` (" after 1500 of 4096 bytes"). */
  failure: (err: unknown, progress?: string) => ModelLoadError;
}

/**
 * Streams the response body into the file `temp`, synced to disk before returning. Returns the byte count
 * and the sha256. Throws ModelLoadError for a body longer or shorter than `total`, or a cut connection.
 */
async function writeBody(res: Response, temp: string, ctx: BodyContext): Promise<{ bytes: number; sha256: string }> {
  const { url, total } = ctx;
  const hash = createHash('sha256');
  let loaded = 0;
  const file = await open(temp, 'wx');
  try {
    ctx.onProgress?.({ url, loaded, total });
    if (res.body !== null) {
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value: chunk } = await reader.read();
          if (done) break;
          ctx.watch.arm();
          loaded += chunk.byteLength;
          if (total !== undefined && loaded > total) {
            throw new ModelLoadError(`download of ${url} sent more than its Content-Length of ${total} bytes`);
          }
          hash.update(chunk);
          await file.write(chunk);
          ctx.onProgress?.({ url, loaded, total });
        }
      } catch (err) {
        // Release the connection; the error we report is the first one.
        await reader.cancel().catch(() => undefined);
        throw ctx.failure(err, ` after ${loaded}${total === undefined ? '' : ` of ${total}`} bytes`);
      }
    }
    if (total !== undefined && loaded !== total) {
      throw new ModelLoadError(`download of ${url} ended after ${loaded} of ${total} bytes (connection closed early)`);
    }
    // Data on disk before the rename makes it visible: a crash cannot leave a complete-looking short file.
    await file.datasync();
  } finally {
    await file.close();
  }
  return { bytes: loaded, sha256: hash.digest('hex') };
}

/**
 * Downloads `url` to `target` atomically: the bytes go to a temporary name beside it, renamed over `target`
 * only when complete. Redirects are followed. `onProgress` is called with 0 once the response headers
 * arrive and after every chunk (loaded is non-decreasing and ends at total when the total is known).
 * Returns the size and sha256 of what was written, or null for an optional file that is not served.
 * @throws ModelLoadError naming the URL: non-2xx status, network error, idle timeout, or a body shorter or
 *   longer than its Content-Length (the partial file is removed).
 */
export async function downloadFile(
  url: string,
  target: string,
  options: DownloadFileOptions = {},
): Promise<{ bytes: number; sha256: string } | null> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
  const watch = watchIdle(timeoutMs);
  /** `progress` is set once the body started: "after 1500 of 4096 bytes" says where a cut happened. */
  const failure = (err: unknown, progress = ''): ModelLoadError =>
    err instanceof ModelLoadError
      ? err
      : watch.timedOut
        ? new ModelLoadError(`download of ${url} timed out${progress}: no data for ${timeoutMs} ms`, { cause: err })
        : new ModelLoadError(`download of ${url} failed${progress}: ${describeFetchError(err)}`, { cause: err });

  watch.arm();
  let temp: string | undefined;
  try {
    let res: Response;
    try {
      // identity: Content-Length then counts the bytes we store, which is what makes a cut body detectable.
      res = await fetch(url, { redirect: 'follow', signal: watch.signal, headers: { 'accept-encoding': 'identity' } });
    } catch (err) {
      throw failure(err);
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      if (options.optional === true && ABSENT_STATUS.has(res.status)) return null;
      throw new ModelLoadError(`download of ${url} failed: HTTP ${res.status} ${res.statusText}`.trimEnd());
    }
    const total = storedLength(res);
    await mkdir(dirname(target), { recursive: true });
    temp = tempName(target);
    const written = await writeBody(res, temp, { url, total, watch, onProgress: options.onProgress, failure });
    await rename(temp, target);
    temp = undefined;
    return written;
  } finally {
    watch.stop();
    if (temp !== undefined) await rm(temp, { force: true });
  }
}
