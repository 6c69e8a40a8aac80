/**
 * Checks that child processes are really gone, for the teardown tests of every code path that starts one.
 * Linux only (reads /proc), like the machines the tests run on.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** True while `pid` exists (a zombie still counts; see `isZombie`). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function stat(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces, so split after the closing parenthesis.
    const close = s.lastIndexOf(')');
    return [s.slice(0, close + 1), ...s.slice(close + 2).split(' ')];
  } catch {
    return undefined;
  }
}

/** An exited process its parent has not reaped yet (a child of another process, say). */
export function isZombie(pid: number): boolean {
  return stat(pid)?.[1] === 'Z';
}

export interface WaitGoneOptions {
  /** Give up after this many ms. Default 5000. */
  limitMs?: number;
  /** Pids a registry still tracks (e.g. `activeFfmpegPids`): gone also means dropped from it. */
  tracked?: () => readonly number[];
}

/** Polls until `pid` has exited (or is a zombie) and is no longer tracked; ms it took, or -1 after the limit. */
export async function msUntilGone(pid: number, options: WaitGoneOptions = {}): Promise<number> {
  const limitMs = options.limitMs ?? 5000;
  const t0 = performance.now();
  while (performance.now() - t0 < limitMs) {
    const exited = !alive(pid) || isZombie(pid);
    if (exited && !(options.tracked?.().includes(pid) ?? false)) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 10));
  }
  return -1;
}

/** `msUntilGone` as a yes or no. */
export async function waitGone(pid: number, options: WaitGoneOptions = {}): Promise<boolean> {
  return (await msUntilGone(pid, options)) >= 0;
}

/** Live (non-zombie) child processes of `pid`, with their command names, from /proc. */
export function childProcesses(pid: number): Array<{ pid: number; comm: string }> {
  const out: Array<{ pid: number; comm: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (!s || s[1] === 'Z' || Number(s[2]) !== pid) continue;
    out.push({ pid: Number(name), comm: s[0].slice(s[0].indexOf('(') + 1, -1) });
  }
  return out;
}

/** Live (non-zombie) processes whose command line contains `text` (orphans of an exited parent included). */
export function processesMentioning(text: string): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (cmdline.includes(text) && stat(Number(name))?.[1] !== 'Z') out.push({ pid: Number(name), cmdline });
  }
  return out;
}
