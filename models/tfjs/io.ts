/**
 * Model files on local disk for TF.js, read and written with node:fs (the `file://` handler only exists
 * with tfjs-node, which camstream does not depend on).
 *
 * A TF.js model folder holds `model.json` (topology + `weightsManifest`) and the binary weight shards the
 * manifest lists. Both kinds are read: layers models (Keras topology, with or without the `format` key of
 * newer converters) and graph models (a TF GraphDef as JSON).
 */
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ModelLoadError } from '../../common/errors.ts';

export type TfjsModelKind = 'layers' | 'graph';

/** The file a TF.js model folder is described by. */
export const MODEL_JSON = 'model.json';

/** Name of the single shard `saveArtifactsToFolder` writes. */
export const SHARD_FILE = 'group1-shard1of1.bin';

export interface FolderModel {
  /** Topology and all weights in one buffer (what tfjs loaders take). */
  artifacts: tf.io.ModelArtifacts;
  kind: TfjsModelKind;
  /** Absolute path of the folder. */
  folder: string;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/**
 * Which loader a model.json needs: `format` when present, else the topology's shape (a Keras config has
 * `model_config` or `class_name`; a GraphDef has `node`).
 * @throws ModelLoadError when neither can be told.
 */
export function modelKindOf(modelJson: { format?: string; modelTopology?: unknown }, where: string): TfjsModelKind {
  const format = modelJson.format;
  if (format === 'layers-model') return 'layers';
  if (format === 'graph-model') return 'graph';
  const topo = modelJson.modelTopology as Record<string, unknown> | undefined;
  if (topo !== null && typeof topo === 'object') {
    if ('model_config' in topo || 'class_name' in topo) return 'layers';
    if ('node' in topo) return 'graph';
  }
  throw new ModelLoadError(
    `${where}: not a TF.js model (format ${JSON.stringify(format)}, and modelTopology is neither a Keras ` +
      'model config nor a TF graph)',
  );
}

/** Resolves a shard path from the manifest inside `folder`; manifests cannot point outside their folder. */
function shardPath(folder: string, path: string, where: string): string {
  const full = resolve(folder, path);
  const rel = relative(folder, full);
  if (isAbsolute(path) || /^[a-z][a-z0-9+.-]*:/i.test(path) || rel.startsWith('..') || isAbsolute(rel)) {
    throw new ModelLoadError(`${where}: weight shard path "${path}" leaves the model folder ${folder}`);
  }
  return full;
}

function specBytes(spec: tf.io.WeightsManifestEntry): number | undefined {
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const per = BYTES[dtype];
  if (per === undefined) return undefined; // strings: variable length, not checked here
  return spec.shape.reduce((a, b) => a * b, 1) * per;
}

/**
 * Reads `model.json` and its shards from `path` (the folder, or the model.json file itself).
 * @throws ModelLoadError naming the file when model.json is missing or not JSON, a shard is missing or
 *   shorter/longer than the manifest says, or the file is not a TF.js model.
 */
export async function readModelFolder(path: string): Promise<FolderModel> {
  let folder = resolve(path);
  let jsonPath = join(folder, MODEL_JSON);
  try {
    if ((await stat(folder)).isFile()) {
      jsonPath = folder;
      folder = dirname(folder);
    }
  } catch (err) {
    throw new ModelLoadError(`TF.js model folder ${folder} does not exist`, { cause: err });
  }
  let text: string;
  try {
    text = await readFile(jsonPath, 'utf8');
  } catch (err) {
    throw new ModelLoadError(`cannot read ${jsonPath}: ${(err as Error).message}`, { cause: err });
  }
  let modelJson: tf.io.ModelJSON;
  try {
    modelJson = JSON.parse(text.replace(/^\uFEFF/, '')) as tf.io.ModelJSON;
  } catch (err) {
    throw new ModelLoadError(`${jsonPath} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (modelJson === null || typeof modelJson !== 'object' || modelJson.modelTopology == null) {
    throw new ModelLoadError(`${jsonPath} has no modelTopology: not a TF.js model.json`);
  }
  const kind = modelKindOf(modelJson, jsonPath);
  const manifest = modelJson.weightsManifest ?? [];
  if (!Array.isArray(manifest)) throw new ModelLoadError(`${jsonPath}: weightsManifest is not a list`);

  const artifacts = await tf.io.getModelArtifactsForJSON(modelJson, async (groups) => {
    const buffers: ArrayBuffer[] = [];
    for (const group of groups) {
      const paths = group.paths ?? [];
      const files = await Promise.all(
        paths.map(async (p) => {
          const full = shardPath(folder, p, jsonPath);
          try {
            return await readFile(full);
          } catch (err) {
            throw new ModelLoadError(
              `weight shard "${p}" listed in ${jsonPath} cannot be read from the model folder ${folder}: ` +
                (err as Error).message,
              { cause: err },
            );
          }
        }),
      );
      const got = files.reduce((a, f) => a + f.byteLength, 0);
      const sizes = group.weights.map(specBytes);
      if (sizes.every((s) => s !== undefined)) {
        const want = (sizes as number[]).reduce((a, b) => a + b, 0);
        if (got !== want) {
          throw new ModelLoadError(
            `weight shards ${paths.map((p) => `"${p}"`).join(', ')} in ${folder} hold ${got} bytes but ` +
              `${jsonPath} describes ${want} bytes of weights: truncated or mismatched files`,
          );
        }
      }
      for (const f of files) buffers.push(f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength) as ArrayBuffer);
    }
    return [tf.io.getWeightSpecs(groups), tf.io.concatenateArrayBuffers(buffers)];
  });
  return { artifacts, kind, folder };
}

/** An IOHandler whose `load()` reads a model folder (for `loadLayersModel` / `loadGraphModel`). */
export function folderLoadHandler(path: string): tf.io.IOHandler {
  return { load: async () => (await readModelFolder(path)).artifacts };
}

/**
 * Writes model artifacts (layers or graph) as `model.json` + one shard (`SHARD_FILE`) in `folder`, creating
 * it. model.json is written last under a temporary name and renamed, so a folder is never left looking
 * complete when a write failed. Use with `tf.io.withSaveHandler` for `LayersModel.save`.
 */
export async function saveArtifactsToFolder(folder: string, artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
  await mkdir(folder, { recursive: true });
  const weightData =
    artifacts.weightData === undefined ? new ArrayBuffer(0) : new tf.io.CompositeArrayBuffer(artifacts.weightData).slice();
  const manifest: tf.io.WeightsManifestConfig = [{ paths: [SHARD_FILE], weights: artifacts.weightSpecs ?? [] }];
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology as {},
    weightsManifest: manifest,
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
  };
  if (artifacts.signature != null) modelJson.signature = artifacts.signature;
  if (artifacts.userDefinedMetadata != null) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
  if (artifacts.modelInitializer != null) modelJson.modelInitializer = artifacts.modelInitializer;
  if (artifacts.trainingConfig != null) modelJson.trainingConfig = artifacts.trainingConfig;
  await writeFile(join(folder, SHARD_FILE), new Uint8Array(weightData));
  const tmp = join(folder, `.${MODEL_JSON}.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify(modelJson));
  await rename(tmp, join(folder, MODEL_JSON));
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}
