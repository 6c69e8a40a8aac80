/**
 * The ffmpeg every test uses: FFMPEG_PATH / FFPROBE_PATH when set (so `.ci/run` can run the ffmpeg tests
 * once with the npm build and once with the system's), else what `locateFfmpeg` finds (PATH, then npm).
 */
import { locateFfmpeg, type FfmpegTools } from '../../pipelines/ffmpeg/index.ts';

/** The ffmpeg and ffprobe of this test run; memoized by `locateFfmpeg`. */
export function testFfmpeg(): Promise<FfmpegTools> {
  return locateFfmpeg({ ffmpegPath: process.env.FFMPEG_PATH || undefined, ffprobePath: process.env.FFPROBE_PATH || undefined });
}

/** The environment a spawned CLI needs to use the same binaries as the test that spawns it. */
export function ffmpegEnv(tools: FfmpegTools): Record<string, string> {
  return { FFMPEG_PATH: tools.ffmpeg.path, ...(tools.ffprobe ? { FFPROBE_PATH: tools.ffprobe.path } : {}) };
}
