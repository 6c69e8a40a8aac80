/**
 * `camstream worker`: takes video and image jobs from the Redis queue and runs them, until SIGTERM or
 * SIGINT (current jobs finish first; a second signal stops them, and they are retried elsewhere).
 */
import { Command } from 'commander';
import { basename, extname } from 'node:path';
import { ConfigError } from '../../common/index.ts';
import type { CamModel } from '../../models/index.ts';
import { openModel, parsePositiveInt } from '../model.ts';

interface WorkerCliOptions {
  redis?: string;
  concurrency: number;
  inputRoot: string;
  outRoot: string;
  models?: string[];
  name?: string;
  lockMs?: number;
  stalledMs?: number;
  progressMs: number;
  quiet?: boolean;
}

/** `name=spec` or `spec` (named by its file name without extension) to [name, spec]. */
export function parseModelEntry(entry: string): [string, string] {
  const eq = entry.indexOf('=');
  if (eq > 0) return [entry.slice(0, eq), entry.slice(eq + 1)];
  return [basename(entry.replace(/\/+$/, ''), extname(entry)), entry];
}

/** The Redis URL from --redis or CAMSTREAM_REDIS; ConfigError when neither is set. */
export function redisUrl(flag: string | undefined): string {
  const url = flag ?? (process.env.CAMSTREAM_REDIS || undefined);
  if (!url) throw new ConfigError('--redis <url> is required (or set CAMSTREAM_REDIS), e.g. redis://127.0.0.1:6379');
  return url;
}

async function openModels(entries: readonly string[] | undefined, quiet: boolean): Promise<Map<string, CamModel>> {
  const models = new Map<string, CamModel>();
  try {
    if (!entries || entries.length === 0) models.set('default', await openModel({ quiet, spinWait: false }));
    for (const [name, spec] of (entries ?? []).map(parseModelEntry)) {
      if (models.has(name)) throw new ConfigError(`--models names '${name}' twice`);
      models.set(name, await openModel({ model: spec, quiet, spinWait: false }));
    }
  } catch (err) {
    await Promise.all([...models.values()].map((m) => m.dispose()));
    throw err;
  }
  return models;
}

export function workerCommand(): Command {
  return new Command('worker')
    .summary('run queued video and image jobs from Redis (BullMQ)')
    .description(
      'Takes jobs submitted with `camstream jobs submit` from the Redis queue and runs them like `camstream video` ' +
        'and `camstream image`. Job paths must lie under --input-root and --out-root (symlinks resolved); a job may only ' +
        'name a model of --models. SIGTERM lets current jobs finish; a second SIGTERM stops them (they are retried).',
    )
    .option('--redis <url>', 'redis:// or rediss:// URL (default CAMSTREAM_REDIS)')
    .option('-c, --concurrency <n>', 'jobs at once in this process', parsePositiveInt('--concurrency'), 1)
    .option('--input-root <dir>', 'folder every job input must lie in', process.cwd())
    .option('--out-root <dir>', 'folder every job output folder must lie in', process.cwd())
    .option('--models <name=spec...>', 'allowed models (folder, model.json, .onnx or URL), optionally named; the first is the default (default: the embedded model)')
    .option('--name <name>', 'this worker in job status (default host:pid)')
    .option('--lock-ms <ms>', 'job lock; a dead worker\'s job is taken over after about this long (default 30000)', parsePositiveInt('--lock-ms'))
    .option('--stalled-ms <ms>', 'how often to look for jobs of dead workers (default 30000)', parsePositiveInt('--stalled-ms'))
    .option('--progress-ms <ms>', 'shortest interval between progress writes to Redis per job', parsePositiveInt('--progress-ms'), 1000)
    .option('-q, --quiet', 'no start-up report or per-job log lines')
    .action(async (options: WorkerCliOptions) => {
      const [{ redisConnection, startCamWorker }, { shutdownFfmpeg }, { locateCliFfmpeg }] = await Promise.all([
        import('../../pipelines/jobs/index.ts'),
        import('../../pipelines/index.ts'),
        import('../ffmpeg.ts'),
      ]);
      const connection = redisConnection(redisUrl(options.redis));
      const [tools, models] = await Promise.all([locateCliFfmpeg(), openModels(options.models, options.quiet ?? false)]);
      const log = options.quiet ? undefined : (line: string): void => void process.stderr.write(`camstream worker: ${line}\n`);
      let worker;
      try {
        worker = await startCamWorker(connection, {
          concurrency: options.concurrency,
          inputRoot: options.inputRoot,
          outRoot: options.outRoot,
          models,
          tools,
          name: options.name,
          lockDurationMs: options.lockMs,
          stalledIntervalMs: options.stalledMs,
          progressMs: options.progressMs,
          onLog: log,
        });
      } catch (err) {
        await Promise.all([...models.values()].map((m) => m.dispose()));
        throw err;
      }
      // One handler for the worker's whole life, in place before it says it is ready: between a first and a
      // second signal the process must never be left without one (the default action would kill it with its
      // jobs' ffmpeg children still running).
      const signals = signalCounter();
      process.stdout.write(`camstream worker: ${worker.name} ready (models: ${[...models.keys()].join(', ')})\n`);
      await signals.next();
      log?.('finishing current jobs, then exiting (signal again to stop them)');
      const closing = worker.close(false);
      const again = signals.next().then(() => {
        log?.('stopping current jobs; they will be retried');
        return worker.close(true);
      });
      await Promise.race([closing, again]);
      await shutdownFfmpeg();
      await Promise.all([...models.values()].map((m) => m.dispose()));
      // Engine threads or a library timer must not keep a worker that has stopped alive.
      process.exit(0);
    });
}

/**
 * Listens for SIGTERM and SIGINT from now on, for good; `next()` resolves at the next signal not yet
 * consumed (one that came before the call counts).
 */
function signalCounter(): { next: () => Promise<void> } {
  let received = 0;
  let consumed = 0;
  let wake: (() => void) | undefined;
  const on = (): void => {
    received++;
    wake?.();
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    next: () =>
      new Promise<void>((resolveNext) => {
        const check = (): void => {
          if (received > consumed) {
            consumed++;
            wake = undefined;
            resolveNext();
          } else {
            wake = check;
          }
        };
        check();
      }),
  };
}
