import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ROOT } from './fixtures.ts';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bin/camstream.js` exactly as a user would, with a private model cache and no TTY; stdin from `stdin` (a stream with a file descriptor: a child's stdout) or none. */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 180_000, stdin: 'ignore' | Readable = 'ignore'): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'camstream.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, CAMSTREAM_DEBUG: '', ...env },
      stdio: [stdin, 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`camstream ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
