/**
 * From a model spec (folder, model.json, .onnx file, or http(s) URL of either) to a `ResolvedSource`: local
 * files an engine can open, with `camstream.json` and labels read. URL models go through the download
 * cache (cache.ts) first, so an engine never sees the network.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';

import { CamstreamError, ConfigError, ModelLoadError } from '../../common/errors.ts';
import type { LoadOptions, ModelFileConfig, ResolvedSource } from '../types.ts';
import {
  type CacheManifest,
  type DownloadOptions,
  DEFAULT_CACHE_DIR,
  cacheEntryPath,
  commitEntry,
  downloadFile,
  readCommittedEntry,
  removeStaleParts,
  safeRelativePath,
  uncommitEntry,
  verifyFiles,
} from './cache.ts';
import {
  DEFAULT_LABELS_FILE,
  MODEL_CONFIG_FILE,
  mergeModelFileConfig,
  parseLabels,
  parseModelFileConfig,
  parseModelFileConfigText,
} from './config.ts';

/** `LoadOptions` plus download tuning. */
export type ResolveOptions = LoadOptions & DownloadOptions;

const TFJS_MODEL_FILE = 'model.json';

/**
 * Resolves a model spec to local files.
 *
 * - A folder: `model.json` in it (TF.js layers or graph model), else its single `.onnx` file. When it holds
 *   both, `options.engine` picks; without it `model.json` wins.
 * - A file: `model.json`, or any `.onnx` file.
 * - An `http:`/`https:` URL of a model.json (then every shard its weightsManifest lists, relative to the URL,
 *   query string kept, as TF.js does) or of a `.onnx` file; a URL ending in `/` means `<url>model.json`.
 *   Downloaded once into `options.cacheDir` (default `~/.cache/camstream`); later calls verify the entry
 *   (sizes and sha256) and make no request.
 *
 * `camstream.json` beside the model (optional, also fetched next to a URL) is validated and merged with
 * `options.config` (which wins). Labels come from `fileConfig.labels` (relative to the model folder, or an
 * absolute local path), else from `labels.txt` beside the model when there is one.
 *
 * @throws ConfigError for an unsupported URL scheme or an invalid config field (named, with its value).
 * @throws ModelLoadError for a missing path ("model not found: <path>"), a folder without a model, a
 *   model.json listing missing shards, or a failed download (the URL and HTTP status are named).
 */
export async function resolveSource(spec: string, options: ResolveOptions = {}): Promise<ResolvedSource> {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new ConfigError(`model spec: expected a local path or an http(s) URL, got ${JSON.stringify(spec)}`);
  }
  if (options.engine !== undefined && options.engine !== 'tfjs' && options.engine !== 'onnx') {
    throw new ConfigError(`engine: invalid value ${JSON.stringify(options.engine)}; allowed: 'tfjs', 'onnx'`);
  }
  const overrides = parseModelFileConfig(options.config, 'LoadOptions.config');
  const url = parseModelUrl(spec);
  return url === undefined ? resolveLocal(spec, overrides, options) : resolveUrl(spec, url, overrides, options);
}

/**
 * A spec is a URL when it starts with a scheme of two or more letters followed by `//` (one letter would be
 * a Windows drive), or with `file:`. Only http and https are fetched.
 */
