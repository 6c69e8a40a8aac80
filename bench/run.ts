/**
 * `npm run bench`: the whole performance picture in one run, one table, one JSON file.
 *
 *   npm run bench -- [--quick] [--json FILE] [--threads N] [--spin on|off] [--no-peer] [--no-live] [--keep DIR]
 *
 * Defaults: ORT gets every core (`--threads`, default all) with spin-waiting off (`--spin off`), and the
 * pipeline runs its ffmpeg children at nice 10 (annotateVideo's default): the fastest end-to-end setting
 * measured on the 2-core development machine (bench/README.md).
 *
 * 1. Clips: a 720p H.264 clip generated with ffmpeg's testsrc2 (quick 2 s, full 10 s at 30 fps) and the
 *    fixture ../shared/fixtures/video/opencv_vtest.avi (768x576 Xvid) when present.
 * 2. Models: the embedded one (models/zoo, else the Darknet fixture) and ResNet-50- and MobileNetV2-shaped
 *    random-weight networks built by the project at 224x224, written as TF.js layers folders and .onnx.
 * 3. Transcode-only (bench/internal/transcode.ts): each clip decoded and re-encoded by one ffmpeg with the
 *    pipeline's settings and no model: what ffmpeg alone can do, and its core-ms per frame.
 * 4. Video cases (bench/internal/video-case.ts, each in a child process): forward vs infer (CAM share),
 *    decode-only, model-only and end-to-end to an annotated MP4 with per-stage ms per frame, peak RSS,
 *    tensor count, the ffmpeg children's CPU per process, for every engine/backend present (onnx/cpu,
 *    tfjs/wasm, tfjs/cpu, tfjs/tensorflow if installed), and INT8 rows (ResNet-50 and MobileNetV2 quantized
 *    as `--int8` does, on frames of the clip). Per case: limitFps = 1 / (1/modelOnlyFps + 1/transcodeOnlyFps)
 *    (model and ffmpeg paid back to back on the same cores) and efficiency = e2eFps / limitFps; then the
 *    case's own MP4 transcoded and decoded alone, which prices x264 on the annotated picture and bounds the
 *    efficiency any pipeline could reach on it (efficiencyCeiling).
 * 5. The PyTorch peer (bench/peers/torch_cam.py, /usr/bin/python3 with Debian's python3-torch and
 *    python3-torchvision; bench/setup.sh installs them) on the same 720p clip with the same ffmpeg binary,
 *    threads and encoder settings, right after camstream's ResNet-50 ONNX case.
 * 6. Live latency (bench/live-latency.ts): `camstream serve` fed 30 fps over a WebSocket, p50/p95.
 *
 * The individual benches stay runnable alone (bench/README.md). Numbers, never assertions.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { runFfmpeg } from '../pipelines/index.ts';
import { locateCliFfmpeg } from '../cli/ffmpeg.ts';
import { defaultModelDir, throughputWorkers } from '../cli/model.ts';
import { DEFAULT_PLAN, QUICK_PLAN } from './internal/measure.ts';
import { prepareModel, type PreparedModel } from './internal/models.ts';
import { probeGflops } from './internal/probe.ts';
import { efficiencyCeiling, transcodeOnly, type TranscodeResult } from './internal/transcode.ts';
import type { VideoCaseResult, VideoCaseSpec } from './internal/video-case.ts';
import { runLiveLatencyBench, type LatencyRow } from './live-latency.ts';
import { profileOrt, type OrtProfile } from './profile-ort.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = resolve(ROOT, '..', 'shared', 'fixtures');
const VTEST = join(FIXTURES, 'video', 'opencv_vtest.avi');
const DARKNET = join(FIXTURES, 'models', 'darknet_tiny_ml5');
const PEER = join(ROOT, 'bench', 'peers', 'torch_cam.py');
const PYTHON = '/usr/bin/python3';

export interface PeerResult {
  peer: string;
  torch: string;
  torchvision: string;
  threads: number;
  mode: string;
  frames: number;
  width: number;
  height: number;
  fps: number;
  msPerFrame: Record<string, number>;
}

export interface BenchReport {
  bench: 'camstream';
  date: string;
  quick: boolean;
  machine: { cpus: number; cpuModel: string; memGiB: number; node: string; avx512: boolean; gpu: string };
  settings: { threads: number; spinWait: boolean; preset: string; crf: number; decodeThreads: number; encodeThreads: number };
  /** The ffmpeg every case ran (a system ffmpeg on PATH comes before the npm one): its cost moves most rows. */
  ffmpeg: { path: string; version: string };
  probeGflops: [number, number];
  loadAvg: { start: number[]; end: number[] };
  /** Headline figures, ResNet-50 ONNX Runtime on the 720p MP4. */
  e2eFps: number;
  modelOnlyFps: number;
  peerE2eFps: number | null;
  /** e2eFps / modelOnlyFps. */
  e2eOverModel: number;
  /** e2eFps / peerE2eFps. */
  overPeer: number | null;
  /** ResNet-50 int8 (720p): interleaved single-frame speedup over fp32 at the same threads, and its end-to-end fps. */
  int8: {
    forwardSpeedup: number;
    e2eFps: number;
    modelOnlyFps: number;
    overPeer: number | null;
    camR: number | null;
    top1Agreement: number | null;
    /** How the int8 model ran: sessions (worker threads) and intra-op threads per session; fp32 was timed at the same threads. */
    workers: number;
    threads: number;
  } | null;
  /** Transcode-only fps of the 720p clip (one ffmpeg, the pipeline's decode and x264 settings, no model). */
  transcodeOnlyFps: number;
  /** Transcode-only per clip. */
  transcode: TranscodeResult[];
  /** The lowest case efficiency (e2eFps / limitFps) over the 720p cases. */
  minEfficiency: number;
  /**
   * The lowest efficiency ceiling over the 720p cases (`efficiencyCeiling`): where it is below a target,
   * no pipeline that writes that case's picture with these x264 settings can meet the target on it.
   */
  minEfficiencyCeiling: number;
  /** ResNet-50 fp32, 720p: the pipeline's ffmpeg core-ms per frame (all children) over the transcode-only row's. */
  ffmpegOverTranscode: number;
  /**
   * The same over the transcode of that case's own output MP4: the part of the excess that is the
   * pipeline's (second decode, composite, pipes) rather than x264 encoding a busier picture.
   */
  ffmpegOverOwnOutput: number;
  /**
   * The least `ffmpegOverTranscode` any pipeline could show on that case's picture: its
   * `pictureCoreMsPerFrame` (the clip's decode plus x264 on the annotated picture) over the clip's transcode.
   */
  ffmpegFloorOverTranscode: number;
  /**
   * CAM time over forward time, ResNet-50 ONNX Runtime: the CAM head's kernel time (logits, top-k, softmax,
   * the maps' MatMul) over the model's own kernel time, from ORT's profiler in the same session runs
   * (bench/profile-ort.ts). The table's per-case "CAM share" is the coarser wall-time difference
   * (infer at model size - plain forward) / plain forward, which also holds preprocessing and read-back.
   */
  camShare: number;
  /** The profile camShare comes from (null when it could not run). */
  camProfile: { camMs: number; preMs: number; modelMs: number; runs: number } | { error: string } | null;
  cases: Array<VideoCaseResult | { spec: VideoCaseSpec; error: string }>;
  peer: PeerResult | { error: string } | null;
  live: LatencyRow[];
  targets: Record<string, { target: string; measured: string; met: boolean }>;
}

