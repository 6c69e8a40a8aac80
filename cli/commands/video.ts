/**
 * `camstream video`: a recorded video (file, or http/https/rtsp URL) to an annotated H.264 MP4 with the
 * heat map, box and top-k labels at the original resolution, plus an optional JSONL file (one line per
 * frame) and a run manifest beside the output. Offline policy: every frame, bounded queue.
 */
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { ConfigError } from '../../common/index.ts';
import { COLORMAP_NAMES } from '../../models/cam/colormaps.ts';
import type { VideoConfig, VideoProgress, VideoReport } from '../../pipelines/index.ts';
import { addModelOptions, openModel, parseNumberIn, parsePositiveInt, throughputWorkers, type ModelCliOptions } from '../model.ts';
import { FrameEta, formatEta } from '../video-eta.ts';

interface VideoCliOptions extends ModelCliOptions {
  out: string;
  top: number;
  smooth: number;
  every: number;
  json?: string;
  boxRule: 'paper' | 'official';
  threshold: number;
  colormap: 'turbo' | 'jet' | 'inferno';
  alpha: number;
  maxFrames?: number;
  maxFramePixels: number;
  batch: number | 'auto';
  queue: number;
  preset: string;
  crf: number;
  audio: boolean;
  lenient?: boolean;
  rtspTcp?: boolean;
  manifest: boolean;
}

