/**
 * Helpers of the live benches (live-latency.ts, live-soak.ts): the models they run, frames from a fixture
 * video at model size, and a paced 30 fps webcam-like sender. (Percentiles: common/stats.ts, shared with the client.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { firstValueFrom, toArray } from 'rxjs';
import sharp from 'sharp';
import { WebSocket } from 'ws';
import { defaultModelDir } from '../../cli/model.ts';
import { resnet50Spec, toOnnxModel } from '../../lab/builders/index.ts';
import type { Frame } from '../../models/index.ts';
import { decodeFrames$ } from '../../pipelines/ffmpeg/index.ts';
import { encodeFrame, FrameEncoding } from '../../protocol/index.ts';
import { BENCH_PREPROCESS } from './models.ts';

export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
export const FIXTURES = process.env.CAMSTREAM_FIXTURES ?? resolve(ROOT, '..', 'shared', 'fixtures');

/** A model the live benches run: a spec `load` and `camstream serve --model` accept, and a name. */
export interface LiveBenchModel {
  name: string;
  spec: string;
  /** Extra `camstream serve` arguments. */
  args: string[];
}

/** The embedded model when installed, else the fixture Darknet Tiny (the same family, tfjs/wasm). */
export function embeddedModel(): LiveBenchModel {
  const zoo = defaultModelDir();
  if (zoo) return { name: `embedded (${zoo.split('/').pop()})`, spec: zoo, args: [] };
  const darknet = join(FIXTURES, 'models', 'darknet_tiny_ml5');
  if (!existsSync(darknet)) throw new Error('no embedded model in models/zoo and no fixture Darknet model: nothing to run');
  return { name: 'darknet_tiny_ml5 (fixture; no embedded model installed)', spec: darknet, args: ['--backend', 'wasm', '--labels', join(darknet, 'imagenet1k_darknet_shortnames.txt')] };
}

/** ResNet-50 v1.5 with random, calibrated weights as ONNX (ORT cpu), written under `dir`. */
export async function resnet50Model(dir: string): Promise<LiveBenchModel> {
  const folder = join(dir, 'resnet50');
  await mkdir(folder, { recursive: true });
  const file = join(folder, 'resnet50.onnx');
  await writeFile(file, toOnnxModel(resnet50Spec({ seed: 2016, inputSize: [224, 224] })));
  await writeFile(join(folder, 'camstream.json'), JSON.stringify(BENCH_PREPROCESS));
  return { name: 'resnet50 (onnx/cpu, random weights)', spec: file, args: [] };
}

/** `count` frames of a fixture video (or ffmpeg's test pattern) at `width` x `height`, RGB. */
export async function videoFrames(width: number, height: number, count: number): Promise<Frame[]> {
  const clip = join(FIXTURES, 'video', 'opencv_vtest.avi');
  const input = existsSync(clip) ? clip : `lavfi-unavailable`;
  const frames = await firstValueFrom(decodeFrames$(input, { width, height, maxFrames: count, scaleFlags: 'area' }).pipe(toArray()));
  return frames.map((f) => ({ data: f.data.slice(), width: f.width, height: f.height }));
}

/** Starts `camstream serve` in a child process; resolves with its URL once it prints it. */
export async function spawnServe(args: string[]): Promise<{ url: string; child: ChildProcess; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'camstream.js'), 'serve', '--port', '0', '--quiet', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /camstream serve: (\S+)/.exec(out);
      if (m) resolveUrl(m[1]);
    });
    child.once('close', (code) => reject(new Error(`camstream serve exited ${code}: ${stderr.trim()}`)));
  });
  return {
    url,
    child,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A webcam-like client: JPEG-encodes a frame every 1/fps s (the capture clock starts before encoding, as
 * in the browser) and sends it whatever the server answers; latency is taken when a result is decoded.
 */
export class PacedSender {
  sent = 0;
  private timer: NodeJS.Timeout | undefined;
  private next = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly frames: readonly Frame[],
    private readonly fps: number,
  ) {}

  start(): void {
    const period = 1000 / this.fps;
    const t0 = performance.now();
    const tick = async (): Promise<void> => {
      const f = this.frames[this.sent % this.frames.length];
      const captureMs = performance.now();
      const jpeg = await sharp(f.data, { raw: { width: f.width, height: f.height, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
      if (this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(encodeFrame({ frameId: this.sent, captureMs, encoding: FrameEncoding.Jpeg, width: f.width, height: f.height, payload: jpeg }));
      }
      this.sent++;
      this.next++;
      // Drift-free pacing: the n-th frame leaves at t0 + n * period.
      this.timer = setTimeout(() => void tick(), Math.max(0, t0 + this.next * period - performance.now()));
    };
    void tick();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
