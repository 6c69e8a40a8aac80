/**
 * The submitter's and the watcher's side of the job queue: add jobs, read their status, cancel and retry
 * them. One `CamQueue` holds one Redis connection; `close()` releases it. The worker's side is worker.ts.
 */
import { FlowProducer, Queue, QueueEvents, type ConnectionOptions, type Job, type JobType } from 'bullmq';
import type { JobAction, JobStatus, QueueCounts } from '../../protocol/jobs.ts';
import type { ChunkRange } from './chunks.ts';
import { CAM_QUEUE_NAME, resolveJobOptions, type CamJobData, type CamJobProgress, type CamJobResult, type JobRetryConfig } from './queue-config.ts';

/** One job as `jobs status` and `/jobs` show it (the jobs API's wire shape, protocol/jobs.ts). */
export type CamJobStatus = JobStatus;

/** Queue counts by state. */
export type CamQueueCounts = QueueCounts;

/** What happened to one id asked to be cancelled or retried. */
export type CamJobAction = JobAction;

const LISTED: JobType[] = ['active', 'waiting', 'prioritized', 'delayed', 'waiting-children', 'failed', 'completed'];

function progressOf(job: Job): CamJobProgress | null {
  const p = job.progress as Partial<CamJobProgress> | number;
  if (p && typeof p === 'object' && typeof p.done === 'number') return { done: p.done, total: typeof p.total === 'number' ? p.total : null };
  return null;
}

/** A handle on the camstream queue in the Redis at `connection`. */
export class CamQueue {
  readonly #queue: Queue<CamJobData, CamJobResult>;
  readonly #connection: ConnectionOptions;
  #events: QueueEvents | undefined;

  constructor(connection: ConnectionOptions) {
    this.#connection = connection;
    this.#queue = new Queue<CamJobData, CamJobResult>(CAM_QUEUE_NAME, { connection });
  }

