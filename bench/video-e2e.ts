/**
 * Video end-to-end bench: `camstream video`'s pipeline (decode -> infer + CAM -> smooth -> localize ->
 * render -> composite + encode) over a generated 720p clip, against the model alone on the same frames in
 * the same run. Numbers, never assertions.
 *
 *   node bin/run-ts.js bench/video-e2e.ts [--quick] [--json FILE] [--models embedded,resnet50]
 *     [--seconds 10] [--rounds 2] [--threads N] [--decode-threads 1] [--encode-threads 0] [--preset veryfast]
 *     [--batch auto|N] [--workers N]
 *
 * Per model, in this order, in this process:
 *   decode-only   ffmpeg decode + scale to model size into JS (readVideo$, no consumer work): frames/s
 *   rounds of:
 *     model-only  infer() over those decoded frames, batched as the pipeline batches: frames/s
 *     end-to-end  annotateVideo() on the clip (MP4 written, no JSONL), with per-stage ms per frame
 *   model-only    once more (the machine may be shared: model-only runs bracket every end-to-end run)
 *   encode-only   the compositor alone: constant overlay frames through writeOverlayVideo: frames/s
 * The headline ratio is best end-to-end fps / best model-only fps. Thread budget as `camstream video`:
 * the engine gets cores - 1 intra-op threads (`--threads`), ffmpeg the rest. `--workers N` runs ResNet-50 in an
 * InferPool of N worker threads (one ORT session of `--threads` each, different frames on each). CAM is computed inside the engine's
 * session (ORT) or tidy (tfjs) and is not timed apart here; bench/forward-cam.ts gives its share.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { from, lastValueFrom, toArray } from 'rxjs';
import { load, openInferPool, type CamModel, type Frame } from '../models/index.ts';
import {
  annotateVideo,
  chooseBatchFrames,
  DEFAULT_VIDEO_CONFIG,
  layoutFor,
  probeMedia,
  readVideo$,
  resolveVideoOverlayConfig,
  runFfmpeg,
  writeOverlayVideo,
  type FfmpegTools,
  type MediaInfo,
  type StageReport,
} from '../pipelines/index.ts';
import { locateCliFfmpeg } from '../cli/ffmpeg.ts';
import { defaultModelDir } from '../cli/model.ts';
import { BENCH_PREPROCESS, prepareModel } from './internal/models.ts';
import { modelOnlyFps } from './internal/measure.ts';
import { probeGflops } from './internal/probe.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DARKNET = resolve(ROOT, '..', 'shared', 'fixtures', 'models', 'darknet_tiny_ml5');
const VIDEO_MODELS = ['embedded', 'resnet50'] as const;
type VideoModelName = (typeof VIDEO_MODELS)[number];

export interface VideoE2eRow {
  model: string;
  /** Where the weights came from (the zoo folder, the Darknet fixture, or the random ResNet-50 file). */
  source: string;
  engine: string;
  backend: string;
  threads: number;
  batchFrames: number;
  frames: number;
  decodeOnlyFps: number;
  /** The model alone on the decoded frames, before each end-to-end run and once after. */
  modelOnlyFps: number[];
  /** Each end-to-end run. */
  e2eFps: number[];
  /** Best end-to-end fps / best model-only fps (the least disturbed runs of each). */
  ratio: number;
  encodeOnlyFps: number;
  /** Mean ms per frame of each pipeline stage in the fastest end-to-end run. */
  stages: StageReport;
  loadAvg: [number, number];
}

export interface VideoE2eReport {
  bench: 'video-e2e';
  date: string;
  machine: { cpus: number; cpuModel: string; node: string };
  clip: { width: number; height: number; fps: number; frames: number; codec: string };
  settings: { decodeThreads: number; encodeThreads: number; preset: string; ortThreads: number; workers: number };
  probeGflops: [number, number];
  rows: VideoE2eRow[];
  note: string;
}

function usage(message: string): never {
  process.stderr.write(`video-e2e: ${message}\n`);
  process.exit(2);
}

async function decodeAll(clip: string, probe: MediaInfo, model: CamModel, tools: FfmpegTools, threads: number): Promise<{ frames: Frame[]; fps: number }> {
  const t0 = performance.now();
  const frames = await lastValueFrom(
    readVideo$(clip, { probe, preprocess: model.info.preprocess, tools, threads }).pipe(toArray()),
  );
  return { frames: frames.map((f) => f.pixels), fps: (frames.length * 1000) / (performance.now() - t0) };
}

async function encodeOnly(clip: string, probe: MediaInfo, model: CamModel, tools: FfmpegTools, dir: string, settings: VideoE2eReport['settings']): Promise<number> {
  const layout = layoutFor(model, probe, resolveVideoOverlayConfig());
  const overlay = new Uint8Array(layout.width * layout.height * 4);
  // A plausible overlay: heat at half opacity, annotations transparent.
  for (let i = layout.annHeight * layout.width * 4; i < overlay.length; i += 4) {
    overlay[i] = 200;
    overlay[i + 3] = 128;
  }
  const n = probe.frameCount ?? 0;
  const t0 = performance.now();
  await lastValueFrom(
    from(Array.from({ length: n }, () => ({ overlay }))).pipe(
      writeOverlayVideo({ input: clip, out: join(dir, 'encode-only.mp4'), layout, rate: probe.frameRate, tools, threads: settings.encodeThreads, preset: settings.preset }),
      toArray(),
    ),
  );
  return (n * 1000) / (performance.now() - t0);
}

