/**
 * Variable-frame-rate input (issue 16, item 5): a phone clip whose first frame lasts 0.18 s came out with
 * extra frames, duplicated onto a constant grid. The output must keep the input's frames and timestamps:
 * frame count, every frame's pts (within 1 ms) and the video's duration equal, one JSON line per frame.
 * Clips are made by ffmpeg here; input and output are read back with ffprobe, frame by frame.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { load, type CamModel } from '../../models/index.ts';
import { activeFfmpegPids, annotateVideo, runFfmpeg, type FfmpegTools, type FrameLine } from '../../pipelines/index.ts';
import { makeClip, readJsonLines, waitGone, writeRandomOnnx } from './video-helpers.ts';

let dir: string;
let tools: FfmpegTools;
let onnx: CamModel;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camstream-vfr-'));
  tools = await testFfmpeg();
  onnx = await load(await writeRandomOnnx(dir), { threads: 1 });
});

afterAll(async () => {
  await onnx?.dispose();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const pid of activeFfmpegPids()) expect(await waitGone(pid, 5000)).toBe(true);
});

/** Per frame (presentation order): pts and duration in seconds, read with ffprobe (or ffmpeg's showinfo without one). */
async function frameTimes(path: string): Promise<{ pts: number[]; duration: number }> {
  if (tools.ffprobe) {
    const { stdout } = await runFfmpeg({
      binary: tools.ffprobe.path,
      kind: 'ffprobe',
      args: ['-select_streams', 'v:0', '-show_entries', 'frame=pts_time:stream=duration', '-print_format', 'json', path],
      timeoutMs: 120_000,
    });
    const json = JSON.parse(stdout) as { frames: Array<{ pts_time: string }>; streams: Array<{ duration?: string }> };
    return { pts: json.frames.map((f) => Number(f.pts_time)), duration: Number(json.streams[0].duration) };
  }
  throw new Error('these checks need ffprobe beside ffmpeg');
}

/**
 * A 160x120 H.264 MP4 whose frame n is shown at `ptsExpr` (an ffmpeg expression of N, seconds), its
 * timestamps kept exactly (90 kHz, no constant-rate retiming).
 */
function vfrClip(name: string, frames: number, ptsExpr: string): Promise<string> {
  return makeClip(tools, dir, name, [
    '-f', 'lavfi', '-i', `testsrc2=size=160x120:rate=30,setpts='(${ptsExpr})/TB'`,
    '-frames:v', String(frames), ...(tools.passthroughPerOutput ? [] : tools.passthroughArgs),
    ...(tools.passthroughPerOutput ? tools.passthroughArgs : []), '-enc_time_base:v', '1/90000',
    // No B-frames and no edit list: every frame is in the clip as written, whichever ffmpeg makes it.
    '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-pix_fmt', 'yuv420p', '-use_editlist', '0',
  ]);
}

const CLIPS: Array<[string, number, string]> = [
  // The phone clip of the report: a first frame of 0.18 s, then 30 fps; 41 frames.
  ['long-first-frame.mp4', 41, 'if(eq(N,0),0,0.18+(N-1)/30)'],
  // Irregular spacing: 1/30 s plus 0, 7 or 14 ms, so no two neighbours are the same distance apart.
  ['irregular.mp4', 40, 'N/30+mod(N,3)*0.007'],
  // 29.97 fps for a second, then 30 fps: NTSC material cut with a 30 fps recording.
  ['ntsc-then-30.mp4', 50, 'if(lt(N,30),N*1001/30000,30*1001/30000+(N-30)/30)'],
];

describe('annotateVideo keeps a variable-rate input frame-exact', () => {
  for (const [name, asked, expr] of CLIPS) {
    it(`${name}: same frame count, every pts within 1 ms, same duration, one JSON line per frame`, async () => {
      let frames = asked;
      const input = await vfrClip(name, frames, expr);
      const before = await frameTimes(input);
      // What the generator made (an ffmpeg may end such a clip a frame early); the output must match it.
      expect(before.pts.length).toBeGreaterThanOrEqual(frames - 1);
      frames = before.pts.length;
      const out = join(dir, `out-${name}`);
      const json = join(dir, `${name}.jsonl`);
      const report = await annotateVideo(onnx, input, { out, json, tools, manifest: false, encode: { preset: 'ultrafast' }, infer: { batchFrames: 4 } });
      expect(report.frames).toBe(frames);
      const after = await frameTimes(out);
      expect(after.pts.length).toBe(frames);
      after.pts.forEach((t, i) => expect(Math.abs(t - before.pts[i]), `frame ${i}: ${t} vs ${before.pts[i]}`).toBeLessThanOrEqual(0.001));
      expect(Math.abs(after.duration - before.duration)).toBeLessThanOrEqual(0.001);
      const lines = readJsonLines<FrameLine>(json);
      expect(lines.length).toBe(frames);
      lines.forEach((l, i) => expect(Math.abs(l.pts - before.pts[i])).toBeLessThanOrEqual(0.001));
    });
  }
});
