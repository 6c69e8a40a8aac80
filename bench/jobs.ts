/**
 * Jobs bench: the same set of clips through the Redis queue with 1 and then 2 `camstream worker` processes
 * on this machine, and the Redis commands spent per frame. Numbers, never assertions.
 *
 *   node bin/run-ts.js bench/jobs.ts [--clips 4] [--seconds 10] [--size 320x240] [--model SPEC] [--json FILE]
 *                                    [--chunk-seconds S]
 *
 * Each round starts a fresh redis-server (Debian's, on a free loopback port, no persistence), N workers
 * (`--concurrency 1`, progress every 1 s), submits every clip as one video job and waits for all of them.
 * Redis commands are read from `INFO stats` (total_commands_processed) after the workers are ready and
 * after the last job: they include the workers' idle polling, lock renewals and stalled checks, which
 * grow with time and jobs, not with frames. On a 2-core machine two workers share the same cores, so
 * expect about 1x: the queue's gain comes from more machines, not more processes on one.
 *
 * `--chunk-seconds S` splits every clip at keyframes (forced every S / 5 seconds) into segments of S seconds
 * and submits it as a flow (segments, then the join), as `jobs submit --chunk-seconds` does: one long clip
 * (`--clips 1 --seconds 60`) then shows what splitting buys on this machine.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runFfmpeg } from '../pipelines/index.ts';
import { locateCliFfmpeg } from '../cli/ffmpeg.ts';
import { CamQueue, DEFAULT_WARMUP_SECONDS, planVideoChunks, redisConnection, type ChunkRange } from '../pipelines/jobs/index.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Round {
  workers: number;
  jobs: number;
  frames: number;
  wallS: number;
  fps: number;
  redisCommands: number;
  commandsPerFrame: number;
  commandsPerJob: number;
  /** Commands per second of the round: idle polling, lock renewals, progress ticks. */
  commandsPerSecond: number;
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer().once('error', fail).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

/** Starts a process and resolves once `ready` appears in its output. */
function startUntil(cmd: string, args: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  let log = '';
  return new Promise((done, fail) => {
    const on = (s: Buffer): void => {
      log += s.toString();
      if (ready.test(log)) done(child);
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => fail(new Error(`${cmd} exited (${code}) before ready:\n${log}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once('exit', () => done());
    child.kill('SIGTERM');
  });
}

function commandsProcessed(port: number): Promise<number> {
  return new Promise((done, fail) =>
    execFile('redis-cli', ['-p', String(port), 'info', 'stats'], (err, out) => {
      if (err) return fail(err);
      done(Number(/total_commands_processed:(\d+)/.exec(out)?.[1] ?? NaN));
    }),
  );
}

async function round(n: number, clips: string[], inRoot: string, outRoot: string, model: string | undefined, plans: Map<string, ChunkRange[]>): Promise<Round> {
  const port = await freePort();
  const redis = await startUntil('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], /Ready to accept connections/);
  const url = `redis://127.0.0.1:${port}`;
  const args = ['bin/camstream.js', 'worker', '--redis', url, '--input-root', inRoot, '--out-root', outRoot, '--quiet', ...(model ? ['--models', model] : [])];
  const workers = await Promise.all(Array.from({ length: n }, (_, i) => startUntil(process.execPath, [...args, '--name', `w${i}`], /ready/)));
  const queue = new CamQueue(redisConnection(url));
  try {
    const out = join(outRoot, `w${n}`);
    await mkdir(out);
    const before = await commandsProcessed(port);
    const t0 = performance.now();
    const ids: string[] = [];
    for (const c of clips) {
      const data = { kind: 'video' as const, inputs: [c], outDir: out, video: { preset: 'veryfast' } };
      const ranges = plans.get(c);
      if (ranges && ranges.length > 1) ids.push((await queue.submitSplit(data, ranges, DEFAULT_WARMUP_SECONDS)).id);
      else ids.push(...(await queue.submit([data])));
    }
    const done = await Promise.all(ids.map((id) => queue.waitUntilFinished(id)));
    const wallS = (performance.now() - t0) / 1000;
    const commands = (await commandsProcessed(port)) - before;
    const failed = done.filter((s) => s.state !== 'completed');
    if (failed.length > 0) throw new Error(`jobs failed: ${failed.map((s) => `${s.id}: ${s.error}`).join('; ')}`);
    const frames = done.reduce((sum, s) => sum + (s.progress?.done ?? 0), 0);
    return { workers: n, jobs: ids.length, frames, wallS, fps: frames / wallS, redisCommands: commands, commandsPerFrame: commands / frames, commandsPerJob: commands / ids.length, commandsPerSecond: commands / wallS };
  } finally {
    await queue.close();
    await Promise.all(workers.map(stop));
    await stop(redis);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { clips: { type: 'string', default: '4' }, seconds: { type: 'string', default: '10' }, size: { type: 'string', default: '320x240' }, model: { type: 'string' }, json: { type: 'string' }, 'chunk-seconds': { type: 'string' } } });
  const chunkSeconds = values['chunk-seconds'] === undefined ? undefined : Number(values['chunk-seconds']);
  const dir = await mkdtemp(join(tmpdir(), 'camstream-bench-jobs-'));
  try {
    const inRoot = join(dir, 'in');
    const outRoot = join(dir, 'out');
    await mkdir(inRoot);
    await mkdir(outRoot);
    const tools = await locateCliFfmpeg();
    const clips: string[] = [];
    for (let i = 0; i < Number(values.clips); i++) {
      const clip = join(inRoot, `clip${i}.mp4`);
      const src = `testsrc2=size=${values.size}:rate=25:duration=${values.seconds}`;
      const keys = chunkSeconds === undefined ? [] : ['-force_key_frames', `expr:gte(t,n_forced*${chunkSeconds / 5})`];
      await runFfmpeg({ binary: tools.ffmpeg.path, args: ['-y', '-f', 'lavfi', '-i', src, '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', ...keys, clip], timeoutMs: 300_000 });
      clips.push(clip);
    }
    const plans = new Map<string, ChunkRange[]>();
    if (chunkSeconds !== undefined) for (const c of clips) plans.set(c, await planVideoChunks(c, chunkSeconds, tools));
    const rounds = [await round(1, clips, inRoot, outRoot, values.model, plans), await round(2, clips, inRoot, outRoot, values.model, plans)];
    console.log(`| workers | jobs | frames | wall s | fps | Redis commands | per frame | per job | per s |\n|---|---|---|---|---|---|---|---|---|`);
    for (const r of rounds) {
      console.log(`| ${r.workers} | ${r.jobs} | ${r.frames} | ${r.wallS.toFixed(1)} | ${r.fps.toFixed(1)} | ${r.redisCommands} | ${r.commandsPerFrame.toFixed(3)} | ${r.commandsPerJob.toFixed(0)} | ${r.commandsPerSecond.toFixed(1)} |`);
    }
    if (chunkSeconds !== undefined) console.log(`split into ${[...plans.values()].map((p) => p.length).join(', ')} segments of ${chunkSeconds} s`);
    console.log(`speed-up with 2 workers: ${(rounds[1].fps / rounds[0].fps).toFixed(2)}x`);
    if (values.json) await writeFile(values.json, JSON.stringify({ clips: clips.length, seconds: Number(values.seconds), size: values.size, chunkSeconds: chunkSeconds ?? null, rounds }, null, 2));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
