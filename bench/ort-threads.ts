/**
 * ONNX Runtime threads against ffmpeg: the plain ResNet-50-shaped network (random weights, 224x224) timed
 * at 1 and 2 intra-op threads, with ORT's spin-waiting on and off (`session.intra_op.allow_spinning`),
 * first alone, then while an ffmpeg x264 encode of a 720p test pattern (what the video pipeline's
 * compositor does) runs beside it. Numbers, never assertions.
 *
 *   node bin/run-ts.js bench/ort-threads.ts [--runs 20] [--json FILE] [--model resnet50|mobilenetv2]
 *
 * Interleaved (each configuration once per round) so that outside load hits all alike. ms = median
 * forward time (three forwards per sample).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { locateCliFfmpeg } from '../cli/ffmpeg.ts';
import { createRandom } from '../lab/builders/index.ts';
import { prepareModel, type BenchModelName } from './internal/models.ts';
import { summarize, type Timing } from './internal/measure.ts';

export interface OrtThreadsRow {
  threads: number;
  spinning: boolean;
  beside: 'alone' | 'ffmpeg x264 720p';
  forward: Timing;
}

async function session(path: string, threads: number, spinning: boolean): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    extra: { session: { intra_op: { allow_spinning: spinning ? '1' : '0' } } },
  });
}

/** An endless x264 veryfast encode of a 720p test pattern, as fast as it goes (the compositor's kind of work). */
function backgroundEncoder(ffmpeg: string): ChildProcess {
  // ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=30 -c:v libx264 -preset veryfast -crf 23 -f null -
  return spawn(ffmpeg, ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30',
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-threads', '0', '-f', 'null', '-'], { stdio: 'ignore' });
}

export async function runOrtThreadsBench(argv: readonly string[]): Promise<OrtThreadsRow[]> {
  const { values } = parseArgs({
    args: [...argv],
    options: { runs: { type: 'string', default: '20' }, json: { type: 'string' }, model: { type: 'string', default: 'resnet50' } },
    strict: true,
  });
  const runs = Number(values.runs);
  const dir = await mkdtemp(join(tmpdir(), 'camstream-ort-threads-'));
  try {
    const prepared = await prepareModel(values.model as BenchModelName, dir, [224, 224]);
    const x = new ort.Tensor('float32', createRandom(7).normalArray(3 * 224 * 224, 1), [1, 3, 224, 224]);
    const configs = [1, 2].filter((t) => t <= availableParallelism()).flatMap((threads) => [true, false].map((spinning) => ({ threads, spinning })));
    const sessions = await Promise.all(configs.map((c) => session(prepared.onnxPath, c.threads, c.spinning)));
    const inputName = sessions[0].inputNames[0];
    for (const s of sessions) for (let i = 0; i < 2; i++) await s.run({ [inputName]: x });
    const rows: OrtThreadsRow[] = [];
    const tools = await locateCliFfmpeg();
    for (const beside of ['alone', 'ffmpeg x264 720p'] as const) {
      const bg = beside === 'alone' ? undefined : backgroundEncoder(tools.ffmpeg.path);
      if (bg) await new Promise((r) => setTimeout(r, 1500));
      const samples = configs.map(() => [] as number[]);
      try {
        for (let round = 0; round < runs; round++) {
          for (let i = 0; i < configs.length; i++) {
            const t0 = performance.now();
            for (let k = 0; k < 3; k++) await sessions[i].run({ [inputName]: x });
            samples[i].push((performance.now() - t0) / 3);
          }
        }
      } finally {
        bg?.kill('SIGKILL');
      }
      configs.forEach((c, i) => rows.push({ ...c, beside, forward: summarize(samples[i], samples[i][0]) }));
    }
    for (const s of sessions) await s.release();
    const lines = [
      `## ORT intra-op threads vs spinning (${values.model}, 224x224, plain session); load average ${loadavg()[0].toFixed(1)}`,
      '',
      '| threads | spinning | beside | forward ms median (min) | forward fps |',
      '|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.threads} | ${r.spinning ? 'on' : 'off'} | ${r.beside} | ${r.forward.medianMs.toFixed(1)} (${r.forward.minMs.toFixed(1)}) | ${(1000 / r.forward.medianMs).toFixed(1)} |`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (values.json) await writeFile(values.json, `${JSON.stringify(rows, null, 2)}\n`);
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('bench/ort-threads.ts')) {
  await runOrtThreadsBench(process.argv.slice(2));
  // ORT may keep its thread pools alive after release; the table is out.
  process.exit(0);
}
