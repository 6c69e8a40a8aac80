/**
 * The jobs page's side of `/api/jobs` (server/http/jobs.ts): the listing and the two writes, in the wire
 * shapes of protocol/jobs.ts; the token travels in the cookie the page's `?token=` visit set.
 */
import { JOBS_API, type JobAction, type JobsListing, type JobStatus } from '../../../protocol/jobs.ts';


export type { JobAction, JobProgress, JobsListing, JobStatus, QueueCounts, QueueState } from '../../../protocol/jobs.ts';

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
