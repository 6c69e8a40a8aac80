/**
 * The last frame of a timestamped MP4 keeps its duration (issue 16, item 5). ffmpeg writes the last frame of
 * frames it is handed with timestamps but no durations without a duration (and ffmpegs before 5.1 do so even
 * over a decoded input), so the video came out one frame short of its input. The encoder mends the MP4's
 * sample table before the rename; these read the result back with ffprobe, whichever ffmpeg wrote it.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { encodeVideo, runFfmpeg, type FfmpegTools } from '../../pipelines/ffmpeg/index.ts';
import { mendLastFrameDuration } from '../../pipelines/ffmpeg/mp4-last-duration.ts';

let dir: string;
let tools: FfmpegTools;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-last-duration-'));
  tools = await testFfmpeg();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Irregular timestamps: a long first frame, then uneven gaps. */
const PTS = [0, 0.18, 0.2, 0.25, 0.3, 0.4, 0.6];

async function encode(name: string, options: { lastFrameEnds?: number; faststart?: boolean }): Promise<string> {
  const out = join(dir, name);
  const enc = await encodeVideo({ out, width: 32, height: 32, fps: 30, inputPixFmt: 'rgba', frameTimestamps: true, preset: 'ultrafast', tools, ...options });
  for (const [i, pts] of PTS.entries()) await enc.write(new Uint8Array(32 * 32 * 4).fill(30 * i), pts);
  await enc.finish();
  return out;
}

/** Every video packet's pts and duration (seconds; NaN without one) and the stream's duration, by ffprobe. */
async function packets(path: string): Promise<{ pts: number[]; durations: number[]; duration: number }> {
  if (!tools.ffprobe) throw new Error('these checks need ffprobe beside ffmpeg');
  const { stdout } = await runFfmpeg({
    binary: tools.ffprobe.path,
    kind: 'ffprobe',
    args: ['-select_streams', 'v:0', '-show_entries', 'packet=pts_time,duration_time:stream=duration', '-print_format', 'json', path],
    timeoutMs: 60_000,
  });
  const json = JSON.parse(stdout) as { packets: Array<{ pts_time: string; duration_time?: string }>; streams: Array<{ duration: string }> };
  return {
    pts: json.packets.map((p) => Number(p.pts_time)),
    durations: json.packets.map((p) => Number(p.duration_time ?? Number.NaN)),
    duration: Number(json.streams[0].duration),
  };
}

describe('timestamped MP4s keep their last frame', () => {
  for (const faststart of [true, false]) {
    it(`the last frame lasts until lastFrameEnds (index at the ${faststart ? 'front' : 'end'})`, async () => {
      const out = await encode(`ends-${faststart}.mp4`, { lastFrameEnds: 0.7, faststart });
      const p = await packets(out);
      expect(p.pts.length).toBe(PTS.length);
      p.pts.forEach((t, i) => expect(Math.abs(t - PTS[i])).toBeLessThanOrEqual(0.001));
      expect(Math.abs(p.durations.at(-1)! - 0.1)).toBeLessThanOrEqual(0.001);
      expect(Math.abs(p.duration - 0.7)).toBeLessThanOrEqual(0.001);
      // Still a file every frame of which decodes.
      await runFfmpeg({ binary: tools.ffmpeg.path, args: ['-i', out, '-f', 'null', '-'], timeoutMs: 60_000 });
    });
  }

  it('without lastFrameEnds the last frame lasts as long as the one before it', async () => {
    const p = await packets(await encode('default.mp4', {}));
    expect(p.pts.length).toBe(PTS.length);
    expect(Math.abs(p.durations.at(-1)! - 0.2)).toBeLessThanOrEqual(0.001);
    expect(Math.abs(p.duration - 0.8)).toBeLessThanOrEqual(0.001);
  });

  it('a file whose last frame has a duration, or that is no MP4, is left byte for byte', async () => {
    const mended = await encode('once.mp4', { lastFrameEnds: 0.7 });
    const before = readFileSync(mended);
    expect(await mendLastFrameDuration(mended, 0.5)).toBe(false);
    expect(readFileSync(mended).equals(before)).toBe(true);
    const text = join(dir, 'not-a-video.mp4');
    await writeFile(text, 'moov is a word in this file, not a box\n');
    expect(await mendLastFrameDuration(text, 0.5)).toBe(false);
    expect(readFileSync(text, 'utf8')).toBe('moov is a word in this file, not a box\n');
  });
});
