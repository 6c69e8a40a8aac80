/**
 * The jobs page's side of `/api/jobs` (server/http/jobs.ts): the listing and the two writes. The shapes
 * mirror the server's `CamJobStatus` and `CamQueueCounts`; the token travels in the cookie the page's
 * `?token=` visit set.
 */

export const JOBS_API = '/api/jobs';

export interface JobProgress {
  done: number;
  total: number | null;
}

export interface JobStatus {
  id: string;
  kind: 'video' | 'image' | 'chunk' | 'join';
  inputs: string[];
  state: string;
  progress: JobProgress | null;
  worker: string | null;
  attempts: number;
  error: string | null;
  outputs: string[];
  createdAt: number;
  finishedAt: number | null;
  parent: string | null;
}

export type QueueCounts = Record<string, number>;

export interface JobsListing {
  counts: QueueCounts;
  jobs: JobStatus[];
}

export interface JobAction {
  id: string;
  ok: boolean;
  note: string;
}

async function json<T>(response: Response): Promise<T> {
  if (!response.ok && response.status !== 409 && response.status !== 404) throw new Error(`${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

export function listJobs(limit = 100): Promise<JobsListing> {
  return fetch(`${JOBS_API}?limit=${limit}`).then((r) => json<JobsListing>(r));
}

export function jobAction(id: string, action: 'retry' | 'cancel'): Promise<JobAction> {
  return fetch(`${JOBS_API}/${encodeURIComponent(id)}/${action}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then((r) =>
    json<JobAction>(r),
  );
}

/** Done as a fraction in [0, 1]; null while the total is unknown. A finished job is whole. */
export function progressFraction(job: JobStatus): number | null {
  if (job.state === 'completed') return 1;
  const p = job.progress;
  if (!p || p.total === null || p.total <= 0) return null;
  return Math.min(1, p.done / p.total);
}

const RETRYABLE = new Set(['failed', 'completed']);
const CANCELLABLE = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children', 'failed', 'completed']);

export function canRetry(job: JobStatus): boolean {
  return RETRYABLE.has(job.state);
}

export function canCancel(job: JobStatus): boolean {
  return CANCELLABLE.has(job.state);
}