function cpuFlags(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}
const require = createRequire(import.meta.url);

function installed(pkg: string): boolean {
  try {
    require.resolve(`${pkg}/package.json`);
    return true;
  } catch {
    return false;
  }
}

/** Runs a command; resolves with its stdout (stderr goes to ours), rejects on a non-zero exit. */
function run(cmd: string, args: string[], opts: { quietStderr?: boolean; env?: Record<string, string> } = {}): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', opts.quietStderr ? 'pipe' : 'inherit'], env: { ...process.env, ...opts.env } });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolveRun(out) : reject(new Error(`${cmd} exited ${code}${err ? `: ${err.trim().split('\n').slice(-3).join(' | ')}` : ''}`))));
  });
}

async function runVideoCaseChild(spec: VideoCaseSpec, dir: string, i: number): Promise<VideoCaseResult | { spec: VideoCaseSpec; error: string }> {
  const specFile = join(dir, `video-case-${i}.json`);
  const outFile = join(dir, `video-result-${i}.json`);
  await writeFile(specFile, JSON.stringify(spec));
  try {
    await run(process.execPath, [join(ROOT, 'bin', 'run-ts.js'), join(ROOT, 'bench', 'internal', 'video-case.ts'), specFile, outFile], { quietStderr: true });
    return JSON.parse(await readFile(outFile, 'utf8')) as VideoCaseResult;
  } catch (err) {
    return { spec, error: (err as Error).message.split('\n')[0].slice(0, 300) };
  }
}

/** torch + torchvision importable by /usr/bin/python3; runs bench/setup.sh once (as root) when not. */
async function peerReady(log: (s: string) => void): Promise<string | undefined> {
  const check = (): Promise<string> => run(PYTHON, ['-c', 'import torch, torchvision'], { quietStderr: true });
  try {
    await check();
    return undefined;
  } catch {
    if (process.getuid?.() !== 0) return 'torch/torchvision missing for /usr/bin/python3: run `sh bench/setup.sh` (apt-get install python3-torch python3-torchvision)';
    log('peer: installing python3-torch and python3-torchvision (bench/setup.sh) ...');
    try {
      await run('sh', [join(ROOT, 'bench', 'setup.sh')], { quietStderr: true });
      await check();
      return undefined;
    } catch (err) {
      return `bench/setup.sh failed: ${(err as Error).message}`;
    }
  }
}

const fmt = (v: number | undefined | null, d = 1): string => (v === undefined || v === null || !Number.isFinite(v) ? '–' : v.toFixed(d));
const isOk = (c: BenchReport['cases'][number]): c is VideoCaseResult => !('error' in c);