async function openBenchModel(name: VideoModelName, dir: string, ortThreads: number, spinWait: boolean, workers: number): Promise<{ model: CamModel; source: string; label: string }> {
  if (name === 'embedded') {
    const zoo = defaultModelDir();
    const source = zoo ?? DARKNET;
    return { model: await load(source), source, label: zoo ? 'embedded (models/zoo)' : 'darknet-tiny fixture (no zoo model yet)' };
  }
  const prepared = await prepareModel('resnet50', dir, [224, 224]);
  const options = { engine: 'onnx' as const, threads: ortThreads, spinWait, config: BENCH_PREPROCESS };
  return {
    model: workers > 1 ? await openInferPool(prepared.onnxPath, { workers, load: options }) : await load(prepared.onnxPath, options),
    source: prepared.onnxPath,
    label: `resnet50 (random weights, ONNX)${workers > 1 ? `, ${workers}-worker pool` : ''}`,
  };
}

export async function runVideoE2eBench(argv: readonly string[]): Promise<VideoE2eReport> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      models: { type: 'string', default: VIDEO_MODELS.join(',') },
      seconds: { type: 'string' },
      threads: { type: 'string', default: String(Math.max(1, availableParallelism() - 1)) },
      rounds: { type: 'string' },
      'decode-threads': { type: 'string', default: String(DEFAULT_VIDEO_CONFIG.decode.threads) },
      'encode-threads': { type: 'string', default: String(DEFAULT_VIDEO_CONFIG.encode.threads) },
      preset: { type: 'string', default: DEFAULT_VIDEO_CONFIG.encode.preset },
      batch: { type: 'string', default: 'auto' },
      spin: { type: 'string', default: 'on' },
      dir: { type: 'string' },
      workers: { type: 'string', default: '1' },
    },
    strict: true,
  });
  const models = values.models.split(',').map((m) => m.trim()) as VideoModelName[];
  for (const m of models) if (!(VIDEO_MODELS as readonly string[]).includes(m)) usage(`--models: unknown '${m}' (known: ${VIDEO_MODELS.join(', ')})`);
  const seconds = Number(values.seconds ?? (values.quick ? 4 : 10));
  if (!(seconds > 0 && seconds <= 120)) usage(`--seconds must be in (0, 120], got ${values.seconds}`);
  const int = (flag: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) usage(`--${flag} must be an integer >= ${min}, got ${v}`);
    return n;
  };
  const settings = {
    ortThreads: int('threads', values.threads, 1),
    decodeThreads: int('decode-threads', values['decode-threads'], 0),
    encodeThreads: int('encode-threads', values['encode-threads'], 0),
    preset: values.preset,
    workers: int('workers', values.workers, 1),
  };
  const batchArg = values.batch === 'auto' ? 'auto' : int('batch', values.batch, 1);
  const rounds = int('rounds', values.rounds ?? (values.quick ? '1' : '2'), 1);
  const log = (line: string): void => void process.stderr.write(`${line}\n`);

  const dir = values.dir ? resolve(values.dir) : await mkdtemp(join(tmpdir(), 'camstream-video-bench-'));
  try {
    const tools = await locateCliFfmpeg();
    // ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=30 -t 10 -c:v libx264 -preset veryfast -pix_fmt yuv420p clip.mp4
    const clip = join(dir, 'clip-720p.mp4');
    log(`generating a ${seconds} s 720p clip ...`);
    await runFfmpeg({
      binary: tools.ffmpeg.path,
      args: ['-y', '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=30:duration=${seconds}`, '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', clip],
      timeoutMs: 300_000,
    });
    const probe = await probeMedia(clip, { tools, countFrames: 'always' });
    const gflops0 = await probeGflops();
    log(`machine probe: ${gflops0.toFixed(0)} GFLOP/s single-thread sgemm; load average ${loadavg()[0].toFixed(1)}`);

    const rows: VideoE2eRow[] = [];
    for (const name of models) {
      log(`${name}: loading ...`);
      const { model, source, label } = await openBenchModel(name, dir, settings.ortThreads, values.spin !== 'off', settings.workers);
      try {
        const load0 = loadavg()[0];
        const [h, w] = model.info.preprocess.inputSize;
        const batch = batchArg === 'auto' ? (await chooseBatchFrames(model, { data: new Uint8Array(h * w * 3).fill(128), width: w, height: h })).batchFrames : batchArg;
        const decoded = await decodeAll(clip, probe, model, tools, settings.decodeThreads);
        log(`  decode-only ${decoded.fps.toFixed(1)} fps (${decoded.frames.length} frames), batch ${batch}`);
        await model.infer(decoded.frames.slice(0, batch), { topK: 5 });
        // Rounds of (model alone, whole pipeline), then the model alone once more: on a shared machine the
        // best of each is the least disturbed, and the pairs show how much the load moved in between.
        const modelFps: number[] = [];
        const e2eFps: number[] = [];
        let report: Awaited<ReturnType<typeof annotateVideo>> | undefined;
        for (let round = 0; round < rounds; round++) {
          modelFps.push(await modelOnlyFps(model, decoded.frames, batch));
          log(`  model-only ${modelFps.at(-1)!.toFixed(1)} fps`);
          const r = await annotateVideo(model, clip, {
            out: join(dir, `${name}.mp4`),
            manifest: false,
            tools,
            infer: { batchFrames: batch },
            decode: { threads: settings.decodeThreads },
            encode: { threads: settings.encodeThreads, preset: settings.preset },
          });
          e2eFps.push(r.fps);
          if (!report || r.fps > report.fps) report = r;
          log(`  end-to-end ${r.fps.toFixed(1)} fps`);
        }
        modelFps.push(await modelOnlyFps(model, decoded.frames, batch));
        log(`  model-only ${modelFps.at(-1)!.toFixed(1)} fps`);
        const enc = await encodeOnly(clip, probe, model, tools, dir, settings);
        log(`  encode-only ${enc.toFixed(1)} fps`);
        rows.push({
          model: label,
          source,
          engine: model.info.engine,
          backend: model.info.backend,
          threads: model.info.threads,
          batchFrames: batch,
          frames: report!.frames,
          decodeOnlyFps: decoded.fps,
          modelOnlyFps: modelFps,
          e2eFps,
          ratio: Math.max(...e2eFps) / Math.max(...modelFps),
          encodeOnlyFps: enc,
          stages: report!.stages,
          loadAvg: [load0, loadavg()[0]],
        });
      } finally {
        await model.dispose();
      }
    }
    const gflops1 = await probeGflops();
    const out: VideoE2eReport = {
      bench: 'video-e2e',
      date: new Date().toISOString(),
      machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version },
      clip: { width: probe.displayWidth, height: probe.displayHeight, fps: probe.fps, frames: probe.frameCount ?? 0, codec: probe.codec },
      settings,
      probeGflops: [gflops0, gflops1],
      rows,
      note:
        'Model-only runs bracket each end-to-end run in the same process (same model instance, threads and batch); ' +
        'on a shared machine compare the ratio of the best runs, not absolute fps (see the load averages and the ' +
        'sgemm probe before/after). Stage columns: mean ms per frame in the fastest end-to-end run, wall time on ' +
        'the JS thread (inflated when the machine is oversubscribed); encode wait = time a frame waited for ffmpeg.',
    };
    process.stdout.write(renderVideoE2e(out));
    if (values.json) await writeFile(values.json, `${JSON.stringify(out, null, 2)}\n`);
    return out;
  } finally {
    if (!values.dir) await rm(dir, { recursive: true, force: true });
  }
}

