/**
 * One video case of `npm run bench` (engine x backend x model x clip), run in a child process of its own
 * so that its peak RSS and its tensor count are its own:
 *
 *   node bin/run-ts.js bench/internal/video-case.ts SPEC.json RESULT.json
 *
 * In order: forward vs infer (bench/internal/case.ts, interleaved; bench models only), decode-only
 * (ffmpeg decode + scale to model size into JS), then `rounds` of (model-only over the decoded frames,
 * end-to-end `annotateVideo` to an MP4), then model-only once more. Numbers, never assertions.
 *
 * An int8 case (`spec.int8`) first gets the model's int8 form as `--int8` does (cli/int8.ts: calibrated on
 * frames of the clip, cached under the run's folder), times it against the fp32 model interleaved at the
 * same threads, and then runs the int8 model through the steps above.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { int8ModelFor } from '../../cli/int8.ts';
import { interleavedTiming, type CalibrationMethod, type FidelityReport } from '../../models/onnx/index.ts';
import { load, type CamModel, type EngineName } from '../../models/index.ts';
import { openInferPool, type InferPool } from '../../models/index.ts';
import { annotateVideo, chooseBatchFrames, probeMedia, readVideo$, type StageReport } from '../../pipelines/index.ts';
import { locateCliFfmpeg } from '../../cli/ffmpeg.ts';
import { runCase, type CaseResult } from './case.ts';
import type { MeasurePlan } from './measure.ts';
import { modelOnlyFps as measureModelOnly, peakRssMiB } from './measure.ts';
import { BENCH_PREPROCESS, type BenchModelName } from './models.ts';
import { ProcessCpuSampler, reapedChildrenCpuMs } from './proc-cpu.ts';

export interface VideoCaseSpec {
  /** Row label, e.g. `resnet50 (random, ONNX)`. */
  label: string;
  /** `embedded` (zoo or Darknet fixture, engine by format) or a bench model. */
  model: 'embedded' | BenchModelName;
  engine: EngineName;
  backend: string;
  /** Model file or folder. */
  path: string;
  clip: string;
  clipLabel: string;
  /** Frames of the clip used (decode-only, model-only and end-to-end alike). */
  maxFrames: number;
  threads: number;
  spinWait: boolean;
  decodeThreads: number;
  encodeThreads: number;
  preset: string;
  crf: number;
  rounds: number;
  /** tfjs: run the model in an InferPool of this many worker threads (one wasm instance each). Default 1 (this thread). */
  workers?: number;
  /** Plan of the forward-vs-infer timing; none skips it. */
  forwardPlan?: MeasurePlan;
  outDir: string;
  /** ONNX only: run the model's int8 form, calibrated with this method on frames of the clip. */
  int8?: CalibrationMethod;
  /** Calibration frames at most (default as --int8: 200). */
  int8Frames?: number;
  /** Interleaved fp32-vs-int8 single-frame runs of each model (default 20). */
  int8TimingRuns?: number;
}

/** What an int8 case adds: how the model was made, its fidelity, and its speed against fp32. */
export interface Int8CaseInfo {
  method: CalibrationMethod;
  /** Wall time of calibration, quantization and the fidelity report. */
  quantizeMs: number;
  /** The report quantizing stored (held-out frames of the clip; its own interleaved timing). */
  fidelity?: FidelityReport;
  /**
   * camstream `infer()` of one frame at model size, median ms, fp32 and int8 interleaved (ABBA) in this
   * process at the case's threads and spin setting; speedup = fp32Ms / int8Ms.
   */
  forward: { fp32Ms: number; int8Ms: number; speedup: number; runs: number };
}

/**
 * CPU of the pipeline's ffmpeg children in the fastest end-to-end run, core-ms per frame: the decoder(s)
 * and the compositor + encoder, as ffmpeg reported them at exit (`VideoReport.ffmpegCpu`, `-benchmark`)
 * where the pipeline gives them, else sampled from /proc/<pid>/stat every `sampleMs` (each may then miss up
 * to that much of its process's last moments); `children` is exact either way (this process's reaped
 * children: decoder, encoder, ffprobe).
 */
