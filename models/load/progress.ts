/**
 * A one-line terminal progress bar for model downloads, to pass as `LoadOptions.onProgress`. It redraws a
 * single line (file name, bar, percent, bytes, rate, files so far) and draws nothing at all unless its
 * stream is a TTY, so piped or logged output stays clean.
 *
 * Example: `const bar = createProgressBar(); try { await load(url, { onProgress: bar.onProgress }); }
 * finally { bar.stop(); }`
 */
import type { LoadOptions } from '../types.ts';

export type ProgressEvent = Parameters<NonNullable<LoadOptions['onProgress']>>[0];

export interface ProgressBarOptions {
  /** Where to draw. Default `process.stderr` (stdout may carry results). Nothing is drawn unless `isTTY`. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Minimum milliseconds between two redraws; the end of a file always draws. Default 100. */
  redrawMs?: number;
  /** Bar width in characters. Default 20. */
  barWidth?: number;
  /** Clock in milliseconds, for tests. Default `performance.now`. */
  now?: () => number;
}

export interface DownloadProgress {
  /** The callback to pass as `LoadOptions.onProgress`. */
  readonly onProgress: (event: ProgressEvent) => void;
  /** Prints a summary line (when anything was downloaded) and ends the line. Call once, on success or failure. */
  stop(): void;
}

/** `1536` -> `1.5 KB`; decimal units, like download sizes are usually shown. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

function fileName(url: string): string {
  try {
    const last = new URL(url).pathname.split('/').filter(Boolean).pop();
    return last === undefined ? url : decodeURIComponent(last);
  } catch {
    return url;
  }
}

/** Creates a progress bar; see the module doc. */
export function createProgressBar(options: ProgressBarOptions = {}): DownloadProgress {
  const stream = options.stream ?? process.stderr;
  const redrawMs = options.redrawMs ?? 100;
  const barWidth = options.barWidth ?? 20;
  const now = options.now ?? (() => performance.now());
  const enabled = stream.isTTY === true;

  // Per URL: bytes seen so far, so the totals count each file once however many events it sends.
  const seen = new Map<string, number>();
  let started: number | undefined;
  let lastDraw = -Infinity;
  let drawn = false;
  let stopped = false;

  const totalBytes = () => [...seen.values()].reduce((a, b) => a + b, 0);
  const rate = (bytes: number) => {
    const seconds = started === undefined ? 0 : (now() - started) / 1000;
    return seconds > 0 ? `${formatBytes(bytes / seconds)}/s` : '-';
  };

  const draw = (line: string) => {
    const columns = stream.columns ?? 80;
    const fitted = line.length > columns - 1 ? `${line.slice(0, Math.max(0, columns - 2))}…` : line;
    // \r plus "erase line": the bar is redrawn in place.
    stream.write(`\r\x1b[2K${fitted}`);
    drawn = true;
  };

  const onProgress = (event: ProgressEvent) => {
    if (!enabled || stopped) return;
    const t = now();
    started ??= t;
    seen.set(event.url, event.loaded);
    const finished = event.total !== undefined && event.loaded >= event.total;
    if (!finished && t - lastDraw < redrawMs) return;
    lastDraw = t;

    const name = fileName(event.url);
    const parts = [name];
    if (event.total !== undefined && event.total > 0) {
      const fraction = Math.min(1, event.loaded / event.total);
      const filled = Math.round(fraction * barWidth);
      parts.push(`[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`);
      parts.push(`${Math.floor(fraction * 100)}%`.padStart(4));
      parts.push(`${formatBytes(event.loaded)} / ${formatBytes(event.total)}`);
    } else {
      parts.push(formatBytes(event.loaded));
    }
    const all = totalBytes();
    parts.push(rate(all));
    parts.push(`(${seen.size} file${seen.size === 1 ? '' : 's'}, ${formatBytes(all)})`);
    draw(parts.join('  '));
  };

  const stop = () => {
    if (stopped) return;
    stopped = true;
    if (!enabled || !drawn) return;
    const all = totalBytes();
    const seconds = started === undefined ? 0 : (now() - started) / 1000;
    draw(
      `downloaded ${seen.size} file${seen.size === 1 ? '' : 's'}, ${formatBytes(all)} in ${seconds.toFixed(1)} s (${rate(all)})`,
    );
    stream.write('\n');
  };

  return { onProgress, stop };
}
