import { describe, expect, it } from 'vitest';

import { efficiencyCeiling } from '../../../bench/internal/transcode.ts';

describe('efficiencyCeiling', () => {
  // The clip's transcode runs at 150 fps; decoding it alone costs 3 core-ms a frame.
  const clip = { cores: 2, clipDecodeCoreMs: 3 };
  const limit = (modelOnlyFps: number): number => 1 / (1 / modelOnlyFps + 1 / 150);

  it('counts the clip decode and x264 on the picture, not the busier output decode', () => {
    // x264 on the picture = 23 - 4 = 19 core-ms, plus the clip's 3 ms decode: 22 core-ms a frame. A
    // 400 fps model on both cores costs 2 x 1000 / 400 = 5 core-ms, so the cores give 2000 / 27 fps.
    const c = efficiencyCeiling({ ...clip, modelOnlyFps: 400, limitFps: limit(400), modelCores: 2, ownOutputTranscodeCoreMs: 23, ownOutputDecodeCoreMs: 4 });
    expect(c.pictureCoreMs).toBeCloseTo(22, 12);
    expect(c.pictureLimitFps).toBeCloseTo(2000 / 27, 9);
    expect(c.ceiling).toBeCloseTo(2000 / 27 / limit(400), 12);
    expect(c.ceiling).toBeCloseTo(0.679, 3);
  });

  it('counts only the cores a model used alone, so overlap with ffmpeg stays within the bound', () => {
    // One wasm thread at 20 fps uses one core: 50 core-ms a frame. Beside 22 core-ms of ffmpeg on the other
    // core the pair can beat the back-to-back limit, and the ceiling says so (above 1).
    const c = efficiencyCeiling({ ...clip, modelOnlyFps: 20, limitFps: limit(20), modelCores: 1, ownOutputTranscodeCoreMs: 23, ownOutputDecodeCoreMs: 4 });
    expect(c.pictureLimitFps).toBeCloseTo(2000 / 72, 9);
    expect(c.ceiling).toBeGreaterThan(1);
    // More sessions than cores cannot use more than the cores.
    const capped = efficiencyCeiling({ ...clip, modelOnlyFps: 400, limitFps: limit(400), modelCores: 8, ownOutputTranscodeCoreMs: 23, ownOutputDecodeCoreMs: 4 });
    expect(capped.pictureLimitFps).toBeCloseTo(2000 / 27, 9);
  });

  it('falls as x264 finds the picture harder', () => {
    const at = (own: number): number => efficiencyCeiling({ ...clip, modelOnlyFps: 400, limitFps: limit(400), modelCores: 2, ownOutputTranscodeCoreMs: own, ownOutputDecodeCoreMs: 3 }).ceiling;
    expect(at(12)).toBeGreaterThan(at(18));
    expect(at(18)).toBeGreaterThan(at(24));
  });
});
