/**
 * Wire shapes of the jobs REST API (`JOBS_API`, served by server/http/jobs.ts for the /jobs page): plain
 * JSON, declared here so the browser client needs nothing from pipelines/jobs/. The queue (pipelines/jobs/
 * queue.ts) builds its status records as these types, so a field changed on one side fails the typecheck.
 */

/** Base path of the jobs API. */
export const JOBS_API = '/api/jobs';

/** `chunk`: one segment of a split video; `join`: the parent that joins a split video's segments. */
export type JobKind = 'video' | 'image' | 'chunk' | 'join';

/** Progress of a running job. */
export interface JobProgress {
  done: number;
  /** Frames (video) or images expected, when known. */
  total: number | null;
}

/** One job as `jobs status` and `/jobs` show it. */
export interface JobStatus {
  id: string;
  kind: JobKind;
  inputs: string[];
  state: string;
  progress: JobProgress | null;
  /** The worker that took it last (its `--name`, default host:pid). */
  worker: string | null;
  attempts: number;
  error: string | null;
  outputs: string[];
  createdAt: number;
  finishedAt: number | null;
  /** For a segment of a split video: the id of the join job that waits for it. */
  parent: string | null;
}

/** The job states the queue counts. */
export type QueueState = 'waiting' | 'active' | 'delayed' | 'prioritized' | 'waiting-children' | 'completed' | 'failed';

/** Queue counts by state. */
export type QueueCounts = Record<QueueState, number>;

/** What GET /api/jobs answers. */
export interface JobsListing {
  counts: QueueCounts;
  jobs: JobStatus[];
}

/** What happened to one id asked to be cancelled or retried (POST /api/jobs/:id/retry|cancel). */
export interface JobAction {
  id: string;
  ok: boolean;
  /** Why not, or what was done. */
  note: string;
}
