/**
 * Limits the WebSocket endpoint puts on connections before `ws` and the hub see them:
 * - `ConnectionLimiter`: how many connections are open in all and per remote address (over: 503 at the upgrade);
 * - `watchPartialMessages`: the bytes of messages still arriving. `ws` keeps every fragment and every
 *   partial frame of a message in memory until the message is complete (up to `maxPayload` per
 *   connection), so many connections each holding an unfinished message add up. A meter reads the frame
 *   headers of the incoming bytes (RFC 6455, sec. 5.2) beside `ws`, charges the bytes of each unfinished
 *   message to a budget shared by the whole server, and reports a connection that overdraws it or splits one
 *   message into more than `maxFragments` frames (browsers never fragment).
 */
import type { Duplex } from 'node:stream';

/** Counts open connections, in all and by remote address. */
export class ConnectionLimiter {
  private total = 0;
  private readonly byAddress = new Map<string, number>();

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerAddress: number,
  ) {}

  /** Open connections now. */
  get open(): number {
    return this.total;
  }

  /** Why a new connection from `address` is refused, or undefined after counting it in. */
  admit(address: string): string | undefined {
    if (this.total >= this.maxTotal) return `the server has its maximum of ${this.maxTotal} connections`;
    const mine = this.byAddress.get(address) ?? 0;
    if (mine >= this.maxPerAddress) return `${address} has its maximum of ${this.maxPerAddress} connections`;
    this.total++;
    this.byAddress.set(address, mine + 1);
    return undefined;
  }

  /** Counts a connection of `address` out (once per `admit` that returned undefined). */
  release(address: string): void {
    this.total--;
    const left = (this.byAddress.get(address) ?? 1) - 1;
    if (left > 0) this.byAddress.set(address, left);
    else this.byAddress.delete(address);
  }
}

/** Bytes of unfinished incoming messages, summed over every connection of one server. */
export interface PartialBudget {
  used: number;
  readonly max: number;
}

/** Why a connection's incoming message was refused. */
export type PartialViolation = 'budget' | 'fragments';

/**
 * Meters the unfinished message on `socket` (the upgraded connection) against `budget`; calls `onViolation`
 * once when the connection would overdraw it or fragments a message into more than `maxFragments` frames.
 * Returns the function that stops metering and gives the connection's share back (call it on close).
 */
export function watchPartialMessages(
  socket: Duplex,
  budget: PartialBudget,
  maxFragments: number,
  onViolation: (why: PartialViolation) => void,
): () => void {
  let header: number[] = [];
  let payloadLeft = 0;
  let dataFrame = false;
  /** The frame being read is the last of its message. */
  let finalFrame = false;
  let held = 0;
  let fragments = 0;
  let stopped = false;
  const charge = (bytes: number): void => {
    held += bytes;
    budget.used += bytes;
  };
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    socket.off('data', onData);
    budget.used -= held;
    held = 0;
  };
  const violate = (why: PartialViolation): void => {
    stop();
    onViolation(why);
  };
  // A complete header: opcode, FIN and payload length known. Control frames (opcode >= 8) may come between
  // the fragments of a message and are not part of it.
  const startFrame = (): void => {
    const fin = (header[0] & 0x80) !== 0;
    const opcode = header[0] & 0x0f;
    dataFrame = opcode < 8;
    if (dataFrame) {
      fragments = opcode === 0 ? fragments + 1 : 1;
      if (fragments > maxFragments) return violate('fragments');
    }
    payloadLeft = payloadLength(header);
    header = [];
    if (!dataFrame) return;
    finalFrame = fin;
    if (fin && payloadLeft === 0) endMessage();
  };
  const endMessage = (): void => {
    budget.used -= held;
    held = 0;
    fragments = 0;
  };
  const onData = (chunk: Buffer): void => {
    let i = 0;
    while (i < chunk.length && !stopped) {
      if (payloadLeft === 0) {
        header.push(chunk[i++]);
        if (header.length >= 2 && header.length === headerLength(header)) startFrame();
        continue;
      }
      const n = Math.min(payloadLeft, chunk.length - i);
      i += n;
      payloadLeft -= n;
      if (!dataFrame) continue;
      if (budget.used + n > budget.max) return violate('budget');
      charge(n);
      if (payloadLeft === 0 && finalFrame) endMessage();
    }
  };
  socket.on('data', onData);
  return stop;
}

/** Length of a frame header from its first two bytes: 2, plus 2 or 8 for a long length, plus 4 for a mask. */
function headerLength(h: number[]): number {
  const len7 = h[1] & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((h[1] & 0x80) !== 0 ? 4 : 0);
}

function payloadLength(h: number[]): number {
  const len7 = h[1] & 0x7f;
  if (len7 < 126) return len7;
  if (len7 === 126) return (h[2] << 8) | h[3];
  // 64-bit length: anything past 2^53 is refused by `ws` long before it matters here.
  let n = 0;
  for (let k = 2; k < 10; k++) n = n * 256 + h[k];
  return n;
}
