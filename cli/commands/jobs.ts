/**
 * `camstream jobs`: submit video and image jobs to the Redis queue that `camstream worker`s take, watch
 * them, cancel and retry them.
 */
import { Command, Option } from 'commander';
import { extname, resolve } from 'node:path';
import { ConfigError } from '../../common/index.ts';
import { COLORMAP_NAMES } from '../../models/cam/colormaps.ts';
import type { CamJobData, CamJobStatus, CamQueue, ChunkRange, VideoJobOptions } from '../../pipelines/jobs/index.ts';
import { parseNumberIn, parsePositiveInt } from '../model.ts';
import { redisUrl } from './worker.ts';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff']);

interface SubmitOptions extends Omit<VideoJobOptions, 'json'> {
  redis?: string;
  out: string;
  model?: string;
  imagesPerJob: number;
  priority: number;
  attempts?: number;
  backoffMs?: number;
  frames: boolean;
  overlays: boolean;
  json?: boolean;
  chunkSeconds?: number;
  warmupSeconds: number;
}

async function openQueue(url: string | undefined): Promise<CamQueue> {
  const { CamQueue, redisConnection } = await import('../../pipelines/jobs/index.ts');
  return new CamQueue(redisConnection(redisUrl(url)));
}

/** One job per video and one per `imagesPerJob` images, in the order given. Paths are made absolute. */
export function planJobs(inputs: readonly string[], options: SubmitOptions): CamJobData[] {
  const out = resolve(options.out);
  const images = inputs.filter((i) => IMAGE_EXTENSIONS.has(extname(i).toLowerCase())).map((i) => resolve(i));
  const videos = inputs.filter((i) => !IMAGE_EXTENSIONS.has(extname(i).toLowerCase())).map((i) => resolve(i));
  const { top, smooth, every, batch, boxRule, threshold, colormap, alpha, maxFrames, preset, crf, audio } = options;
  const jobs: CamJobData[] = videos.map((v) => ({
    kind: 'video',
    inputs: [v],
    outDir: out,
    model: options.model,
    video: { top, smooth, every, batch, boxRule, threshold, colormap, alpha, maxFrames, preset, crf, audio, json: options.frames },
  }));
  for (let i = 0; i < images.length; i += options.imagesPerJob) {
    jobs.push({ kind: 'image', inputs: images.slice(i, i + options.imagesPerJob), outDir: out, model: options.model, image: { top, boxRule, threshold, overlays: options.overlays } });
  }
  return jobs;
}

function submitCommand(): Command {
  return new Command('submit')
    .description('queue one job per video and one per batch of images; prints the job ids')
    .argument('<inputs...>', 'videos and images (paths as the workers see them, under their --input-root)')
    .option('--redis <url>', 'redis:// or rediss:// URL (default CAMSTREAM_REDIS)')
    .requiredOption('-o, --out <dir>', 'output folder (under the workers\' --out-root)')
    .option('-m, --model <name>', 'a model name from the workers\' --models (default: their first)')
    .option('-k, --top <k>', 'classes per frame or image', parsePositiveInt('--top'))
    .option('--smooth <a>', 'EMA weight of the past in [0, 1)', parseNumberIn('--smooth', 0, 0.999))
    .option('--every <n>', 'run the model on every n-th frame', parsePositiveInt('--every'))
    .option('--batch <n>', 'frames per engine call (default: measured at start)', parsePositiveInt('--batch'))
    .addOption(new Option('--box-rule <rule>', 'box rule').choices(['paper', 'official']))
    .option('--threshold <t>', 'paper box threshold', parseNumberIn('--threshold', 0, 0.999))
    .addOption(new Option('--colormap <name>', 'heat map colours').choices([...COLORMAP_NAMES]))
    .option('--alpha <a>', 'heat map opacity', parseNumberIn('--alpha', 0, 1))
    .option('--max-frames <n>', 'only the first n frames', parsePositiveInt('--max-frames'))
    .option('--preset <name>', 'x264 preset')
    .option('--crf <n>', 'x264 quality, 0 to 51', parseNumberIn('--crf', 0, 51))
    .option('--no-audio', 'drop the audio track')
    .option('--no-frames', 'no per-frame JSONL beside each MP4')
    .option('--no-overlays', 'no overlay images for image jobs (records only)')
    .option('--images-per-job <n>', 'images in one job', parsePositiveInt('--images-per-job'), 100)
    .option('--priority <p>', '1 is the highest; 0 (default) queues behind prioritized jobs', parseNumberIn('--priority', 0, 2_097_152), 0)
    .option('--attempts <n>', 'tries for transient failures (default 3)', parsePositiveInt('--attempts'))
    .option('--backoff-ms <ms>', 'first retry delay, doubled each retry (default 2000)', parsePositiveInt('--backoff-ms'))
    .option('--chunk-seconds <s>', 'split each video at keyframes into segments of at least s seconds, run them in parallel, join them (the videos must be readable here too, e.g. on shared storage)', parseNumberIn('--chunk-seconds', 0.1, 1e6))
    .option('--warmup-seconds <s>', 'with --chunk-seconds: frames decoded before each segment to prime the smoothing, not output', parseNumberIn('--warmup-seconds', 0, 3600), 3)
    .option('--json', 'print {"ids": [...]} instead of one line per job (with --chunk-seconds, also {"chunks": {joinId: [...]}})')
    .action(async (inputs: string[], options: SubmitOptions) => {
      const jobs = planJobs(inputs, options);
      if (options.chunkSeconds !== undefined && (options.every !== undefined || options.maxFrames !== undefined)) {
        throw new ConfigError('--chunk-seconds cannot be combined with --every or --max-frames');
      }
      const retry = { priority: options.priority, retry: { attempts: options.attempts, backoffMs: options.backoffMs } };
      // Segment boundaries come from the videos' keyframes, read here before anything is queued.
      const plans = new Map<CamJobData, ChunkRange[]>();
      if (options.chunkSeconds !== undefined) {
        const [{ planVideoChunks }, { locateCliFfmpeg }] = await Promise.all([import('../../pipelines/jobs/index.ts'), import('../ffmpeg.ts')]);
        const tools = await locateCliFfmpeg();
        for (const job of jobs) if (job.kind === 'video') plans.set(job, await planVideoChunks(job.inputs[0], options.chunkSeconds, tools));
      }
      const queue = await openQueue(options.redis);
      try {
        const ids: string[] = [];
        const chunks: Record<string, string[]> = {};
        for (const job of jobs) {
          const ranges = plans.get(job);
          if (ranges && ranges.length > 1) {
            const split = await queue.submitSplit(job, ranges, options.warmupSeconds, retry);
            ids.push(split.id);
            chunks[split.id] = split.chunks;
          } else {
            ids.push(...(await queue.submit([job], retry)));
          }
        }
        if (options.json) process.stdout.write(`${JSON.stringify(options.chunkSeconds === undefined ? { ids } : { ids, chunks })}\n`);
        else {
          const describe = (job: CamJobData): string => `${job.kind} ${job.inputs.length === 1 ? job.inputs[0] : `${job.inputs.length} images`}`;
          process.stdout.write(ids.map((id, i) => `job ${id}: ${describe(jobs[i])}${chunks[id] ? ` in ${chunks[id].length} chunks (jobs ${chunks[id].join(', ')})` : ''}\n`).join(''));
        }
      } finally {
        await queue.close();
      }
    });
}

