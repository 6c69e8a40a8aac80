/**
 * Token checks for HTTP requests and WebSocket upgrades. The token may come as `?token=`, an
 * `Authorization: Bearer` header, or the `camstream_token` cookie the server sets on the first page load
 * (a browser's WebSocket cannot send headers, and the page's scripts and assets carry no query string).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const TOKEN_COOKIE = 'camstream_token';

/**
 * Constant-time comparison. Both sides are hashed first, so neither the length nor a common prefix of the
 * secret shows in the time taken.
 */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token a request presents, from the query, the Authorization header, or the cookie. */
export function presentedToken(req: IncomingMessage): string | undefined {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const q = url.searchParams.get('token');
  if (q) return q;
  const auth = req.headers.authorization;
  if (auth && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
  const cookie = req.headers.cookie;
  if (cookie) {
    for (const part of cookie.split(';')) {
      const [name, ...rest] = part.trim().split('=');
      if (name !== TOKEN_COOKIE) continue;
      const value = decodeCookieValue(rest.join('='));
      if (value !== undefined) return value;
    }
  }
  return undefined;
}

/** A cookie value with its percent-escapes decoded; undefined for a malformed escape (`%zz`), never a throw. */
function decodeCookieValue(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** True when no token is configured, or the request presents the right one. */
export function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const given = presentedToken(req);
  return given !== undefined && tokensEqual(given, token);
}

/**
 * The `set-cookie` header that stores the token a page was opened with (`?token=`), so its scripts, assets
 * and WebSocket carry it; none when no token is configured or the URL has none.
 */
export function tokenCookieHeader(req: IncomingMessage, token: string | undefined): Record<string, string> {
  return token !== undefined && new URL(req.url ?? '/', 'http://localhost').searchParams.has('token')
    ? { 'set-cookie': `${TOKEN_COOKIE}=${encodeURIComponent(presentedToken(req) ?? '')}; HttpOnly; SameSite=Strict; Path=/` }
    : {};
}

/**
 * False for a browser request from another site (its `Origin` names another host): such a page must not
 * drive this server with the cookie. Requests without `Origin` (not a browser: curl, tests) pass.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
