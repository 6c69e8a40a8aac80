/**
 * `serve --models`: the models a viewer may pick besides the server's own. Each value is a comma-separated
 * list of `[name=]spec` items (the option may be repeated); a spec is what `--model` takes (a model folder,
 * model.json, .onnx file, or http(s) URL), or a folder that is no model itself (no model.json, not exactly
 * one .onnx file), which stands for every model folder and .onnx file directly inside it. Local specs are resolved through the model loader now, so a
 * typo or a bad camstream.json fails at start-up rather than when a viewer picks the model.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { ConfigError, resolveSource, type CamModel } from '../models/index.ts';

/** One model of the list: its name (the picker's) and spec; `format` when known before loading. */
export interface ListedModel {
  name: string;
  spec: string;
  format: 'tfjs' | 'onnx' | undefined;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;
const URL_RE = /^https?:\/\//i;

/** Commander's collector: each `--models` value appended to the list so far. */
export function collectModels(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `name=spec` or `spec` (named by its file name without extension). */
function splitItem(item: string): { name: string | undefined; spec: string } {
  const eq = item.indexOf('=');
  if (eq > 0 && NAME_RE.test(item.slice(0, eq).trim())) return { name: item.slice(0, eq).trim(), spec: item.slice(eq + 1).trim() };
  return { name: undefined, spec: item };
}

function nameOf(spec: string): string {
  const trimmed = spec.replace(/[\\/]+$/, '');
  const last = basename(trimmed) === 'model.json' ? basename(join(trimmed, '..')) : basename(trimmed, extname(trimmed));
  return last || spec;
}

/** Whether a folder is a model itself, as the loader reads one (model.json, or a single .onnx file), rather than a folder of models. */
async function holdsModel(dir: string): Promise<boolean> {
  const names = await readdir(dir);
  return names.includes('model.json') || names.filter((n) => /\.onnx$/i.test(n)).length === 1;
}

/** The model folders and .onnx files directly inside `dir`, sorted by name. */
async function modelsIn(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() && /\.onnx$/i.test(entry.name)) found.push(path);
    else if (info?.isDirectory() && (await holdsModel(path))) found.push(path);
  }
  return found;
}

/**
 * The `--models` values as a list of models, folders expanded, names unique, each local one resolved by the
 * model loader (URLs are fetched only when picked).
 * @throws ConfigError naming the item: a missing path, a folder without models, a name used twice, or what
 *   the loader found wrong with the model (its message).
 */
export async function listModels(values: readonly string[]): Promise<ListedModel[]> {
  const out: ListedModel[] = [];
  const items = values.flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    const { name, spec } = splitItem(item);
    if (!spec) throw new ConfigError(`--models: '${item}' names no model`);
    if (URL_RE.test(spec)) {
      out.push({ name: name ?? nameOf(new URL(spec).pathname), spec, format: /\.onnx$/i.test(new URL(spec).pathname) ? 'onnx' : 'tfjs' });
      continue;
    }
    const info = await stat(spec).catch(() => undefined);
    if (!info) throw new ConfigError(`--models: '${spec}' does not exist`);
    const specs = info.isDirectory() && !(await holdsModel(spec)) ? await modelsIn(spec) : [spec];
    if (specs.length === 0) throw new ConfigError(`--models: folder '${spec}' holds no model (a folder with model.json or a .onnx file, or a .onnx file)`);
    for (const one of specs) {
      let format: 'tfjs' | 'onnx';
      try {
        format = (await resolveSource(resolve(one))).format;
      } catch (err) {
        throw new ConfigError(`--models: ${one}: ${(err as Error).message}`);
      }
      out.push({ name: specs.length === 1 && name ? name : nameOf(one), spec: resolve(one), format });
    }
  }
  const seen = new Set<string>();
  for (const m of out) {
    if (seen.has(m.name.toLowerCase())) throw new ConfigError(`--models: the name '${m.name}' is used twice; name one of them (name=spec)`);
    seen.add(m.name.toLowerCase());
  }
  return out;
}

/**
 * The backend a listed model loads on: the running model's when it has the same engine (one tfjs backend
 * for the whole process), else its engine's default.
 */
export function backendFor(listed: ListedModel, running: CamModel): string | undefined {
  return listed.format === running.info.engine ? running.info.backend : undefined;
}
