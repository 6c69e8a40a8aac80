/**
 * Where ONNX Runtime spends a frame: runs the plain bench model and camstream's extended graph (the same
 * rewrite the engine does at load: preprocessing nodes before, CAM nodes after) with ORT's profiler on,
 * and sums kernel time per operator type and per origin (the model's own nodes vs the added `cam/` ones).
 *
 *   node bin/run-ts.js bench/profile-ort.ts [--model resnet50|mobilenetv2] [--runs 30] [--threads N]
 *     [--frame 224x224] [--json FILE]
 *
 * Numbers, never assertions; see bench/README.md.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { createRandom } from '../lab/builders/index.ts';
import { CAM_IO, GraphView, discoverOnnxHead, discoverOnnxInput, extendOnnxModel, fitFeeds, parseOnnxModel } from '../models/onnx/index.ts';
import { resolvePreprocess } from '../models/index.ts';
import { summarize, type Timing } from './internal/measure.ts';
import { BENCH_MODELS, BENCH_PREPROCESS, type BenchModelName, prepareModel } from './internal/models.ts';

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string; thread_scheduling_stats?: unknown };
}

export interface OpShare {
  op: string;
  /** Mean kernel time per run, ms. */
  ms: number;
  /** Nodes of this type that ran per run. */
  nodes: number;
}

export interface ProfileSummary {
  /** Session wall time per run as the profiler saw it, ms (median). */
  runMs: Timing;
  /**
   * Sum of kernel times per run, ms, split by origin: the model's own nodes, and the added ones (`added`),
   * which are the preprocessing nodes (`pre`, named `cam/pre/...`) plus the CAM head (`cam`: logits, top-k,
   * softmax, the maps' MatMul and their gathers).
   */
  kernelMs: { model: number; added: number; pre: number; cam: number };
  /** Per operator type, heaviest first. */
  byOp: OpShare[];
  /** The added nodes one by one (preprocessing and CAM), ms per run. */
  added: Array<{ node: string; op: string; ms: number }>;
}

/** Added nodes carry the `cam/` prefix (extend.ts names them so); fused nodes keep their first name. */
const isAdded = (node: string): boolean => node.startsWith('cam/');
/** Of those, the preprocessing ones (Cast, Resize, [Pad], normalization, Transpose) are `cam/pre/...`. */
const isPre = (node: string): boolean => node.startsWith('cam/pre/');

function summarizeProfile(events: ProfileEvent[], runs: number): ProfileSummary {
  const runTimes = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => e.dur / 1000);
  // The last `runs` runs are the timed ones (earlier model_run events are the warm-up).
  const timed = runTimes.slice(-runs);
  const nodeEvents = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  // Kernel events of the timed runs: the trailing share of all kernel events.
  const perRun = nodeEvents.length / runTimes.length;
  const kept = nodeEvents.slice(Math.round(nodeEvents.length - perRun * timed.length));
  const byOp = new Map<string, { us: number; count: number }>();
  const addedNodes = new Map<string, { op: string; us: number }>();
  let modelUs = 0;
  let addedUs = 0;
  let preUs = 0;
  for (const e of kept) {
    const op = e.args?.op_name ?? '?';
    const node = e.name.slice(0, -'_kernel_time'.length);
    const entry = byOp.get(op) ?? { us: 0, count: 0 };
    entry.us += e.dur;
    entry.count += 1;
    byOp.set(op, entry);
    if (isAdded(node)) {
      addedUs += e.dur;
      if (isPre(node)) preUs += e.dur;
      const a = addedNodes.get(node) ?? { op, us: 0 };
      a.us += e.dur;
      addedNodes.set(node, a);
    } else {
      modelUs += e.dur;
    }
  }
  const n = timed.length;
  return {
    runMs: summarize(timed, runTimes[0] ?? 0),
    kernelMs: { model: modelUs / 1000 / n, added: addedUs / 1000 / n, pre: preUs / 1000 / n, cam: (addedUs - preUs) / 1000 / n },
    byOp: [...byOp.entries()]
      .map(([op, v]) => ({ op, ms: v.us / 1000 / n, nodes: v.count / n }))
      .sort((a, b) => b.ms - a.ms),
    added: [...addedNodes.entries()]
      .map(([node, v]) => ({ node, op: v.op, ms: v.us / 1000 / n }))
      .sort((a, b) => b.ms - a.ms),
  };
}

