/**
 * A named pipe standing in for a file a process will read, to hold that process at a known point: its
 * `open` of the file waits until the test opens the other end, and its read waits until the test writes
 * and closes. Every gate made here is closed in `afterAll` of the test file that imported this helper,
 * which also frees a process (or the test's own pending open) still waiting on it.
 */
import { execFileSync } from 'node:child_process';
import { constants, openSync, closeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { afterAll } from 'vitest';

export interface FifoGate {
  readonly path: string;
  /** Resolves once a reader has opened the pipe (the process has reached its read). */
  readonly readerOpened: Promise<void>;
  /** Writes `text` as the whole content of the "file" and closes it: the reader reads it and goes on. */
  release(text: string): Promise<void>;
  /** Ends the wait of a pending open on either side; idempotent. */
  close(): void;
}

const gates = new Set<FifoGate>();

afterAll(() => {
  for (const g of gates) g.close();
});

/** Creates a FIFO at `path` (which must not exist) and starts waiting for its reader. */
export function fifoGate(path: string): FifoGate {
  execFileSync('mkfifo', ['-m', '600', path]);
  // The open for writing completes when a reader opens: that is the event `readerOpened` reports.
  const writer = open(path, 'w');
  let closed = false;
  const gate: FifoGate = {
    path,
    readerOpened: writer.then(() => undefined),
    release: async (text) => {
      const handle = await writer;
      try {
        await handle.writeFile(text);
      } finally {
        await handle.close();
        gates.delete(gate);
      }
    },
    close: () => {
      if (closed) return;
      closed = true;
      gates.delete(gate);
      // A non-blocking reader of our own lets a pending writer open complete; then both ends are closed.
      const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
      writer.then((h) => h.close()).catch(() => undefined).finally(() => closeSync(fd));
    },
  };
  gates.add(gate);
  return gate;
}
