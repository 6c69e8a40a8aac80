/**
 * `writeJsonLines`: one JSON object per frame, one per line, to a temporary file beside the target
 * renamed into place when the stream completes. A failed or interrupted run leaves no file.
 */
import { createWriteStream, rmSync, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import type { StageTimings } from '../stages/frame.ts';
import { writeInOrder } from './in-order.ts';
import { tempPathFor } from '../ffmpeg/index.ts';

/**
 * Writes `toLine(frame)` as one line of JSON per frame, honouring the stream's backpressure (a frame is
 * passed on once its line is buffered or, when the buffer is full, after 'drain'), and completes after the
 * rename. Lossless, ordered. Error or unsubscribe deletes the temporary file (synchronously, so that an
 * exiting process leaves nothing). `ms.json` gets the write time.
 */
export function writeJsonLines<T extends { ms?: StageTimings }>(
  path: string,
  toLine: (frame: T) => unknown,
  onFinish?: (info: { path: string; lines: number }) => void,
): OperatorFunction<T, T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      const temp = tempPathFor(path);
      let stream: WriteStream | undefined = createWriteStream(temp, { flags: 'wx' });
      let closed = false;
      let lines = 0;
      let sub: Subscription | undefined;
      const discard = (): void => {
        stream?.destroy();
        stream = undefined;
        rmSync(temp, { force: true });
      };
      const fail = (err: unknown): void => {
        if (closed) return;
        closed = true;
        sub?.unsubscribe();
        discard();
        subscriber.error(err);
      };
      stream.on('error', fail);
      sub = writeInOrder(source, {
        write: async (frame) => {
          if (closed || !stream) return;
          const t0 = performance.now();
          const s = stream;
          if (!s.write(`${JSON.stringify(toLine(frame))}\n`)) await drained(s);
          lines++;
          if (frame.ms) frame.ms.json = performance.now() - t0;
          if (!closed) subscriber.next(frame);
        },
        complete: async () => {
          if (closed || !stream) return;
          const s = stream;
          await new Promise<void>((resolve, reject) => {
            s.once('error', reject);
            s.end(() => resolve());
          });
          if (closed) return;
          await rename(temp, path);
          stream = undefined;
          closed = true;
          onFinish?.({ path, lines });
          subscriber.complete();
        },
        fail,
        completeFailed: async (err: unknown) => {
          await rm(temp, { force: true });
          fail(err);
        },
      });
      return () => {
        if (stream) {
          closed = true;
          sub?.unsubscribe();
          discard();
        }
      };
    });
}

/** Resolves on the stream's next 'drain'; rejects on an 'error' before it. */
function drained(s: WriteStream): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onErr = (e: unknown): void => reject(e);
    s.once('error', onErr);
    s.once('drain', () => {
      s.off('error', onErr);
      resolve();
    });
  });
}