export interface FfmpegCpu {
  decoderCoreMsPerFrame: number;
  encoderCoreMsPerFrame: number;
  childrenCoreMsPerFrame: number;
  decoders: number;
  source: 'ffmpeg -benchmark' | 'sampled /proc';
  sampleMs: number;
}

/** The per-process figures the pipeline reports, when it does (read loosely: older pipelines lack them). */
function reportedFfmpegCpu(report: object): { decoder: number; encoder: number } | undefined {
  const cpu = (report as { ffmpegCpu?: { decoder?: { coreMsPerFrame: number }; compositor?: { coreMsPerFrame: number } } }).ffmpegCpu;
  return cpu?.decoder && cpu.compositor ? { decoder: cpu.decoder.coreMsPerFrame, encoder: cpu.compositor.coreMsPerFrame } : undefined;
}

export interface VideoCaseResult {
  spec: VideoCaseSpec;
  backend: string;
  threads: number;
  workers: number;
  batchFrames: number;
  frames: number;
  clipSize: [number, number];
  /** Forward vs camstream's infer (CAM share), when measured. */
  forwardCam?: CaseResult;
  decodeMsPerFrame: number;
  modelOnlyFps: number[];
  e2eFps: number[];
  /** Stage means (ms per frame) of the fastest end-to-end run. */
  stages: StageReport;
  /** CPU of the fastest end-to-end run: `busy` share of all cores (/proc/stat, Linux), core-ms per frame in all, in this process, and the rest (ffmpeg and anything else running). */
  cpu?: CpuSplit;
  peakRssMiB: number;
  /** tfjs: tensors alive before load, after the runs (model loaded) and after dispose. ORT: none (no tensor crosses). */
  tensors?: { beforeLoad: number; afterRuns: number; afterDispose: number };
  loadAvg: [number, number];
  int8?: Int8CaseInfo;
  ffmpegCpu?: FfmpegCpu;
  /** The fastest end-to-end round's MP4. */
  outputPath?: string;
  /**
   * Set by bench/run.ts: ffmpeg's core-ms per frame transcoding `outputPath` as the transcode-only row
   * does the clip (same decode and x264 settings): the cost of encoding this case's picture.
   */
  ownOutputTranscodeCoreMsPerFrame?: number;
  /** Set by bench/run.ts: ffmpeg's core-ms per frame only decoding `outputPath`. */
  ownOutputDecodeCoreMsPerFrame?: number;
  /**
   * Set by bench/run.ts (`efficiencyCeiling`): the most fps the cores give when all their time goes to the
   * model and to `pictureCoreMsPerFrame`, and that over `limitFps`, the best efficiency any pipeline writing
   * this picture could show.
   */
  pictureLimitFps?: number;
  efficiencyCeiling?: number;
  /** Set by bench/run.ts: the least ffmpeg core-ms per frame for this picture (the clip's decode plus x264 on it). */
  pictureCoreMsPerFrame?: number;
  /** Set by bench/run.ts: the clip's transcode-only fps, `1 / (1/modelOnlyFps + 1/transcodeOnlyFps)` (best of each) and e2eFps over it. */
  transcodeOnlyFps?: number;
  limitFps?: number;
  efficiency?: number;
}

export interface CpuSplit {
  busy: number;
  coreMsPerFrame: number;
  nodeCoreMsPerFrame: number;
  otherCoreMsPerFrame: number;
}

/** Busy and total jiffies over all cores from /proc/stat; undefined where there is none. */
async function cpuTicks(): Promise<{ busy: number; total: number } | undefined> {
  try {
    const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    return { busy: total - fields[3] - fields[4], total };
  } catch {
    return undefined;
  }
}

