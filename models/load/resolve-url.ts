/**
 * URL specs: the model and the files beside it go through the download cache (cache.ts) into a committed
 * entry, so an engine never sees the network.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';

import { CamstreamError, ConfigError, ModelLoadError } from '../../common/errors.ts';
import type { ModelFileConfig, ResolvedSource } from '../types.ts';
import {
  type CacheManifest,
  DEFAULT_CACHE_DIR,
  cacheEntryPath,
  commitEntry,
  discardDownload,
  readCommittedEntry,
  removeStaleParts,
  safeRelativePath,
  uncommitEntry,
  verifyFiles,
} from './cache.ts';
import { DEFAULT_DOWNLOAD_DEADLINE_MS, type Deadline, downloadFile } from './download.ts';
import { DEFAULT_LABELS_FILE, MODEL_CONFIG_FILE, mergeModelFileConfig, parseLabels, parseModelFileConfigText } from './config.ts';
import { TFJS_MODEL_FILE, readIfPresent, weightPaths } from './model-files.ts';
import type { ResolveOptions } from './resolve.ts';

/**
 * URL of a file beside the model. Relative to the model URL and carrying its query string when the file
 * has none, as TF.js's own HTTP loader does (signed or versioned URLs keep working).
 */
function siblingUrl(modelUrl: string, relative: string): string {
  const base = new URL(modelUrl);
  const u = new URL(relative, base);
  if (u.search === '') u.search = base.search;
  return u.href;
}

/** A file name for a downloaded .onnx model: the URL's last segment, made safe for any filesystem. */
function onnxFileName(url: URL): string {
  let last = url.pathname.split('/').pop() ?? '';
  try {
    last = decodeURIComponent(last);
  } catch {
    // Keep the raw segment; it is sanitized below.
  }
  const safe = last.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '');
  return /\.onnx$/i.test(safe) && safe.length > '.onnx'.length ? safe : 'model.onnx';
}

/** One resolution's downloads: the model-wide deadline, and what was written (to discard it on failure). */
interface DownloadJob {
  deadline: Deadline;
  /** Relative paths of the files this resolution renamed into the entry. */
  written: string[];
}

/** Resolves an http(s) model URL through the cache entry for it (see `resolveSource`). */
export async function resolveUrl(
  spec: string,
  url: URL,
  overrides: Readonly<ModelFileConfig>,
  options: ResolveOptions,
): Promise<ResolvedSource> {
  const modelUrl = new URL(url);
  modelUrl.hash = '';
  if (modelUrl.pathname.endsWith('/')) modelUrl.pathname += TFJS_MODEL_FILE;
  const href = modelUrl.href;
  const format = /\.onnx$/i.test(modelUrl.pathname) ? 'onnx' : 'tfjs';
  const main = format === 'onnx' ? onnxFileName(modelUrl) : TFJS_MODEL_FILE;
  const entryDir = cacheEntryPath(options.cacheDir ?? DEFAULT_CACHE_DIR, href);
  const deadlineMs = options.deadlineMs ?? DEFAULT_DOWNLOAD_DEADLINE_MS;
  if (!(Number.isFinite(deadlineMs) && deadlineMs > 0)) {
    throw new ConfigError(`deadlineMs: invalid value ${String(deadlineMs)}; allowed: a number of milliseconds > 0`);
  }
  const job: DownloadJob = { deadline: { at: Date.now() + deadlineMs, totalMs: deadlineMs }, written: [] };
  try {
    return await resolveCached(spec, href, format, main, entryDir, overrides, options, job);
  } catch (err) {
    // A failed download leaves nothing behind, unless another loader committed the entry meanwhile.
    if (job.written.length > 0 && (await readCommittedEntry(entryDir, href).catch(() => undefined)) === undefined) {
      await discardDownload(entryDir, job.written).catch(() => undefined);
    }
    if (err instanceof CamstreamError) throw err;
    // Filesystem trouble (read-only or full cache folder) rather than a bad model.
    throw new ModelLoadError(`model cache ${entryDir} for ${href}: ${(err as Error).message}`, { cause: err });
  }
}

async function resolveCached(
  spec: string,
  href: string,
  format: 'tfjs' | 'onnx',
  main: string,
  entryDir: string,
  overrides: Readonly<ModelFileConfig>,
  options: ResolveOptions,
  job: DownloadJob,
): Promise<ResolvedSource> {
  // Two attempts: the second only when another loader renamed different bytes over ours mid-download.
  for (let attempt = 1; ; attempt++) {
    const committed = await readCommittedEntry(entryDir, href);
    const usable = committed !== undefined && committed.format === format && committed.main === main;
    const manifest = usable ? committed : await downloadModelFiles(entryDir, href, format, main, options, job);
    let dirty = !usable;

    const configFile = manifest.files.find((f) => f.path === MODEL_CONFIG_FILE);
    const fileConfig = mergeModelFileConfig(
      configFile === undefined
        ? {}
        : parseModelFileConfigText(
            await readFile(join(entryDir, MODEL_CONFIG_FILE), 'utf8'),
            `${MODEL_CONFIG_FILE} at ${siblingUrl(href, MODEL_CONFIG_FILE)}`,
          ),
      overrides,
    );

    const labels = overrides.labels === undefined ? { configured: fileConfig.labels, byOperator: false } : { configured: overrides.labels, byOperator: true };
    const labelsResult = await urlLabels(entryDir, href, manifest, labels, options, job);
    dirty ||= labelsResult.added;

    if (dirty) {
      if (!(await verifyFiles(entryDir, manifest.files))) {
        if (attempt < 2) continue;
        throw new ModelLoadError(
          `cache entry ${entryDir} for ${href} kept changing while it was written ` +
            '(concurrent downloads of different versions?); try again',
        );
      }
      await commitEntry(entryDir, { ...manifest, committedAt: new Date().toISOString() });
    }

    return {
      format,
      path: format === 'tfjs' ? entryDir : join(entryDir, main),
      original: spec,
      fileConfig,
      ...(labelsResult.labels === undefined ? {} : { labels: labelsResult.labels }),
    };
  }
}

