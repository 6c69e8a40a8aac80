/**
 * Forward + CAM bench: per engine and backend present, and per model (ResNet-50- and MobileNetV2-shaped,
 * random weights, 224x224), the plain forward pass, camstream's `infer()` (preprocess + forward + CAM,
 * top-5 maps read back), the CAM share, threads, load times and peak RSS. Numbers, never assertions.
 *
 *   node bin/run-ts.js bench/forward-cam.ts [--quick] [--json FILE] [--models resnet50,mobilenetv2]
 *     [--cases onnx/cpu,tfjs/wasm,tfjs/cpu,tfjs/tensorflow] [--threads N] [--frame 640x480] [--top 5]
 *     [--all] [--dir DIR]
 *
 * Each case runs in a child process of its own (clean engine state, its own peak RSS). See bench/README.md.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { EngineName } from '../models/index.ts';
import { type CaseResult, type CaseSpec, runCase } from './internal/case.ts';
import { DEFAULT_PLAN, type MeasurePlan, QUICK_PLAN } from './internal/measure.ts';
import { BENCH_MODELS, type BenchModelName, type PreparedModel, prepareModel } from './internal/models.ts';
import { probeGflops } from './internal/probe.ts';
import { type CaseRow, REFERENCE_FORWARD_MS, renderModels, renderTable } from './internal/report.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const THIS_FILE = fileURLToPath(import.meta.url);
const INPUT_SIZE: [number, number] = [224, 224];

/** Engine/backend pairs the bench knows, in the order they run. */
const ALL_CASES = ['onnx/cpu', 'tfjs/tensorflow', 'tfjs/wasm', 'tfjs/cpu'] as const;

export interface ForwardCamReport {
  bench: 'forward-cam';
  date: string;
  machine: { cpus: number; cpuModel: string; node: string; platform: string };
  versions: Record<string, string>;
  plan: MeasurePlan;
  /** Single-thread sgemm GFLOP/s at the start and the end (how much CPU the bench got). */
  probeGflops: [number, number];
  frameSize: [number, number];
  topK: number;
  reference: Record<string, number>;
  models: PreparedModel[];
  cases: CaseRow[];
  note: string;
}

const NOISE_NOTE =
  'Times are medians of interleaved runs (forward, infer at model size, infer on a larger frame, in turn), so a ' +
  'burst of outside load hits all three alike: compare ratios within a row (the CAM shares) rather than absolute ' +
  'times, which vary with whatever else the machine runs (see the load average column).';

function usage(message: string): never {
  process.stderr.write(`forward-cam: ${message}\n`);
  process.exit(2);
}

function versionOf(pkg: string): string {
  try {
    const require = createRequire(import.meta.url);
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

function installed(pkg: string): boolean {
  return versionOf(pkg) !== 'not installed';
}

/** The native TF bindings are optional: the tfjs/tensorflow case runs only where one is installed. */
function casePresent(name: (typeof ALL_CASES)[number]): boolean {
  return name !== 'tfjs/tensorflow' || installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');
}

/** Runs one case in a child process; resolves to its result or a one-line error. */
async function runChild(spec: CaseSpec, dir: string, index: number): Promise<{ result?: CaseResult; error?: string }> {
  const specFile = join(dir, `case-${index}.json`);
  const outFile = join(dir, `result-${index}.json`);
  await writeFile(specFile, JSON.stringify(spec));
  const args = [join(ROOT, 'bin', 'run-ts.js'), THIS_FILE, '--worker', specFile, '--out', outFile];
  const stderr: string[] = [];
  const code = await new Promise<number | null>((done, fail) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr.push(chunk);
      // Keep the tail only.
      if (stderr.length > 200) stderr.splice(0, stderr.length - 200);
    });
    child.on('error', fail);
    child.on('close', (exitCode, signal) => done(exitCode ?? (signal ? -1 : null)));
  });
  if (code === 0) return { result: JSON.parse(await readFile(outFile, 'utf8')) as CaseResult };
  const lines = stderr.join('').split('\n').map((l) => l.trim()).filter(Boolean);
  const reason = lines.filter((l) => /error/i.test(l)).pop() ?? lines.pop() ?? `exit code ${code}`;
  return { error: reason.replace(/\|/g, '/').slice(0, 200) };
}

