/**
 * `camstream` as scripts use it (issue 16, items 8-11): a reader that closes early, the documented exit
 * statuses, runs that go past a bad file, classes by name and raw maps saved as .npy and 16-bit PNG.
 * Real processes, a real (small, random-weight) TF.js model and real image files.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '@tensorflow/tfjs-backend-cpu';
import { smallGapDenseNet, writeLayersModel } from '../../lab/builders/index.ts';
import { runCli } from '../helpers/cli.ts';
import { startCli } from '../helpers/cli-process.ts';

const LABELS = ['tabby cat', 'fox squirrel', 'orange', 'kite'];

interface JsonTop {
  index: number;
  label: string;
  score: number;
  box: number[] | null;
  overlay?: string;
  npy?: string;
  png?: string;
  map?: number[][];
}
interface JsonRecord {
  file: string;
  width?: number;
  height?: number;
  top?: JsonTop[];
  error?: string;
}

let tmp: string;
let model: string;
const photos: string[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'camstream-scripting-'));
  model = join(tmp, 'four-classes');
  await writeLayersModel(smallGapDenseNet(11, { inputSize: [32, 32], numClasses: 4, width: 4 }), model);
  await writeFile(join(model, 'labels.txt'), `${LABELS.join('\n')}\n`);
  const colours = ['#c04020', '#20a040', '#2040c0', '#e0e020', '#808080', '#40c0c0'];
  for (const [i, background] of colours.entries()) {
    const file = join(tmp, `photo-${i}.png`);
    // Not a flat colour: a bright square somewhere, so maps and boxes differ between photos.
    const square = await sharp({ create: { width: 30, height: 30, channels: 3, background: '#ffffff' } }).png().toBuffer();
    await sharp({ create: { width: 120, height: 90, channels: 3, background } })
      .composite([{ input: square, left: 10 + i * 12, top: 20 + i * 5 }])
      .png()
      .toFile(file);
    photos.push(file);
  }
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const base = () => ['--model', model, '--backend', 'cpu'];

describe('camstream image in a pipe', () => {
  it('exits 0 and prints nothing more when the reader of stdout goes away (image ... | head -1)', async () => {
    // Many images, so the process still has records to write after the reader has gone.
    const cli = startCli(['image', ...Array.from({ length: 12 }, (_, i) => photos[i % photos.length]), ...base(), '-q']);
    await cli.waitFor(/\n/);
    cli.child.stdout!.destroy();
    const code = await cli.exited;
    expect(cli.stderr()).not.toMatch(/EPIPE|WasmBackendModule|Error/);
    expect(code).toBe(0);
  });

  it('keeps the TF.js "install our node backend" banner out of stdout and stderr', async () => {
    const run = await runCli(['image', photos[0], ...base()]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout + run.stderr).not.toMatch(/looks like you are running TensorFlow\.js|={10}/);
  });
});

describe('camstream exit statuses, one per README row', () => {
  it('0: success', async () => {
    const run = await runCli(['image', photos[0], ...base(), '-q']);
    expect(run.code, run.stderr).toBe(0);
  });

  it('2: a missing required option', async () => {
    const run = await runCli(['video', join(tmp, 'in.mp4')]);
    expect(run.stderr).toMatch(/required option '-o, --out <file>' not specified/);
    expect(run.code).toBe(2);
  });

  it('2: an unknown option', async () => {
    const run = await runCli(['image', photos[0], '--no-such-option']);
    expect(run.stderr).toMatch(/unknown option '--no-such-option'/);
    expect(run.code).toBe(2);
  });

  it('2: a class index the model does not have, naming it and the range', async () => {
    const run = await runCli(['image', photos[0], ...base(), '--classes', '2000', '-q']);
    expect(run.stderr).toMatch(/2000/);
    expect(run.stderr).toMatch(/0-3|\[0, 3\]/);
    expect(run.code).toBe(2);
  });

  it('3: a missing image', async () => {
    const run = await runCli(['image', join(tmp, 'missing.jpg'), ...base(), '-q']);
    expect(run.stderr).toContain(`image not found: ${join(tmp, 'missing.jpg')}`);
    expect(run.code).toBe(3);
  });

  it('3: a missing video, before ffprobe runs', async () => {
    const missing = join(tmp, 'missing.mp4');
    const run = await runCli(['video', missing, '-o', join(tmp, 'out.mp4'), ...base(), '-q']);
    expect(run.stderr).toContain(`video not found: ${missing}`);
    expect(run.code).toBe(3);
  });

  it('4: a model that does not exist', async () => {
    const run = await runCli(['image', photos[0], '--model', join(tmp, 'no-model'), '-q']);
    expect(run.code).toBe(4);
  });

  it('5: ffmpeg cannot read the video', async () => {
    const broken = join(tmp, 'broken.mp4');
    await writeFile(broken, 'not a video at all\n'.repeat(50));
    const run = await runCli(['video', broken, '-o', join(tmp, 'broken.out.mp4'), ...base(), '--top', '2', '-q']);
    expect(run.stderr).toContain(broken);
    expect(run.code).toBe(5);
  });
});

describe('camstream image past a bad file', () => {
  it('goes on after a missing file, reports it on stderr and in --json, and exits 3 at the end', async () => {
    const missing = join(tmp, 'gone.jpg');
    const run = await runCli(['image', photos[0], missing, photos[1], ...base(), '--json', '-q']);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`image not found: ${missing}`);
    const records = JSON.parse(run.stdout) as JsonRecord[];
    expect(records.map((r) => r.file)).toEqual([photos[0], missing, photos[1]]);
    expect(records[0].top).toHaveLength(4);
    expect(records[1].error).toMatch(/image not found/);
    expect(records[1].top).toBeUndefined();
    expect(records[2].top).toHaveLength(4);
  });

  it('prints the good files in text mode too, and the failure on stderr', async () => {
    const notImage = join(tmp, 'notes.png');
    await writeFile(notImage, 'no pixels here\n');
    const run = await runCli(['image', notImage, photos[2], ...base(), '-q']);
    expect(run.code).toBe(3);
    expect(run.stdout).toContain(photos[2]);
    expect(run.stderr).toContain(notImage);
  });
});

describe('camstream image classes by name, sorted results and raw maps', () => {
  it('sorts --top results by score in --json', async () => {
    const run = await runCli(['image', ...photos, ...base(), '--json', '-q']);
    expect(run.code, run.stderr).toBe(0);
    for (const r of JSON.parse(run.stdout) as JsonRecord[]) {
      const scores = r.top!.map((t) => t.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
    }
  });

  it('sorts requested --classes by score too, whatever order they were asked in', async () => {
    const run = await runCli(['image', ...photos, ...base(), '--classes', '3,0,2,1', '--json', '-q']);
    expect(run.code, run.stderr).toBe(0);
    for (const r of JSON.parse(run.stdout) as JsonRecord[]) {
      expect(r.top!.map((t) => t.index).sort()).toEqual([0, 1, 2, 3]);
      const scores = r.top!.map((t) => t.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
    }
  });

  it('accepts class names from the labels, mixed with indices, and writes one overlay per class', async () => {
    const out = join(tmp, 'by-name');
    const run = await runCli(['image', photos[0], ...base(), '--classes', 'fox squirrel, orange,0', '--out', out, '--json', '-q']);
    expect(run.code, run.stderr).toBe(0);
    const [record] = JSON.parse(run.stdout) as JsonRecord[];
    expect(record.top!.map((t) => t.label).sort()).toEqual(['fox squirrel', 'orange', 'tabby cat']);
    const files = (await readdir(out)).sort();
    expect(files).toEqual(['photo-0.c0.cam.png', 'photo-0.c1.cam.png', 'photo-0.c2.cam.png']);
    for (const t of record.top!) expect(t.overlay).toBe(join(out, `photo-0.c${t.index}.cam.png`));
  });

  it('refuses an unknown class name, listing close matches, exit 2', async () => {
    const run = await runCli(['image', photos[0], ...base(), '--classes', 'fox squirel', '-q']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("'fox squirel'");
    expect(run.stderr).toContain('fox squirrel');
  });

  it('--maps-out writes a float32 .npy per class equal to the JSON map, and a 16-bit PNG at image size', async () => {
    const dir = join(tmp, 'maps');
    const run = await runCli(['image', photos[1], ...base(), '--top', '2', '--maps-out', dir, '--json', '-q']);
    expect(run.code, run.stderr).toBe(0);
    const [record] = JSON.parse(run.stdout) as JsonRecord[];
    expect(record.top).toHaveLength(2);
    for (const t of record.top!) {
      expect(t.npy).toBe(join(dir, `photo-1.c${t.index}.npy`));
      const npy = readNpy(await readFile(t.npy!));
      expect(npy.descr).toBe('<f4');
      expect(npy.fortran).toBe(false);
      // The model's feature map of a 32x32 input.
      expect(npy.shape).toEqual([t.map!.length, t.map![0].length]);
      expect(Array.from(npy.data)).toEqual(t.map!.flat());
      const meta = await sharp(t.png!).metadata();
      expect([meta.width, meta.height, meta.depth, meta.channels]).toEqual([120, 90, 'ushort', 1]);
      // The PNG is the same map, scaled to 0-65535: its brightest pixel lies where the map peaks.
      const { data } = await sharp(t.png!).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
      const px = new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
      const flat = t.map!.flat();
      const peak = flat.indexOf(Math.max(...flat));
      const [h, w] = npy.shape;
      // The map cell's centre, in image pixels (the model input is stretched over the whole image).
      const cx = Math.floor((((peak % w) + 0.5) * 120) / w);
      const cy = Math.floor(((Math.floor(peak / w) + 0.5) * 90) / h);
      expect(px[cy * 120 + cx]).toBeGreaterThan(64000);
      expect(Math.min(...px)).toBeLessThan(65535 * 0.05);
    }
  });
});

/** A minimal NPY v1.0 reader: magic, version, little-endian header length, the header dict, float32 data. */
function readNpy(buf: Buffer): { descr: string; fortran: boolean; shape: number[]; data: Float32Array } {
  expect(buf.subarray(0, 6).equals(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]))).toBe(true);
  expect([buf[6], buf[7]]).toEqual([1, 0]);
  const headerLength = buf.readUInt16LE(8);
  expect((10 + headerLength) % 64).toBe(0);
  const header = buf.subarray(10, 10 + headerLength).toString('latin1');
  expect(header.endsWith('\n')).toBe(true);
  const descr = /'descr':\s*'([^']+)'/.exec(header)![1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)![1] === 'True';
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)![1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const body = buf.subarray(10 + headerLength);
  const data = new Float32Array(body.length / 4);
  for (let i = 0; i < data.length; i++) data[i] = body.readFloatLE(i * 4);
  expect(data.length).toBe(shape.reduce((a, b) => a * b, 1));
  return { descr, fortran, shape, data };
}
