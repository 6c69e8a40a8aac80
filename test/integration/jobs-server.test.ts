/**
 * `/api/jobs` of `startServer({ redis })` over a real Redis and a real `camstream worker` process: queue
 * counts, a failed job's error, per-job progress, retry and cancel over HTTP, the token and the
 * same-origin rule on writes.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FfmpegTools } from '../../pipelines/index.ts';
import { CamQueue, redisConnection, type CamJobData, type CamJobStatus } from '../../pipelines/jobs/index.ts';
import type { LiveServer } from '../../server/index.ts';
import type { JobsListing } from '../../server/http/jobs.ts';
import { startCli, type CliProcess } from '../helpers/cli-process.ts';
import { ROOT } from '../helpers/fixtures.ts';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { haveRedis, startRedis, type TestRedis } from '../helpers/redis.ts';
import { disposeAll, smallOnnxModel, startServerUntracked, startTestServer } from './server-harness.ts';
import { makeClip, writeRandomOnnx } from './video-helpers.ts';

const TOKEN = 'jobs-api-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let redis: TestRedis;
let tools: FfmpegTools;
let queue: CamQueue;
let server: LiveServer;
let worker: CliProcess;
let dir: string;
let inRoot: string;
let outRoot: string;
/** 10 s at 25 fps: long enough to be seen running. */
let longClip: string;

function videoJob(input: string, outDir = outRoot): CamJobData {
  return { kind: 'video', inputs: [input], outDir, video: { top: 3, batch: 1, preset: 'ultrafast' } };
}

async function listing(): Promise<JobsListing> {
  const res = await fetch(new URL('/api/jobs', server.url), { headers: AUTH });
  expect(res.status).toBe(200);
  return (await res.json()) as JobsListing;
}