/** Runs `fn` (which handles `frames()` frames) and splits the machine's CPU time over it per frame. */
async function measureCpu<T>(fn: () => Promise<T>, frames: (r: T) => number): Promise<{ result: T; cpu?: CpuSplit }> {
  const ticks0 = await cpuTicks();
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await fn();
  const wallMs = performance.now() - t0;
  const own = process.cpuUsage(own0);
  const ticks1 = await cpuTicks();
  const n = frames(result);
  if (!ticks0 || !ticks1 || n === 0 || ticks1.total === ticks0.total) return { result };
  const busy = (ticks1.busy - ticks0.busy) / (ticks1.total - ticks0.total);
  const coreMs = busy * availableParallelism() * wallMs;
  const nodeMs = (own.user + own.system) / 1000;
  return { result, cpu: { busy, coreMsPerFrame: coreMs / n, nodeCoreMsPerFrame: nodeMs / n, otherCoreMsPerFrame: Math.max(0, coreMs - nodeMs) / n } };
}

async function tensorCount(engine: EngineName): Promise<number | undefined> {
  if (engine !== 'tfjs') return undefined;
  const tf = await import('@tensorflow/tfjs-core');
  return tf.memory().numTensors;
}

export async function runVideoCase(spec: VideoCaseSpec): Promise<VideoCaseResult> {
  const load0 = loadavg()[0];
  let modelPath = spec.path;
  let int8Made: { quantizeMs: number; fidelity?: FidelityReport } | undefined;
  if (spec.int8) {
    const t0 = performance.now();
    const made = await int8ModelFor(spec.path, {
      calibrate: [spec.clip],
      calibrateFlag: 'the bench clip',
      method: spec.int8,
      frames: spec.int8Frames,
      threads: spec.threads,
      config: spec.model === 'embedded' ? undefined : BENCH_PREPROCESS,
      cacheDir: join(spec.outDir, 'cache'),
      quiet: true,
    });
    modelPath = made.path;
    int8Made = { quantizeMs: performance.now() - t0, ...(made.report ? { fidelity: made.report } : {}) };
  }
  let forwardCam: CaseResult | undefined;
  if (spec.forwardPlan && spec.model !== 'embedded') {
    forwardCam = await runCase({
      engine: spec.engine,
      backend: spec.backend,
      model: spec.model,
      path: modelPath,
      inputSize: [224, 224],
      threads: spec.threads,
      spinWait: spec.spinWait,
      frameSize: [640, 480],
      topK: 5,
      plan: spec.forwardPlan,
    });
  }
  const before = await tensorCount(spec.engine);
  const loadOptions = {
    engine: spec.engine,
    backend: spec.backend,
    threads: spec.threads,
    spinWait: spec.spinWait,
    ...(spec.model === 'embedded' ? {} : { config: BENCH_PREPROCESS }),
  };
  const pool: InferPool | undefined = (spec.workers ?? 1) > 1 ? await openInferPool(modelPath, { workers: spec.workers, load: loadOptions }) : undefined;
  const model: CamModel = pool ?? (await load(modelPath, loadOptions));
  let afterRuns: number | undefined;
  try {
    const tools = await locateCliFfmpeg();
    const probe = await probeMedia(spec.clip, { tools, countFrames: 'always' });
    const [h, w] = model.info.preprocess.inputSize;
    const batch = (await chooseBatchFrames(model, { data: new Uint8Array(h * w * 3).fill(128), width: w, height: h })).batchFrames;
    const t0 = performance.now();
    const decoded = (
      await lastValueFrom(
        readVideo$(spec.clip, { probe, preprocess: model.info.preprocess, tools, threads: spec.decodeThreads, maxFrames: spec.maxFrames }).pipe(toArray()),
      )
    ).map((f) => f.pixels);
    const decodeMsPerFrame = (performance.now() - t0) / decoded.length;
    await model.infer(decoded.slice(0, batch), { topK: 5 });
    let int8: Int8CaseInfo | undefined;
    if (spec.int8 && int8Made) {
      const fp32 = await load(spec.path, loadOptions);
      try {
        const runs = spec.int8TimingRuns ?? 20;
        const [fp32Ms, int8Ms] = await interleavedTiming(fp32, model, decoded, runs);
        int8 = { method: spec.int8, ...int8Made, forward: { fp32Ms, int8Ms, speedup: fp32Ms / int8Ms, runs } };
      } finally {
        await fp32.dispose();
      }
    }
    const modelOnlyFps: number[] = [];
    const e2eFps: number[] = [];
    let best: Awaited<ReturnType<typeof annotateVideo>> | undefined;
    let bestCpu: CpuSplit | undefined;
    let bestFfmpeg: FfmpegCpu | undefined;
    let bestOut: string | undefined;
    for (let round = 0; round < spec.rounds; round++) {
      const out = join(spec.outDir, `${spec.model}-${spec.engine}-${spec.backend}-${round}.mp4`);
      modelOnlyFps.push(await measureModelOnly(model, decoded, batch));
      const sampler = new ProcessCpuSampler(50);
      let decoders = 0;
      const children0 = await reapedChildrenCpuMs();
      const { result: r, cpu } = await measureCpu(() => annotateVideo(model, spec.clip, {
        out,
        manifest: false,
        tools,
        infer: { batchFrames: batch },
        decode: { maxFrames: spec.maxFrames, threads: spec.decodeThreads },
        encode: { threads: spec.encodeThreads, preset: spec.preset, crf: spec.crf },
      }, {
        onDecodeStart: (handle) => {
          decoders++;
          sampler.watch('decoder', handle.pid);
        },
        onEncodeStart: (encoder) => sampler.watch('encoder', encoder.pid),
      }), (done) => done.frames);
      const sampled = sampler.stop();
      const children1 = await reapedChildrenCpuMs();
      e2eFps.push(r.fps);
      if (!best || r.fps > best.fps) {
        best = r;
        bestOut = out;
        bestCpu = cpu;
        const reported = reportedFfmpegCpu(r);
        bestFfmpeg =
          children0 !== undefined && children1 !== undefined && r.frames > 0
            ? {
                decoderCoreMsPerFrame: reported?.decoder ?? (sampled.decoder ?? 0) / r.frames,
                encoderCoreMsPerFrame: reported?.encoder ?? (sampled.encoder ?? 0) / r.frames,
                childrenCoreMsPerFrame: (children1 - children0) / r.frames,
                decoders,
                source: reported ? 'ffmpeg -benchmark' : 'sampled /proc',
                sampleMs: sampler.intervalMs,
              }
            : undefined;
      }
    }
    modelOnlyFps.push(await measureModelOnly(model, decoded, batch));
    afterRuns = pool ? (await pool.tensorCounts()).reduce((a, b) => a + b, 0) : await tensorCount(spec.engine);
    return {
      spec,
      backend: model.info.backend,
      threads: model.info.threads,
      workers: pool?.parallelism ?? 1,
      batchFrames: batch,
      frames: best!.frames,
      clipSize: [probe.displayWidth, probe.displayHeight],
      forwardCam,
      decodeMsPerFrame,
      modelOnlyFps,
      e2eFps,
      stages: best!.stages,
      ...(bestCpu ? { cpu: bestCpu } : {}),
      ...(bestFfmpeg ? { ffmpegCpu: bestFfmpeg } : {}),
      ...(bestOut ? { outputPath: bestOut } : {}),
      ...(int8 ? { int8 } : {}),
      peakRssMiB: peakRssMiB(),
      loadAvg: [load0, loadavg()[0]],
      ...(before !== undefined ? { tensors: { beforeLoad: before, afterRuns: afterRuns!, afterDispose: Number.NaN } } : {}),
    };
  } finally {
    await model.dispose();
  }
}

const [specFile, outFile] = process.argv.slice(2);
if (specFile && outFile && process.argv[1]?.endsWith('video-case.ts')) {
  const spec = JSON.parse(await readFile(specFile, 'utf8')) as VideoCaseSpec;
  try {
    const result = await runVideoCase(spec);
    const after = await tensorCount(spec.engine);
    if (result.tensors && after !== undefined) result.tensors.afterDispose = after;
    await writeFile(outFile, JSON.stringify(result));
    // ORT may keep its thread pool alive after release; the result is written.
    process.exit(0);
  } catch (err) {
    process.stderr.write(`video-case ${spec.label}: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
}
