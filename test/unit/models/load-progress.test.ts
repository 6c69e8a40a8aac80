import { Writable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { createProgressBar, formatBytes } from '../../../models/load/index.ts';

/** A writable that says it is (or is not) a terminal and keeps what was written. */
function terminal(isTTY: boolean, columns = 120): Writable & { isTTY: boolean; columns: number; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return Object.assign(stream, { isTTY, columns, text: () => chunks.join('') });
}

describe('download progress bar', () => {
  it('draws file name, bar, percent, bytes and rate in place, then a summary line', () => {
    const out = terminal(true);
    let clock = 0;
    const bar = createProgressBar({ stream: out, now: () => clock, redrawMs: 0, barWidth: 10 });
    const url = 'http://127.0.0.1:1/zoo/group1-shard1of1';
    bar.onProgress({ url, loaded: 0, total: 4000 });
    clock = 500;
    bar.onProgress({ url, loaded: 2000, total: 4000 });
    expect(out.text()).toContain('\r\x1b[2Kgroup1-shard1of1  [#####-----]   50%  2.00 KB / 4.00 KB  4.00 KB/s');
    clock = 1000;
    bar.onProgress({ url, loaded: 4000, total: 4000 });
    bar.stop();
    expect(out.text()).toContain('[##########]  100%');
    expect(out.text()).toMatch(/downloaded 1 file, 4.00 KB in 1.0 s \(4.00 KB\/s\)\n$/);
  });

  it('shows bytes alone when the total is unknown', () => {
    const out = terminal(true);
    const bar = createProgressBar({ stream: out, now: () => 1, redrawMs: 0 });
    bar.onProgress({ url: 'http://h/model.onnx', loaded: 1_500_000, total: undefined });
    expect(out.text()).toContain('model.onnx  1.50 MB');
    expect(out.text()).not.toContain('%');
  });

  it('throttles redraws but always draws the end of a file', () => {
    const out = terminal(true);
    let clock = 0;
    const bar = createProgressBar({ stream: out, now: () => clock, redrawMs: 100 });
    for (let loaded = 0; loaded <= 1000; loaded += 10) {
      clock += 1;
      bar.onProgress({ url: 'http://h/a.bin', loaded, total: 1000 });
    }
    const draws = out.text().split('\r').length - 1;
    expect(draws).toBeGreaterThanOrEqual(2);
    expect(draws).toBeLessThan(5);
    expect(out.text()).toContain('100%');
  });

  it('truncates to the terminal width', () => {
    const out = terminal(true, 30);
    const bar = createProgressBar({ stream: out, now: () => 0, redrawMs: 0 });
    bar.onProgress({ url: 'http://h/a-very-long-shard-name-group1-shard1of1', loaded: 1, total: 2 });
    const line = out.text().split('\x1b[2K').pop() ?? '';
    expect(line.length).toBeLessThanOrEqual(29);
  });

  it('writes nothing when the stream is not a terminal', () => {
    const out = terminal(false);
    const bar = createProgressBar({ stream: out, redrawMs: 0 });
    bar.onProgress({ url: 'http://h/a.bin', loaded: 5, total: 10 });
    bar.onProgress({ url: 'http://h/a.bin', loaded: 10, total: 10 });
    bar.stop();
    expect(out.text()).toBe('');
  });

  it('formats sizes in decimal units', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1536)).toBe('1.54 KB');
    expect(formatBytes(4_194_304)).toBe('4.19 MB');
    expect(formatBytes(123_456_789)).toBe('123.5 MB');
  });
});