/** The one table: a row per video case, the peer, and the live rows. */
export function renderBench(r: BenchReport): string {
  const head = ['case', 'clip', 'thr', 'batch', 'decode', 'preprocess+CAM', 'forward', 'pre+CAM share', 'infer (in pipeline)', 'smoothing', 'boxes', 'render', 'encode wait', 'WS send',
    'model-only fps', 'end-to-end fps', 'e2e / model', 'limit fps', 'efficiency', 'efficiency ceiling', 'CPU core-ms / frame (node + other)', 'ffmpeg core-ms / frame (decoder + encoder; all children)', 'p50 / p95 ms', 'peak RSS MiB', 'tensors', 'load avg'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const c of r.cases) {
    const s = c.spec;
    const name = `${s.label}${s.int8 ? ` int8 (${s.int8})` : ''} ${s.engine}/${s.backend}${s.workers && s.workers > 1 ? ` x${s.workers} workers` : ''}`;
    if (!isOk(c)) {
      lines.push(`| ${name} | ${s.clipLabel} | ${s.threads} | | failed: ${c.error} |${' |'.repeat(head.length - 5)}`);
      continue;
    }
    const fc = c.forwardCam;
    const st = c.stages;
    const mo = Math.max(...c.modelOnlyFps);
    const e2e = Math.max(...c.e2eFps);
    lines.push(`| ${[
      name, `${s.clipLabel} (${c.frames} fr)`, c.threads, c.batchFrames, fmt(c.decodeMsPerFrame, 2),
      fc ? fmt(fc.inferModel.medianMs - fc.forward.medianMs, 2) : '–', fc ? fmt(fc.forward.medianMs, 1) : '–', fc ? `${fmt(100 * fc.camShare)}%` : '–',
      fmt(st.infer.meanMs), fmt(st.smooth.meanMs, 2), fmt(st.localize.meanMs, 2), fmt(st.render.meanMs, 2), fmt(st.encode.meanMs), '–',
      `${fmt(mo)} (${c.modelOnlyFps.map((v) => fmt(v)).join('/')})`, `${fmt(e2e)} (${c.e2eFps.map((v) => fmt(v)).join('/')})`, `${fmt((100 * e2e) / mo, 0)}%`,
      fmt(c.limitFps), c.efficiency === undefined ? '–' : fmt(c.efficiency, 2), c.efficiencyCeiling === undefined ? '–' : fmt(c.efficiencyCeiling, 2),
      c.cpu ? `${fmt(c.cpu.coreMsPerFrame)} (${fmt(c.cpu.nodeCoreMsPerFrame)} + ${fmt(c.cpu.otherCoreMsPerFrame)}), ${fmt(100 * c.cpu.busy, 0)}% busy` : '–',
      c.ffmpegCpu
        ? `${fmt(c.ffmpegCpu.decoderCoreMsPerFrame)} + ${fmt(c.ffmpegCpu.encoderCoreMsPerFrame)}; ${fmt(c.ffmpegCpu.childrenCoreMsPerFrame)}` +
          (c.ownOutputTranscodeCoreMsPerFrame === undefined ? '' : ` (own output ${fmt(c.ownOutputTranscodeCoreMsPerFrame)})`)
        : '–',
      '–', fmt(c.peakRssMiB, 0), c.tensors ? `${c.tensors.beforeLoad}→${c.tensors.afterRuns}→${c.tensors.afterDispose}` : 'n/a (ORT)', `${fmt(c.loadAvg[0])}-${fmt(c.loadAvg[1])}`,
    ].join(' | ')} |`);
  }
  if (r.peer && !('error' in r.peer)) {
    const p = r.peer;
    const m = p.msPerFrame;
    lines.push(`| PyTorch peer ${p.torch} (${p.mode}) resnet50 | 720p (${p.frames} fr) | ${p.threads} | 1 | ${fmt(m.decode, 2)} | ${fmt(m.preprocess + m.cam, 2)} | ${fmt(m.forward)} | ${fmt((100 * m.cam) / m.forward)}% (CAM only) | ` +
      `${fmt(m.preprocess + m.forward + m.cam)} | – | – | ${fmt(m.render)} | ${fmt(m.encode)} | – | – | ${fmt(p.fps)} | – | – | – | – | – | – | – | – | – | |`);
  } else if (r.peer) {
    lines.push(`| PyTorch peer | 720p | | | not run: ${r.peer.error} |${' |'.repeat(head.length - 5)}`);
  }
  for (const t of r.transcode) {
    lines.push(`| transcode only (ffmpeg, no model) | ${t.clipLabel} (${t.frames} fr) | | | | | | | | | | | | | | ${fmt(Math.max(...t.fps))} (${t.fps.map((v) => fmt(v)).join('/')}) | | | | | | ${fmt(t.coreMsPerFrame)} (decode alone ${fmt(t.decodeCoreMsPerFrame)}) | | | | |`);
  }
  for (const l of r.live) {
    lines.push(`| live: ${l.model} ${l.engine} | webcam-like ${l.inputFps} fps | | | | | | | ${fmt(l.serverInferP50Ms)} (p50) | | | | | ${fmt(l.p50Ms - l.serverTotalP50Ms)} (p50, client view) | | ${fmt(l.resultsPerSecond)} maps/s | | | | | | | ${fmt(l.p50Ms)} / ${fmt(l.p95Ms)} | | | ${l.loadAvg.map((v) => fmt(v)).join('-')} |`);
  }
  const t = Object.entries(r.targets).map(([k, v]) => `- ${k}: target ${v.target}, measured ${v.measured} — ${v.met ? 'met' : 'missed'}`);
  return [
    `## camstream bench (${r.quick ? 'quick' : 'full'}) — ${r.machine.cpus} cores ${r.machine.cpuModel}${r.machine.avx512 ? ' (AVX-512)' : ''}, ${fmt(r.machine.memGiB, 0)} GiB, Node ${r.machine.node}; GPU: ${r.machine.gpu}`,
    `ORT threads ${r.settings.threads}, spin-wait ${r.settings.spinWait ? 'on' : 'off'}; ffmpeg decode threads ${r.settings.decodeThreads}, encode threads ${r.settings.encodeThreads} (0 = auto), x264 ${r.settings.preset} crf ${r.settings.crf}; ` +
      `ffmpeg ${r.ffmpeg.version} (${r.ffmpeg.path}); sgemm probe ${r.probeGflops.map((g) => fmt(g, 0)).join(' -> ')} GFLOP/s per core; load average ${r.loadAvg.start.map((v) => fmt(v, 2)).join('/')} at start, ${r.loadAvg.end.map((v) => fmt(v, 2)).join('/')} at end (1/5/15 min)`,
    '',
    ...lines,
    '',
    'Stage columns are ms per frame. decode = ffmpeg decode + scale to the model size into JS (decode-only run); preprocess+CAM = camstream infer() at model size minus the plain forward pass (uint8 normalisation, CAM, top-5, maps read back; interleaved medians), pre+CAM share = that over the forward (wall-time differences of ~45 ms medians: noisy; the headline CAM share below comes from ORT\'s profiler); ' +
      'infer/smoothing/boxes/render/encode wait = means in the fastest end-to-end run, wall time on the JS thread (render = overlay drawn in JS; the full-size composite and x264 run in the encoder ffmpeg, whose cost shows as encode wait); WS send / p50/p95 = live rows (p50 client latency minus server time). CPU = core-ms per frame of the whole machine during the fastest end-to-end run (/proc/stat), split into this Node process (all its threads) and the rest (the ffmpeg children, and anything else running), with the share of all cores busy. ffmpeg = the pipeline\'s ffmpeg children in that run: decoder + compositor/x264 encoder as ffmpeg reported them at exit (-benchmark; else sampled from /proc/<pid>/stat every 50 ms), then all reaped children exactly (ffprobe included); own output = the same transcode as the transcode-only row run on the case\'s MP4 (x264\'s cost on the annotated picture). limit = 1 / (1/model-only + 1/transcode-only of the clip): model and ffmpeg paid back to back on the same cores; efficiency = end-to-end / limit; efficiency ceiling = the most fps the cores give when all their time goes to the model (the cores its model-only run used) and the least ffmpeg work any pipeline writing this picture pays (the clip\'s decode alone plus x264 on the picture: own output transcoded minus own output decoded), over the limit: the best efficiency this case could show (above 1 where a one-thread model overlaps with ffmpeg). int8 rows: the model quantized as --int8 does, on frames of the clip. tensors = tfjs numTensors before load → after the runs → after dispose.',
    '',
    `**Ratios (ResNet-50, ONNX Runtime, 720p MP4)**: end-to-end ${fmt(r.e2eFps)} fps, model-only ${fmt(r.modelOnlyFps)} fps (${fmt(100 * r.e2eOverModel, 0)}%), PyTorch peer ${fmt(r.peerE2eFps)} fps (camstream ${r.overPeer === null ? '–' : `${fmt(r.overPeer, 2)}x`}), CAM share ${fmt(100 * r.camShare, 2)}% of the forward pass` +
      (r.camProfile && 'camMs' in r.camProfile
        ? ` (ORT profiler, ${r.camProfile.runs} runs: CAM head ${fmt(r.camProfile.camMs, 3)} ms over ${fmt(r.camProfile.modelMs, 1)} ms of model kernels; the on-graph preprocessing adds ${fmt(r.camProfile.preMs, 3)} ms).`
        : r.camProfile && 'error' in r.camProfile ? ` (profile failed: ${r.camProfile.error})` : '.'),
    `**INT8, ffmpeg, efficiency**: ` +
      (r.int8
        ? `ResNet-50 int8 ${fmt(r.int8.forwardSpeedup, 2)}x the fp32 forward (${r.int8.threads} thread${r.int8.threads === 1 ? '' : 's'} each, interleaved; the pipeline ran ${r.int8.workers} such session${r.int8.workers === 1 ? '' : 's'}), ${fmt(r.int8.e2eFps)} fps end to end (${r.int8.overPeer === null ? '–' : `${fmt(r.int8.overPeer, 2)}x`} the peer), CAM r ${fmt(r.int8.camR, 3)}, top-1 agreement ${fmt(r.int8.top1Agreement === null ? null : 100 * r.int8.top1Agreement, 0)}% on held-out clip frames; `
        : 'no int8 result; ') +
      `transcode only ${fmt(r.transcodeOnlyFps)} fps (720p); min efficiency ${fmt(r.minEfficiency, 2)} over the 720p cases (lowest ceiling ${fmt(r.minEfficiencyCeiling, 2)}); ` +
      `ResNet-50 fp32's ffmpeg ${fmt(r.ffmpegOverTranscode, 2)}x the transcode of the clip (its picture alone ${fmt(r.ffmpegFloorOverTranscode, 2)}x), ${fmt(r.ffmpegOverOwnOutput, 2)}x the transcode of its own output.`,
    ...t,
    '',
  ].join('\n');
}

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    threads: { type: 'string' },
    spin: { type: 'string', default: 'off' },
    'no-peer': { type: 'boolean', default: false },
    'no-live': { type: 'boolean', default: false },
    keep: { type: 'string' },
    // Checking the bench itself: a shorter clip, and only the cases whose row name holds this text.
    seconds: { type: 'string' },
    only: { type: 'string' },
  },
  strict: true,
});
const quick = values.quick;
const threads = values.threads === undefined ? availableParallelism() : Number(values.threads);
if (!Number.isInteger(threads) || threads < 1) {
  process.stderr.write(`bench: --threads must be a positive integer, got ${values.threads}\n`);
  process.exit(2);
}
if (values.spin !== 'on' && values.spin !== 'off') {
  process.stderr.write(`bench: --spin must be on or off, got ${values.spin}\n`);
  process.exit(2);
}
const spinWait = values.spin === 'on';
const log = (s: string): void => void process.stderr.write(`${s}\n`);
const settings = { threads, spinWait, preset: 'veryfast', crf: 23, decodeThreads: 1, encodeThreads: 0 };
const dir = values.keep ? resolve(values.keep) : await mkdtemp(join(tmpdir(), 'camstream-bench-'));
const loadStart = loadavg();
try {
  const tools = await locateCliFfmpeg();
  const seconds = values.seconds ? Number(values.seconds) : quick ? 3 : 10;
  if (!Number.isInteger(seconds) || seconds < 1) throw new Error(`bench: --seconds must be a whole number >= 1, got ${values.seconds}`);
  const clip = join(dir, 'clip-720p.mp4');
  // ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=30:duration=10 -c:v libx264 -preset veryfast -pix_fmt yuv420p clip-720p.mp4
  await runFfmpeg({
    binary: tools.ffmpeg.path,
    args: ['-y', '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=30:duration=${seconds}`, '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', clip],
    timeoutMs: 300_000,
  });
  const frames720 = seconds * 30;
  const gflops0 = await probeGflops();
  log(`bench: ${quick ? 'quick' : 'full'} run in ${dir}; sgemm probe ${gflops0.toFixed(0)} GFLOP/s; load average ${loadStart[0].toFixed(2)}`);
  log('bench: building the random-weight models ...');
  const prepared: Record<string, PreparedModel> = {
    resnet50: await prepareModel('resnet50', dir, [224, 224]),
    mobilenetv2: await prepareModel('mobilenetv2', dir, [224, 224]),
  };
  const zoo = defaultModelDir();
  const embedded = zoo ?? DARKNET;
  const embeddedLabel = zoo ? 'embedded (zoo)' : 'embedded (Darknet fixture)';
  const plan = quick ? { warmup: 1, minRuns: 3, maxRuns: 5, budgetMs: 1500 } : DEFAULT_PLAN;
  const base = { threads, spinWait, decodeThreads: settings.decodeThreads, encodeThreads: settings.encodeThreads, preset: settings.preset, crf: settings.crf, outDir: dir, rounds: quick ? 1 : 2 };
  const c720 = { clip, clipLabel: '720p mp4', maxFrames: frames720 };
  const vtest = existsSync(VTEST) ? { clip: VTEST, clipLabel: 'vtest.avi 768x576', maxFrames: quick ? 60 : 300 } : undefined;
  log('bench: transcode only (ffmpeg, no model) ...');
  const transcodeBase = { decodeThreads: settings.decodeThreads, encodeThreads: settings.encodeThreads, preset: settings.preset, crf: settings.crf, rounds: 2, outDir: dir };
  const transcode: TranscodeResult[] = [await transcodeOnly(tools, { ...transcodeBase, clip, clipLabel: c720.clipLabel, frames: frames720 })];
  if (vtest) transcode.push(await transcodeOnly(tools, { ...transcodeBase, clip: vtest.clip, clipLabel: vtest.clipLabel, frames: vtest.maxFrames }));
  for (const t of transcode) log(`  ${t.clipLabel}: ${Math.max(...t.fps).toFixed(1)} fps, ${fmt(t.coreMsPerFrame)} core-ms per frame (decode alone ${fmt(t.decodeCoreMsPerFrame)})`);
  // INT8 rows: the model quantized as --int8 does (frames of the clip) and run as `camstream video --int8`
  // runs it (throughputWorkers: one 1-thread session per core unless --threads is given), timed against
  // fp32 at the same threads per session.
  const int8Sessions = throughputWorkers({ int8: true, backend: 'cpu', threads: values.threads === undefined ? undefined : threads });
  const int8 = { int8: 'mse' as const, int8Frames: quick ? 90 : 200, int8TimingRuns: quick ? 20 : 40, workers: int8Sessions.workers, threads: int8Sessions.threads ?? threads };
  const specs: VideoCaseSpec[] = [
    { ...base, ...c720, label: 'resnet50 (random)', model: 'resnet50', engine: 'onnx', backend: 'cpu', path: prepared.resnet50.onnxPath, forwardPlan: plan },
    { ...base, ...c720, ...int8, label: 'resnet50 (random)', model: 'resnet50', engine: 'onnx', backend: 'cpu', path: prepared.resnet50.onnxPath },
    { ...base, ...c720, ...int8, label: 'mobilenetv2 (random)', model: 'mobilenetv2', engine: 'onnx', backend: 'cpu', path: prepared.mobilenetv2.onnxPath },
    { ...base, ...c720, label: 'mobilenetv2 (random)', model: 'mobilenetv2', engine: 'onnx', backend: 'cpu', path: prepared.mobilenetv2.onnxPath, forwardPlan: plan },
    { ...base, ...c720, label: embeddedLabel, model: 'embedded', engine: 'tfjs', backend: 'wasm', path: embedded },
    { ...base, ...c720, label: 'mobilenetv2 (random)', model: 'mobilenetv2', engine: 'tfjs', backend: 'wasm', path: prepared.mobilenetv2.tfjsPath, forwardPlan: plan },
    ...(quick ? [] : [
      { ...base, ...c720, label: 'mobilenetv2 (random), 2-worker pool', model: 'mobilenetv2' as const, engine: 'tfjs' as const, backend: 'wasm', path: prepared.mobilenetv2.tfjsPath, workers: 2 },
      { ...base, ...c720, maxFrames: 60, label: 'resnet50 (random)', model: 'resnet50' as const, engine: 'tfjs' as const, backend: 'wasm', path: prepared.resnet50.tfjsPath, forwardPlan: QUICK_PLAN },
      { ...base, ...c720, maxFrames: 60, label: 'mobilenetv2 (random)', model: 'mobilenetv2' as const, engine: 'tfjs' as const, backend: 'cpu', path: prepared.mobilenetv2.tfjsPath, forwardPlan: QUICK_PLAN },
      { ...base, ...c720, label: embeddedLabel, model: 'embedded' as const, engine: 'tfjs' as const, backend: 'cpu', path: embedded },
    ]),
    ...(installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu')
      ? [{ ...base, ...c720, label: 'resnet50 (random)', model: 'resnet50' as const, engine: 'tfjs' as const, backend: 'tensorflow', path: prepared.resnet50.tfjsPath, forwardPlan: plan }]
      : []),
    ...(vtest
      ? [
          { ...base, ...vtest, label: 'resnet50 (random)', model: 'resnet50' as const, engine: 'onnx' as const, backend: 'cpu', path: prepared.resnet50.onnxPath },
          { ...base, ...vtest, label: embeddedLabel, model: 'embedded' as const, engine: 'tfjs' as const, backend: 'wasm', path: embedded },
        ]
      : []),
  ];

  const rowName = (s: VideoCaseSpec): string => `${s.label}${s.int8 ? ` int8 (${s.int8})` : ''} ${s.engine}/${s.backend} ${s.clipLabel}`;
  if (values.only) specs.splice(0, specs.length, ...specs.filter((s) => rowName(s).includes(values.only!)));
  // The headline case: ResNet-50 fp32 on ORT over the 720p clip (the peer runs right after it).
  const isHead = (s: VideoCaseSpec): boolean => s.model === 'resnet50' && s.engine === 'onnx' && !s.int8 && s.clipLabel === c720.clipLabel;
  const cases: BenchReport['cases'] = [];
  let peer: BenchReport['peer'] = null;
  for (const [i, spec] of specs.entries()) {
    log(`bench: ${spec.label} ${spec.engine}/${spec.backend} on ${spec.clipLabel} ...`);
    const r = await runVideoCaseChild(spec, dir, i);
    cases.push(r);
    if (isOk(r)) {
      const t = transcode.find((x) => x.clipLabel === spec.clipLabel);
      if (t) {
        r.transcodeOnlyFps = Math.max(...t.fps);
        r.limitFps = 1 / (1 / Math.max(...r.modelOnlyFps) + 1 / r.transcodeOnlyFps);
        r.efficiency = Math.max(...r.e2eFps) / r.limitFps;
      }
      if (r.ffmpegCpu && r.outputPath) {
        // The case's own MP4 transcoded like the clip: x264's cost on this picture (heat map, boxes).
        const own = await transcodeOnly(tools, { ...transcodeBase, clip: r.outputPath, clipLabel: `${rowName(spec)} output`, frames: r.frames, name: `own-output-${i}` });
        r.ownOutputTranscodeCoreMsPerFrame = own.coreMsPerFrame;
        r.ownOutputDecodeCoreMsPerFrame = own.decodeCoreMsPerFrame;
        if (r.limitFps !== undefined && t?.decodeCoreMsPerFrame !== undefined && own.coreMsPerFrame !== undefined && r.ownOutputDecodeCoreMsPerFrame !== undefined) {
          const c = efficiencyCeiling({
            modelOnlyFps: Math.max(...r.modelOnlyFps),
            modelCores: r.threads * r.workers,
            cores: availableParallelism(),
            limitFps: r.limitFps,
            clipDecodeCoreMs: t.decodeCoreMsPerFrame,
            ownOutputTranscodeCoreMs: own.coreMsPerFrame,
            ownOutputDecodeCoreMs: r.ownOutputDecodeCoreMsPerFrame,
          });
          r.pictureCoreMsPerFrame = c.pictureCoreMs;
          r.pictureLimitFps = c.pictureLimitFps;
          r.efficiencyCeiling = c.ceiling;
        }
      }
    }
    log(isOk(r)
      ? `  model-only ${Math.max(...r.modelOnlyFps).toFixed(1)} fps, end-to-end ${Math.max(...r.e2eFps).toFixed(1)} fps, limit ${fmt(r.limitFps)}, efficiency ${fmt(r.efficiency, 2)} (ceiling ${fmt(r.efficiencyCeiling, 2)})` +
        (r.int8 ? `; int8 ${r.int8.forward.speedup.toFixed(2)}x (${r.int8.forward.fp32Ms.toFixed(1)} -> ${r.int8.forward.int8Ms.toFixed(1)} ms), quantized in ${(r.int8.quantizeMs / 1000).toFixed(0)} s` : '')
      : `  failed: ${r.error}`);
    if (isHead(spec) && !values['no-peer']) {
      // The peer right after camstream's headline case: same clip, ffmpeg binary, threads and x264 settings.
      const missing = await peerReady(log);
      if (missing) {
        peer = { error: missing };
      } else {
        log('bench: PyTorch peer (bench/peers/torch_cam.py) on the 720p clip ...');
        try {
          const out = await run(PYTHON, [PEER, '--ffmpeg', tools.ffmpeg.path, '--input', clip, '--out', join(dir, 'peer.mp4'), '--threads', String(threads),
            '--preset', settings.preset, '--crf', String(settings.crf), '--encode-threads', String(settings.encodeThreads), '--max-frames', String(frames720)], {
            quietStderr: true,
            // OpenMP threads sleep when idle, as camstream's ORT threads do with spinWait off: with outside
            // load, spinning OpenMP threads slowed the peer up to 9x in a trial run.
            env: spinWait ? {} : { OMP_WAIT_POLICY: 'PASSIVE' },
          });
          peer = JSON.parse(out.trim().split('\n').at(-1)!) as PeerResult;
          log(`  peer ${peer.fps.toFixed(1)} fps`);
        } catch (err) {
          peer = { error: (err as Error).message.slice(0, 300) };
        }
      }
    }
  }
  let live: LatencyRow[] = [];
  if (!values['no-live']) {
    log('bench: live latency ...');
    const orig = process.stdout.write.bind(process.stdout);
    // The live bench prints its own table; this run prints the combined one.
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      live = await runLiveLatencyBench([...(quick ? ['--quick', '--live-models', 'resnet50'] : []), '--threads', String(threads)]);
    } finally {
      process.stdout.write = orig;
    }
  }
  const gflops1 = await probeGflops();
  const head = cases.find((c) => isHead(c.spec));
  const headOk = head && isOk(head) ? head : undefined;
  const e2eFps = headOk ? Math.max(...headOk.e2eFps) : Number.NaN;
  const modelOnlyFps = headOk ? Math.max(...headOk.modelOnlyFps) : Number.NaN;
  const peerE2eFps = peer && !('error' in peer) ? peer.fps : null;
  const int8Head = cases.find((c): c is VideoCaseResult => isOk(c) && c.spec.model === 'resnet50' && c.spec.int8 !== undefined && c.spec.clipLabel === c720.clipLabel);
  const int8Summary: BenchReport['int8'] = int8Head?.int8
    ? {
        forwardSpeedup: int8Head.int8.forward.speedup,
        e2eFps: Math.max(...int8Head.e2eFps),
        modelOnlyFps: Math.max(...int8Head.modelOnlyFps),
        overPeer: peerE2eFps === null ? null : Math.max(...int8Head.e2eFps) / peerE2eFps,
        camR: int8Head.int8.fidelity?.camR ?? null,
        top1Agreement: int8Head.int8.fidelity?.top1Agreement ?? null,
        workers: int8Head.spec.workers ?? 1,
        threads: int8Head.spec.threads,
      }
    : null;
  // The lowest of a figure over the 720p cases that have it (NaN when none has).
  const cases720 = cases.filter((c): c is VideoCaseResult => isOk(c) && c.spec.clipLabel === c720.clipLabel);
  const min720 = (figure: (c: VideoCaseResult) => number | undefined): number => {
    const values = cases720.map(figure).filter((v): v is number => v !== undefined);
    return values.length > 0 ? Math.min(...values) : Number.NaN;
  };
  const minEfficiency = min720((c) => c.efficiency);
  const minEfficiencyCeiling = min720((c) => c.efficiencyCeiling);
  const transcodeOnlyFps = Math.max(...transcode[0].fps);
  // ffmpeg's CPU per frame inside the headline pipeline over the same clip's plain transcode.
  const ffmpegOverTranscode = headOk?.ffmpegCpu && transcode[0].coreMsPerFrame ? headOk.ffmpegCpu.childrenCoreMsPerFrame / transcode[0].coreMsPerFrame : Number.NaN;
  // The same over the transcode of the pipeline's own output: what the pipeline adds beyond encoding its picture.
  const ffmpegOverOwnOutput = headOk?.ffmpegCpu && headOk.ownOutputTranscodeCoreMsPerFrame ? headOk.ffmpegCpu.childrenCoreMsPerFrame / headOk.ownOutputTranscodeCoreMsPerFrame : Number.NaN;
  const ffmpegFloorOverTranscode = headOk?.pictureCoreMsPerFrame && transcode[0].coreMsPerFrame ? headOk.pictureCoreMsPerFrame / transcode[0].coreMsPerFrame : Number.NaN;
  let camProfile: BenchReport['camProfile'] = null;
  let camShare = Number.NaN;
  if (headOk) {
    log('bench: ORT profile of the ResNet-50 extended graph (CAM share) ...');
    try {
      const runs = quick ? 20 : 60;
      const p: OrtProfile = await profileOrt({ model: 'resnet50', runs, threads, frame: [224, 224] });
      camShare = p.camShare;
      camProfile = { camMs: p.extended.kernelMs.cam, preMs: p.extended.kernelMs.pre, modelMs: p.extended.kernelMs.model, runs };
      log(`  CAM head ${p.extended.kernelMs.cam.toFixed(3)} ms = ${(100 * camShare).toFixed(2)}% of ${p.extended.kernelMs.model.toFixed(1)} ms of model kernels`);
    } catch (err) {
      camProfile = { error: (err as Error).message.slice(0, 300) };
    }
  }
  const report: BenchReport = {
    bench: 'camstream',
    date: new Date().toISOString(),
    quick,
    machine: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memGiB: totalmem() / 2 ** 30,
      node: process.version,
      avx512: /\bavx512f\b/.test(cpuFlags()),
      gpu: 'none used (CPU only)',
    },
    settings,
    ffmpeg: { path: tools.ffmpeg.path, version: tools.ffmpeg.version },
    probeGflops: [gflops0, gflops1],
    loadAvg: { start: loadStart, end: loadavg() },
    e2eFps,
    modelOnlyFps,
    peerE2eFps,
    e2eOverModel: e2eFps / modelOnlyFps,
    overPeer: peerE2eFps === null ? null : e2eFps / peerE2eFps,
    int8: int8Summary,
    transcodeOnlyFps,
    transcode,
    minEfficiency,
    minEfficiencyCeiling,
    ffmpegOverTranscode,
    ffmpegOverOwnOutput,
    ffmpegFloorOverTranscode,
    camShare,
    camProfile,
    cases,
    peer,
    live,
    targets: {
      'ResNet-50 720p end-to-end fps': { target: '>= 25', measured: fmt(e2eFps), met: e2eFps >= 25 },
      'end-to-end vs PyTorch peer': { target: '>= 2x', measured: peerE2eFps === null ? '–' : `${fmt(e2eFps / peerE2eFps, 2)}x`, met: peerE2eFps !== null && e2eFps / peerE2eFps >= 2 },
      'end-to-end / model-only': { target: '>= 85%', measured: `${fmt((100 * e2eFps) / modelOnlyFps, 0)}%`, met: e2eFps / modelOnlyFps >= 0.85 },
      'CAM share of the forward pass': { target: '<= 3%', measured: `${fmt(100 * camShare)}%`, met: camShare <= 0.03 },
      'int8 forward speedup (ResNet-50, same threads, interleaved)': { target: '>= 2.5x', measured: int8Summary ? `${fmt(int8Summary.forwardSpeedup, 2)}x` : '–', met: (int8Summary?.forwardSpeedup ?? 0) >= 2.5 },
      'ResNet-50 int8 720p end-to-end fps': { target: '>= 35', measured: fmt(int8Summary?.e2eFps), met: (int8Summary?.e2eFps ?? 0) >= 35 },
      'int8 end-to-end vs PyTorch peer': { target: '>= 3x', measured: int8Summary?.overPeer ? `${fmt(int8Summary.overPeer, 2)}x` : '–', met: (int8Summary?.overPeer ?? 0) >= 3 },
      'min efficiency over the 720p cases (e2e / limit)': { target: '>= 0.85', measured: fmt(minEfficiency, 2), met: minEfficiency >= 0.85 },
      'ffmpeg core-ms per frame in the pipeline / transcode-only (ResNet-50 fp32)': { target: '<= 1.25x', measured: `${fmt(ffmpegOverTranscode, 2)}x`, met: ffmpegOverTranscode <= 1.25 },
    },
  };
  process.stdout.write(renderBench(report));
  if (values.json) {
    await writeFile(values.json, `${JSON.stringify(report, null, 2)}\n`);
    log(`bench: wrote ${values.json}`);
  }
} finally {
  if (!values.keep) await rm(dir, { recursive: true, force: true });
}
// ORT may keep thread pools alive; everything is written.
process.exit(0);
