/**
 * The ffmpeg every command uses. Entry points are the only code that reads the environment: FFMPEG_PATH and
 * FFPROBE_PATH name the binaries; without them `locateFfmpeg` looks on PATH, then at the npm packages'.
 */
import { locateFfmpeg, type FfmpegTools } from '../pipelines/index.ts';

/** ffmpeg and ffprobe as FFMPEG_PATH / FFPROBE_PATH (when set) and `locateFfmpeg` choose them; memoized. */
export function locateCliFfmpeg(): Promise<FfmpegTools> {
  return locateFfmpeg({ ffmpegPath: process.env.FFMPEG_PATH || undefined, ffprobePath: process.env.FFPROBE_PATH || undefined });
}
