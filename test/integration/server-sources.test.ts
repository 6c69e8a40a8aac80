/**
 * Server-side sources with real ffmpeg: restart with backoff after ffmpeg is killed mid-stream (viewers are
 * told), pause and seek, a file played once, and the end of every child on dispose.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CamModel } from '../../models/index.ts';
import { activeFfmpegPids } from '../../pipelines/index.ts';
import type { ServerMessage } from '../../protocol/index.ts';
import { connectViewer, disposeAll, makeClip, smallOnnxModel, startServerUntracked, startTestServer, tempDir } from './server-harness.ts';

let media: string;
let model: CamModel;

beforeAll(async () => {
  const dir = await tempDir();
  media = join(dir, 'media');
  await mkdir(media);
  model = await smallOnnxModel(dir);
  await makeClip(media, 'clip.mp4', { seconds: 6, fps: 25 });
  await makeClip(media, 'short.mp4', { seconds: 1, fps: 25 });
});
afterAll(disposeAll);

const isStatus = (state: string) => (m: ServerMessage): m is ServerMessage & { type: 'status' } => m.type === 'status' && m.state === state;

describe('server-side sources', () => {
  it('restarts an ffmpeg source killed mid-stream with backoff, telling every viewer', async () => {
    const server = await startTestServer({ model, sources: { mediaRoot: media, restartInitialDelayMs: 200 } });
    const a = await connectViewer(server);
    const b = await connectViewer(server);
    a.send({ type: 'select', source: { kind: 'file', path: 'clip.mp4' } });
    b.send({ type: 'select', source: { kind: 'file', path: 'clip.mp4' } });
    await a.waitForResults(10);
    await b.waitForResults(5);
    const before = server.stats().sources[0];
    expect(before.pid).toBeGreaterThan(0);
    process.kill(before.pid!, 'SIGKILL');
    for (const v of [a, b]) {
      const restarting = await v.waitFor(isStatus('restarting'));
      expect(restarting).toMatchObject({ attempt: 1, retryInMs: 200 });
      expect(restarting.message).toMatch(/ffmpeg|signal|SIGKILL/i);
    }
    const n = a.results.length;
    await a.waitFor((m) => m.type === 'status' && m.state === 'live' && a.messages.indexOf(m) > a.messages.findIndex(isStatus('restarting')));
    await a.waitForResults(n + 10);
    const after = server.stats().sources[0];
    expect(after.restarts).toBe(1);
    expect(after.pid).toBeGreaterThan(0);
    expect(after.pid).not.toBe(before.pid);
    expect(activeFfmpegPids()).not.toContain(before.pid);
    // It resumed near where it was, not from the start.
    expect(a.results.at(-1)!.pts).toBeGreaterThan(0.2);
  });

  it('backs off exponentially while ffmpeg keeps dying, then gives up with an error status', async () => {
    const server = await startTestServer({ model, sources: { mediaRoot: media, restartInitialDelayMs: 50, restartMaxDelayMs: 400, restartMaxAttempts: 4 } });
    const v = await connectViewer(server);
    v.send({ type: 'select', source: { kind: 'file', path: 'clip.mp4' } });
    await v.waitForResults(3);
    // Kill every ffmpeg this source starts, as soon as it has a pid.
    const killer = setInterval(() => {
      const pid = server.stats().sources[0]?.pid;
      if (pid && activeFfmpegPids().includes(pid)) process.kill(pid, 'SIGKILL');
    }, 5);
    try {
      await v.waitFor(isStatus('error'), 20_000);
    } finally {
      clearInterval(killer);
    }
    const delays = v.messages.filter(isStatus('restarting')).map((m) => m.retryInMs);
    expect(delays.slice(0, 4)).toEqual([50, 100, 200, 400]);
  });

  it('pauses, resumes and seeks a file for every viewer, and ends a file played once', async () => {
    const server = await startTestServer({ model, sources: { mediaRoot: media } });
    const v = await connectViewer(server);
    v.send({ type: 'select', source: { kind: 'file', path: 'clip.mp4', loop: false } });
    await v.waitForResults(5);
    const source = await v.waitFor((m): m is ServerMessage & { type: 'source' } => m.type === 'source');
    expect(source).toMatchObject({ kind: 'file', seekable: true, loop: false, width: 320, height: 240 });
    expect(source.durationSeconds).toBeCloseTo(6, 0);
    v.send({ type: 'pause', paused: true });
    await v.waitFor(isStatus('paused'));
    await new Promise((r) => setTimeout(r, 300));
    const paused = v.results.length;
    await new Promise((r) => setTimeout(r, 500));
    expect(v.results.length).toBeLessThanOrEqual(paused + 1);
    expect(server.stats().sources[0].pid).toBeUndefined();
    v.send({ type: 'seek', seconds: 5 });
    v.send({ type: 'pause', paused: false });
    await v.waitForResults(paused + 3);
    expect(v.results.at(-1)!.pts).toBeGreaterThanOrEqual(4.9);
    // Played once: it ends.
    await v.waitFor(isStatus('ended'), 10_000);
    // A webcam cannot seek: a typed, non-fatal error.
    const w = await connectViewer(server);
    w.send({ type: 'select', source: { kind: 'webcam' } });
    w.send({ type: 'seek', seconds: 1 });
    expect(await w.waitFor((m) => m.type === 'error')).toMatchObject({ code: 'not-seekable' });
  });

  it('ends every ffmpeg child and closes every client on dispose', async () => {
    const server = await startServerUntracked({ model, sources: { mediaRoot: media } });
    const v = await connectViewer(server);
    v.send({ type: 'select', source: { kind: 'file', path: 'clip.mp4' } });
    await v.waitForResults(3);
    const pid = server.stats().sources[0].pid!;
    expect(activeFfmpegPids()).toContain(pid);
    await server.dispose();
    expect(activeFfmpegPids()).not.toContain(pid);
    expect(() => process.kill(pid, 0)).toThrow();
    expect((await v.closed).code).toBe(1001);
  });

  it('shares one ffmpeg among viewers of the same file and stops it with the last one', async () => {
    const server = await startTestServer({ model, sources: { mediaRoot: media } });
    const viewers = await Promise.all([0, 1, 2].map(() => connectViewer(server)));
    for (const v of viewers) v.send({ type: 'select', source: { kind: 'file', path: 'short.mp4' } });
    await Promise.all(viewers.map((v) => v.waitForResults(3)));
    const sources = server.stats().sources;
    expect(sources).toHaveLength(1);
    expect(sources[0].viewers).toBe(3);
    const pid = sources[0].pid;
    // Every viewer gets the same frames (the same ids in the same order, give or take the start).
    const ids = viewers.map((v) => v.results.map((r) => r.frameId));
    const common = ids[0].filter((id) => ids[1].includes(id) && ids[2].includes(id));
    expect(common.length).toBeGreaterThan(0);
    for (const v of viewers) v.close();
    const deadline = Date.now() + 5000;
    while ((server.stats().sources.length > 0 || (pid && activeFfmpegPids().includes(pid))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(server.stats().sources).toHaveLength(0);
    if (pid) expect(activeFfmpegPids()).not.toContain(pid);
  });
});
