import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, InputError, ModelLoadError, NoGapHeadError } from '../../../common/index.ts';
import { createRandom, randomFrames, smallGapDenseNet, type NetSpec, writeLayersModel, writeTfGraphModel } from '../../../lab/builders/index.ts';
import type { CamModel } from '../../../models/index.ts';
import { initTfjsBackend, loadTfjsModel, SHARD_FILE } from '../../../models/tfjs/index.ts';
import { tempFolders, tfjsSource } from './tfjs-helpers.ts';

const folders = tempFolders();

/** conv -> relu -> flatten -> dense: a classifier without global average pooling. */
function flattenDenseNet(seed: number): NetSpec {
  const r = createRandom(seed);
  return {
    name: 'no-gap',
    inputSize: [8, 8],
    nodes: [
      { op: 'conv', name: 'conv1', input: 'input', filters: 4, kernel: [3, 3], strides: 2, padding: 'same', activation: 'relu', kernelWeights: r.normalArray(3 * 3 * 3 * 4, 0.3) },
      { op: 'flatten', name: 'flatten', input: 'conv1' },
      { op: 'dense', name: 'logits', input: 'flatten', units: 5, kernelWeights: r.normalArray(4 * 4 * 4 * 5, 0.1), bias: r.normalArray(5, 0.1) },
    ],
    output: 'logits',
  };
}

beforeAll(async () => {
  await initTfjsBackend('cpu');
});
afterAll(async () => {
  await folders.cleanup();
});

describe('tfjs engine load errors', () => {
  it('names the missing shard file and the model folder', async () => {
    const dir = await folders.make();
    await writeLayersModel(smallGapDenseNet(1), dir);
    await rm(join(dir, SHARD_FILE));
    const load = loadTfjsModel(tfjsSource(dir), { backend: 'cpu' });
    await expect(load).rejects.toBeInstanceOf(ModelLoadError);
    await expect(load).rejects.toThrow(new RegExp(`"${SHARD_FILE.replace(/\./g, '\\.')}".*${dir.replace(/[/.]/g, '\\$&')}`));
  });

  it('names the shard when it is shorter than the manifest says', async () => {
    const dir = await folders.make();
    await writeTfGraphModel(smallGapDenseNet(2), dir);
    const bytes = await readFile(join(dir, SHARD_FILE));
    await writeFile(join(dir, SHARD_FILE), bytes.subarray(0, bytes.length - 8));
    await expect(loadTfjsModel(tfjsSource(dir), { backend: 'cpu' })).rejects.toThrow(/group1-shard1of1\.bin.*truncated/);
  });

  it('rejects a model.json that is not JSON, naming the file', async () => {
    const dir = await folders.make();
    await writeFile(join(dir, 'model.json'), '{"modelTopology": {"class_name": ');
    const load = loadTfjsModel(tfjsSource(dir), { backend: 'cpu' });
    await expect(load).rejects.toBeInstanceOf(ModelLoadError);
    await expect(load).rejects.toThrow(/model\.json is not valid JSON/);
  });

  it('rejects a missing folder and a shard path leaving the folder', async () => {
    await expect(loadTfjsModel(tfjsSource('/nonexistent/camstream-model'), { backend: 'cpu' })).rejects.toThrow(/\/nonexistent\/camstream-model/);
    const dir = await folders.make();
    await writeLayersModel(smallGapDenseNet(3), dir);
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    json.weightsManifest[0].paths = ['../../etc/passwd'];
    await writeFile(join(dir, 'model.json'), JSON.stringify(json));
    await expect(loadTfjsModel(tfjsSource(dir), { backend: 'cpu' })).rejects.toThrow(/leaves the model folder/);
  });

  it('reports a layers model without a GAP head, naming its last layers and the camstream.json way out', async () => {
    const dir = await folders.make();
    await writeLayersModel(flattenDenseNet(4), dir);
    const load = loadTfjsModel(tfjsSource(dir), { backend: 'cpu' });
    await expect(load).rejects.toBeInstanceOf(NoGapHeadError);
    await expect(load).rejects.toThrow(/logits \(Dense, linear\) <- flatten \(Flatten\) <- conv1 \(Conv2D, relu\)/);
    await expect(load).rejects.toThrow(/"featureTensor"/);
  });

  it('reports a graph model without a GAP head, naming its last nodes', async () => {
    const dir = await folders.make();
    await writeTfGraphModel(flattenDenseNet(5), dir);
    const load = loadTfjsModel(tfjsSource(dir), { backend: 'cpu' });
    await expect(load).rejects.toBeInstanceOf(NoGapHeadError);
    await expect(load).rejects.toThrow(/logits \(BiasAdd\) <- logits\/MatMul \(MatMul\) <- flatten \(Reshape\) <- conv1 \(Relu\)/);
  });

  it('rejects an unavailable backend, naming it and the available ones', async () => {
    const dir = await folders.make();
    await writeLayersModel(smallGapDenseNet(6), dir);
    const load = loadTfjsModel(tfjsSource(dir), { backend: 'webgl' });
    await expect(load).rejects.toBeInstanceOf(ConfigError);
    await expect(load).rejects.toThrow(/'webgl'.*available here: .*cpu/);
    await expect(loadTfjsModel({ ...tfjsSource(dir), format: 'onnx' }, { backend: 'cpu' })).rejects.toThrow(/'onnx'/);
    await expect(loadTfjsModel(tfjsSource(dir), { backend: 'cpu', threads: 0 })).rejects.toThrow(/threads.*got 0/);
    await expect(loadTfjsModel(tfjsSource(dir), { backend: 'cpu', threads: 1.5 })).rejects.toThrow(ConfigError);
  });

  it('clamps threads above the cores as the ONNX engine does, and reports the threads the backend runs', async () => {
    const dir = await folders.make();
    await writeLayersModel(smallGapDenseNet(6), dir);
    const model = await loadTfjsModel(tfjsSource(dir), { backend: 'cpu', threads: 10_000 });
    try {
      expect(model.info.threads).toBe(1);
    } finally {
      await model.dispose();
    }
  });
});

describe('tfjs engine input errors', () => {
  let model: CamModel;
  beforeAll(async () => {
    const dir = await folders.make();
    await writeLayersModel(smallGapDenseNet(7), dir);
    model = await loadTfjsModel(tfjsSource(dir), { backend: 'cpu' });
  });
  afterAll(async () => {
    await model.dispose();
  });

  it('names the frame and the expected byte length', async () => {
    const frames = randomFrames(8, 2, 32, 24);
    frames[1] = { ...frames[1], data: frames[1].data.subarray(0, 100) };
    const run = model.infer(frames);
    await expect(run).rejects.toBeInstanceOf(InputError);
    await expect(run).rejects.toThrow(/frame 1: 100 bytes, expected 2304 \(32x24 RGB/);
  });

  it('rejects an empty batch, bad sizes, bad topK and class indices out of range', async () => {
    await expect(model.infer([])).rejects.toThrow(/empty batch/);
    await expect(model.infer([{ data: new Uint8Array(0), width: 0, height: 5 }])).rejects.toThrow(/frame 0: size.*0x5/);
    const frames = randomFrames(9, 1, 32, 24);
    await expect(model.infer(frames, { topK: 0 })).rejects.toThrow(/topK.*got 0/);
    await expect(model.infer(frames, { classes: [1, 10] })).rejects.toThrow(/classes\[1\] = 10.*0 to 9/);
    await expect(model.infer(frames, { classes: [-1] })).rejects.toThrow(InputError);
    await expect(model.infer(frames, { classes: [] })).rejects.toThrow(/non-empty/);
  });
});
