/**
 * CPU time of processes from /proc (Linux), for the bench's per-process ffmpeg figures: the children this
 * process has reaped (exact, from its own stat's cutime + cstime) and live processes by pid (sampled, since
 * a process's own figures vanish with it once reaped). Elsewhere every figure is undefined.
 */
import { readFile } from 'node:fs/promises';

/** Linux's USER_HZ: the unit of the times in /proc/<pid>/stat (100 on every architecture Node runs on). */
const TICKS_PER_SECOND = 100;

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
async function statFields(pid: number | 'self'): Promise<string[] | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).trim().split(/\s+/);
  } catch {
    return undefined;
  }
}

/** Core-milliseconds of the children of this process that have exited and been reaped, so far. */
export async function reapedChildrenCpuMs(): Promise<number | undefined> {
  const f = await statFields('self');
  // After the name: state is field 3 of stat(5), so cutime (16) and cstime (17) sit at 13 and 14.
  return f ? ((Number(f[13]) + Number(f[14])) * 1000) / TICKS_PER_SECOND : undefined;
}

/** Core-milliseconds a live process has used (user + system), or undefined once it is gone. */
export async function processCpuMs(pid: number): Promise<number | undefined> {
  const f = await statFields(pid);
  return f ? ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_SECOND : undefined;
}

/**
 * Samples the CPU time of watched processes every `intervalMs` until stopped; each kind's figure is the
 * sum over its processes of their last sample, so it misses at most one interval of each process's end.
 */
export class ProcessCpuSampler {
  private readonly last = new Map<number, { kind: string; ms: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(readonly intervalMs = 50) {
    this.timer = setInterval(() => void this.sample(), intervalMs);
  }

  /** Starts watching `pid` under `kind` (`decoder`, `encoder`). */
  watch(kind: string, pid: number | undefined): void {
    if (pid !== undefined) this.last.set(pid, { kind, ms: 0 });
  }

  private async sample(): Promise<void> {
    await Promise.all(
      [...this.last].map(async ([pid, entry]) => {
        const ms = await processCpuMs(pid);
        if (ms !== undefined) entry.ms = ms;
      }),
    );
  }

  /** Stops sampling; core-ms per kind. */
  stop(): Record<string, number> {
    clearInterval(this.timer);
    const out: Record<string, number> = {};
    for (const { kind, ms } of this.last.values()) out[kind] = (out[kind] ?? 0) + ms;
    return out;
  }
}
