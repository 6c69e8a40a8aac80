/**
 * The last line of defence of the HTTP server: nothing a client sends may end the process. Every request
 * and upgrade handler runs inside a guard that turns an unexpected throw (or rejected promise) into a 400
 * answer, or a dropped connection when the answer had already started, and logs it as one line.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { sendText } from './static.ts';

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => unknown;
type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => unknown;

/** What the log line says of a request: method and path, never the query (it may carry the token). */
function describe(req: IncomingMessage): string {
  const path = (req.url ?? '/').split('?')[0].slice(0, 200);
  return `${req.method ?? '?'} ${JSON.stringify(path)}`;
}

function message(err: unknown): string {
  return (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).split('\n')[0].slice(0, 300);
}

/** Runs `fn` and hands a synchronous throw or a rejection to `onError`, once. */
function runGuarded(fn: () => unknown, onError: (err: unknown) => void): void {
  try {
    const result = fn();
    if (result instanceof Promise) result.catch(onError);
  } catch (err) {
    onError(err);
  }
}

/** `handler` that answers 400 (or drops the connection) instead of throwing, logging each failure once. */
export function guardRequest(handler: RequestHandler, log: (line: string) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    runGuarded(
      () => handler(req, res),
      (err) => {
        log(`error: ${describe(req)} failed: ${message(err)}`);
        try {
          if (!res.headersSent) sendText(res, 400, 'bad request');
          else res.destroy();
        } catch {
          res.destroy();
        }
      },
    );
  };
}

/** `handler` for upgrades that answers 400 (or drops the socket) instead of throwing, logging each failure once. */
export function guardUpgrade(handler: UpgradeHandler, log: (line: string) => void): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    // Node leaves an upgrading socket without an error listener: a reset would otherwise end the process.
    socket.on('error', () => {});
    runGuarded(
      () => handler(req, socket, head),
      (err) => {
        log(`error: upgrade ${describe(req)} failed: ${message(err)}`);
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        else socket.destroy();
      },
    );
  };
}