  /** Resolves with the job's status once it has completed or failed for good (no retry left). */
  async waitUntilFinished(id: string, limitMs?: number): Promise<CamJobStatus> {
    this.#events ??= new QueueEvents(CAM_QUEUE_NAME, { connection: this.#connection });
    await this.#events.waitUntilReady();
    const job = await this.#queue.getJob(id);
    if (!job) return unknownJob(id);
    // Rejects with the failure reason when the job fails: the status below carries it.
    await job.waitUntilFinished(this.#events, limitMs).catch(() => undefined);
    const [status] = await this.status([id]);
    return status;
  }

  /** Adds one job per entry of `jobs`; resolves to their ids, in order. */
  async submit(jobs: readonly CamJobData[], options: { priority?: number; retry?: JobRetryConfig } = {}): Promise<string[]> {
    const opts = resolveJobOptions(options.retry, options.priority ?? 0);
    const added = await this.#queue.addBulk(jobs.map((data) => ({ name: data.kind, data, opts })));
    return added.map((j) => String(j.id));
  }

  /**
   * Adds a split video: one `chunk` job per segment of `ranges` and a `join` job that runs once they have
   * all completed (a BullMQ flow; a segment failing for good fails the join). Resolves to the join's id
   * and the segments' ids, in order.
   */
  async submitSplit(
    video: CamJobData,
    ranges: readonly ChunkRange[],
    warmupSeconds: number,
    options: { priority?: number; retry?: JobRetryConfig } = {},
  ): Promise<{ id: string; chunks: string[] }> {
    const opts = resolveJobOptions(options.retry, options.priority ?? 0);
    const flow = new FlowProducer({ connection: this.#connection });
    try {
      const node = await flow.add({
        name: 'join',
        queueName: CAM_QUEUE_NAME,
        data: { ...video, kind: 'join', chunks: ranges.length },
        opts,
        children: ranges.map((r, index) => ({
          name: 'chunk',
          queueName: CAM_QUEUE_NAME,
          data: { ...video, kind: 'chunk' as const, chunk: { ...r, index, count: ranges.length, warmupSeconds } },
          opts: { ...opts, failParentOnFailure: true },
        })),
      });
      // BullMQ lists children in no set order: the segment index puts them back in order.
      const children = [...(node.children ?? [])].sort((a, b) => (a.job.data.chunk?.index ?? 0) - (b.job.data.chunk?.index ?? 0));
      return { id: String(node.job.id), chunks: children.map((c) => String(c.job.id)) };
    } finally {
      await flow.close();
    }
  }

  /** The named jobs (unknown ids come back with state `unknown`), or the newest `limit` of every state. */
  async status(ids?: readonly string[], limit = 100): Promise<CamJobStatus[]> {
    if (ids && ids.length > 0) {
      return Promise.all(
        ids.map(async (id) => {
          const job = await this.#queue.getJob(id);
          return job ? this.#describe(job) : unknownJob(id);
        }),
      );
    }
    const jobs = (await this.#queue.getJobs(LISTED, 0, limit - 1, false)).filter((j): j is Job<CamJobData, CamJobResult> => j !== undefined);
    return Promise.all(jobs.map((j) => this.#describe(j)));
  }

  async counts(): Promise<CamQueueCounts> {
    const c = await this.#queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed');
    return {
      waiting: c.waiting ?? 0,
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      prioritized: c.prioritized ?? 0,
      'waiting-children': c['waiting-children'] ?? 0,
      completed: c.completed ?? 0,
      failed: c.failed ?? 0,
    };
  }

  /** Removes jobs that are not running. A running job cannot be taken from its worker and is reported so. */
  async cancel(ids: readonly string[]): Promise<CamJobAction[]> {
    return Promise.all(
      ids.map(async (id): Promise<CamJobAction> => {
        const job = await this.#queue.getJob(id);
        if (!job) return { id, ok: false, note: 'no such job' };
        const state = await job.getState();
        if (state === 'active') return { id, ok: false, note: 'running on a worker; it cannot be cancelled mid-run' };
        try {
          // A join job goes with its segments; BullMQ refuses while one of them runs.
          await job.remove();
        } catch (err) {
          return { id, ok: false, note: `not removed: ${err instanceof Error ? err.message : String(err)}` };
        }
        return { id, ok: true, note: `removed (was ${state})` };
      }),
    );
  }

  /** Puts failed (or completed) jobs back in the queue with their attempts reset. */
  async retry(ids: readonly string[]): Promise<CamJobAction[]> {
    return Promise.all(
      ids.map(async (id): Promise<CamJobAction> => {
        const job = await this.#queue.getJob(id);
        if (!job) return { id, ok: false, note: 'no such job' };
        const state = await job.getState();
        if (state !== 'failed' && state !== 'completed') return { id, ok: false, note: `is ${state}, only failed or completed jobs can be retried` };
        await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
        return { id, ok: true, note: `queued again (was ${state})` };
      }),
    );
  }

  async close(): Promise<void> {
    await this.#events?.close();
    await this.#queue.close();
  }

  async #describe(job: Job<CamJobData, CamJobResult>): Promise<CamJobStatus> {
    return {
      id: String(job.id),
      kind: job.data.kind,
      inputs: job.data.inputs,
      state: await job.getState(),
      progress: progressOf(job),
      worker: job.processedBy ?? job.returnvalue?.worker ?? null,
      attempts: job.attemptsMade,
      error: job.failedReason || null,
      outputs: job.returnvalue?.outputs ?? [],
      createdAt: job.timestamp,
      finishedAt: job.finishedOn ?? null,
      parent: job.parent?.id ?? null,
    };
  }
}

function unknownJob(id: string): CamJobStatus {
  return { id, kind: 'video', inputs: [], state: 'unknown', progress: null, worker: null, attempts: 0, error: null, outputs: [], createdAt: 0, finishedAt: null, parent: null };
}