async function profileSession(
  bytes: Uint8Array,
  feeds: Record<string, ort.Tensor>,
  fetches: string[] | undefined,
  threads: number,
  runs: number,
  dir: string,
  tag: string,
): Promise<ProfileSummary> {
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    enableProfiling: true,
    profileFilePrefix: join(dir, tag),
  });
  const run = () => (fetches ? session.run(feeds, fetches) : session.run(feeds));
  try {
    for (let i = 0; i < 3; i++) await run();
    for (let i = 0; i < runs; i++) await run();
    session.endProfiling();
  } finally {
    await session.release();
  }
  // The profiler names its file `<prefix>_<date>.json`.
  const file = (await readdir(dir)).find((f) => f.startsWith(tag) && f.endsWith('.json'));
  if (!file) throw new Error(`ORT wrote no profile for ${tag} in ${dir}`);
  return summarizeProfile(JSON.parse(await readFile(join(dir, file), 'utf8')) as ProfileEvent[], runs);
}

function renderSummary(title: string, s: ProfileSummary, top = 8): string {
  const lines = [
    `### ${title}`,
    `run ${s.runMs.medianMs.toFixed(2)} ms median (min ${s.runMs.minMs.toFixed(2)}), kernels: model ${s.kernelMs.model.toFixed(2)} ms + ` +
      `added ${s.kernelMs.added.toFixed(3)} ms per run (preprocessing ${s.kernelMs.pre.toFixed(3)}, CAM ${s.kernelMs.cam.toFixed(3)})`,
    '',
    '| op | ms/run | nodes |',
    '|---|---|---|',
    ...s.byOp.slice(0, top).map((o) => `| ${o.op} | ${o.ms.toFixed(3)} | ${o.nodes} |`),
  ];
  if (s.added.length > 0) {
    lines.push('', '| added node | op | ms/run |', '|---|---|---|', ...s.added.map((a) => `| ${a.node} | ${a.op} | ${a.ms.toFixed(3)} |`));
  }
  return lines.join('\n');
}

export interface OrtProfileOptions {
  model: BenchModelName;
  runs: number;
  threads: number;
  /** Frame fed to the extended graph, [width, height]. */
  frame: [number, number];
}

export interface OrtProfile {
  plain: ProfileSummary;
  extended: ProfileSummary;
  /**
   * The CAM head's kernel time over the model's own kernel time, both from the extended graph's runs:
   * the share the CAM adds to a forward pass (preprocessing excluded; it replaces work done elsewhere).
   */
  camShare: number;
  /** Preprocessing nodes' kernel time over the model's, the same way. */
  preShare: number;
}

