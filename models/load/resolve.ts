/**
 * From a model spec (folder, model.json, .onnx file, or http(s) URL of either) to a `ResolvedSource`: local
 * files an engine can open, with `camstream.json` and labels read. URL models go through the download
 * cache (cache.ts) first, so an engine never sees the network.
 */
import type { Stats } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';

import { ConfigError, ModelLoadError } from '../../common/errors.ts';
import type { LoadOptions, ModelFileConfig, ResolvedSource } from '../types.ts';
import type { DownloadOptions } from './download.ts';
import {
  DEFAULT_LABELS_FILE,
  MODEL_CONFIG_FILE,
  mergeModelFileConfig,
  parseLabels,
  parseModelFileConfig,
  parseModelFileConfigText,
} from './config.ts';
import { TFJS_MODEL_FILE, confinedPath, isFile, listNames, readIfPresent, weightPaths } from './model-files.ts';
import { findLabelsCandidate, type LabelsCandidate } from './labels-hint.ts';
import { resolveUrl } from './resolve-url.ts';

/** `LoadOptions` plus download tuning. */
export type ResolveOptions = LoadOptions & DownloadOptions;

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
 * `options.config` (which wins). Labels come from `options.config.labels` (any path, relative to the model
 * folder), else from camstream.json's `labels`, else from `labels.txt` beside the model when there is one. Paths
 * a model's own files name never leave its folder (local: real paths, symlinks followed) or its URL (no
 * absolute path, no `..`).
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
// Local specs

async function resolveLocal(
  spec: string,
  overrides: Readonly<ModelFileConfig>,
  options: ResolveOptions,
): Promise<ResolvedSource> {
  const abs = resolvePath(spec);
  const info = await statSpec(abs, spec);
  let found: { format: 'tfjs' | 'onnx'; modelFile: string };
  if (info.isDirectory()) found = await modelInFolder(abs, spec, options);
  else if (info.isFile()) found = { format: fileFormat(abs, spec), modelFile: abs };
  else throw new ModelLoadError(`${spec}: neither a file nor a folder`);
  const { format, modelFile } = found;

  const modelDir = dirname(modelFile);
  await checkModelFiles(format, modelFile);
  const configPath = join(modelDir, MODEL_CONFIG_FILE);
  const configText = await readIfPresent(configPath);
  const fileConfig = mergeModelFileConfig(
    configText === undefined ? {} : parseModelFileConfigText(configText, configPath),
    overrides,
  );
  const labels =
    overrides.labels === undefined
      ? await readConfinedLabels(modelDir, fileConfig.labels, configPath)
      : await readOperatorLabels(modelDir, overrides.labels);
  return {
    format,
    path: format === 'tfjs' ? modelDir : modelFile,
    original: spec,
    fileConfig,
    ...(labels === undefined ? {} : { labels }),
    ...(labels === undefined ? await labelsCandidateOf(modelDir) : {}),
  };
}

async function labelsCandidateOf(modelDir: string): Promise<{ labelsCandidate?: LabelsCandidate }> {
  const labelsCandidate = await findLabelsCandidate(modelDir);
  return labelsCandidate === undefined ? {} : { labelsCandidate };
}

async function statSpec(abs: string, spec: string): Promise<Stats> {
  try {
    return await stat(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ModelLoadError(`model not found: ${spec}`);
    throw new ModelLoadError(`cannot read model at ${spec}: ${(err as Error).message}`, { cause: err });
  }
}

/** The model file of a folder: model.json, else its single .onnx file (`options.engine` picks when both). */
async function modelInFolder(
  abs: string,
  spec: string,
  options: ResolveOptions,
): Promise<{ format: 'tfjs' | 'onnx'; modelFile: string }> {
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
  const format = onnxFiles.length > 0 && (!hasJson || options.engine === 'onnx') ? 'onnx' : 'tfjs';
  if (format === 'onnx' && onnxFiles.length > 1) {
    throw new ModelLoadError(
      `folder ${spec} holds several .onnx files (${listNames(onnxFiles)}): give the path of the one to load`,
    );
  }
  return { format, modelFile: join(abs, format === 'onnx' ? onnxFiles[0] : TFJS_MODEL_FILE) };
}

/** The format of a model given as a file: any `.onnx`, or a file named model.json. */
function fileFormat(abs: string, spec: string): 'tfjs' | 'onnx' {
  const name = basename(abs);
  if (/\.onnx$/i.test(name)) return 'onnx';
  if (name === TFJS_MODEL_FILE) return 'tfjs';
  if (/\.json$/i.test(name)) {
    // ResolvedSource hands engines the folder and they open <folder>/model.json.
    throw new ModelLoadError(
      `${spec}: a TF.js model file must be named ${TFJS_MODEL_FILE} (the engines open model.json in its folder); ` +
        'rename it, or give its folder',
    );
  }
  throw new ModelLoadError(
    `${spec}: not a model file: expected a folder holding ${TFJS_MODEL_FILE}, a ${TFJS_MODEL_FILE} file, or a .onnx file`,
  );
}

/** Every weight file a model.json lists is there; a .onnx file is not empty. */
async function checkModelFiles(format: 'tfjs' | 'onnx', modelFile: string): Promise<void> {
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
}

/** A labels file the operator named (`LoadOptions.config.labels`, `--labels`): any path, relative to the model folder. */
async function readOperatorLabels(modelDir: string, labels: string): Promise<string[]> {
  const labelsPath = resolvePath(modelDir, labels);
  const text = await readIfPresent(labelsPath);
  if (text === undefined) throw new ModelLoadError(`labels file not found: ${labelsPath} (configured as labels: ${labels})`);
  return parseLabels(text);
}

/**
 * Labels named by the model's own camstream.json, else labels.txt beside the model if any. Both must stay
 * inside the model folder, symlinks followed: a model folder someone else wrote cannot point camstream at
 * other files on this machine.
 */
async function readConfinedLabels(modelDir: string, configured: string | undefined, configPath: string): Promise<string[] | undefined> {
  const name = configured ?? DEFAULT_LABELS_FILE;
  const real = await confinedPath(modelDir, name);
  if (real === 'outside') {
    throw new ConfigError(
      configured === undefined
        ? `${join(modelDir, DEFAULT_LABELS_FILE)} is a link to a file outside the model folder ${modelDir}; ` +
            "field 'labels' and labels.txt must stay inside it (use --labels to name a file elsewhere)"
        : `${configPath}: field 'labels' has invalid value ${JSON.stringify(configured)}; allowed: a file inside the ` +
            `model folder ${modelDir} (symlinks followed; use --labels to name a file elsewhere)`,
    );
  }
  if (real === null) {
    if (configured === undefined) return undefined;
    throw new ModelLoadError(`labels file not found: ${resolvePath(modelDir, configured)} (configured as labels: ${configured})`);
  }
  const text = await readIfPresent(real);
  return text === undefined ? undefined : parseLabels(text);
}
