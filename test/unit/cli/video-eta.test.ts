/**
 * The `video` progress bar's ETA (issue 16): nothing ("estimating") until frames flow, then the time left
 * from the measured frame throughput only: start-up time never counts, and a change of pace shows within
 * the window.
 */
import { describe, expect, it } from 'vitest';
import { FrameEta, formatEta } from '../../../cli/video-eta.ts';

describe('FrameEta', () => {
  it('says "estimating" before any frame, and for the first frames however late they come', () => {
    const eta = new FrameEta();
    expect(formatEta(eta.secondsLeft(60))).toBe('estimating');
    // 8 s of start-up, then the first frame: still no estimate, and in particular not 0 s.
    eta.observe(1, 8000);
    expect(eta.secondsLeft(60)).toBeUndefined();
    eta.observe(2, 8100);
    eta.observe(3, 8200);
    expect(eta.fps()).toBeUndefined(); // 2 frames after the first, 200 ms: too little seen
    expect(formatEta(eta.secondsLeft(60))).toBe('estimating');
  });

  it('estimates from the throughput once frames flow, leaving the start-up out', () => {
    const eta = new FrameEta();
    // First frame after 8 s of start-up, then 10 frames per second.
    for (let f = 1; f <= 11; f++) eta.observe(f, 8000 + (f - 1) * 100);
    expect(eta.fps()).toBeCloseTo(10, 6);
    // 49 frames left at 10 fps; counting the start-up would have said ~40 s (11 frames in 9 s).
    expect(eta.secondsLeft(60)).toBeCloseTo(4.9, 6);
    expect(formatEta(eta.secondsLeft(60))).toBe('5s');
  });

  it('follows a change of pace over the recent window', () => {
    const eta = new FrameEta({ windowMs: 2000 });
    let t = 0;
    let f = 0;
    for (; f < 50; f++, t += 100) eta.observe(f + 1, t); // 10 fps for 5 s
    for (; f < 80; f++, t += 250) eta.observe(f + 1, t); // then 4 fps for 7.5 s
    expect(eta.fps()).toBeGreaterThan(3.9);
    expect(eta.fps()).toBeLessThan(4.1);
    expect(eta.secondsLeft(100)).toBeCloseTo(20 / eta.fps()!, 6);
  });

  it('gives no time left when the total is unknown, and 0 once the total is reached', () => {
    const eta = new FrameEta();
    for (let f = 1; f <= 20; f++) eta.observe(f, f * 50);
    expect(eta.secondsLeft(undefined)).toBeUndefined();
    expect(eta.secondsLeft(20)).toBe(0);
    expect(eta.secondsLeft(10)).toBe(0);
  });

  it('ignores repeated counts (a progress call without a new frame)', () => {
    const eta = new FrameEta();
    for (let f = 1; f <= 11; f++) eta.observe(f, f * 100);
    eta.observe(11, 5000);
    expect(eta.fps()).toBeCloseTo(10, 6);
  });
});

describe('formatEta', () => {
  it('writes seconds, minutes and hours', () => {
    expect(formatEta(0)).toBe('0s');
    expect(formatEta(59.4)).toBe('59s');
    expect(formatEta(65)).toBe('1m05s');
    expect(formatEta(3720)).toBe('1h02m');
    expect(formatEta(Number.POSITIVE_INFINITY)).toBe('estimating');
  });
});