export function videoCommand(): Command {
  const command = new Command('video')
    .summary('annotate a video: heat map, box and labels per frame (MP4 + JSONL)')
    .description(
      'Decodes every frame, computes the class activation maps of the top classes, smooths them over time ' +
        '(EMA of raw maps, stable brightness scale, hysteresis on the shown class, reset on scene cuts) and ' +
        'writes an H.264 MP4 with the same frame count, rate and duration as the input (audio copied), a JSONL ' +
        'line per frame with --json, and <out>.manifest.json describing the run. Ctrl-C stops cleanly (exit 130; ' +
        'SIGTERM: 143). FFMPEG_PATH and FFPROBE_PATH choose the ffmpeg binaries.',
    )
    .argument('<input>', 'video file, http(s):// or rtsp:// URL, or - for standard input (a stream such as MPEG-TS or Matroska piped in)')
    .requiredOption('-o, --out <file>', 'output video (.mp4)')
    .option('-k, --top <k>', 'classes per frame, best first', parsePositiveInt('--top'), 5)
    .option('--smooth <a>', 'EMA weight of the past in [0, 1); 0 turns smoothing off', parseNumberIn('--smooth', 0, 0.999), 0.7)
    .option('--every <n>', 'run the model on every n-th frame; frames between reuse the last result', parsePositiveInt('--every'), 1)
    .option('--json <file>', 'write one JSON line per frame: {index, pts, top: [{index, label, score, box}]}')
    .addOption(new Option('--box-rule <rule>', 'paper: largest component above threshold; official: the released code').choices(['paper', 'official']).default('paper'))
    .option('--threshold <t>', 'paper box threshold, a fraction of the map maximum', parseNumberIn('--threshold', 0, 0.999), 0.2)
    .addOption(new Option('--colormap <name>', 'heat map colours').choices([...COLORMAP_NAMES]).default('turbo'))
    .option('--alpha <a>', 'heat map opacity', parseNumberIn('--alpha', 0, 1), 0.5)
    .option('--max-frames <n>', 'only the first n frames', parsePositiveInt('--max-frames'))
    .option('--max-frame-pixels <n>', 'refuse inputs whose frames have more pixels than this', parsePositiveInt('--max-frame-pixels'), 64_000_000)
    .option('--batch <n|auto>', 'frames per engine call; auto measures 1 vs 4 at start', parseBatch, 'auto' as const)
    .option('--workers <n>', 'run the model in n worker threads, each with its own copy and --threads threads, on different frames (default: one per core at 1 thread with --int8 on the CPU, else 1)', parsePositiveInt('--workers'))
    .option('--queue <n>', 'frames in flight at most (bounded queue)', parsePositiveInt('--queue'), 8)
    .option('--preset <name>', 'x264 preset', 'veryfast')
    .option('--crf <n>', 'x264 quality, 0 (lossless) to 51', parseNumberIn('--crf', 0, 51), 23)
    .option('--no-audio', 'drop the audio track')
    .option('--lenient', 'decode past damaged data instead of failing (a truncated file then gives a shorter video)')
    .option('--rtsp-tcp', 'RTSP over TCP (firewalls, lossy networks)')
    .option('--no-manifest', 'do not write <out>.manifest.json');
  addModelOptions(command);
  return command.action(async (input: string, options: VideoCliOptions) => {
    if (!Number.isInteger(options.crf)) throw new ConfigError(`--crf must be a whole number in [0, 51], got '${options.crf}'`);
    // Only the entry point reads the environment: FFMPEG_PATH / FFPROBE_PATH pick the binaries.
    // Start-up, timed for the breakdown line: locating ffmpeg spawns it (`-version`) and so runs alongside
    // the model load, which is JavaScript on this thread (engine modules, wasm, weights, a warm-up pass).
    // The pipeline modules load here, not at start: `--help` and the other commands do not pay for them.
    // They count as "process and modules" in the start-up line.
    const [{ annotateVideo, InterruptedError, shutdownFfmpeg, INPUT_SCHEMES, STDIN_INPUT }, { locateCliFfmpeg }] = await Promise.all([
      import('../../pipelines/index.ts'),
      import('../ffmpeg.ts'),
    ]);
    // `-`: the video comes on stdin, which only the command line may hand to ffmpeg (never a server or job).
    const fromStdin = input === STDIN_INPUT;
    if (fromStdin && process.stdin.isTTY) throw new ConfigError("input '-' reads the video from standard input, which is a terminal: pipe a stream in (ffmpeg ... -f mpegts - | camstream video - -o out.mp4)");
    const actionAt = performance.now();
    const located = timed(locateCliFfmpeg());
    // Thread budget: ffmpeg decodes, composites and encodes beside the engine (at a lower priority, see
    // VideoConfig.ffmpegNice). ONNX Runtime gets every core but does not spin-wait, so its idle threads
    // leave the cores to ffmpeg: measured best end to end (bench/ort-threads.ts, bench/README.md). An INT8
    // model runs as one 1-thread session per core instead (throughputWorkers).
    const loading = timed(openModel({ ...options, ...throughputWorkers(options), spinWait: false }));
    const [ffmpeg, opened] = await Promise.allSettled([located, loading]);
    if (opened.status === 'rejected') throw opened.reason;
    const model = opened.value.value;
    if (ffmpeg.status === 'rejected') {
      await model.dispose();
      throw ffmpeg.reason;
    }
    const tools = ffmpeg.value.value;
    const startup = { processMs: actionAt, ffmpegMs: ffmpeg.value.ms, modelMs: opened.value.ms, readyAt: performance.now() };
    const controller = new AbortController();
    let stoppedBy: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      stoppedBy ??= signal;
      controller.abort();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const bar = !options.quiet && process.stderr.isTTY ? progressBar() : undefined;
    let firstFrameAt: number | undefined;
    const onProgress = (p: VideoProgress): void => {
      if (firstFrameAt === undefined) {
        firstFrameAt = performance.now();
        if (!options.quiet) process.stderr.write(`camstream: ${startupLine({ ...startup, pipelineMs: firstFrameAt - startup.readyAt })}\n`);
      }
      bar?.update(p);
    };
    let report: VideoReport;
    try {
      const config = videoConfig(options);
      if (fromStdin) config.decode = { ...config.decode, schemes: [...INPUT_SCHEMES, 'stdin'] };
      report = await annotateVideo(model, input, { ...config, tools }, {
        signal: controller.signal,
        onProgress,
        onWarning: options.quiet ? undefined : (m) => bar?.log(m) ?? process.stderr.write(`camstream: warning: ${m}\n`),
      });
    } catch (err) {
      // Ends every ffmpeg child still running and deletes the encoder's temporary file before exiting.
      await shutdownFfmpeg();
      if (controller.signal.aborted) throw new InterruptedError(`interrupted by ${stoppedBy}: ${input} was not written to ${options.out}`, stoppedBy);
      throw err;
    } finally {
      bar?.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await model.dispose();
    }
    process.stdout.write(summary(report));
  });
}

