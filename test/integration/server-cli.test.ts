/** `camstream serve` as a user runs it. */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { smallGapDenseNet, toOnnxModel } from '../../lab/builders/index.ts';
import { runCli } from '../helpers/cli.ts';
import { ROOT } from '../helpers/fixtures.ts';
import { disposeAll, tempDir } from './server-harness.ts';

afterAll(disposeAll);

describe('camstream serve', () => {
  it('refuses a non-loopback host without a token, before loading anything, and exits 2', async () => {
    const run = await runCli(['serve', '--host', '0.0.0.0', '--model', '/does/not/matter.onnx'], { CAMSTREAM_TOKEN: '' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/camstream: refusing to listen on 0\.0\.0\.0 without a token/);
    expect(run.stdout).toBe('');
  });

  it('prints its URL, serves the page and the socket, takes --allow-url-sources, and exits 143 after a clean shutdown on SIGTERM', async () => {
    const dir = await tempDir();
    const model = join(dir, 'small.onnx');
    await writeFile(model, toOnnxModel(smallGapDenseNet(3, { inputSize: [32, 32], numClasses: 5, width: 4 })));
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'camstream.js'), 'serve', '--port', '0', '--model', model, '--token', 'serve-test-token', '--allow-url-sources', '--quiet'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const printed = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => {
          out += s;
          // Two lines: the live page's URL, then the review page's.
          if (out.split('\n').length > 2) resolve(out);
        });
        setTimeout(() => reject(new Error(`no URL printed in 60 s; stderr: ${stderr}`)), 60_000);
      });
      const [line, reviewLine] = printed.split('\n');
      const url = /^camstream serve: (http:\/\/127\.0\.0\.1:\d+\/\?token=serve-test-token)$/.exec(line)?.[1];
      expect(url, line).toBeDefined();
      expect(reviewLine).toMatch(/^camstream serve: review http:\/\/127\.0\.0\.1:\d+\/review\?token=serve-test-token$/);
      expect([200, 503]).toContain((await fetch(reviewLine.replace('camstream serve: review ', ''))).status);
      const res = await fetch(url!);
      // 200 with a built client, 503 naming the build command without one.
      expect([200, 503]).toContain(res.status);
      if (res.status === 503) expect(await res.text()).toMatch(/npm run build:client/);
      else expect(await res.text()).toMatch(/<camstream-app>/);
      expect((await fetch(url!.replace(/\?.*/, ''))).status).toBe(401);
      // URL sources are on, private hosts still refused (no --allow-private-urls).
      const replies = await firstReplies(url!.replace(/^http/, 'ws').replace('/?', '/ws?'), { type: 'select', source: { kind: 'url', url: 'http://127.0.0.1:9/x.mp4' } });
      expect(replies[0]).toMatchObject({ type: 'hello', sourceKinds: expect.arrayContaining(['url']) });
      expect(replies[1]).toMatchObject({ type: 'error', code: 'forbidden-url' });
    } finally {
      child.kill('SIGTERM');
    }
    // 128 + 15, as a shell reports a process ended by SIGTERM; the shutdown itself was clean.
    expect(await exited).toBe(143);
    expect(stderr).toMatch(/shutting down/);
  });
});

/** Opens `url`, sends `message` after the hello, and resolves with the first two text messages. */
function firstReplies(url: string, message: unknown): Promise<Array<Record<string, unknown>>> {
  const ws = new WebSocket(url);
  const got: Array<Record<string, unknown>> = [];
  return new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (binary) return;
      const m = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
      if (m.type === 'stats') return;
      got.push(m);
      if (got.length === 1) ws.send(JSON.stringify(message));
      if (got.length === 2) {
        ws.close();
        resolve(got);
      }
    });
  });
}
