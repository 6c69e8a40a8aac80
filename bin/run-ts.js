#!/usr/bin/env node
// Runs one TypeScript file through tsx's loader, as bin/camstream.js does: `node bin/run-ts.js bench/run.ts --quick`.
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

const [file, ...args] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bin/run-ts.js <file.ts> [args...]\n');
  process.exit(2);
}
// The script sees `argv[1]` = its own path and its arguments after it, as under `node file.js args`.
process.argv = [process.argv[0], file, ...args];
register();
await import(pathToFileURL(file).href);