function parseModelUrl(spec: string): URL | undefined {
  const m = /^([A-Za-z][A-Za-z0-9+.-]+):/.exec(spec);
  if (m === null) return undefined;
  const scheme = m[1].toLowerCase();
  if (!spec.slice(m[0].length).startsWith('//') && scheme !== 'file') return undefined;
  if (scheme !== 'http' && scheme !== 'https') {
    throw new ConfigError(
      `model URL ${spec}: unsupported scheme '${scheme}:'; allowed: http:, https: (or a local path without a scheme)`,
    );
  }
  try {
    return new URL(spec);
  } catch {
    throw new ConfigError(`model URL ${spec}: not a valid URL`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Shared helpers

/** Weight file paths listed by a model.json (layers or graph), after checking they stay in the folder. */
function weightPaths(text: string, where: string): string[] {
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

function listNames(names: readonly string[]): string {
  if (names.length === 0) return 'an empty folder';
  const shown = names.slice(0, 10).join(', ');
  return names.length > 10 ? `${shown} and ${names.length - 10} more` : shown;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelLoadError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Local specs

async function resolveLocal(
  spec: string,
  overrides: Readonly<ModelFileConfig>,
  options: ResolveOptions,
): Promise<ResolvedSource> {
  const abs = resolvePath(spec);
  let info;
  try {
    info = await stat(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ModelLoadError(`model not found: ${spec}`);
    throw new ModelLoadError(`cannot read model at ${spec}: ${(err as Error).message}`, { cause: err });
  }

  let format: 'tfjs' | 'onnx';
  let modelFile: string;
  if (info.isDirectory()) {
    const names = (await readdir(abs)).sort();
    const hasJson = await isFile(join(abs, TFJS_MODEL_FILE));
    const onnxFiles: string[] = [];
    for (const name of names) if (/\.onnx$/i.test(name) && (await isFile(join(abs, name)))) onnxFiles.push(name);
    if (!hasJson && onnxFiles.length === 0) {
      throw new ModelLoadError(
        `no model in folder ${spec}: expected ${TFJS_MODEL_FILE} (TF.js layers or graph model) or a .onnx file; ` +
          `found ${listNames(names)}`,
      );
    }
    format = onnxFiles.length > 0 && (!hasJson || options.engine === 'onnx') ? 'onnx' : 'tfjs';
    if (format === 'onnx' && onnxFiles.length > 1) {
      throw new ModelLoadError(
        `folder ${spec} holds several .onnx files (${listNames(onnxFiles)}): give the path of the one to load`,
      );
    }
    modelFile = join(abs, format === 'onnx' ? onnxFiles[0] : TFJS_MODEL_FILE);
  } else if (info.isFile()) {
    const name = basename(abs);
    if (/\.onnx$/i.test(name)) {
      format = 'onnx';
    } else if (name === TFJS_MODEL_FILE) {
      format = 'tfjs';
    } else if (/\.json$/i.test(name)) {
      // ResolvedSource hands engines the folder and they open <folder>/model.json.
      throw new ModelLoadError(
        `${spec}: a TF.js model file must be named ${TFJS_MODEL_FILE} (the engines open model.json in its folder); ` +
          'rename it, or give its folder',
      );
    } else {
      throw new ModelLoadError(
        `${spec}: not a model file: expected a folder holding ${TFJS_MODEL_FILE}, a ${TFJS_MODEL_FILE} file, or a .onnx file`,
      );
    }
    modelFile = abs;
  } else {
    throw new ModelLoadError(`${spec}: neither a file nor a folder`);
  }

  const modelDir = dirname(modelFile);
  if (format === 'tfjs') {
    // Missing shards are found here with their names, rather than as a fetch error deep inside an engine.
    const paths = weightPaths(await readFile(modelFile, 'utf8'), modelFile);
    const missing: string[] = [];
    for (const p of paths) if (!(await isFile(join(modelDir, p)))) missing.push(p);
    if (missing.length > 0) {
      throw new ModelLoadError(
        `${modelFile} lists ${missing.length} of ${paths.length} weight files that are missing: ${listNames(missing)}`,
      );
    }
  } else if ((await stat(modelFile)).size === 0) {
    throw new ModelLoadError(`${modelFile}: empty .onnx file`);
  }

  const configPath = join(modelDir, MODEL_CONFIG_FILE);
  const configText = await readIfPresent(configPath);
  const fileConfig = mergeModelFileConfig(
    configText === undefined ? {} : parseModelFileConfigText(configText, configPath),
    overrides,
  );

  let labels: string[] | undefined;
  if (fileConfig.labels !== undefined) {
    const labelsPath = resolvePath(modelDir, fileConfig.labels);
    const text = await readIfPresent(labelsPath);
    if (text === undefined) {
      throw new ModelLoadError(`labels file not found: ${labelsPath} (configured as labels: ${fileConfig.labels})`);
    }
    labels = parseLabels(text);
  } else {
    const text = await readIfPresent(join(modelDir, DEFAULT_LABELS_FILE));
    labels = text === undefined ? undefined : parseLabels(text);
  }

  return {
    format,
    path: format === 'tfjs' ? modelDir : modelFile,
    original: spec,
    fileConfig,
    ...(labels === undefined ? {} : { labels }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// URL specs

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

async function resolveUrl(
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
  try {
    return await resolveCached(spec, href, format, main, entryDir, overrides, options);
  } catch (err) {
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
): Promise<ResolvedSource> {
  // Two attempts: the second only when another loader renamed different bytes over ours mid-download.
  for (let attempt = 1; ; attempt++) {
    const committed = await readCommittedEntry(entryDir, href);
    const usable = committed !== undefined && committed.format === format && committed.main === main;
    const manifest = usable ? committed : await downloadModelFiles(entryDir, href, format, main, options);
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

    const labelsResult = await urlLabels(entryDir, href, manifest, fileConfig.labels, options);
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
    });
    if (result === null) {
      manifest.absent.push(relative);
      return false;
    }
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
 * Labels of a URL model: the configured file (relative to the model URL, or an absolute local path), else
 * `labels.txt` beside the model when served. Files already in the entry (or known to be absent) cost no
 * request; a newly fetched one is added to `manifest` (`added`), which the caller then commits.
 */
async function urlLabels(
  entryDir: string,
  href: string,
  manifest: CacheManifest,
  configured: string | undefined,
  options: ResolveOptions,
): Promise<{ labels?: string[]; added: boolean }> {
  if (configured !== undefined && isAbsolute(configured)) {
    const text = await readIfPresent(configured);
    if (text === undefined) throw new ModelLoadError(`labels file not found: ${configured} (configured as labels)`);
    return { labels: parseLabels(text), added: false };
  }
  const relative = safeRelativePath(configured ?? DEFAULT_LABELS_FILE);
  if (relative === undefined) {
    throw new ConfigError(
      `field 'labels' has invalid value ${JSON.stringify(configured)} for URL model ${href}; ` +
        "allowed: a path relative to the model URL that stays beside it (no '..'), or an absolute local path",
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
  manifest.files.push({ path: relative, ...result });
  return { labels: parseLabels(await readFile(join(entryDir, relative), 'utf8')), added: true };
}
