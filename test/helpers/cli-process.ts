/**
 * A long-running `camstream` process (a worker, a server) for tests: its output is kept, `waitFor` resolves
 * when a line matches, and every process started here is killed (SIGKILL) in `afterAll` of the test file
 * that imported this helper, even when a test fails before stopping it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { ROOT } from './fixtures.ts';

export interface CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written so far. */
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the first match of `pattern` in stdout + stderr (already written or yet to come). */
  waitFor(pattern: RegExp, limitMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (null after a signal) once the process has exited. */
  readonly exited: Promise<number | null>;
}

const started = new Set<ChildProcess>();

afterAll(async () => {
  await Promise.all(
    [...started].map(
      (child) =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          child.once('exit', () => done());
          child.kill('SIGKILL');
        }),
    ),
  );
});

/** Starts `bin/camstream.js args` with a private env on top of this one. */
export function startCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'camstream.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, CAMSTREAM_DEBUG: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  const changed = (): void => listeners.forEach((l) => l());
  child.stdout!.setEncoding('utf8').on('data', (s: string) => ((out += s), changed()));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => ((err += s), changed()));
  const exited = new Promise<number | null>((resolveExit) =>
    child.once('exit', (code) => {
      started.delete(child);
      changed();
      resolveExit(code);
    }),
  );
  return {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (pattern, limitMs = 120_000) =>
      new Promise((resolveMatch, reject) => {
        const check = (): void => {
          const m = (out + err).match(pattern);
          const dead = child.exitCode !== null || child.signalCode !== null;
          if (!m && !dead) return;
          listeners.delete(check);
          clearTimeout(timer);
          if (m) resolveMatch(m);
          else reject(new Error(`camstream ${args[0]} exited before printing ${pattern}:\n${out}\n${err}`));
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`camstream ${args[0]} did not print ${pattern} within ${limitMs} ms:\n${out}\n${err}`));
        }, limitMs);
        listeners.add(check);
        check();
      }),
  };
}
