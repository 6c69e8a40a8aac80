/**
 * A static HTTP server over a folder, on 127.0.0.1 and a free port, for tests of URL loading. It counts
 * requests and can inject faults per path (an HTTP status, a body cut off mid-way, a stall, a redirect).
 * Every server started here is closed in `afterAll` of the test file that imported this helper, even when
 * a test fails before closing it.
 */
import { readFile, stat } from 'node:fs/promises';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize, sep } from 'node:path';
import { afterAll } from 'vitest';

/** What to do instead of serving a path normally. */
export type Fault =
  /** Answer with this status and a short text body. */
  | { kind: 'status'; status: number }
  /** Send headers with the full Content-Length, then `afterBytes` bytes of the body, then destroy the socket. */
  | { kind: 'cut'; afterBytes: number }
  /** Send headers (with Content-Length) and then nothing, holding the connection open. */
  | { kind: 'stall' }
  /** Answer 302 to `location` (a path on this server or a full URL). */
  | { kind: 'redirect'; location: string }
  /** Send headers (with Content-Length), then one body byte every `intervalMs` (a slow-loris server). */
  | { kind: 'trickle'; intervalMs: number };

export interface StaticServerOptions {
  /** Folder served under `mount` (its files at their relative paths). */
  root: string;
  /** URL path the folder is served at, with slashes at both ends. Default `/`. */
  mount?: string;
  /** Extra files by URL path (`/camstream.json`), served in place of (or beside) the folder's. */
  files?: Record<string, string | Uint8Array>;
  /** Leave out the Content-Length header (chunked transfer), to test an unknown total. */
  chunked?: boolean;
}

export interface StaticServer {
  /** Base URL with a trailing slash: `http://127.0.0.1:<port>/`. */
  readonly url: string;
  /** Paths of every request received (decoded, query stripped), in order. */
  readonly requests: string[];
  /** Extra files by URL path; change it between requests to change what is served. */
  readonly files: Map<string, string | Uint8Array>;
  /** Per-request fault hook: return a fault to inject it, or undefined to serve normally. */
  fault: ((path: string, req: IncomingMessage) => Fault | undefined) | undefined;
  /** Stops listening and destroys open connections (keep-alive sockets included). */
  close(): Promise<void>;
}

const open = new Set<StaticServer>();

afterAll(async () => {
  await Promise.all([...open].map((s) => s.close()));
});

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function extraFile(files: Map<string, string | Uint8Array>, path: string): Buffer | undefined {
  const extra = files.get(path);
  return extra === undefined ? undefined : Buffer.from(extra);
}

/** Bytes served for `path`: an extra file, else a file under `root` (never outside it). */
async function contentOf(
  root: string,
  extra: Buffer | undefined,
  relative: string,
): Promise<Buffer | undefined> {
  if (extra !== undefined) return extra;
  const file = normalize(join(root, relative));
  if (!file.startsWith(root.endsWith(sep) ? root : root + sep)) return undefined;
  try {
    return (await stat(file)).isFile() ? await readFile(file) : undefined;
  } catch {
    return undefined;
  }
}

/** Writes `body` one byte per `intervalMs` until it is sent or the client goes away. */
function trickle(res: ServerResponse, body: Buffer, intervalMs: number): void {
  let sent = 0;
  const timer = setInterval(() => {
    if (res.destroyed || sent >= body.length) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(body.subarray(sent, sent + 1));
    sent++;
  }, intervalMs);
  res.on('close', () => clearInterval(timer));
}

/** Starts a static server; see the module doc. */
export async function startStaticServer(options: StaticServerOptions): Promise<StaticServer> {
  const root = normalize(options.root);
  const mount = options.mount ?? '/';
  const server: Server = createServer();
  const handle: StaticServer = {
    url: '',
    requests: [],
    files: new Map(Object.entries(options.files ?? {})),
    fault: undefined,
    close: async () => {
      open.delete(handle);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    handle.requests.push(path);
    const fault = handle.fault?.(path, req);
    if (fault?.kind === 'status') return send(res, fault.status, `injected ${fault.status}`);
    if (fault?.kind === 'redirect') {
      res.writeHead(302, { location: fault.location, 'content-length': 0 });
      return res.end();
    }
    const body =
      handle.files.has(path) || path.startsWith(mount)
        ? await contentOf(root, extraFile(handle.files, path), path.slice(mount.length))
        : undefined;
    if (body === undefined) return send(res, 404, `not found: ${path}`);

    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream' };
    // Faults need the announced length: that is what makes a cut body detectable by the client.
    if (options.chunked !== true || fault !== undefined) headers['content-length'] = body.length;
    res.writeHead(200, headers);
    if (req.method === 'HEAD') return res.end();
    if (fault?.kind === 'stall') return res.flushHeaders();
    if (fault?.kind === 'trickle') return trickle(res, body, fault.intervalMs);
    if (fault?.kind === 'cut') {
      // Let the first bytes leave, then drop the connection mid-body.
      res.write(body.subarray(0, fault.afterBytes), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  };

  server.on('request', (req, res) => {
    serve(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, String(err));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  (handle as { url: string }).url = `http://127.0.0.1:${port}/`;
  open.add(handle);
  return handle;
}