function post(id: string, action: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(new URL(`/api/jobs/${id}/${action}`, server.url), { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json', ...headers }, body: '{}' });
}

function jobIn(l: JobsListing, id: string): CamJobStatus | undefined {
  return l.jobs.find((j) => j.id === id);
}

beforeAll(async () => {
  if (!haveRedis) return;
  dir = await mkdtemp(join(tmpdir(), 'camstream-jobs-server-'));
  inRoot = join(dir, 'in');
  outRoot = join(dir, 'out');
  await mkdir(inRoot);
  await mkdir(outRoot);
  redis = await startRedis();
  tools = await testFfmpeg();
  queue = new CamQueue(redisConnection(redis.url));
  longClip = await makeClip(tools, inRoot, 'long.mp4', ['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25:duration=10', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p']);
  worker = startCli(['worker', '--redis', redis.url, '--input-root', inRoot, '--out-root', outRoot, '--models', await writeRandomOnnx(dir, 3), '--name', 'w1', '--progress-ms', '100']);
  server = await startTestServer({ model: await smallOnnxModel(dir), http: { token: TOKEN }, redis: redis.url });
  await worker.waitFor(/ready/);
}, 300_000);

afterAll(async () => {
  await disposeAll();
  await queue?.close();
  if (worker) {
    worker.child.kill('SIGKILL');
    await worker.exited;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!haveRedis)('/api/jobs over a real Redis and worker', () => {
  it('requires the token', async () => {
    expect((await fetch(new URL('/api/jobs', server.url))).status).toBe(401);
    expect((await fetch(new URL('/jobs', server.url))).status).toBe(401);
    expect((await fetch(new URL('/api/jobs/1/retry', server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(401);
    expect((await fetch(new URL(`/api/jobs?token=${TOKEN}`, server.url))).status).toBe(200);
  });

  it('shows a failed job with its error, and retries it over HTTP', async () => {
    const [id] = await queue.submit([videoJob(join(dir, 'outside.mp4'))]);
    expect((await queue.waitUntilFinished(id, 120_000)).state).toBe('failed');
    const before = await listing();
    expect(before.counts.failed).toBe(1);
    expect(jobIn(before, id)).toMatchObject({ state: 'failed', attempts: 1, worker: 'w1' });
    expect(jobIn(before, id)!.error).toMatch(/outside\.mp4' is outside the worker's root/);

    const res = await post(id, 'retry');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id, ok: true });
    // The worker took it a second time.
    await worker.waitFor(new RegExp(`(job ${id}: failed[\\s\\S]*){2}`));
    expect((await queue.waitUntilFinished(id, 120_000)).state).toBe('failed');
    // A second retry of a job not yet failed again is refused; an unknown id is a 404.
    expect((await post('999999', 'retry')).status).toBe(404);

    const cancel = await post(id, 'cancel');
    expect(cancel.status).toBe(200);
    const after = await listing();
    expect(jobIn(after, id)).toBeUndefined();
    expect(after.counts.failed).toBe(0);
  }, 300_000);

  it('shows progress of a running job, refuses to cancel it, cancels a waiting one', async () => {
    const [running] = await queue.submit([videoJob(longClip)]);
    await worker.waitFor(new RegExp(`job ${running}: [1-9]\\d*/250`), 300_000);
    const [waiting] = await queue.submit([videoJob(longClip)]);
    // The worker prints a progress line before BullMQ has stored that progress: wait for the store.
    await expect.poll(async () => jobIn(await listing(), running)?.progress?.done ?? 0, { timeout: 60_000 }).toBeGreaterThan(0);
    const l = await listing();
    const r = jobIn(l, running)!;
    expect(r.state).toBe('active');
    expect(r.progress!.total).toBe(250);
    expect(r.progress!.done).toBeGreaterThan(0);
    expect(jobIn(l, waiting)!.state).toBe('waiting');
    expect(l.counts.active).toBe(1);
    expect(l.counts.waiting).toBe(1);

    const refused = await post(running, 'cancel');
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { note: string }).note).toMatch(/running on a worker/);
    expect((await post(waiting, 'cancel', { origin: 'http://evil.example' })).status).toBe(403);
    expect((await post(waiting, 'cancel', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post(waiting, 'cancel')).status).toBe(200);
    expect(jobIn(await listing(), waiting)).toBeUndefined();

    expect((await queue.waitUntilFinished(running, 300_000)).state).toBe('completed');
    const done = jobIn(await listing(), running)!;
    expect(done.state).toBe('completed');
    expect(done.progress).toEqual({ done: 250, total: 250 });
    expect(done.outputs[0]).toMatch(/long\..*\.cam\.mp4$/);
  }, 600_000);

  it('closes its Redis connection when it cannot listen (the port is taken)', async () => {
    const clients = async (): Promise<number> => {
      const { stdout } = await promisify(execFile)('redis-cli', ['-p', String(redis.port), 'CLIENT', 'LIST']);
      return stdout.trim().split('\n').length - 1; // less redis-cli's own connection
    };
    const before = await clients();
    await expect(startServerUntracked({ model: await smallOnnxModel(dir), http: { port: server.port, token: TOKEN }, redis: redis.url })).rejects.toThrow(/already in use/);
    // Closing is asynchronous on Redis's side: wait for the count to come back, bounded.
    let now = await clients();
    for (let i = 0; i < 200 && now > before; i++) now = await clients();
    expect(now).toBe(before);
  });

  it('rejects bad parameters with a clear status', async () => {
    expect((await fetch(new URL('/api/jobs?limit=0', server.url), { headers: AUTH })).status).toBe(400);
    expect((await fetch(new URL('/api/jobs?limit=abc', server.url), { headers: AUTH })).status).toBe(400);
    expect((await post('a%2Fb', 'retry')).status).toBe(400);
    expect((await fetch(new URL('/api/jobs/1/retry', server.url), { headers: AUTH })).status).toBe(404);
  });

  it('loads BullMQ only when the jobs routes open (a server without --redis never does)', async () => {
    // A module hook logs every resolution of 'bullmq' in a fresh Node process.
    const log = join(dir, 'bullmq.log');
    const hook = join(dir, 'hook.mjs');
    await writeFile(hook, `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { if (s === 'bullmq') appendFileSync(${JSON.stringify(log)}, 'bullmq\\n'); return next(s, c); }\n`);
    const register = join(dir, 'register.mjs');
    await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`);
    const script = join(dir, 'load.mts');
    const src = (f: string): string => JSON.stringify(pathToFileURL(join(ROOT, f)).href);
    await writeFile(
      script,
      `await import(${src('server/index.ts')});\nawait import(${src('cli/commands/serve.ts')});\n` +
        `if (process.argv[2] === 'open') { const { JobsRoutes } = await import(${src('server/http/jobs.ts')}); await (await JobsRoutes.open({ redisUrl: ${JSON.stringify(redis.url)}, clientDir: ${JSON.stringify(dir)} })).close(); }\n` +
        `console.log('loaded');\n`,
    );
    const run = (arg: string) => promisify(execFile)(process.execPath, ['--import', pathToFileURL(register).href, join(ROOT, 'bin', 'run-ts.js'), script, arg], { cwd: ROOT, timeout: 120_000 });
    expect((await run('plain')).stdout).toMatch(/loaded/);
    expect(await readFile(log, 'utf8').catch(() => '')).toBe('');
    expect((await run('open')).stdout).toMatch(/loaded/);
    expect(await readFile(log, 'utf8')).toMatch(/bullmq/);
  }, 300_000);
});
