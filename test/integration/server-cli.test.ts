/** `camstream serve` as a user runs it. */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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

  it('prints its URL, serves the page and the socket, and shuts down cleanly on SIGTERM', async () => {
    const dir = await tempDir();
    const model = join(dir, 'small.onnx');
    await writeFile(model, toOnnxModel(smallGapDenseNet(3, { inputSize: [32, 32], numClasses: 5, width: 4 })));
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'camstream.js'), 'serve', '--port', '0', '--model', model, '--token', 'serve-test-token', '--quiet'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => {
          out += s;
          if (out.includes('\n')) resolve(out.split('\n')[0]);
        });
        setTimeout(() => reject(new Error(`no URL printed in 60 s; stderr: ${stderr}`)), 60_000);
      });
      const url = /^camstream serve: (http:\/\/127\.0\.0\.1:\d+\/\?token=serve-test-token)$/.exec(line)?.[1];
      expect(url, line).toBeDefined();
      const res = await fetch(url!);
      // 200 with a built client, 503 naming the build command without one.
      expect([200, 503]).toContain(res.status);
      if (res.status === 503) expect(await res.text()).toMatch(/npm run build:client/);
      else expect(await res.text()).toMatch(/<camstream-app>/);
      expect((await fetch(url!.replace(/\?.*/, ''))).status).toBe(401);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
