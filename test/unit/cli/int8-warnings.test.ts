/**
 * `--int8` says when its quantized form is not worth running (cli/int8.ts): slower than fp32 (MobileNetV2's
 * depthwise convs measured 0.76x in the bench), or answers that differ from fp32's.
 */
import { describe, expect, it } from 'vitest';
import { INT8_WARN, int8Warnings } from '../../../cli/int8.ts';

describe('int8Warnings', () => {
  it('says nothing for a faster int8 form that agrees with fp32, or without a report', () => {
    expect(int8Warnings({ speedup: 2.24, top1Agreement: 1, camR: 0.998 })).toEqual([]);
    expect(int8Warnings(undefined)).toEqual([]);
    expect(int8Warnings({})).toEqual([]);
  });

  it('warns when int8 ran slower than fp32, with the measured ratio', () => {
    const [w] = int8Warnings({ speedup: 0.76, top1Agreement: 1, camR: 0.99 });
    expect(w).toMatch(/int8 ran slower than fp32 for this model \(0\.76x/);
    expect(w).toMatch(/drop --int8/);
  });

  it('warns when the answers differ, by top-1 agreement or by the maps', () => {
    expect(int8Warnings({ speedup: 1.5, top1Agreement: 0.8, camR: 0.99 })[0]).toMatch(/top-1 agreement 80\.0%, CAM r 0\.990/);
    expect(int8Warnings({ speedup: 1.5, top1Agreement: 1, camR: 0.69 })[0]).toMatch(/CAM r 0\.690.*--int8-method/);
    // Exactly at the thresholds is fine.
    expect(int8Warnings({ speedup: INT8_WARN.speedup, top1Agreement: INT8_WARN.top1Agreement, camR: INT8_WARN.camR })).toEqual([]);
    expect(int8Warnings({ speedup: 0.5, top1Agreement: 0.5, camR: 0.5 })).toHaveLength(2);
  });
});
