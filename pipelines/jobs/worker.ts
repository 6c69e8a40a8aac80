/**
 * `startCamWorker`: a BullMQ worker that takes camstream jobs from Redis and runs them (run-job.ts).
 * Bad input (a path outside the roots, an unknown model, a file ffmpeg cannot read, a bad option) fails the
 * job at once with BullMQ's UnrecoverableError, the reason kept on the job; anything else (ffmpeg failing to
 * start, a Redis blip) is retried with exponential backoff. `close()` lets current jobs finish; `close(true)`
 * stops them, and they are retried or picked up again after BullMQ's stalled-job check.
 */
import { realpath } from 'node:fs/promises';
import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { CamstreamError, ConfigError, InputError, type CamModel } from '../../models/index.ts';
import { FfmpegError, type FfmpegTools } from '../ffmpeg/index.ts';
import { CAM_QUEUE_NAME, type CamJobData, type CamJobResult } from './queue-config.ts';
import { checkJobData, runCamJob } from './run-job.ts';

export interface CamWorkerConfig {
  /** Parallel jobs in this process. Default 1 (one job already keeps 2 cores busy). */
  concurrency?: number;
  /** Folder every input must lie in (real path taken at start). Required. */
  inputRoot: string;
  /** Folder every output folder must lie in. Required. */
  outRoot: string;
  /** Allowed models by name; a job naming none gets the first. Required, non-empty. */
  models: ReadonlyMap<string, CamModel>;
  tools: FfmpegTools;
  /** Shortest interval between two progress writes to Redis per job, ms. Default 1000. */
  progressMs?: number;
  /** BullMQ lock of an active job, ms; a dead worker's job is taken over after about this long. Default 30000. */
  lockDurationMs?: number;
  /** How often BullMQ looks for stalled jobs, ms. Default 30000. */
  stalledIntervalMs?: number;
  /** This worker's name in job status. Default `<host>:<pid>`. */
  name?: string;
  /** Called when a job starts, ends, or fails (one line, for the worker's log). */
  onLog?: (line: string) => void;
}

export const DEFAULT_CAM_WORKER_CONFIG = Object.freeze({ concurrency: 1, progressMs: 1000, lockDurationMs: 30_000, stalledIntervalMs: 30_000 });

export interface CamWorker {
  readonly name: string;
  /** Stops taking jobs; waits for current jobs (or, with `force`, stops them) and closes the connections. */
  close(force?: boolean): Promise<void>;
}

/** Errors that no retry can fix: the job's data or its input is bad. */
function isBadInput(err: unknown): boolean {
  // ffmpeg exited non-zero on the input, or camstream refused the file before running ffmpeg on it (no
  // command line). Transient: ffmpeg could not start or was killed (a command line, no exit status).
  if (err instanceof FfmpegError) return typeof err.exitCode === 'number' || err.command === undefined;
  return err instanceof InputError || err instanceof ConfigError || (err instanceof CamstreamError && (err.code === 'INPUT' || err.code === 'CONFIG'));
}

function positive(field: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`${field} must be a whole number >= 1, got ${String(value)}`);
  return value;
}

/** Starts a worker on the camstream queue at `connection`. Resolves once the roots are checked. */
export async function startCamWorker(connection: ConnectionOptions, config: CamWorkerConfig): Promise<CamWorker> {
  const d = DEFAULT_CAM_WORKER_CONFIG;
  if (config.models.size === 0) throw new ConfigError('a worker needs at least one allowed model');
  const inputRoot = await realpath(config.inputRoot).catch(() => {
    throw new ConfigError(`--input-root '${config.inputRoot}' does not exist`);
  });
  const outRoot = await realpath(config.outRoot).catch(() => {
    throw new ConfigError(`--out-root '${config.outRoot}' does not exist`);
  });
  const name = config.name ?? `${hostname()}:${process.pid}`;
  const progressMs = config.progressMs ?? d.progressMs;
  const log = config.onLog ?? (() => undefined);
  const running = new Set<AbortController>();
  const [firstModel] = config.models.keys();

  const process$ = async (job: Job<CamJobData, CamJobResult>): Promise<CamJobResult> => {
    const controller = new AbortController();
    running.add(controller);
    log(`job ${job.id}: started (attempt ${job.attemptsMade + 1})`);
    try {
      const data = checkJobData(job.data);
      const modelName = data.model ?? firstModel;
      const model = config.models.get(modelName);
      if (!model) throw new InputError(`model '${modelName}' is not on this worker's list (${[...config.models.keys()].join(', ')})`);
      const result = await runCamJob(data, {
        jobId: String(job.id),
        inputRoot,
        outRoot,
        tools: config.tools,
        model,
        worker: name,
        progressMs,
        signal: controller.signal,
        // A segment writes where its join job reads; a join job reads its own segments.
        parentId: data.kind === 'join' ? String(job.id) : job.parent?.id,
        onProgress: (p) => {
          log(`job ${job.id}: ${p.done}/${p.total ?? '?'}`);
          // A failed write (Redis away for a moment) only loses this tick; the next one says more.
          void job.updateProgress({ ...p }).catch(() => undefined);
        },
      });
      log(`job ${job.id}: done, ${result.outputs.join(', ')}`);
      return result;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log(`job ${job.id}: failed: ${message}`);
      if (isBadInput(err)) throw new UnrecoverableError(message);
      throw err;
    } finally {
      running.delete(controller);
    }
  };

  const worker = new Worker<CamJobData, CamJobResult>(CAM_QUEUE_NAME, process$, {
    connection,
    name,
    concurrency: positive('concurrency', config.concurrency ?? d.concurrency),
    lockDuration: positive('lockDurationMs', config.lockDurationMs ?? d.lockDurationMs),
    stalledInterval: positive('stalledIntervalMs', config.stalledIntervalMs ?? d.stalledIntervalMs),
  });
  // Connection errors are retried by ioredis; without a listener Node would treat them as fatal.
  worker.on('error', (err) => log(`redis: ${err.message}`));
  await worker.waitUntilReady();
  return {
    name,
    close: async (force = false) => {
      if (force) for (const c of running) c.abort();
      await worker.close(force);
    },
  };
}