/** The markdown table of a run. */
export function renderVideoE2e(r: VideoE2eReport): string {
  const f = (v: number): string => v.toFixed(1);
  const head = ['model', 'engine/backend', 'threads', 'batch', 'decode-only fps', 'model-only fps (runs)', 'end-to-end fps (runs)', 'best e2e / best model', 'encode-only fps',
    'ms/frame: infer', 'smooth', 'localize', 'render', 'encode wait', 'load avg'];
  const lines = [
    `## video-e2e: ${r.clip.width}x${r.clip.height} ${r.clip.codec} at ${r.clip.fps} fps, ${r.clip.frames} frames; ${r.machine.cpus} cores; ` +
      `decode threads ${r.settings.decodeThreads}, encode threads ${r.settings.encodeThreads} (0 = ffmpeg decides), x264 ${r.settings.preset}; ` +
      `sgemm probe ${r.probeGflops.map((g) => g.toFixed(0)).join(' -> ')} GFLOP/s`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
  ];
  for (const row of r.rows) {
    const s = row.stages;
    lines.push(
      `| ${row.model} | ${row.engine}/${row.backend} | ${row.threads} | ${row.batchFrames} | ${f(row.decodeOnlyFps)} | ${row.modelOnlyFps.map(f).join(' / ')} | ` +
        `${row.e2eFps.map(f).join(' / ')} | ${(100 * row.ratio).toFixed(0)}% | ${f(row.encodeOnlyFps)} | ${s.infer.meanMs.toFixed(1)} | ${s.smooth.meanMs.toFixed(2)} | ` +
        `${s.localize.meanMs.toFixed(2)} | ${s.render.meanMs.toFixed(2)} | ${s.encode.meanMs.toFixed(1)} | ${row.loadAvg.map((l) => l.toFixed(1)).join('-')} |`,
    );
  }
  lines.push('', r.note, '');
  return `${lines.join('\n')}\n`;
}

const isMain = process.argv[1] !== undefined && pathToFileURL(resolve(process.argv[1])).href === import.meta.url;
if (isMain) {
  await runVideoE2eBench(process.argv.slice(2));
  // ORT may keep its thread pool alive after dispose; the results are out.
  process.exit(0);
}
