/**
 * Live latency: p50/p95 from frame capture to map on the client, per model, at a steady input rate.
 *
 *   node bin/run-ts.js bench/live-latency.ts [--seconds 20] [--warmup 3] [--fps 30] [--live-models embedded,resnet50]
 *       [--threads N] [--json FILE]
 *
 * Each model runs in a real `camstream serve` child process; this process is the client: it JPEG-encodes
 * fixture frames at model size at `--fps` (capture time taken before encoding, as the browser does), sends
 * them whatever the server answers (the server drops frames while the model is busy), and takes the
 * latency when a result message has been decoded. Numbers, not assertions.
 */
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { percentile } from '../common/index.ts';
import { decodeResult, type ServerMessage } from '../protocol/index.ts';
import { embeddedModel, PacedSender, resnet50Model, spawnServe, videoFrames, type LiveBenchModel } from './internal/live.ts';

export interface LatencyRow {
  model: string;
  engine: string;
  inputFps: number;
  seconds: number;
  sent: number;
  results: number;
  resultsPerSecond: number;
  dropped: number;
  p50Ms: number;
  p95Ms: number;
  meanMs: number;
  serverInferP50Ms: number;
  serverTotalP50Ms: number;
  loadAvg: [number, number];
}

async function measure(model: LiveBenchModel, o: { seconds: number; warmup: number; fps: number; threads?: number }): Promise<LatencyRow> {
  const load0 = loadavg()[0];
  const serve = await spawnServe(['--model', model.spec, ...model.args, ...(o.threads ? ['--threads', String(o.threads)] : [])]);
  try {
    const wsUrl = new URL('ws', serve.url.replace(/^http/, 'ws'));
    const ws = new WebSocket(wsUrl);
    const hello = await new Promise<ServerMessage & { type: 'hello' }>((resolve, reject) => {
      ws.on('message', (d: Buffer, bin: boolean) => {
        if (!bin) {
          const m = JSON.parse(d.toString()) as ServerMessage;
          if (m.type === 'hello') resolve(m);
        }
      });
      ws.once('error', reject);
    });
    const [h, w] = hello.model.inputSize;
    const frames = await videoFrames(w, h, 90);
    const latencies: number[] = [];
    const infer: number[] = [];
    const server: number[] = [];
    let results = 0;
    let dropped = 0;
    let measuring = false;
    ws.on('message', (d: Buffer, bin: boolean) => {
      if (!bin) return;
      const r = decodeResult(new Uint8Array(d));
      const latency = performance.now() - r.captureMs;
      dropped = r.dropped;
      if (!measuring) return;
      results++;
      latencies.push(latency);
      infer.push(r.timings.inferMs);
      server.push(r.timings.serverMs);
    });
    const sender = new PacedSender(ws, frames, o.fps);
    sender.start();
    await new Promise((r) => setTimeout(r, o.warmup * 1000));
    const sent0 = sender.sent;
    const dropped0 = dropped;
    measuring = true;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, o.seconds * 1000));
    measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    sender.stop();
    ws.close();
    return {
      model: model.name,
      engine: `${hello.model.engine}/${hello.model.backend}`,
      inputFps: o.fps,
      seconds,
      sent: sender.sent - sent0,
      results,
      resultsPerSecond: results / seconds,
      dropped: dropped - dropped0,
      p50Ms: percentile(latencies, 0.5),
      p95Ms: percentile(latencies, 0.95),
      meanMs: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
      serverInferP50Ms: percentile(infer, 0.5),
      serverTotalP50Ms: percentile(server, 0.5),
      loadAvg: [load0, loadavg()[0]],
    };
  } finally {
    await serve.stop();
  }
}

export function renderLatencyTable(rows: readonly LatencyRow[]): string {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '–');
  const lines = [
    '| model | engine | input fps | maps/s | dropped | p50 ms | p95 ms | mean ms | server infer p50 ms | server total p50 ms | load avg |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.model} | ${r.engine} | ${r.inputFps} | ${f(r.resultsPerSecond)} | ${r.dropped} / ${r.sent} | ${f(r.p50Ms)} | ${f(r.p95Ms)} | ${f(r.meanMs)} | ${f(r.serverInferP50Ms)} | ${f(r.serverTotalP50Ms)} | ${r.loadAvg.map((v) => v.toFixed(1)).join(' → ')} |`);
  }
  return lines.join('\n');
}

export async function runLiveLatencyBench(argv: string[]): Promise<LatencyRow[]> {
  const { values } = parseArgs({
    args: argv,
    strict: false,
    options: {
      seconds: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '3' },
      fps: { type: 'string', default: '30' },
      'live-models': { type: 'string', default: 'embedded,resnet50' },
      threads: { type: 'string' },
      json: { type: 'string' },
      quick: { type: 'boolean', default: false },
    },
  });
  const seconds = values.quick ? 8 : Number(values.seconds);
  const o = { seconds, warmup: Number(values.warmup), fps: Number(values.fps), threads: values.threads ? Number(values.threads) : undefined };
  const dir = await mkdtemp(join(tmpdir(), 'camstream-live-bench-'));
  const rows: LatencyRow[] = [];
  try {
    for (const name of String(values['live-models']).split(',')) {
      const model = name === 'resnet50' ? await resnet50Model(dir) : embeddedModel();
      process.stderr.write(`live-latency: ${model.name} at ${o.fps} fps for ${seconds} s...\n`);
      rows.push(await measure(model, o));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`\n## live latency: frame capture to map on the client\n\n${renderLatencyTable(rows)}\n`);
  if (typeof values.json === 'string') await writeFile(values.json, JSON.stringify(rows, null, 2));
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await runLiveLatencyBench(process.argv.slice(2));