/** The job's configuration from the parsed flags (defaults come from the flags, not from the job). */
function videoConfig(options: VideoCliOptions): VideoConfig {
  return {
    out: options.out,
    json: options.json,
    manifest: options.manifest ? undefined : false,
    maxFramePixels: options.maxFramePixels,
    decode: { maxFrames: options.maxFrames, strict: !options.lenient, inputOptions: options.rtspTcp ? ['-rtsp_transport', 'tcp'] : [] },
    infer: { topK: options.top, batchFrames: options.batch, everyFrames: options.every },
    queue: { maxQueueFrames: options.queue },
    smooth: { pastWeight: options.smooth },
    localize: { boxRule: options.boxRule, threshold: options.threshold },
    overlay: { colormap: options.colormap, alpha: options.alpha },
    encode: { preset: options.preset, crf: options.crf, audio: options.audio },
  };
}

/** `promise` with how long it took to settle (ms). */
async function timed<T>(promise: Promise<T>): Promise<{ value: T; ms: number }> {
  const from = performance.now();
  const value = await promise;
  return { value, ms: performance.now() - from };
}

/** What the run cost before its first frame came out (all in ms). */
interface Startup {
  /** From the process's start to this command's action: Node.js, the TypeScript loader, camstream's modules. */
  processMs: number;
  ffmpegMs: number;
  modelMs: number;
  /** From the model being ready to the first frame out: probe, batch-size choice, ffmpeg's first frames. */
  pipelineMs: number;
}

/** The start-up breakdown, one line. */
export function startupLine(s: Startup): string {
  const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const total = s.processMs + Math.max(s.ffmpegMs, s.modelMs) + s.pipelineMs;
  return (
    `start-up ${sec(total)}: process and modules ${sec(s.processMs)}, model load ${sec(s.modelMs)} ` +
    `(engine, weights, warm-up; ffmpeg located alongside in ${sec(s.ffmpegMs)}), ` +
    `probe + batch choice + first frame ${sec(s.pipelineMs)}`
  );
}

function parseBatch(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  return parsePositiveInt('--batch')(value);
}

function summary(r: VideoReport): string {
  const s = r.stages;
  const per = (k: keyof typeof s): string => `${k} ${s[k].meanMs.toFixed(1)}`;
  const lines = [
    `${r.out}: ${r.frames} frames (${r.inferredFrames} inferred) in ${(r.elapsedMs / 1000).toFixed(1)} s, ${r.fps.toFixed(1)} fps, audio ${r.encode.audio}`,
    `  ms per frame: ${[per('infer'), per('smooth'), per('localize'), per('render'), per('encode'), ...(r.json ? [per('json')] : [])].join(', ')}; batch ${r.batchFrames}`,
    `  flicker ${r.smooth.flicker.toFixed(4)} (mean frame-to-frame change of the shown map, 0-1), ${r.smooth.switches} class switches, ${r.smooth.cuts} scene cuts, smoothing ${r.config.smooth.pastWeight}`,
    ...(r.smooth.boxFlicker === undefined ? [] : [`  box flicker ${r.smooth.boxFlicker.toFixed(4)} (mean 1 - IoU of the shown class's box from frame to frame, 0-1)`]),
  ];
  if (r.json) lines.push(`  frames: ${r.json}`);
  if (r.manifest) lines.push(`  manifest: ${r.manifest}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The terminal progress bar: frames, fps and ETA (on stderr, only when it is a TTY). Both figures come from
 * the throughput measured once frames flow (FrameEta), never from start-up; "estimating" until then.
 */
function progressBar(): { update: (p: VideoProgress) => void; log: (m: string) => true; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: ' {bar} {percentage}% | {value}/{total} frames | {rate} fps | ETA {eta}',
      hideCursor: true,
      clearOnComplete: false,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const eta = new FrameEta();
  let started = false;
  return {
    update: (p) => {
      const total = p.totalFrames ?? Math.max(p.frames, 1);
      eta.observe(p.frames, p.elapsedMs);
      const fps = eta.fps();
      const payload = { rate: fps === undefined ? '-' : fps.toFixed(1), eta: formatEta(eta.secondsLeft(p.totalFrames)) };
      if (!started) {
        bar.start(total, 0, payload);
        started = true;
      }
      if (p.frames > bar.getTotal()) bar.setTotal(p.frames);
      bar.update(p.frames, payload);
    },
    log: (m) => {
      process.stderr.write(`\r\x1b[2Kcamstream: warning: ${m}\n`);
      return true;
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
