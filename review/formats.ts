/** The export formats of a review and how an output name picks one, without loading the report code. */
import { extname } from 'node:path';
import { ConfigError } from '../common/errors.ts';

export type ExportFormat = 'csv' | 'json' | 'html';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['csv', 'json', 'html'];

/** File extensions an export format is inferred from (`.htm` too). */
const FORMAT_OF_EXTENSION: Readonly<Record<string, ExportFormat>> = { '.csv': 'csv', '.json': 'json', '.html': 'html', '.htm': 'html' };

/**
 * The export format for writing to `out`: `format` when given, else inferred from the file's extension.
 * @throws ConfigError when there is no format to infer (stdout `-`, or an extension that names none).
 */
export function exportFormatFor(out: string, format?: string): ExportFormat {
  if (format !== undefined) {
    if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new ConfigError(`--format must be one of ${EXPORT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
    return format as ExportFormat;
  }
  if (out === '-') throw new ConfigError(`--format is required when writing to stdout (-o -): one of ${EXPORT_FORMATS.join(', ')}`);
  const ext = extname(out).toLowerCase();
  const inferred = FORMAT_OF_EXTENSION[ext];
  if (!inferred) {
    throw new ConfigError(
      `cannot tell the export format from ${ext ? `the extension '${ext}'` : 'a file name without an extension'} of ${out}: ` +
        `name the file .csv, .json or .html, or give --format ${EXPORT_FORMATS.join('|')}`,
    );
  }
  return inferred;
}
