/**
 * The bench models: ResNet-50- and MobileNetV2-shaped random-weight networks, written once per bench run
 * as a TF.js layers folder and an `.onnx` file so that every engine loads them from disk, as a user's
 * model would be.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { countParameters, mobileNetV2Spec, resnet50Spec, type NetSpec, writeLayersModel, toOnnxModel } from '../../lab/builders/index.ts';
import type { ModelFileConfig } from '../../models/index.ts';
import { timed } from './measure.ts';

export const BENCH_MODELS = ['resnet50', 'mobilenetv2'] as const;
export type BenchModelName = (typeof BENCH_MODELS)[number];

/** Seed of the bench weights: fixed so runs compare like with like. */
const SEED = 2016;

/**
 * ImageNet preprocessing (torchvision's numbers): maps uint8 frames to roughly unit-variance inputs, the
 * scale the random weights were calibrated for. Passed to `load` as `config`.
 */
export const BENCH_PREPROCESS: ModelFileConfig = Object.freeze({
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
}) as ModelFileConfig;

/** A bench model on disk. */
export interface PreparedModel {
  name: BenchModelName;
  inputSize: [number, number];
  parameters: number;
  /** Folder with model.json + shard. */
  tfjsPath: string;
  /**
   * The same network with batchnorm folded into the convs and ReLUs fused (what a graph converter does):
   * the tfjs cases time it too, to show what folding at load would gain.
   */
  tfjsFoldedPath: string;
  /** The .onnx file. */
  onnxPath: string;
  buildMs: number;
  writeTfjsMs: number;
  writeOnnxMs: number;
}

function specOf(name: BenchModelName, inputSize: [number, number], foldBatchNorm = false): NetSpec {
  const options = { seed: SEED, inputSize, foldBatchNorm };
  return name === 'resnet50' ? resnet50Spec(options) : mobileNetV2Spec(options);
}

/** Builds `name` and writes both forms under `dir`. */
export async function prepareModel(name: BenchModelName, dir: string, inputSize: [number, number]): Promise<PreparedModel> {
  // Saving a layers model reads its weights back through a backend; cpu needs no initialisation.
  if (tf.getBackend() !== 'cpu') await tf.setBackend('cpu');
  const build = await timed(() => specOf(name, inputSize));
  const spec = build.value;
  const tfjsPath = join(dir, `${name}-tfjs`);
  const onnxPath = join(dir, `${name}.onnx`);
  const writeTfjs = await timed(() => writeLayersModel(spec, tfjsPath));
  const tfjsFoldedPath = join(dir, `${name}-tfjs-folded`);
  await writeLayersModel(specOf(name, inputSize, true), tfjsFoldedPath);
  const writeOnnx = await timed(async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(onnxPath, toOnnxModel(spec));
  });
  return {
    name,
    inputSize,
    parameters: countParameters(spec),
    tfjsPath,
    tfjsFoldedPath,
    onnxPath,
    buildMs: build.ms,
    writeTfjsMs: writeTfjs.ms,
    writeOnnxMs: writeOnnx.ms,
  };
}
