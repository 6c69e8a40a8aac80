/**
 * The review feature's HTTP side: the `/review` page (the client build's review.html) and a small REST API
 * under `/api/review` over the review store (pipelines/review). Requests reach here only after the
 * server's token check. Image files are only ever read from paths the store holds, looked up by numeric id:
 * no path given by a client is opened. Writes (decisions) must be same-origin JSON POSTs.
 *
 *   GET  /api/review/datasets                         datasets with their summaries
 *   GET  /api/review/datasets/:id                     one dataset and its summary
 *   GET  /api/review/datasets/:id/images?...          grid rows (filters: split, class, correct, iouMin,
 *                                                     iouMax, status; sort: confidence | iou | key; order)
 *   GET  /api/review/datasets/:id/export?format=F     csv | json | html download
 *   GET  /api/review/images/:id                       one row, its top-k and its stored maps (8-bit)
 *   GET  /api/review/images/:id/overlay.jpg?class=&size=   overlay thumbnail rendered on the server
 *   POST /api/review/images/:id/decision              {status?, tag?, note?}
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { CamstreamError } from '../../common/index.ts';
import {
  EXPORT_FORMATS,
  renderExport,
  renderReviewOverlay,
  ReviewStore,
  StoreBusyError,
  type ExportFormat,
  type ReviewRow,
  type RowFilter,
} from '../../review/index.ts';
import { REVIEW_API, type Decision, type ReviewDatasetInfo, type ReviewImageDetail, type ReviewRowWire } from '../../protocol/index.ts';
import { sameOrigin } from './auth.ts';
import { SECURITY_HEADERS, sendText } from './static.ts';

/** Path of the review page. */
export const REVIEW_PAGE = '/review';
const MAX_BODY_BYTES = 16 * 1024;
/** Overlay thumbnail sides the API accepts (`?size=`), pixels; the renderer's own range. */
const OVERLAY_SIDES = Object.freeze({ min: 16, max: 2048, default: 320 });

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

/** Seconds a client is told to wait before retrying a write the store was too busy to take. */
const BUSY_RETRY_SECONDS = 2;

function intParam(value: string | null | undefined, what: string): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  if (!/^\d{1,9}$/.test(value)) throw new HttpError(400, `${what} must be a non-negative integer, got '${value}'`);
  return Number(value);
}

function fractionParam(value: string | null, what: string): number | undefined {
  if (value === null || value === '') return undefined;
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new HttpError(400, `${what} must be a number in [0, 1], got '${value}'`);
  return n;
}

