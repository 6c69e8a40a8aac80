/**
 * The one place camstream starts a process. A typed wrapper over `child_process.spawn` for ffmpeg and
 * ffprobe: argument arrays only (`shell: false`), the house flags added in front, stderr parsed into
 * levelled lines with the last few kept for errors, and a teardown that always ends the child.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { FfmpegError } from './errors.ts';

export type ToolKind = 'ffmpeg' | 'ffprobe';

/** ffmpeg's log levels, most severe first. */
export const LOG_LEVELS = ['quiet', 'panic', 'fatal', 'error', 'warning', 'info', 'verbose', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One stderr line, split into ffmpeg's parts (`[ctx @ 0x..] [level] message`). */
export interface LogLine {
  /** The level tag; for an untagged continuation line, the level of the line before it. */
  level: LogLevel;
  /** The logging context (`mov,mp4,m4a,3gp,3g2,mj2`, `Parsed_showinfo_0`), without its address. */
  context: string | undefined;
  message: string;
}

export interface SpawnConfig {
  /** Absolute path of the binary (see `locateFfmpeg`). */
  binary: string;
  /** Which tool `binary` is: ffprobe knows neither `-nostdin` nor `-nostats`. Default `ffmpeg`. */
  kind?: ToolKind;
  /** Arguments after the house flags. Never joined into a string, never seen by a shell. */
  args: readonly string[];
  /** The file or URL the run is about, named in every error. */
  file?: string;
  /** Open a pipe to the child's stdin. Default false, which also passes `-nostdin` to ffmpeg. */
  stdin?: boolean;
  /**
   * Hand this process's own stdin to the child, which reads its input from it (`-i pipe:0`). ffmpeg still
   * gets `-nostdin`: it reads the stream as input, never as key presses. Not with `stdin`. Default false.
   */
  inheritStdin?: boolean;
  /** Extra readable pipes on fds 3, 4, ... (ffmpeg writes to them as `pipe:3`, ...). Default 0. */
  extraPipes?: number;
  /** Extra writable pipes after the readable ones (ffmpeg reads them as `pipe:N`). Default 0. */
  inputPipes?: number;
  /**
   * Ask ffmpeg for its CPU time (`-benchmark`, printed at exit at info level, so `logLevel` must be `info`
   * or more): `cpu()` then returns it once the run has ended. Default false.
   */
  measureCpu?: boolean;
  /** `-loglevel`; default `error`. The `level` flag is always set so lines can be classified. */
  logLevel?: LogLevel;
  /** How many stderr lines to keep for errors. Default 20. */
  stderrTailLines?: number;
  /** Lines at this level or more severe are kept in the tail. Default `warning`. */
  tailLevel?: LogLevel;
  /** Further excludes lines from the tail (decode drops its own showinfo lines). Default: keep all. */
  keepInTail?: (line: LogLine) => boolean;
  /** Called for every stderr line (all levels), in order. */
  onLog?: (line: LogLine) => void;
  /** Grace between SIGTERM and SIGKILL on teardown, in ms. Default 2000. */
  killGraceMs?: number;
  /** Add `-hide_banner -loglevel level+<logLevel>` (+ `-nostats`, `-nostdin` for ffmpeg). Default true. */
  standardFlags?: boolean;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (ENOENT, EACCES). */
  spawnError?: Error;
  /** True when the process was ended by `stop()`. */
  stopped: boolean;
}

/** A running ffmpeg. Obtain with `spawnFfmpeg`; end with `stop()` or by letting it finish. */
export interface FfmpegProcess {
  /** OS process id; undefined when the binary could not be started. */
  readonly pid: number | undefined;
  /** The command line, shell-quoted for logs and error messages. */
  readonly commandLine: string;
  /** stdin when `stdin: true` was asked for. Errors on it (EPIPE) are absorbed; `done` reports the cause. */
  readonly stdin: Writable | undefined;
  /** stdout, then the extra pipes (fd 3, 4, ...), in order. */
  readonly pipes: readonly Readable[];
  /** The writable extra pipes (`inputPipes`), on the fds after the readable ones. */
  readonly inputs: readonly Writable[];
  /** CPU time ffmpeg reported at exit (`measureCpu`), all its threads; undefined before or without it. */
  cpu(): CpuTime | undefined;
  /** Resolves once the process has exited and all its pipes are closed. Never rejects. */
  readonly closed: Promise<ExitInfo>;
  /**
   * Resolves when the process exited with status 0 or was ended by `stop()`; rejects with an
   * `FfmpegError` (code, signal, file, last stderr lines) otherwise.
   */
  readonly done: Promise<void>;
  /** The last stderr lines at `tailLevel` or worse, without level tags. */
  stderrTail(): string[];
  /** True from the first `stop()` on. */
  readonly stopping: boolean;
  /** True once the process has exited. */
  readonly exited: boolean;
  /**
   * Teardown: destroy stdin (ffmpeg sees EOF) and the output pipes (a write blocked on a full pipe
   * fails instead of hanging), SIGTERM, then SIGKILL after `killGraceMs`. Resolves at exit.
   */
  stop(): Promise<ExitInfo>;
}

/** CPU time of one child, milliseconds (user and system, over all its threads). */
export interface CpuTime {
  userMs: number;
  systemMs: number;
}

const BENCH_RE = /^bench: utime=(\d+(?:\.\d+)?)s stime=(\d+(?:\.\d+)?)s/;

const live = new Map<number, FfmpegProcess>();
const cleanups = new Set<() => Promise<void> | void>();

/** Pids of the ffmpeg/ffprobe children of this process that have not exited yet. */
export function activeFfmpegPids(): number[] {
  return [...live.keys()];
}

/**
 * Registers work to run on `shutdownFfmpeg()` (an encoder's temp-file removal). Returns the unregister
 * function. Internal to the ffmpeg layer.
 */
export function registerCleanup(cleanup: () => Promise<void> | void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/**
 * Ends every live child and runs the registered cleanups (temporary outputs are deleted). For entry
 * points' SIGINT/SIGTERM handlers, so an interrupted run leaves neither a process nor a partial file.
 */
export async function shutdownFfmpeg(): Promise<void> {
  await Promise.all([...live.values()].map((p) => p.stop()));
  const pending = [...cleanups];
  cleanups.clear();
  await Promise.allSettled(pending.map(async (c) => c()));
}

/** Quotes one argument the way a POSIX shell would need it; for display only. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

const LINE_RE = /^(?:\[([^\]]*?)(?: @ 0x[0-9a-fA-F]+)?\] )?\[(quiet|panic|fatal|error|warning|info|verbose|debug|trace)\] ?(.*)$/;

/**
 * Splits one stderr line written with `-loglevel level+...`. Lines without a level tag (continuations)
 * take `fallback`.
 */
export function parseLogLine(raw: string, fallback: LogLevel): LogLine {
  const m = LINE_RE.exec(raw);
  if (!m) return { level: fallback, context: undefined, message: raw };
  return { level: m[2] as LogLevel, context: m[1] || undefined, message: m[3] };
}

function severity(level: LogLevel): number {
  return LOG_LEVELS.indexOf(level);
}

/** The house flags in front of every run (see STYLE.md, ffmpeg). */
function standardArgs(config: SpawnConfig): string[] {
  const kind = config.kind ?? 'ffmpeg';
  const args = ['-hide_banner', '-loglevel', `level+${config.logLevel ?? 'error'}`];
  if (kind === 'ffmpeg') {
    args.push('-nostats');
    if (config.measureCpu) args.push('-benchmark');
    if (!config.stdin) args.push('-nostdin');
  }
  return args;
}

/** The stdio of a run: stdin piped only when asked for, stdout and stderr, then the extra pipes. */
function stdioFor(config: SpawnConfig): StdioOptions {
  const stdio: StdioOptions = [config.stdin ? 'pipe' : config.inheritStdin ? 'inherit' : 'ignore', 'pipe', 'pipe'];
  for (let i = 0; i < (config.extraPipes ?? 0) + (config.inputPipes ?? 0); i++) stdio.push('pipe');
  return stdio;
}

/** Cuts stderr text into lines, parses each, hands it to `onLog` and keeps the severe ones in a short tail. */
class StderrLines {
  /** The last lines at `tailLevel` or worse, oldest first; `[context] message`, without level tags. */
  readonly tail: string[] = [];
  private pending = '';
  private lastLevel: LogLevel;
  private readonly tailMax: number;
  private readonly tailSeverity: number;

  constructor(private readonly config: SpawnConfig) {
    this.lastLevel = config.logLevel ?? 'error';
    this.tailMax = config.stderrTailLines ?? 20;
    this.tailSeverity = severity(config.tailLevel ?? 'warning');
  }

  /** Takes one chunk of text: whole lines go out now, a trailing partial line waits for the next chunk. */
  push(text: string): void {
    this.pending += text;
    // ffmpeg ends progress lines with \r; treat it as a line end too.
    const parts = this.pending.split(/\r\n|\n|\r/);
    this.pending = parts.pop() ?? '';
    for (const part of parts) this.line(part);
  }

  /** At the end of the stream: the last line, even without its line end. */
  flush(): void {
    if (this.pending) this.line(this.pending);
    this.pending = '';
  }

  /** What `-benchmark` printed at exit, when asked for. */
  cpu: CpuTime | undefined;

  private line(raw: string): void {
    if (raw.length === 0) return;
    const line = parseLogLine(raw, this.lastLevel);
    this.lastLevel = line.level;
    if (this.config.measureCpu && line.context === undefined) {
      const bench = BENCH_RE.exec(line.message);
      if (bench) this.cpu = { userMs: Number(bench[1]) * 1000, systemMs: Number(bench[2]) * 1000 };
    }
    if (severity(line.level) <= this.tailSeverity && (this.config.keepInTail?.(line) ?? true)) {
      this.tail.push(line.context ? `[${line.context}] ${line.message}` : line.message);
      if (this.tail.length > this.tailMax) this.tail.shift();
    }
    this.config.onLog?.(line);
  }
}

/** stdin (when asked for) and the readable pipes of `child`, with their stream errors absorbed. */
function openPipes(child: ChildProcess, config: SpawnConfig): { stdin: Writable | undefined; pipes: Readable[]; inputs: Writable[] } {
  const stdin = config.stdin ? (child.stdin ?? undefined) : undefined;
  // EPIPE when ffmpeg quits early: absorbed here, `done` carries the reason.
  stdin?.on('error', () => {});
  const pipes: Readable[] = [child.stdout!];
  const extra = config.extraPipes ?? 0;
  for (let i = 0; i < extra; i++) pipes.push(child.stdio[3 + i] as Readable);
  for (const p of pipes) p.on('error', () => {});
  const inputs: Writable[] = [];
  for (let i = 0; i < (config.inputPipes ?? 0); i++) inputs.push(child.stdio[3 + extra + i] as Writable);
  for (const w of inputs) w.on('error', () => {});
  return { stdin, pipes, inputs };
}

/** Resolves with `finish(code, signal)` once `child` has exited and its pipes are closed, or failed to start. */
function whenClosed(child: ChildProcess, finish: (code: number | null, signal: NodeJS.Signals | null) => ExitInfo): Promise<ExitInfo> {
  const pid = child.pid;
  return new Promise<ExitInfo>((resolve) => {
    // 'close' comes after 'exit' and after every pipe closed, so all output has been read.
    child.on('close', (code, signal) => resolve(finish(code, signal)));
    // A spawn failure emits 'error' and possibly no 'close'.
    child.on('error', () => {
      if (pid === undefined) resolve(finish(null, null));
    });
  });
}

/** The error `done` rejects with for `exit`, or undefined when the run counts as a success (exit 0, or stopped). */
function exitFailure(exit: ExitInfo, config: SpawnConfig, commandLine: string, tail: readonly string[]): FfmpegError | undefined {
  const kind = config.kind ?? 'ffmpeg';
  if (exit.stopped) return undefined;
  if (exit.spawnError) {
    return new FfmpegError(`could not start ${kind} at ${config.binary}: ${exit.spawnError.message}`, {
      file: config.file,
      command: commandLine,
    }, { cause: exit.spawnError });
  }
  if (exit.code === 0) return undefined;
  const what = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  const said = tail.length ? `: ${tail.join(' | ')}` : ' (it printed no error)';
  return new FfmpegError(`${kind} ${what}${config.file ? ` on ${config.file}` : ''}${said}`, {
    file: config.file,
    exitCode: exit.code,
    signal: exit.signal,
    stderr: tail,
    command: commandLine,
  });
}

/**
 * Starts ffmpeg or ffprobe. Never throws: a binary that cannot start shows up as a rejected `done`.
 * The caller owns the returned process and must let it finish or `stop()` it.
 */
export function spawnFfmpeg(config: SpawnConfig): FfmpegProcess {
  const args = [...(config.standardFlags === false ? [] : standardArgs(config)), ...config.args];
  const commandLine = [config.binary, ...args].map(shellQuote).join(' ');
  const graceMs = config.killGraceMs ?? 2000;
  const child: ChildProcess = spawn(config.binary, args, { shell: false, stdio: stdioFor(config), windowsHide: true });
  const pid = child.pid;
  const life = { stopping: false, exited: false, killTimer: undefined as NodeJS.Timeout | undefined };

  // stderr is always drained, never paused: a full stderr pipe would stall ffmpeg.
  const stderr = new StderrLines(config);
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => stderr.push(text));
  child.stderr!.on('error', () => {});
  const { stdin, pipes, inputs } = openPipes(child, config);

  let spawnError: Error | undefined;
  child.on('error', (err) => {
    spawnError ??= err;
  });
  const closed = whenClosed(child, (code, signal) => {
    life.exited = true;
    if (life.killTimer) clearTimeout(life.killTimer);
    if (pid !== undefined) live.delete(pid);
    stderr.flush();
    return { code, signal, spawnError, stopped: life.stopping };
  });
  const done = closed.then((exit) => {
    const failure = exitFailure(exit, config, commandLine, stderr.tail);
    if (failure) throw failure;
  });
  // Callers that only care about `closed` must not trigger an unhandled rejection.
  done.catch(() => {});

  const proc: FfmpegProcess = {
    pid,
    commandLine,
    stdin,
    pipes,
    inputs,
    closed,
    done,
    cpu: () => stderr.cpu,
    stderrTail: () => [...stderr.tail],
    get stopping() {
      return life.stopping;
    },
    get exited() {
      return life.exited;
    },
    stop() {
      if (life.exited || pid === undefined) return closed;
      if (!life.stopping) {
        life.stopping = true;
        stdin?.destroy();
        for (const p of pipes) p.destroy();
        for (const w of inputs) w.destroy();
        child.kill('SIGTERM');
        life.killTimer = setTimeout(() => {
          if (!life.exited) child.kill('SIGKILL');
        }, graceMs);
      }
      return closed;
    },
  };
  if (pid !== undefined) live.set(pid, proc);
  return proc;
}

export interface RunResult {
  stdout: string;
  /** Every stderr line, parsed. */
  log: LogLine[];
  exit: ExitInfo;
}

/**
 * Runs a short command to completion and collects its stdout as text (probe, version, count).
 * Rejects with an `FfmpegError` on a non-zero exit unless `allowFailure` is set, and ends the child
 * after `timeoutMs` (default 60 s) or as soon as `signal` aborts (rejecting then too).
 */
export async function runFfmpeg(
  config: SpawnConfig & { timeoutMs?: number; allowFailure?: boolean; signal?: AbortSignal },
): Promise<RunResult> {
  const log: LogLine[] = [];
  const proc = spawnFfmpeg({
    ...config,
    onLog: (line) => {
      log.push(line);
      config.onLog?.(line);
    },
  });
  let stdout = '';
  proc.pipes[0].setEncoding('utf8');
  proc.pipes[0].on('data', (text: string) => {
    stdout += text;
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void proc.stop();
  }, config.timeoutMs ?? 60_000);
  // The caller gave up (a decode unsubscribed while it probed): end the child now, not when it is done.
  const onAbort = (): void => void proc.stop();
  config.signal?.addEventListener('abort', onAbort, { once: true });
  if (config.signal?.aborted) onAbort();
  try {
    const exit = await proc.closed;
    if (config.signal?.aborted) {
      throw new FfmpegError(`${config.kind ?? 'ffmpeg'}${config.file ? ` on ${config.file}` : ''} was stopped: its result is no longer wanted`, {
        file: config.file,
        command: proc.commandLine,
      });
    }
    if (timedOut) {
      throw new FfmpegError(
        `${config.kind ?? 'ffmpeg'} took longer than ${config.timeoutMs ?? 60_000} ms${config.file ? ` on ${config.file}` : ''}`,
        { file: config.file, command: proc.commandLine, stderr: proc.stderrTail() },
      );
    }
    if (!config.allowFailure || exit.spawnError) await proc.done;
    return { stdout, log, exit };
  } finally {
    clearTimeout(timer);
    config.signal?.removeEventListener('abort', onAbort);
  }
}
