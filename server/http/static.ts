/**
 * Serving the built web client: files under `clientDir` only (no traversal), GET and HEAD, a clear page
 * when the build is missing.
 */
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, relative, sep, isAbsolute } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
};

/** Headers every response carries. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'",
});

export const MISSING_BUILD_MESSAGE =
  'the web client is not built: run `npm run build:client` (npm install runs it through `prepare`), then restart camstream serve';

export function sendText(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...extra });
  res.end(body);
}

/** True when `dir` holds a built client (index.html). */
export async function clientBuilt(dir: string): Promise<boolean> {
  try {
    return (await stat(join(dir, 'index.html'))).isFile();
  } catch {
    return false;
  }
}

export async function serveStatic(dir: string, req: IncomingMessage, res: ServerResponse, extraHeaders: Record<string, string> = {}): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
  let path: string;
  try {
    path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  } catch {
    return sendText(res, 400, 'bad path');
  }
  if (path.endsWith('/')) path += 'index.html';
  const file = normalize(join(dir, path));
  const rel = relative(dir, file);
  if (path.includes('\0') || rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..')) return sendText(res, 404, 'not found');
  let body: Buffer;
  try {
    if (!(await stat(file)).isFile()) return sendText(res, 404, 'not found');
    body = await readFile(file);
  } catch {
    if (path === '/index.html') return sendText(res, 503, MISSING_BUILD_MESSAGE, extraHeaders);
    return sendText(res, 404, 'not found');
  }
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    ...extraHeaders,
    'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'content-length': body.length,
    // Vite names assets by content hash: they never change; the page itself must be revalidated.
    'cache-control': rel.startsWith(`assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
