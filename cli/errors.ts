import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { CamstreamError, InputError, type ErrorCode } from '../common/index.ts';

/** Exit status of a usage error (missing or unknown option, bad option value): the same as `CONFIG`. */
export const USAGE_EXIT_CODE = 2;

/**
 * Exit statuses by error code, the one table the README's "Exit statuses" section documents:
 * 0 success, 1 unexpected, 2 bad option, 3 bad input, 4 model, 5 ffmpeg, 128 + signal when stopped.
 */
const EXIT_CODES: Partial<Record<ErrorCode, number>> = {
  CONFIG: USAGE_EXIT_CODE,
  INPUT: 3,
  MODEL_LOAD: 4,
  NO_GAP_HEAD: 4,
  FFMPEG: 5,
  INTERRUPTED: 130,
};

export function exitCodeFor(error: unknown): number {
  if (error instanceof CamstreamError) {
    // Stopped by a signal: 128 + its number, as a shell reports it (SIGINT 130, SIGTERM 143).
    const signal = (error as { signal?: unknown }).signal;
    if (error.code === 'INTERRUPTED' && typeof signal === 'string' && signal in constants.signals) {
      return 128 + constants.signals[signal as NodeJS.Signals];
    }
    return EXIT_CODES[error.code] ?? 1;
  }
  return 1;
}

/** One line for the terminal; a stack only when CAMSTREAM_DEBUG is set. */
export function formatError(error: unknown): string {
  if (process.env.CAMSTREAM_DEBUG && error instanceof Error && error.stack) return error.stack;
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Throws InputError (exit 3) when `input` names a local file that does not exist. URLs (`scheme://`) and
 * pipes (`-`, `pipe:`) are left to the reader.
 */
export function checkInputExists(input: string, what: string): void {
  if (input === '-' || /^[a-z][a-z0-9+.-]*:/i.test(input)) return;
  if (!existsSync(input)) throw new InputError(`${what} not found: ${input}`);
}

/**
 * When the reader of `stream` goes away (`camstream image *.jpg | head -3`), exit 0 without a word, as Unix
 * tools do: the output was wanted only up to there. Any other write error is reported and exits 1.
 */
export function quietOnClosedStdout(stream: NodeJS.WriteStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    process.stderr.write(`camstream: cannot write to stdout: ${error.message}\n`);
    process.exit(1);
  });
}
