import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import onnxProto from 'onnx-proto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { ConfigError, ModelLoadError } from '../../../common/index.ts';
import { load, resolveSource } from '../../../models/load/index.ts';
import { DARKNET_TINY, fixturesPresent } from '../../helpers/fixtures.ts';
import { rejection } from '../../helpers/rejection.ts';

const { onnx } = onnxProto;

/** A real (tiny) ONNX model: y = Identity(x), float [1, 3]. Resolution reads only its path and size. */
function identityOnnx(): Uint8Array {
  const valueInfo = (name: string) => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: 1 }, { dimValue: 3 }] } } },
  });
  return onnx.ModelProto.encode({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'identity',
      node: [{ opType: 'Identity', input: ['x'], output: ['y'] }],
      input: [valueInfo('x')],
      output: [valueInfo('y')],
    },
  }).finish();
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-resolve-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!fixturesPresent)('resolving local TF.js specs', () => {
  it('resolves the fixture folder to a tfjs source without labels (it ships no labels.txt)', async () => {
    const src = await resolveSource(DARKNET_TINY);
    expect(src).toEqual({ format: 'tfjs', path: DARKNET_TINY, original: DARKNET_TINY, fileConfig: {} });
  });

  it('resolves a path to model.json, relative or absolute, to its folder', async () => {
    const rel = relative(process.cwd(), join(DARKNET_TINY, 'model.json'));
    const src = await resolveSource(rel);
    expect(src.format).toBe('tfjs');
    expect(src.path).toBe(DARKNET_TINY);
    expect(src.original).toBe(rel);
  });

  it('merges LoadOptions.config and reads the labels file it names relative to the model folder', async () => {
    const src = await resolveSource(DARKNET_TINY, {
      config: { labels: 'imagenet1k_darknet_shortnames.txt', scale: 1 / 255 },
    });
    const lines = (await readFile(join(DARKNET_TINY, 'imagenet1k_darknet_shortnames.txt'), 'utf8')).trimEnd().split('\n');
    expect(src.labels).toHaveLength(1000);
    expect(src.labels).toEqual(lines);
    expect(src.fileConfig).toEqual({ labels: 'imagenet1k_darknet_shortnames.txt', scale: 1 / 255 });
  });

  it('names the missing shards of a model.json whose weight files are absent', async () => {
    await writeFile(join(dir, 'model.json'), await readFile(join(DARKNET_TINY, 'model.json')));
    const err = await rejection(resolveSource(dir));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain('31 of 31 weight files that are missing');
    expect(err.message).toContain('group1-shard1of1');
  });

  it('refuses an engine that does not fit the format before starting any engine', async () => {
    const err = await rejection(load(DARKNET_TINY, { engine: 'onnx' }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain("'onnx'");
    expect(err.message).toContain('TF.js');
  });
});

describe('resolving local ONNX specs', () => {
  it('resolves a .onnx path and reads camstream.json and labels.txt beside it', async () => {
    await writeFile(join(dir, 'net.onnx'), identityOnnx());
    await writeFile(join(dir, 'camstream.json'), JSON.stringify({ layout: 'nchw', mean: [1, 2, 3] }));
    await writeFile(join(dir, 'labels.txt'), 'cat\ndog\nbird\n');
    const src = await resolveSource(join(dir, 'net.onnx'), { config: { mean: [4, 5, 6] } });
    expect(src).toEqual({
      format: 'onnx',
      path: join(dir, 'net.onnx'),
      original: join(dir, 'net.onnx'),
      fileConfig: { layout: 'nchw', mean: [4, 5, 6] },
      labels: ['cat', 'dog', 'bird'],
    });
  });

  it('resolves a folder holding one .onnx file to that file', async () => {
    await writeFile(join(dir, 'net.onnx'), identityOnnx());
    const src = await resolveSource(dir);
    expect(src.format).toBe('onnx');
    expect(src.path).toBe(join(dir, 'net.onnx'));
  });

  it('lets engine pick in a folder holding both model.json and a .onnx file, model.json winning by default', async () => {
    await writeFile(join(dir, 'net.onnx'), identityOnnx());
    await writeFile(join(dir, 'model.json'), JSON.stringify({ modelTopology: {}, weightsManifest: [] }));
    expect((await resolveSource(dir)).format).toBe('tfjs');
    expect((await resolveSource(dir, { engine: 'onnx' })).path).toBe(join(dir, 'net.onnx'));
  });

  it('asks which one when a folder holds several .onnx files', async () => {
    await writeFile(join(dir, 'a.onnx'), identityOnnx());
    await writeFile(join(dir, 'b.onnx'), identityOnnx());
    const err = await rejection(resolveSource(dir));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain('a.onnx, b.onnx');
  });
});

describe('local spec errors', () => {
  it('reports a missing path as "model not found: <path>"', async () => {
    const missing = join(dir, 'nope', 'model.json');
    const err = await rejection(resolveSource(missing));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toBe(`model not found: ${missing}`);
  });

  it('lists what it expected and what it found in a folder without a model', async () => {
    await writeFile(join(dir, 'weights.bin'), new Uint8Array(8));
    await mkdir(join(dir, 'sub'));
    const err = await rejection(resolveSource(dir));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain(`no model in folder ${dir}`);
    expect(err.message).toContain('model.json');
    expect(err.message).toContain('.onnx');
    expect(err.message).toContain('sub, weights.bin');
  });

  it('rejects a model.json that is not a TF.js model', async () => {
    await writeFile(join(dir, 'model.json'), JSON.stringify({ hello: 1 }));
    const err = await rejection(resolveSource(join(dir, 'model.json')));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain('no modelTopology');
  });

  it('rejects a weight path that leaves the model folder', async () => {
    await writeFile(
      join(dir, 'model.json'),
      JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ['../../etc/passwd'], weights: [] }] }),
    );
    const err = await rejection(resolveSource(dir));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain("'../../etc/passwd'");
  });

  it('makes an invalid camstream.json beside the model a ConfigError naming the file and field', async () => {
    await writeFile(join(dir, 'net.onnx'), identityOnnx());
    await writeFile(join(dir, 'camstream.json'), JSON.stringify({ inputSize: [0, 224] }));
    const err = await rejection(resolveSource(dir));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(join(dir, 'camstream.json'));
    expect(err.message).toContain("'inputSize'");
    expect(err.message).toContain('[0,224]');
  });

  it('reports a configured labels file that does not exist', async () => {
    await writeFile(join(dir, 'net.onnx'), identityOnnx());
    const err = await rejection(resolveSource(dir, { config: { labels: 'names.txt' } }));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain(join(dir, 'names.txt'));
  });

  it.each(['ftp://example.com/model.json', 'file:///tmp/model.json', 's3://bucket/model.onnx'])(
    'rejects the URL scheme of %s as a ConfigError',
    async (spec) => {
      const err = await rejection(resolveSource(spec));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toContain(spec);
      expect(err.message).toContain('http:, https:');
    },
  );

  it('rejects an unknown engine name', async () => {
    const err = await rejection(resolveSource(dir, { engine: 'torch' as never }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('"torch"');
  });
});