/** Profiles the plain bench model and camstream's extended graph of it (see the file comment). */
export async function profileOrt(options: OrtProfileOptions): Promise<OrtProfile> {
  const { runs, threads } = options;
  const [fw, fh] = options.frame;
  const dir = await mkdtemp(join(tmpdir(), 'camstream-profile-'));
  try {
    const model = await prepareModel(options.model, dir, [224, 224]);
    const bytes = new Uint8Array(await readFile(model.onnxPath));
    // The same rewrite as the engine's load (models/onnx/engine.ts).
    const view = new GraphView(parseOnnxModel(bytes, model.onnxPath));
    const input = discoverOnnxInput(view, BENCH_PREPROCESS, model.onnxPath);
    const pre = resolvePreprocess(BENCH_PREPROCESS, { inputSize: input.inputSize, layout: input.layout });
    const head = discoverOnnxHead(view, BENCH_PREPROCESS, model.onnxPath);
    const extended = extendOnnxModel(view, input, head, pre);

    const r = createRandom(9);
    const [h, w] = pre.inputSize;
    const plainFeeds = { [input.name]: new ort.Tensor('float32', r.normalArray(3 * h * w, 1), [1, 3, h, w]) };
    const frameBytes = new Uint8Array(fw * fh * 3);
    for (let i = 0; i < frameBytes.length; i++) frameBytes[i] = r.int(256);
    // W^T as the engine feeds it: [classes, k].
    const weightsT = new Float32Array(head.weights.length);
    for (let c = 0; c < head.channels; c++) {
      for (let j = 0; j < head.numClasses; j++) weightsT[j * head.channels + c] = head.weights[c * head.numClasses + j];
    }
    const camFeeds = {
      [CAM_IO.frames]: new ort.Tensor('uint8', frameBytes, [1, fh, fw, 3]),
      [CAM_IO.request]: new ort.Tensor('int64', BigInt64Array.from([-1n, -1n, -1n, -1n, -1n]), [1, 5]),
      [CAM_IO.weights]: new ort.Tensor('float32', weightsT, [head.numClasses, head.channels]),
      [CAM_IO.bias]: new ort.Tensor('float32', head.bias, [head.numClasses]),
      // The letterbox fit and the antialiased resize's taps, as the engine feeds them.
      ...fitFeeds(fw, fh, pre),
    };
    const fetches = [CAM_IO.ids, CAM_IO.scores, CAM_IO.probs, CAM_IO.maps];

    const plain = await profileSession(bytes, plainFeeds, undefined, threads, runs, dir, 'plain');
    const ext = await profileSession(extended, camFeeds, fetches, threads, runs, dir, 'extended');
    return { plain, extended: ext, camShare: ext.kernelMs.cam / ext.kernelMs.model, preShare: ext.kernelMs.pre / ext.kernelMs.model };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function runOrtProfile(argv: readonly string[]): Promise<OrtProfile> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      model: { type: 'string', default: 'resnet50' },
      runs: { type: 'string', default: '30' },
      threads: { type: 'string', default: String(availableParallelism()) },
      frame: { type: 'string', default: '224x224' },
      json: { type: 'string' },
    },
    strict: true,
  });
  const fail = (message: string): never => {
    process.stderr.write(`profile-ort: ${message}\n`);
    process.exit(2);
  };
  if (!(BENCH_MODELS as readonly string[]).includes(values.model)) fail(`--model must be one of ${BENCH_MODELS.join(', ')}, got ${values.model}`);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) fail(`--runs must be a positive integer, got ${values.runs}`);
  const threads = Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1) fail(`--threads must be a positive integer, got ${values.threads}`);
  const frame = /^(\d+)x(\d+)$/.exec(values.frame) ?? fail(`--frame must be WIDTHxHEIGHT, got ${values.frame}`);
  const [fw, fh] = [Number(frame[1]), Number(frame[2])];

  const profile = await profileOrt({ model: values.model as BenchModelName, runs, threads, frame: [fw, fh] });
  const { plain, extended: ext } = profile;
  const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
  const md = [
    `## ORT profile: ${values.model}, ${threads} thread(s), ${runs} runs, frame ${fw}x${fh}`,
    '',
    renderSummary('plain model (float NCHW input)', plain),
    '',
    renderSummary('camstream extended graph (uint8 frame in, top-5 CAM out)', ext),
    '',
    `CAM head: ${ext.kernelMs.cam.toFixed(3)} ms/run = ${pct(profile.camShare)} of the model's kernel time in the same runs; ` +
      `preprocessing: ${ext.kernelMs.pre.toFixed(3)} ms/run = ${pct(profile.preShare)}. ` +
      `Model kernels: ${ext.kernelMs.model.toFixed(2)} ms in the extended graph, ${plain.kernelMs.model.toFixed(2)} ms plain.`,
  ].join('\n');
  process.stdout.write(`${md}\n`);
  if (values.json) {
    await writeFile(values.json, `${JSON.stringify({ model: values.model, threads, runs, frame: [fw, fh], ...profile }, null, 2)}\n`);
  }
  return profile;
}

const isMain = process.argv[1] !== undefined && pathToFileURL(resolve(process.argv[1])).href === import.meta.url;
if (isMain) await runOrtProfile(process.argv.slice(2));
