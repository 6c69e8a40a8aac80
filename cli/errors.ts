import { CamstreamError, type ErrorCode } from '../common/index.ts';

/** Exit statuses by error code; documented in the README's "Exit statuses" table. */
const EXIT_CODES: Partial<Record<ErrorCode, number>> = {
  CONFIG: 2,
  INPUT: 3,
  MODEL_LOAD: 4,
  NO_GAP_HEAD: 4,
  FFMPEG: 5,
  INTERRUPTED: 130,
};

export function exitCodeFor(error: unknown): number {
  if (error instanceof CamstreamError) return EXIT_CODES[error.code] ?? 1;
  return 1;
}

/** One line for the terminal; a stack only when CAMSTREAM_DEBUG is set. */
export function formatError(error: unknown): string {
  if (process.env.CAMSTREAM_DEBUG && error instanceof Error && error.stack) return error.stack;
  if (error instanceof Error) return error.message;
  return String(error);
}
