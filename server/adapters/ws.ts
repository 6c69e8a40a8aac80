/**
 * The thin `ws` adapter: a `SessionSocket` over a `ws` WebSocket, with keep-alive (a ping every
 * `pingIntervalMs`; a client that has not answered the previous one is closed with KeepAliveTimeout and
 * its TCP connection dropped) and cleanup. Nothing else lives here.
 */
import { WebSocket, type RawData } from 'ws';
import { CloseCode } from '../../protocol/index.ts';
import type { SessionSocket } from '../core/session.ts';

/** How long a closing socket may take to finish the close handshake before it is dropped. */
const CLOSE_GRACE_MS = 2000;

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A `SessionSocket` over `ws`; `remoteAddress` is the peer's IP (the per-address limits count by it). */
export function adaptWebSocket(ws: WebSocket, pingIntervalMs: number, remoteAddress = 'unknown'): SessionSocket {
  let alive = true;
  let closeTimer: NodeJS.Timeout | undefined;
  const closeHandlers: Array<() => void> = [];

  const ping = setInterval(() => {
    if (!alive) {
      if (ws.readyState === WebSocket.OPEN) ws.close(CloseCode.KeepAliveTimeout, 'keep-alive timeout');
      ws.terminate();
      return;
    }
    alive = false;
    if (ws.readyState === WebSocket.OPEN) ws.ping();
  }, pingIntervalMs);
  ping.unref();
  ws.on('pong', () => {
    alive = true;
  });
  // Errors (an oversized frame, invalid UTF-8, a reset) are followed by 'close'; they must not throw.
  ws.on('error', () => {});
  ws.once('close', () => {
    clearInterval(ping);
    if (closeTimer) clearTimeout(closeTimer);
    for (const h of closeHandlers.splice(0)) h();
  });

  return {
    remoteAddress,
    send(data) {
      return new Promise<void>((resolve, reject) => {
        if (ws.readyState !== WebSocket.OPEN) {
          reject(new Error('socket is not open'));
          return;
        }
        ws.send(data, { binary: typeof data !== 'string' }, (err) => (err ? reject(err) : resolve()));
      });
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    close(code, reason) {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code, reason);
      // A peer that stopped reading never answers the close frame: drop the connection after a grace.
      if (!closeTimer && ws.readyState !== WebSocket.CLOSED) {
        closeTimer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
        closeTimer.unref();
      }
    },
    onMessage(handler) {
      ws.on('message', (data: RawData, isBinary: boolean) => {
        handler(isBinary ? toBytes(data) : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(toBytes(data)).toString('utf8'));
      });
    },
    onClose(handler) {
      if (ws.readyState === WebSocket.CLOSED) handler();
      else closeHandlers.push(handler);
    },
  };
}