/**
 * One line per job, tab-separated: id, kind (`video`, `image`, `join`, or `chunk of <join id>` for a segment
 * of a split video), state, progress, worker, attempts, error.
 */
export function statusLine(s: CamJobStatus): string {
  const p = s.progress ? `${s.progress.done}/${s.progress.total ?? '?'}` : '-';
  const kind = s.kind === 'chunk' && s.parent ? `chunk of ${s.parent}` : s.kind;
  return [`${s.id}`, kind, s.state, p, s.worker ?? '-', `attempts ${s.attempts}`, s.error ? `error: ${s.error}` : ''].join('\t').trimEnd();
}

const FINISHED = new Set(['completed', 'failed', 'unknown']);

function statusCommand(): Command {
  return new Command('status')
    .description('state, progress (done/total), worker, attempts and error of jobs (default: the newest 100)')
    .argument('[ids...]', 'job ids')
    .option('--redis <url>', 'redis:// or rediss:// URL (default CAMSTREAM_REDIS)')
    .option('--watch', 'print again every --interval-ms until the named jobs have finished (Ctrl-C to stop)')
    .option('--interval-ms <ms>', 'watch interval', parsePositiveInt('--interval-ms'), 1000)
    .option('--json', 'a JSON array (one per line with --watch)')
    .action(async (ids: string[], options: { redis?: string; watch?: boolean; intervalMs: number; json?: boolean }) => {
      const queue = await openQueue(options.redis);
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      try {
        for (;;) {
          const list = await queue.status(ids);
          process.stdout.write(options.json ? `${JSON.stringify(list)}\n` : `${list.map(statusLine).join('\n')}\n`);
          const done = ids.length > 0 && list.every((s) => FINISHED.has(s.state));
          if (!options.watch || done || stop.signal.aborted) break;
          await new Promise((r) => setTimeout(r, options.intervalMs));
        }
      } finally {
        await queue.close();
      }
    });
}

function actionCommand(name: 'cancel' | 'retry', description: string): Command {
  return new Command(name)
    .description(description)
    .argument('<ids...>', 'job ids')
    .option('--redis <url>', 'redis:// or rediss:// URL (default CAMSTREAM_REDIS)')
    .option('--json', 'a JSON array of {id, ok, note}')
    .action(async (ids: string[], options: { redis?: string; json?: boolean }) => {
      const queue = await openQueue(options.redis);
      try {
        const results = name === 'cancel' ? await queue.cancel(ids) : await queue.retry(ids);
        process.stdout.write(options.json ? `${JSON.stringify(results)}\n` : results.map((r) => `${r.id}: ${r.note}\n`).join(''));
        if (results.some((r) => !r.ok)) process.exitCode = 1;
      } finally {
        await queue.close();
      }
    });
}

export function jobsCommand(): Command {
  return new Command('jobs')
    .summary('submit, watch, cancel and retry queued jobs (Redis, BullMQ)')
    .description('Jobs run on `camstream worker` processes, on this machine or others sharing the Redis and the storage.')
    .addCommand(submitCommand())
    .addCommand(statusCommand())
    .addCommand(actionCommand('cancel', 'remove jobs that have not started (or have finished)'))
    .addCommand(actionCommand('retry', 'queue failed or completed jobs again'));
}