function oneOf<T extends string>(value: string | null, allowed: readonly T[], what: string): T | undefined {
  if (value === null || value === '') return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new HttpError(400, `${what} must be one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
}

/** A row as sent to the client: no file path. */
function wireRow(r: ReviewRow): ReviewRowWire {
  const { path: _path, sha256: _sha, ...rest } = r;
  return rest;
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, 'the body must be application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the body is not valid JSON');
  }
}

export interface ReviewRoutesOptions {
  /** The review store file (`<home>/review.db`); opened on the first request. */
  dbPath: string;
  /** The built client folder (holds review.html). */
  clientDir: string;
}

/** Routes for `/review` and `/api/review/*`. `handles(req)` says whether a request is theirs. */
export class ReviewRoutes {
  private store: ReviewStore | undefined;

  constructor(private readonly options: ReviewRoutesOptions) {}

  handles(req: IncomingMessage): boolean {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    return path === REVIEW_PAGE || path === `${REVIEW_PAGE}/` || path === REVIEW_API || path.startsWith(`${REVIEW_API}/`);
  }

  private open(): ReviewStore {
    this.store ??= ReviewStore.open(this.options.dbPath);
    return this.store;
  }

  /** Serves one request; never throws (errors become status codes with a one-line text). */
  async handle(req: IncomingMessage, res: ServerResponse, extraHeaders: Record<string, string>): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (url.pathname === `${REVIEW_PAGE}/`) {
        res.writeHead(308, { ...SECURITY_HEADERS, location: `${REVIEW_PAGE}${url.search}`, 'content-length': 0 });
        return void res.end();
      }
      if (url.pathname === REVIEW_PAGE) return await this.page(req, res, extraHeaders);
      await this.api(req, res, url);
    } catch (err) {
      if (err instanceof HttpError) return sendText(res, err.status, err.message, err.headers);
      if (err instanceof CamstreamError) return sendText(res, err.code === 'INPUT' ? 404 : 400, err.message);
      sendText(res, 500, 'internal error');
    }
  }

  private async page(req: IncomingMessage, res: ServerResponse, extraHeaders: Record<string, string>): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method not allowed');
    const file = join(this.options.clientDir, 'review.html');
    if (!existsSync(file)) throw new HttpError(503, 'the review page is not built: run `npm run build:client`, then restart camstream serve');
    const body = await readFile(file);
    res.writeHead(200, { ...SECURITY_HEADERS, ...extraHeaders, 'content-type': 'text/html; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const parts = url.pathname.slice(REVIEW_API.length).split('/').filter(Boolean);
    const q = url.searchParams;
    const get = req.method === 'GET' || req.method === 'HEAD';
    const store = this.open();
    if (parts[0] === 'datasets' && get) {
      if (parts.length === 1) return sendJson(res, 200, store.listDatasets().map((d) => datasetInfo(d)));
      const id = intParam(parts[1], 'dataset id')!;
      const d = store.dataset(id);
      if (!d) throw new HttpError(404, `no dataset with id ${id}`);
      if (parts.length === 2) return sendJson(res, 200, datasetInfo(d));
      if (parts.length === 3 && parts[2] === 'images') {
        const filter: RowFilter = {
          split: oneOf(q.get('split'), ['train', 'val', 'test', 'all'] as const, 'split') ?? 'test',
          classId: intParam(q.get('class'), 'class'),
          correct: q.get('correct') === 'right' ? true : q.get('correct') === 'wrong' ? false : undefined,
          iouMin: fractionParam(q.get('iouMin'), 'iouMin'),
          iouMax: fractionParam(q.get('iouMax'), 'iouMax'),
          status: oneOf(q.get('status'), ['accepted', 'rejected', 'undecided'] as const, 'status'),
          sort: oneOf(q.get('sort'), ['confidence', 'iou', 'key'] as const, 'sort'),
          order: oneOf(q.get('order'), ['asc', 'desc'] as const, 'order'),
        };
        oneOf(q.get('correct'), ['right', 'wrong', 'all'] as const, 'correct');
        return sendJson(res, 200, store.rows(id, filter).map(wireRow));
      }
      if (parts.length === 3 && parts[2] === 'export') {
        const format = oneOf(q.get('format'), EXPORT_FORMATS, 'format') ?? 'json';
        const body = await renderExport(store, d.name, format as ExportFormat);
        const type = { csv: 'text/csv; charset=utf-8', json: 'application/json; charset=utf-8', html: 'text/html; charset=utf-8' }[format];
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'content-type': type,
          'content-length': Buffer.byteLength(body),
          'content-disposition': `attachment; filename="${d.name.replace(/[^\w.-]/g, '_')}-review.${format}"`,
          'cache-control': 'no-store',
        });
        return void res.end(body);
      }
    }
    if (parts[0] === 'images' && parts.length >= 2) {
      const id = intParam(parts[1], 'image id')!;
      const row = store.row(id);
      if (!row) throw new HttpError(404, `no analysed image with id ${id}`);
      if (parts.length === 2 && get) {
        const detail: ReviewImageDetail = {
          ...wireRow(row),
          maps: store.maps(id).map((m) => ({ classId: m.classId, width: m.width, height: m.height, min: m.min, max: m.max, data: Array.from(m.data) })),
        };
        return sendJson(res, 200, detail);
      }
      if (parts.length === 3 && parts[2] === 'overlay.jpg' && get) {
        const maxSide = intParam(q.get('size'), 'size') ?? OVERLAY_SIDES.default;
        // A size out of range is a bad request, not a missing image.
        if (maxSide < OVERLAY_SIDES.min || maxSide > OVERLAY_SIDES.max) throw new HttpError(400, `size must be an integer in [${OVERLAY_SIDES.min}, ${OVERLAY_SIDES.max}], got '${q.get('size')}'`);
        const jpeg = await renderReviewOverlay(store, id, { classId: intParam(q.get('class'), 'class'), maxSide });
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'image/jpeg', 'content-length': jpeg.length, 'cache-control': 'private, max-age=300' });
        return void res.end(jpeg);
      }
      if (parts.length === 3 && parts[2] === 'decision' && req.method === 'POST') {
        if (!sameOrigin(req)) throw new HttpError(403, 'cross-origin writes are refused');
        const body = (await readJsonBody(req)) as Record<string, unknown> | null;
        if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'the body must be a JSON object');
        const unknown = Object.keys(body).filter((k) => !['status', 'tag', 'note'].includes(k));
        if (unknown.length) throw new HttpError(400, `unknown field ${unknown[0]} (allowed: status, tag, note)`);
        let decision: Decision;
        try {
          decision = store.setDecision(id, body as Parameters<ReviewStore['setDecision']>[1]);
        } catch (err) {
          // Another process held the store's lock too long: the request was fine, the server was busy.
          if (err instanceof StoreBusyError) throw new HttpError(503, err.message, { 'retry-after': String(BUSY_RETRY_SECONDS) });
          throw new HttpError(400, (err as Error).message);
        }
        return sendJson(res, 200, decision);
      }
    }
    throw new HttpError(req.method === 'POST' || get ? 404 : 405, `no review route ${req.method} ${url.pathname}`);
  }

  dispose(): void {
    this.store?.close();
    this.store = undefined;
  }
}

function datasetInfo(d: ReturnType<ReviewStore['listDatasets']>[number]): ReviewDatasetInfo {
  return { id: d.id, name: d.name, layout: d.layout, classes: d.classes, updatedAt: d.updatedAt, summary: d.summary, issues: d.issues };
}
