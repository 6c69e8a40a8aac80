/**
 * The command line starts light: defining every command (what `--help` and `--version` need) loads no
 * engine, no image or video library, no database and no queue client. Each command loads what it uses when
 * its action runs. Checked in a fresh Node process, on the modules Node's loader has cached.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');

/** Packages that cost hundreds of milliseconds (or a native library) to load. */
const HEAVY = ['onnxruntime-node', '@tensorflow/', 'sharp', '@img/', 'better-sqlite3', 'bullmq', 'ioredis', 'rxjs', 'ws'];

/** Package names (from their node_modules paths) loaded after importing `module` in a fresh process. */
function packagesLoadedBy(module: string): string[] {
  const script = `
    import { register } from 'tsx/esm/api';
    import { createRequire } from 'node:module';
    register();
    await import(${JSON.stringify(join(ROOT, module))});
    const names = Object.keys(createRequire(import.meta.url).cache)
      .map((k) => k.split('node_modules/').pop().split('/'))
      .map((p) => (p[0].startsWith('@') ? p[0] + '/' + p[1] : p[0]));
    process.stdout.write(JSON.stringify([...new Set(names)]));
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as string[];
}

describe('start-up imports', () => {
  it('defining every command loads none of the engines, sharp, SQLite, the queue or RxJS', () => {
    const loaded = packagesLoadedBy('cli/commands/index.ts');
    // The check sees CommonJS packages: commander itself must be among them.
    expect(loaded).toContain('commander');
    expect(loaded.filter((p) => HEAVY.some((h) => p === h || p.startsWith(h)))).toEqual([]);
  });
});