describe('paths in a local camstream.json stay inside the model folder', () => {
  let model: string;
  let outside: string;
  beforeEach(async () => {
    model = join(dir, 'model');
    await mkdir(join(model, 'sub'), { recursive: true });
    await writeFile(join(model, 'net.onnx'), identityOnnx());
    outside = join(dir, 'outside.txt');
    await writeFile(outside, 'private-1\nprivate-2\n');
  });

  async function refused(labels: string): Promise<Error> {
    await writeFile(join(model, 'camstream.json'), JSON.stringify({ labels }));
    const err = await rejection(resolveSource(model));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain("'labels'");
    expect(err.message).toContain('model folder');
    expect(err.message).not.toContain('private-');
    return err;
  }

  it('refuses an absolute labels path outside the folder', async () => {
    await refused(outside);
  });

  it("refuses a labels path that climbs out with '..'", async () => {
    await refused('../outside.txt');
    await refused('sub/../../outside.txt');
  });

  it('refuses a labels file inside the folder that is a symlink to a file outside', async () => {
    await symlink(outside, join(model, 'names.txt'));
    await refused('names.txt');
  });

  it('refuses labels under a symlinked folder that points outside', async () => {
    await symlink(dir, join(model, 'up'));
    await refused('up/outside.txt');
  });

  it('refuses a default labels.txt that is a symlink to a file outside', async () => {
    await symlink(outside, join(model, 'labels.txt'));
    const err = await rejection(resolveSource(model));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('labels.txt');
    expect(err.message).not.toContain('private-');
  });

  it('reads labels inside the folder, relative or absolute, and through symlinks that stay inside', async () => {
    await writeFile(join(model, 'sub', 'names.txt'), 'a\nb\n');
    await writeFile(join(model, 'camstream.json'), JSON.stringify({ labels: 'sub/names.txt' }));
    expect((await resolveSource(model)).labels).toEqual(['a', 'b']);
    await writeFile(join(model, 'camstream.json'), JSON.stringify({ labels: join(model, 'sub', 'names.txt') }));
    expect((await resolveSource(model)).labels).toEqual(['a', 'b']);
    await symlink(join(model, 'sub', 'names.txt'), join(model, 'labels.txt'));
    await rm(join(model, 'camstream.json'));
    expect((await resolveSource(model)).labels).toEqual(['a', 'b']);
  });

  it('lets the operator name any labels file through LoadOptions.config (the --labels option)', async () => {
    await writeFile(join(model, 'camstream.json'), JSON.stringify({ labels: outside }));
    const src = await resolveSource(model, { config: { labels: outside } });
    expect(src.labels).toEqual(['private-1', 'private-2']);
  });
});
