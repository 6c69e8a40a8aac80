/**
 * A private Redis for a test file: Debian's redis-server on 127.0.0.1 and a free port, no persistence
 * unless asked (`appendOnly`, for the restart test), stopped in `afterAll` of the test file that imported
 * this helper, even when a test fails before stopping it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

export const REDIS_SERVER = process.env.CAMSTREAM_REDIS_SERVER ?? '/usr/bin/redis-server';

/** Whether a redis-server binary is there: without it the job-queue tests are skipped, except under CI. */
export const haveRedis = existsSync(REDIS_SERVER);

if (!haveRedis) {
  if (process.env.CI === 'true') throw new Error(`CI=true but redis-server is missing at ${REDIS_SERVER}: the job-queue tests cannot run`);
  console.warn(`[camstream tests] redis-server not found at ${REDIS_SERVER} (apt-get install redis-server): job-queue tests are skipped`);
}

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** The running server's pid (undefined while stopped). */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM, SIGKILL after 5 s) and waits for its exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (and, with `appendOnly`, the same data). */
  restart(): Promise<void>;
}

const running = new Set<TestRedis>();

afterAll(async () => {
  await Promise.all([...running].map((r) => r.stop()));
});

/** A free TCP port on 127.0.0.1 (bound and released; a race with another process is possible but rare). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** Spawns redis-server and resolves once it logs that it accepts connections. */
function launch(port: number, dir: string, appendOnly: boolean): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--appendonly', appendOnly ? 'yes' : 'no'];
  if (appendOnly) args.push('--appendfsync', 'always');
  const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolveReady, reject) => {
    let log = '';
    const onData = (s: string): void => {
      log += s;
      if (log.includes('Ready to accept connections')) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolveReady(child);
      }
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (log += s));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code} before it was ready:\n${log}`)));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveStop();
    });
    child.kill('SIGTERM');
  });
}

/** Starts a Redis for this test file. */
export async function startRedis(options: { appendOnly?: boolean } = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'camstream-redis-'));
  const appendOnly = options.appendOnly ?? false;
  let child: ChildProcess | undefined = await launch(port, dir, appendOnly);
  const redis: TestRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid;
    },
    async stop() {
      running.delete(redis);
      if (child) await stopChild(child);
      child = undefined;
      await rm(dir, { recursive: true, force: true });
    },
    async restart() {
      if (child) await stopChild(child);
      child = await launch(port, dir, appendOnly);
    },
  };
  running.add(redis);
  return redis;
}
