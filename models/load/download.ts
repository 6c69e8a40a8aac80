/**
 * One file of a URL model, downloaded atomically into its cache entry: streamed to a temporary name,
 * hashed on the way, synced, and renamed over the final name only when every byte arrived. Two clocks
 * stop a download: an idle timeout (no byte for `timeoutMs`) and a total deadline for the whole model
 * (`deadlineMs`), so a server that sends one byte now and then cannot hold a load forever.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

import { ModelLoadError } from '../../common/errors.ts';
import type { LoadOptions } from '../types.ts';
import { tempName } from './cache.ts';

/** Default for `DownloadOptions.timeoutMs`: 30 s without a byte aborts a download. */
export const DEFAULT_DOWNLOAD_TIMEOUT_MS = 30_000;

/** Default for `DownloadOptions.deadlineMs`: a model's files must all arrive within 15 minutes. */
export const DEFAULT_DOWNLOAD_DEADLINE_MS = 15 * 60_000;

/** Status codes that mean "this optional file is not there". S3-style buckets answer 403 for a missing key. */
const ABSENT_STATUS = new Set([403, 404, 410]);

/** Download tuning beyond `LoadOptions` (kept here so the core contract stays small). */
export interface DownloadOptions {
  /**
   * Milliseconds without any progress (no response headers, or no body bytes) after which a download is
   * aborted with a ModelLoadError. Default `DEFAULT_DOWNLOAD_TIMEOUT_MS` (30 000).
   */
  timeoutMs?: number;
  /**
   * Milliseconds the download of a whole model (model file, config, labels, every shard) may take, however
   * steadily bytes arrive. Default `DEFAULT_DOWNLOAD_DEADLINE_MS` (900 000, 15 minutes).
   */
  deadlineMs?: number;
}

/** A model-wide deadline: the time it falls due (`Date.now()` clock) and the budget it was made from. */
export interface Deadline {
  at: number;
  totalMs: number;
}

/** What `downloadFile` needs: the progress callback and the idle timeout. */
export type DownloadFileOptions = Pick<LoadOptions, 'onProgress'> &
  Pick<DownloadOptions, 'timeoutMs'> & {
    /** The deadline of the model this file belongs to; none when unset. */
    deadline?: Deadline;
    /** When set, a 403/404/410 answer means "not there" and resolves to null instead of throwing. */
    optional?: boolean;
  };

function describeFetchError(err: unknown): string {
  const e = err as Error & { cause?: unknown };
  const cause = e.cause as (Error & { code?: string }) | undefined;
  const parts = [e.message];
  if (cause !== undefined && cause !== null) {
    const text = String(cause.message ?? cause);
    parts.push(cause.code !== undefined && !text.includes(cause.code) ? `${cause.code} ${text}` : text);
  }
  return parts.filter(Boolean).join(': ');
}

/**
 * An abort signal with two clocks: it fires after `timeoutMs` without progress (each `arm()` restarts that
 * count) or when the model's deadline falls due, whichever comes first.
 */
interface IdleWatch {
  readonly signal: AbortSignal;
  /** Which clock fired, if one did (an abort for any other reason leaves it undefined). */
  readonly fired: 'idle' | 'deadline' | undefined;
  arm(): void;
  stop(): void;
}

function watchIdle(timeoutMs: number, deadline: Deadline | undefined): IdleWatch {
  const controller = new AbortController();
  let idle: NodeJS.Timeout | undefined;
  const fire = (which: 'idle' | 'deadline') => () => {
    watch.fired ??= which;
    controller.abort();
  };
  const total = deadline === undefined ? undefined : setTimeout(fire('deadline'), Math.max(0, deadline.at - Date.now()));
  const watch: { -readonly [K in keyof IdleWatch]: IdleWatch[K] } = {
    signal: controller.signal,
    fired: undefined,
    arm(): void {
      clearTimeout(idle);
      idle = setTimeout(fire('idle'), timeoutMs);
    },
    stop(): void {
      clearTimeout(idle);
      clearTimeout(total);
    },
  };
  return watch;
}

/** Content-Length when it counts the bytes stored (no content encoding), else undefined. */
function storedLength(res: Response): number | undefined {
  const encoding = res.headers.get('content-encoding');
  const lengthHeader = res.headers.get('content-length');
  return lengthHeader !== null && /^\d+$/.test(lengthHeader) && (encoding === null || encoding === 'identity')
    ? Number(lengthHeader)
    : undefined;
}

