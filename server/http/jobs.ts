/**
 * The job queue's HTTP side, on when `camstream serve --redis <url>`: the `/jobs` page (the client build's
 * jobs.html) and a small API over the BullMQ queue that `camstream worker`s take from. Requests reach here
 * only after the server's token check. BullMQ is imported when the routes open, so a server without
 * `--redis` never loads it. Writes (retry, cancel) must be same-origin JSON POSTs, as the review API's.
 *
 *   GET  /api/jobs?limit=N             {counts, jobs}: queue counts by state and the newest N jobs (100)
 *   POST /api/jobs/:id/retry           {}: queue a failed or completed job again
 *   POST /api/jobs/:id/cancel          {}: remove a job that is not running
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { CamJobAction, CamQueue } from '../../pipelines/jobs/index.ts';
import { JOBS_API, type JobsListing } from '../../protocol/jobs.ts';
import { sameOrigin } from './auth.ts';
import { SECURITY_HEADERS, sendText } from './static.ts';

/** Path of the jobs page. */
export const JOBS_PAGE = '/jobs';
export { JOBS_API };
/** A Redis that does not answer within this long makes a request fail with 503 instead of hanging. */
const REDIS_WAIT_MS = 5000;
const MAX_BODY_BYTES = 1024;
const MAX_LIMIT = 1000;

export type { JobsListing };

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Redis calls with a deadline: the page shows that Redis is away rather than a request that never ends. */
function inTime<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HttpError(503, `the job queue's Redis did not answer within ${REDIS_WAIT_MS / 1000} s`)), REDIS_WAIT_MS);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** Reads and discards a small JSON body: the content type forces a CORS preflight on cross-site forms. */
async function checkJsonBody(req: IncomingMessage): Promise<void> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new HttpError(415, 'the body must be application/json');
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the body exceeds ${MAX_BODY_BYTES} bytes`);
  }
}

export interface JobsRoutesOptions {
  /** `redis://` or `rediss://` URL of the queue. */
  redisUrl: string;
  /** The built client folder (holds jobs.html). */
  clientDir: string;
}

/** Routes for `/jobs` and `/api/jobs/*`. `handles(req)` says whether a request is theirs. */
export class JobsRoutes {
  private constructor(
    private readonly queue: CamQueue,
    private readonly clientDir: string,
  ) {}

  /** Opens the queue (ConfigError for a bad URL). Does not wait for Redis: requests say when it is away. */
  static async open(options: JobsRoutesOptions): Promise<JobsRoutes> {
    const { CamQueue, redisConnection } = await import('../../pipelines/jobs/index.ts');
    return new JobsRoutes(new CamQueue(redisConnection(options.redisUrl)), options.clientDir);
  }

  handles(req: IncomingMessage): boolean {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    return path === JOBS_PAGE || path === `${JOBS_PAGE}/` || path === JOBS_API || path.startsWith(`${JOBS_API}/`);
  }

  /** Serves one request; never throws (errors become status codes with a one-line text). */
  async handle(req: IncomingMessage, res: ServerResponse, extraHeaders: Record<string, string>): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (url.pathname === `${JOBS_PAGE}/`) {
        res.writeHead(308, { ...SECURITY_HEADERS, location: `${JOBS_PAGE}${url.search}`, 'content-length': 0 });
        return void res.end();
      }
      if (url.pathname === JOBS_PAGE) return await this.page(req, res, extraHeaders);
      await this.api(req, res, url);
    } catch (err) {
      if (err instanceof HttpError) return sendText(res, err.status, err.message);
      sendText(res, 500, 'internal error');
    }
  }

  async close(): Promise<void> {
    await this.queue.close();
  }

  private async page(req: IncomingMessage, res: ServerResponse, extraHeaders: Record<string, string>): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method not allowed');
    const file = join(this.clientDir, 'jobs.html');
    if (!existsSync(file)) throw new HttpError(503, 'the jobs page is not built: run `npm run build:client`, then restart camstream serve');
    const body = await readFile(file);
    res.writeHead(200, { ...SECURITY_HEADERS, ...extraHeaders, 'content-type': 'text/html; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const parts = url.pathname.slice(JOBS_API.length).split('/').filter(Boolean);
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (parts.length === 0 && get) {
      const raw = url.searchParams.get('limit');
      if (raw !== null && !/^\d{1,4}$/.test(raw)) throw new HttpError(400, `limit must be a whole number in [1, ${MAX_LIMIT}], got '${raw}'`);
      const limit = raw === null ? 100 : Number(raw);
      if (limit < 1 || limit > MAX_LIMIT) throw new HttpError(400, `limit must be a whole number in [1, ${MAX_LIMIT}], got '${raw}'`);
      const [counts, jobs] = await inTime(Promise.all([this.queue.counts(), this.queue.status(undefined, limit)]));
      return sendJson(res, 200, { counts, jobs } satisfies JobsListing);
    }
    if (parts.length === 2 && (parts[1] === 'retry' || parts[1] === 'cancel') && req.method === 'POST') {
      if (!sameOrigin(req)) throw new HttpError(403, 'cross-origin writes are refused');
      // BullMQ ids are numbers, or names a submitter chose: letters, digits, - _ : only.
      if (!/^[A-Za-z0-9_:-]{1,128}$/.test(parts[0])) throw new HttpError(400, `not a job id: '${parts[0]}'`);
      await checkJsonBody(req);
      const [action]: CamJobAction[] = await inTime(parts[1] === 'retry' ? this.queue.retry([parts[0]]) : this.queue.cancel([parts[0]]));
      return sendJson(res, action.ok ? 200 : action.note === 'no such job' ? 404 : 409, action);
    }
    throw new HttpError(req.method === 'POST' || get ? 404 : 405, `no jobs route ${req.method} ${url.pathname}`);
  }
}