/** Parent: prepare the models, run every case, print the table, write JSON. */
export async function runForwardCamBench(argv: readonly string[]): Promise<ForwardCamReport> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      models: { type: 'string', default: BENCH_MODELS.join(',') },
      cases: { type: 'string', default: ALL_CASES.join(',') },
      threads: { type: 'string', default: String(availableParallelism()) },
      frame: { type: 'string', default: '640x480' },
      top: { type: 'string', default: '5' },
      all: { type: 'boolean', default: false },
      dir: { type: 'string' },
    },
    strict: true,
  });
  const models = values.models.split(',').map((m) => m.trim());
  for (const m of models) {
    if (!(BENCH_MODELS as readonly string[]).includes(m)) usage(`--models: unknown model '${m}' (known: ${BENCH_MODELS.join(', ')})`);
  }
  const cases = values.cases.split(',').map((c) => c.trim());
  for (const c of cases) {
    if (!(ALL_CASES as readonly string[]).includes(c)) usage(`--cases: unknown case '${c}' (known: ${ALL_CASES.join(', ')})`);
  }
  const threads = Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1 || threads > availableParallelism()) {
    usage(`--threads must be an integer from 1 to ${availableParallelism()}, got ${values.threads}`);
  }
  const frame = /^(\d+)x(\d+)$/.exec(values.frame);
  if (!frame || Number(frame[1]) < 1 || Number(frame[2]) < 1) usage(`--frame must be WIDTHxHEIGHT, got ${values.frame}`);
  const frameSize: [number, number] = [Number(frame[1]), Number(frame[2])];
  const topK = Number(values.top);
  if (!Number.isInteger(topK) || topK < 1) usage(`--top must be a positive integer, got ${values.top}`);
  const plan = values.quick ? QUICK_PLAN : DEFAULT_PLAN;

  const dir = values.dir ? resolve(values.dir) : await mkdtemp(join(tmpdir(), 'camstream-bench-'));
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  try {
    const probeStart = await probeGflops();
    log(`machine probe: ${probeStart.toFixed(0)} GFLOP/s single-thread sgemm`);
    const prepared: PreparedModel[] = [];
    for (const name of models as BenchModelName[]) {
      log(`building ${name} ...`);
      prepared.push(await prepareModel(name, dir, INPUT_SIZE));
    }

    const plannedCases: Array<{ engine: EngineName; backend: string; model: PreparedModel }> = [];
    for (const c of ALL_CASES) {
      if (!cases.includes(c) || !casePresent(c)) continue;
      const [engine, backend] = c.split('/') as [EngineName, string];
      for (const model of prepared) {
        // Plain-JS tfjs takes seconds per ResNet-50 frame: only with --all.
        if (c === 'tfjs/cpu' && model.name === 'resnet50' && !values.all) continue;
        plannedCases.push({ engine, backend, model });
      }
    }

    const rows: CaseRow[] = [];
    for (const [i, c] of plannedCases.entries()) {
      log(`[${i + 1}/${plannedCases.length}] ${c.engine}/${c.backend} ${c.model.name} ...`);
      const spec: CaseSpec = {
        engine: c.engine,
        backend: c.backend,
        model: c.model.name,
        path: c.engine === 'onnx' ? c.model.onnxPath : c.model.tfjsPath,
        ...(c.engine === 'tfjs' ? { foldedPath: c.model.tfjsFoldedPath } : {}),
        inputSize: c.model.inputSize,
        threads,
        frameSize,
        topK,
        plan,
      };
      const loadStart = loadavg()[0];
      const outcome = await runChild(spec, dir, i);
      rows.push({ engine: c.engine, backend: c.backend, model: c.model.name, loadAvg: [loadStart, loadavg()[0]], ...outcome });
      if (outcome.error) log(`  failed: ${outcome.error}`);
      else log(`  forward ${outcome.result!.forward.medianMs.toFixed(2)} ms, infer ${outcome.result!.inferModel.medianMs.toFixed(2)} ms`);
    }

    const probeEnd = await probeGflops();
    const report: ForwardCamReport = {
      bench: 'forward-cam',
      date: new Date().toISOString(),
      machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, platform: process.platform },
      versions: Object.fromEntries(
        ['onnxruntime-node', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node'].map((p) => [p, versionOf(p)]),
      ),
      plan,
      probeGflops: [probeStart, probeEnd],
      frameSize,
      topK,
      reference: { ...REFERENCE_FORWARD_MS },
      models: prepared,
      cases: rows,
      note: NOISE_NOTE,
    };

    const md = [
      `## forward + CAM, ${INPUT_SIZE[0]}x${INPUT_SIZE[1]}, top-${topK} maps, ${threads} thread(s) asked, ${report.machine.cpus} cores (${report.machine.cpuModel})`,
      '',
      renderTable(rows, frameSize),
      '',
      renderModels(prepared),
      '',
      `Machine probe (single-thread ONNX Runtime sgemm 512^3, best of 15): ${probeStart.toFixed(0)} GFLOP/s before, ` +
        `${probeEnd.toFixed(0)} GFLOP/s after.`,
      '',
      'CAM share = (infer at model size - forward) / forward: uint8 input, normalization, CAM, top-k and read-back ' +
        '(from the medians, and from the fastest runs). ' +
        `CAM+resize share adds bilinear resizing of a ${frameSize[0]}x${frameSize[1]} frame. ` +
        'forward / ref compares with the ORT figures measured when issue 2 was written (2 threads). ' +
        'forward, BN folded (tfjs): the same network with batchnorm folded into the convs, as a graph converter ' +
        'would emit it (ORT folds at session creation by itself).',
      '',
      NOISE_NOTE,
    ].join('\n');
    process.stdout.write(`${md}\n`);
    if (values.json) {
      await writeFile(values.json, `${JSON.stringify(report, null, 2)}\n`);
      log(`wrote ${values.json}`);
    }
    return report;
  } finally {
    if (!values.dir) await rm(dir, { recursive: true, force: true });
  }
}

/** Child: run the case described in `--worker FILE`, write its result to `--out FILE`. */
async function worker(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({ args: [...argv], options: { worker: { type: 'string' }, out: { type: 'string' } } });
  if (!values.worker || !values.out) usage('--worker and --out go together');
  const spec = JSON.parse(await readFile(values.worker, 'utf8')) as CaseSpec;
  const result = await runCase(spec);
  await writeFile(values.out, JSON.stringify(result));
}

const isMain = process.argv[1] !== undefined && pathToFileURL(resolve(process.argv[1])).href === import.meta.url;
if (isMain) {
  const argv = process.argv.slice(2);
  if (argv.includes('--worker')) {
    await worker(argv);
    // Engines may keep worker threads alive after dispose; the case is done and its result written.
    process.exit(0);
  } else {
    await runForwardCamBench(argv);
  }
}