/** What `writeBody` needs to know about the download it belongs to. */
interface BodyContext {
  url: string;
  total: number | undefined;
  watch: IdleWatch;
  onProgress: DownloadFileOptions['onProgress'];
  /** The error to report for `err`, cut after `progress` (" after 1500 of 4096 bytes"). */
  failure: (err: unknown, progress?: string) => ModelLoadError;
}

/**
 * Streams the response body into the file `temp`, synced to disk before returning. Returns the byte count
 * and the sha256. Throws ModelLoadError for a body longer or shorter than `total`, or a cut connection.
 */
async function writeBody(res: Response, temp: string, ctx: BodyContext): Promise<{ bytes: number; sha256: string }> {
  const { url, total } = ctx;
  const hash = createHash('sha256');
  let loaded = 0;
  const file = await open(temp, 'wx');
  try {
    ctx.onProgress?.({ url, loaded, total });
    if (res.body !== null) {
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value: chunk } = await reader.read();
          if (done) break;
          ctx.watch.arm();
          loaded += chunk.byteLength;
          if (total !== undefined && loaded > total) {
            throw new ModelLoadError(`download of ${url} sent more than its Content-Length of ${total} bytes`);
          }
          hash.update(chunk);
          await file.write(chunk);
          ctx.onProgress?.({ url, loaded, total });
        }
      } catch (err) {
        // Release the connection; the error we report is the first one.
        await reader.cancel().catch(() => undefined);
        throw ctx.failure(err, ` after ${loaded}${total === undefined ? '' : ` of ${total}`} bytes`);
      }
    }
    if (total !== undefined && loaded !== total) {
      throw new ModelLoadError(`download of ${url} ended after ${loaded} of ${total} bytes (connection closed early)`);
    }
    // Data on disk before the rename makes it visible: a crash cannot leave a complete-looking short file.
    await file.datasync();
  } finally {
    await file.close();
  }
  return { bytes: loaded, sha256: hash.digest('hex') };
}

/**
 * Downloads `url` to `target` atomically: the bytes go to a temporary name beside it, renamed over `target`
 * only when complete. Redirects are followed. `onProgress` is called with 0 once the response headers
 * arrive and after every chunk (loaded is non-decreasing and ends at total when the total is known).
 * Returns the size and sha256 of what was written, or null for an optional file that is not served.
 * @throws ModelLoadError naming the URL: non-2xx status, network error, idle timeout, passed deadline, or a
 *   body shorter or longer than its Content-Length (the partial file is removed).
 */
export async function downloadFile(
  url: string,
  target: string,
  options: DownloadFileOptions = {},
): Promise<{ bytes: number; sha256: string } | null> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
  const watch = watchIdle(timeoutMs, options.deadline);
  /** `progress` is set once the body started: "after 1500 of 4096 bytes" says where a cut happened. */
  const failure = (err: unknown, progress = ''): ModelLoadError => {
    if (err instanceof ModelLoadError) return err;
    if (watch.fired === 'idle') {
      return new ModelLoadError(`download of ${url} timed out${progress}: no data for ${timeoutMs} ms`, { cause: err });
    }
    if (watch.fired === 'deadline') {
      return new ModelLoadError(
        `download of ${url} stopped${progress}: the model's download deadline of ${options.deadline?.totalMs} ms passed ` +
          '(the server sends too slowly)',
        { cause: err },
      );
    }
    return new ModelLoadError(`download of ${url} failed${progress}: ${describeFetchError(err)}`, { cause: err });
  };

  watch.arm();
  let temp: string | undefined;
  try {
    let res: Response;
    try {
      // identity: Content-Length then counts the bytes we store, which is what makes a cut body detectable.
      res = await fetch(url, { redirect: 'follow', signal: watch.signal, headers: { 'accept-encoding': 'identity' } });
    } catch (err) {
      throw failure(err);
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      if (options.optional === true && ABSENT_STATUS.has(res.status)) return null;
      throw new ModelLoadError(`download of ${url} failed: HTTP ${res.status} ${res.statusText}`.trimEnd());
    }
    const total = storedLength(res);
    await mkdir(dirname(target), { recursive: true });
    temp = tempName(target);
    const written = await writeBody(res, temp, { url, total, watch, onProgress: options.onProgress, failure });
    await rename(temp, target);
    temp = undefined;
    return written;
  } finally {
    watch.stop();
    if (temp !== undefined) await rm(temp, { force: true });
  }
}