/**
 * Downloads the model file, `camstream.json` (optional) and, for TF.js, every shard, into the entry folder.
 * The config is fetched and validated before the shards, so a bad config fails before the large download.
 * Returns the uncommitted manifest.
 */
async function downloadModelFiles(
  entryDir: string,
  href: string,
  format: 'tfjs' | 'onnx',
  main: string,
  options: ResolveOptions,
  job: DownloadJob,
): Promise<CacheManifest> {
  // Whatever was committed is damaged or stale: withdraw it before its files are rewritten.
  await uncommitEntry(entryDir);
  await removeStaleParts(entryDir);
  const manifest: CacheManifest = { version: 1, url: href, format, main, files: [], absent: [], committedAt: '' };
  const fetchInto = async (relative: string, optional: boolean): Promise<boolean> => {
    const fileUrl = relative === main ? href : siblingUrl(href, relative);
    const result = await downloadFile(fileUrl, join(entryDir, relative), {
      optional,
      onProgress: options.onProgress,
      timeoutMs: options.timeoutMs,
      deadline: job.deadline,
    });
    if (result === null) {
      manifest.absent.push(relative);
      return false;
    }
    job.written.push(relative);
    manifest.files.push({ path: relative, ...result });
    return true;
  };

  await fetchInto(main, false);
  const shards = format === 'tfjs' ? weightPaths(await readFile(join(entryDir, main), 'utf8'), href) : [];
  if (await fetchInto(MODEL_CONFIG_FILE, true)) {
    parseModelFileConfigText(
      await readFile(join(entryDir, MODEL_CONFIG_FILE), 'utf8'),
      `${MODEL_CONFIG_FILE} at ${siblingUrl(href, MODEL_CONFIG_FILE)}`,
    );
  }
  // One file at a time: progress then reads as one file filling up after another, and keep-alive makes
  // each further request cheap.
  for (const shard of shards) {
    if (shard === MODEL_CONFIG_FILE || shard === main) continue;
    await fetchInto(shard, false);
  }
  return manifest;
}

/**
 * Labels of a URL model: the configured file, else `labels.txt` beside the model when served. A file named
 * in the served camstream.json is a path relative to the model URL that stays beside it: an absolute path
 * or `..` is refused before anything is read, so a remote model cannot make camstream read local files.
 * Only the operator (`LoadOptions.config.labels`, the `--labels` option) may name an absolute local file.
 * Files already in the entry (or known to be absent) cost no request; a newly fetched one is added to
 * `manifest` (`added`), which the caller then commits.
 */
async function urlLabels(
  entryDir: string,
  href: string,
  manifest: CacheManifest,
  labels: { configured: string | undefined; byOperator: boolean },
  options: ResolveOptions,
  job: DownloadJob,
): Promise<{ labels?: string[]; added: boolean }> {
  const { configured } = labels;
  if (configured !== undefined && labels.byOperator && isAbsolute(configured)) {
    const text = await readIfPresent(configured);
    if (text === undefined) throw new ModelLoadError(`labels file not found: ${configured} (configured as labels)`);
    return { labels: parseLabels(text), added: false };
  }
  const relative = safeRelativePath(configured ?? DEFAULT_LABELS_FILE);
  if (relative === undefined) {
    throw new ConfigError(
      `field 'labels' has invalid value ${JSON.stringify(configured)} for URL model ${href}; ` +
        "allowed: a path relative to the model URL that stays beside it (no '..', not absolute)" +
        (labels.byOperator ? ', or an absolute local path' : '; only --labels may name a local file'),
    );
  }
  if (manifest.files.some((f) => f.path === relative)) {
    return { labels: parseLabels(await readFile(join(entryDir, relative), 'utf8')), added: false };
  }
  if (configured === undefined && manifest.absent.includes(relative)) return { added: false };

  const labelsUrl = siblingUrl(href, relative);
  let result;
  try {
    result = await downloadFile(labelsUrl, join(entryDir, relative), {
      optional: configured === undefined,
      onProgress: options.onProgress,
      timeoutMs: options.timeoutMs,
      deadline: job.deadline,
    });
  } catch (err) {
    throw configured === undefined
      ? err
      : new ModelLoadError(`labels file ${configured} (configured as labels) could not be fetched: ${(err as Error).message}`, {
          cause: err,
        });
  }
  if (result === null) {
    manifest.absent.push(relative);
    return { added: true };
  }
  job.written.push(relative);
  manifest.files.push({ path: relative, ...result });
  return { labels: parseLabels(await readFile(join(entryDir, relative), 'utf8')), added: true };
}
