/**
 * Live soak: runs the server with two sources at once for N minutes and reports, every interval, the
 * tensor count, RSS, heap and the frames per second of each source. Flat within 5% is the target.
 *
 *   node bin/run-ts.js bench/live-soak.ts [--minutes 10] [--interval 10] [--fps 30] [--json FILE]
 *
 * In one process (so `tf.memory()` sees the engine's tensors): the embedded model (or the fixture Darknet
 * Tiny on tfjs/wasm), a looping server-side file (the fixture pedestrians clip) watched by a viewer, and a
 * webcam-like client sending JPEG frames at `--fps`. Numbers, not assertions.
 */
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { WebSocket } from 'ws';
import { load } from '../models/index.ts';
import type { ServerMessage } from '../protocol/index.ts';
import { startServer } from '../server/index.ts';
import { embeddedModel, FIXTURES, PacedSender, videoFrames } from './internal/live.ts';

export interface SoakSample {
  minute: number;
  numTensors: number;
  tensorMiB: number;
  rssMiB: number;
  heapMiB: number;
  /** Maps per second per source over the interval. */
  fileFps: number;
  webcamFps: number;
  /** Results this process received per second (both clients). */
  receivedFps: number;
  dropped: number;
}

function connect(url: string): Promise<WebSocket> {
  const ws = new WebSocket(new URL('ws', url.replace(/^http/, 'ws')));
  return new Promise((res, rej) => {
    ws.once('open', () => res(ws));
    ws.once('error', rej);
  });
}

export async function runLiveSoakBench(argv: string[]): Promise<SoakSample[]> {
  const { values } = parseArgs({
    args: argv,
    strict: false,
    options: { minutes: { type: 'string', default: '10' }, interval: { type: 'string', default: '10' }, fps: { type: 'string', default: '30' }, json: { type: 'string' }, quick: { type: 'boolean', default: false } },
  });
  const minutes = values.quick ? 1 : Number(values.minutes);
  const intervalS = values.quick ? 5 : Number(values.interval);
  const spec = embeddedModel();
  const labels = spec.args.includes('--labels') ? spec.args[spec.args.indexOf('--labels') + 1] : undefined;
  const model = await load(spec.spec, { backend: spec.args.includes('--backend') ? spec.args[spec.args.indexOf('--backend') + 1] : undefined, config: labels ? { labels } : undefined });
  const server = await startServer({ model, http: { port: 0 }, sources: { mediaRoot: join(FIXTURES, 'video') } });
  const samples: SoakSample[] = [];
  try {
    const viewer = await connect(server.url);
    let received = 0;
    viewer.on('message', (_d: Buffer, bin: boolean) => bin && received++);
    viewer.send(JSON.stringify({ type: 'select', source: { kind: 'file', path: 'opencv_vtest.avi', loop: true } }));
    const cam = await connect(server.url);
    cam.on('message', (d: Buffer, bin: boolean) => {
      if (bin) received++;
      else if ((JSON.parse(d.toString()) as ServerMessage).type === 'error') process.stderr.write(`soak: ${d.toString()}\n`);
    });
    const [h, w] = model.info.preprocess.inputSize;
    const sender = new PacedSender(cam, await videoFrames(w, h, 90), Number(values.fps));
    sender.start();
    const t0 = performance.now();
    let last = { at: t0, received: 0, file: 0, webcam: 0 };
    const endAt = t0 + minutes * 60_000;
    process.stderr.write(`live-soak: ${spec.name}, ${minutes} min, a sample every ${intervalS} s\n`);
    while (performance.now() < endAt) {
      await new Promise((r) => setTimeout(r, intervalS * 1000));
      const now = performance.now();
      const stats = server.stats().sources;
      const file = stats.find((s) => s.kind === 'file');
      const webcam = stats.find((s) => s.kind === 'webcam');
      const dt = (now - last.at) / 1000;
      const mem = tf.memory();
      const usage = process.memoryUsage();
      const sample: SoakSample = {
        minute: (now - t0) / 60_000,
        numTensors: mem.numTensors,
        tensorMiB: mem.numBytes / 2 ** 20,
        rssMiB: usage.rss / 2 ** 20,
        heapMiB: usage.heapUsed / 2 ** 20,
        fileFps: ((file?.processed ?? 0) - last.file) / dt,
        webcamFps: ((webcam?.processed ?? 0) - last.webcam) / dt,
        receivedFps: (received - last.received) / dt,
        dropped: (file?.dropped ?? 0) + (webcam?.dropped ?? 0),
      };
      samples.push(sample);
      last = { at: now, received, file: file?.processed ?? 0, webcam: webcam?.processed ?? 0 };
      process.stderr.write(`  ${sample.minute.toFixed(1)} min: ${sample.numTensors} tensors, RSS ${sample.rssMiB.toFixed(0)} MiB, file ${sample.fileFps.toFixed(1)} fps, webcam ${sample.webcamFps.toFixed(1)} fps\n`);
    }
    sender.stop();
    viewer.close();
    cam.close();
  } finally {
    await server.dispose();
    await model.dispose();
  }
  process.stdout.write(`\n## live soak: ${spec.name}\n\n${renderSoak(samples)}\n`);
  if (typeof values.json === 'string') await writeFile(values.json, JSON.stringify(samples, null, 2));
  return samples;
}

/** The table, and the drift of each figure from the first sample after warm-up to the last. */
export function renderSoak(samples: readonly SoakSample[]): string {
  const lines = ['| minute | tensors | tensor MiB | RSS MiB | heap MiB | file maps/s | webcam maps/s | received/s | dropped |', '|---|---|---|---|---|---|---|---|---|'];
  for (const s of samples) {
    lines.push(`| ${s.minute.toFixed(1)} | ${s.numTensors} | ${s.tensorMiB.toFixed(1)} | ${s.rssMiB.toFixed(0)} | ${s.heapMiB.toFixed(0)} | ${s.fileFps.toFixed(1)} | ${s.webcamFps.toFixed(1)} | ${s.receivedFps.toFixed(1)} | ${s.dropped} |`);
  }
  // The first sample includes warm-up (kernel compilation, allocator growth): drift is taken from the second.
  const base = samples[Math.min(1, samples.length - 1)];
  const end = samples[samples.length - 1];
  if (base && end) {
    const pct = (a: number, b: number) => (a === 0 ? (b === 0 ? '0.0%' : 'n/a') : `${((100 * (b - a)) / a).toFixed(1)}%`);
    const mean = (k: 'fileFps' | 'webcamFps', from: number, to: number) => {
      const xs = samples.slice(from, to).map((s) => s[k]);
      return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    };
    const half = Math.max(2, Math.floor(samples.length / 2));
    lines.push('', `Drift from minute ${base.minute.toFixed(1)} to ${end.minute.toFixed(1)}: tensors ${pct(base.numTensors, end.numTensors)}, RSS ${pct(base.rssMiB, end.rssMiB)}, heap ${pct(base.heapMiB, end.heapMiB)}; ` +
      `mean fps first half vs second half: file ${pct(mean('fileFps', 1, half), mean('fileFps', half, samples.length))}, webcam ${pct(mean('webcamFps', 1, half), mean('webcamFps', half, samples.length))}.`);
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await runLiveSoakBench(process.argv.slice(2));
