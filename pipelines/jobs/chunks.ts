/**
 * Long videos split across workers. `planVideoChunks` cuts a video at keyframes (ffprobe lists them) into
 * segments of at least `chunkSeconds`; `annotateChunk` runs the offline pipeline over one segment, starting
 * `warmupSeconds` earlier so the smoothing state (EMA, display scale, hysteresis, cut detector) is primed
 * as in a run from the start; the warm-up frames go through inference and smoothing only and are not
 * emitted. `joinChunks` concatenates the segments' MP4s without re-encoding (they share the encoder's
 * settings, and each starts on a keyframe) and their JSONL, numbering frames again from 0, then checks the
 * frame counts. Segment boundaries and warm-up starts sit half a frame before the frame they name, so a
 * timestamp's rounding never moves a frame from one segment to the next.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { basename } from 'node:path';
import { filter, merge, Observable, Subject, tap } from 'rxjs';
import { ConfigError, InputError, normalizationRecord, type CamModel } from '../../models/index.ts';
import { blocksJsThread, downstreamGate, frameLine, layoutFor } from '../compose/video.ts';
import { decodeFrames$, FfmpegError, probeMedia, runFfmpeg, type FfmpegTools, type MediaInfo } from '../ffmpeg/index.ts';
import { writeJsonLines } from '../sinks/jsonl.ts';
import { writeOverlayVideo } from '../sinks/mp4.ts';
import type { RenderedFrame, VideoFrame } from '../stages/frame.ts';
import { inferCams } from '../stages/infer.ts';
import { localizeCams } from '../stages/localize-cams.ts';
import { queueOffline } from '../stages/queue-offline.ts';
import { renderOverlays } from '../stages/render.ts';
import { smoothCams } from '../stages/smooth.ts';
import type { VideoJobOptions } from './queue-config.ts';
import { resolveVideoConfig, settleVideoConfig } from './video-config.ts';

/** One segment: from the keyframe at `startSeconds` up to the next segment's start (`null`: the end). */
export interface ChunkRange {
  startSeconds: number;
  endSeconds: number | null;
}

/** A segment as a job carries it (untrusted on the worker: `checkChunkSpec`). */
export interface ChunkSpec extends ChunkRange {
  index: number;
  count: number;
  /** Seconds decoded before `startSeconds` to prime the smoothing; not emitted. */
  warmupSeconds: number;
}

/** Warm-up before each segment by default: the EMA's past weight 0.7 leaves 0.7^30 < 1e-4 after 30 frames at 10 fps. */
export const DEFAULT_WARMUP_SECONDS = 3;

/** Keyframe times of the first video stream, seconds from the container's start (as ffmpeg's `-ss` counts). */
export async function keyframeTimes(input: string, tools: FfmpegTools, probe?: MediaInfo): Promise<number[]> {
  if (!tools.ffprobe) throw new ConfigError('splitting a video into chunks needs ffprobe (keyframe times); none was found');
  const info = probe ?? (await probeMedia(input, { tools, schemes: ['file'], confine: true }));
  // -skip_frame nokey decodes keyframes only: cheap even for hours of video.
  // ffprobe -select_streams v:0 -skip_frame nokey -show_entries frame=pts_time -of csv=p=0 -protocol_whitelist file IN
  const r = await runFfmpeg({
    binary: tools.ffprobe.path,
    kind: 'ffprobe',
    file: input,
    args: ['-select_streams', 'v:0', '-skip_frame', 'nokey', '-show_entries', 'frame=pts_time', '-of', 'csv=p=0', '-protocol_whitelist', 'file', input],
  });
  const start = info.startTime ?? 0;
  const times = r.stdout
    .split('\n')
    .map((l) => Number.parseFloat(l))
    .filter((t) => Number.isFinite(t))
    .map((t) => t - start);
  return [...new Set(times)].sort((a, b) => a - b);
}

/**
 * Segment boundaries from keyframe times: each segment starts on a keyframe and lasts at least
 * `chunkSeconds` (up to the next keyframe after that). The first segment starts at 0.
 */
export function planChunks(keyframes: readonly number[], chunkSeconds: number): ChunkRange[] {
  if (!Number.isFinite(chunkSeconds) || chunkSeconds <= 0) throw new ConfigError(`chunk seconds must be a number > 0, got ${String(chunkSeconds)}`);
  const starts = [0];
  for (const k of keyframes) if (k >= starts[starts.length - 1] + chunkSeconds - 1e-6) starts.push(k);
  return starts.map((startSeconds, i) => ({ startSeconds, endSeconds: i + 1 < starts.length ? starts[i + 1] : null }));
}

/** The segments of `input` for `chunkSeconds` (one segment when the video is short or has few keyframes). */
export async function planVideoChunks(input: string, chunkSeconds: number, tools: FfmpegTools): Promise<ChunkRange[]> {
  const probe = await probeMedia(input, { tools, schemes: ['file'], confine: true });
  return planChunks(await keyframeTimes(input, tools, probe), chunkSeconds);
}

/** Checks a segment taken from job data; InputError names the field. */
export function checkChunkSpec(value: unknown): ChunkSpec {
  const c = value as Partial<ChunkSpec> | null;
  const num = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (c === null || typeof c !== 'object') throw new InputError(`job chunk must be an object, got ${JSON.stringify(value)}`);
  if (!Number.isInteger(c.count) || (c.count as number) < 1 || (c.count as number) > 100_000) throw new InputError(`job chunk count must be a whole number in [1, 100000], got ${JSON.stringify(c.count)}`);
  if (!Number.isInteger(c.index) || (c.index as number) < 0 || (c.index as number) >= (c.count as number)) throw new InputError(`job chunk index must be in [0, count), got ${JSON.stringify(c.index)}`);
  if (!num(c.startSeconds)) throw new InputError(`job chunk startSeconds must be a number >= 0, got ${JSON.stringify(c.startSeconds)}`);
  if (c.endSeconds !== null && (!num(c.endSeconds) || (c.endSeconds as number) <= (c.startSeconds as number))) {
    throw new InputError(`job chunk endSeconds must be null or a number > startSeconds, got ${JSON.stringify(c.endSeconds)}`);
  }
  if (!num(c.warmupSeconds) || (c.warmupSeconds as number) > 3600) throw new InputError(`job chunk warmupSeconds must be a number in [0, 3600], got ${JSON.stringify(c.warmupSeconds)}`);
  return { index: c.index as number, count: c.count as number, startSeconds: c.startSeconds as number, endSeconds: c.endSeconds as number | null, warmupSeconds: c.warmupSeconds as number };
}

/** File names of segment `index` in a split's folder. */
export function chunkFiles(index: number): { mp4: string; jsonl: string } {
  const stem = `chunk-${String(index).padStart(5, '0')}`;
  return { mp4: `${stem}.cam.mp4`, jsonl: `${stem}.frames.jsonl` };
}

export interface ChunkRunOptions {
  out: string;
  json: string;
  tools: FfmpegTools;
  video: VideoJobOptions;
  signal?: AbortSignal;
  /** After every emitted frame: frames so far and the segment's expected frames. */
  onProgress?: (done: number, total: number | undefined) => void;
}

/**
 * Runs the offline pipeline over one segment of `input` into `out` (H.264, no audio: the join adds it) and
 * `json`. Resolves with the frames emitted; rejects with FfmpegError, ConfigError, or an Error when aborted.
 */
export async function annotateChunk(model: CamModel, input: string, spec: ChunkSpec, options: ChunkRunOptions): Promise<{ frames: number }> {
  const o = options.video;
  if (o.every !== undefined && o.every !== 1) throw new ConfigError('--every cannot be combined with chunks (which frames are inferred would depend on where a segment starts)');
  if (o.maxFrames !== undefined) throw new ConfigError('--max-frames cannot be combined with chunks');
  const { tools } = options;
  const probe = await probeMedia(input, { tools, schemes: ['file'], confine: true });
  const resolved = resolveVideoConfig(
    input,
    {
      out: options.out,
      json: options.json,
      manifest: false,
      tools,
      decode: { schemes: ['file'] },
      infer: { topK: o.top, batchFrames: o.batch },
      smooth: o.smooth === undefined ? undefined : { pastWeight: o.smooth },
      localize: { boxRule: o.boxRule, threshold: o.threshold },
      overlay: { colormap: o.colormap, alpha: o.alpha },
      encode: { preset: o.preset, crf: o.crf, audio: false },
    },
    model,
  );
  const { config } = await settleVideoConfig(model, resolved);
  const half = 0.5 / probe.fps;
  const from = spec.startSeconds - half;
  const warmFrom = Math.max(0, spec.startSeconds - spec.warmupSeconds - half);
  const until = spec.endSeconds === null ? Number.POSITIVE_INFINITY : spec.endSeconds - half;
  const expected = spec.endSeconds === null ? (probe.duration === undefined ? undefined : Math.round((probe.duration - spec.startSeconds) * probe.fps)) : Math.round((spec.endSeconds - spec.startSeconds) * probe.fps);
  const [height, width] = model.info.preprocess.inputSize;
  const { info } = model;
  const layout = layoutFor(model, probe, config.overlay);
  const normalization = normalizationRecord(info.preprocess);
  const gate = blocksJsThread(model) ? downstreamGate() : undefined;
  // Frames that leave the pipeline without reaching its end (warm-up, past the segment) give their credit back here.
  const dropped = new Subject<number>();
  // Encoder teardowns (ffmpeg stopped, temporary file deleted): a failed run reports only after them.
  const aborts: Array<Promise<void>> = [];
  let emitted = 0;
  const frames$ = queueOffline(
    (credits$) =>
      new Observable<VideoFrame>((subscriber) => {
        let index = 0;
        return decodeFrames$(input, {
          probe,
          width,
          height,
          pixFmt: 'rgb24',
          fit: info.preprocess.resize === 'letterbox' ? 'pad' : 'stretch',
          scaleFlags: 'area',
          threads: config.decode.threads,
          strict: true,
          tools,
          schemes: ['file'],
          confine: true,
          startSeconds: warmFrom,
          durationSeconds: until === Number.POSITIVE_INFINITY ? undefined : until - warmFrom,
          credits$: merge(credits$, dropped),
        }).subscribe({
          next: (f) => subscriber.next({ index: index++, pts: f.pts, width: probe.displayWidth, height: probe.displayHeight, pixels: { data: f.data, width: f.width, height: f.height }, ms: {} }),
          error: (err: unknown) => subscriber.error(err),
          complete: () => subscriber.complete(),
        });
      }),
    (frames) =>
      frames.pipe(
        filter((f) => f.pts < until || (dropped.next(1), false)),
        inferCams(model, { topK: config.infer.topK, batchFrames: config.infer.batchFrames, everyFrames: 1, beforeInfer: gate?.whenIdle }),
        tap(() => gate?.enter()),
        smoothCams(config.smooth),
        filter((f) => f.pts >= from || (gate?.leave(), dropped.next(1), false)),
        localizeCams(info.preprocess, config.localize),
        renderOverlays(layout, info.labels, config.overlay),
        writeOverlayVideo({
          input,
          out: config.out,
          layout,
          rate: probe.frameRate,
          audio: false,
          // The compositor reads the original from the segment's first frame (an accurate seek).
          inputOptions: from > 0 ? ['-ss', String(from)] : [],
          preset: config.encode.preset,
          crf: config.encode.crf,
          threads: config.encode.threads,
          tools,
          schemes: ['file'],
          onAbort: (done) => aborts.push(done),
        }),
        writeJsonLines(config.json!, (f: RenderedFrame) => frameLine(f, info.labels, normalization)),
        tap(() => gate?.leave()),
      ),
    config.queue,
  );
  await new Promise<void>((resolveRun, reject) => {
    const fail = (err: unknown): void => void Promise.allSettled(aborts).then(() => reject(err));
    const onAbort = (): void => {
      sub.unsubscribe();
      fail(new Error(`chunk ${spec.index} of ${input} stopped`));
    };
    const sub = frames$.subscribe({
      next: () => options.onProgress?.(++emitted, expected),
      error: (err: unknown) => {
        options.signal?.removeEventListener('abort', onAbort);
        fail(err);
      },
      complete: () => {
        options.signal?.removeEventListener('abort', onAbort);
        resolveRun();
      },
    });
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
  if (emitted === 0) throw new InputError(`${input}: chunk ${spec.index} (from ${spec.startSeconds} s) holds no frame`);
  return { frames: emitted };
}

/** Audio codecs an MP4 takes as they are; others become AAC. */
const MP4_AUDIO = new Set(['aac', 'mp3', 'ac3', 'eac3', 'opus', 'alac', 'flac']);

export interface JoinOptions {
  /** Folder holding the segments (`chunkFiles`). */
  dir: string;
  count: number;
  /** The original: its audio is muxed in, its frame count checked. */
  input: string;
  out: string;
  json: string;
  audio: boolean;
  tools: FfmpegTools;
}

/** Video packets of a file (one per frame for H.264 in MP4), read without decoding. */
export async function countVideoPackets(file: string, tools: FfmpegTools): Promise<number> {
  if (!tools.ffprobe) throw new ConfigError('checking a joined video needs ffprobe; none was found');
  // ffprobe -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 FILE
  const r = await runFfmpeg({
    binary: tools.ffprobe.path,
    kind: 'ffprobe',
    file,
    args: ['-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', file],
  });
  return Number.parseInt(r.stdout.trim(), 10);
}

/**
 * Joins the segments in `dir` into `out` (stream copy, audio from the input) and `json` (frames numbered
 * from 0). Resolves with the frame count; FfmpegError when ffmpeg fails, Error when a count disagrees
 * (segments against the joined file, the JSONL, or the count the input's container announces).
 */
export async function joinChunks(options: JoinOptions): Promise<{ frames: number }> {
  const { dir, count, tools } = options;
  const names = Array.from({ length: count }, (_, i) => chunkFiles(i));
  // Plain relative names: the concat demuxer's safe mode accepts them, and nothing else.
  const list = `${dir}/segments.txt`;
  await writeFile(list, names.map((n) => `file '${n.mp4}'\n`).join(''));
  const probe = await probeMedia(options.input, { tools, schemes: ['file'], confine: true });
  const withAudio = options.audio && probe.hasAudio;
  const audioArgs = withAudio ? ['-protocol_whitelist', 'file', '-i', options.input, '-map', '1:a:0', '-c:a', MP4_AUDIO.has(probe.audioCodec ?? '') ? 'copy' : 'aac'] : [];
  // ffmpeg -y -f concat -protocol_whitelist file -i segments.txt [-protocol_whitelist file -i IN -map 1:a:0 -c:a copy]
  //        -map 0:v:0 -c:v copy -movflags +faststart -f mp4 OUT
  await runFfmpeg({
    binary: tools.ffmpeg.path,
    kind: 'ffmpeg',
    file: options.input,
    args: ['-y', '-f', 'concat', '-protocol_whitelist', 'file', '-i', list, ...audioArgs, '-map', '0:v:0', '-c:v', 'copy', '-movflags', '+faststart', '-f', 'mp4', options.out],
  });
  const lines = await joinJsonLines(names.map((n) => `${dir}/${n.jsonl}`), options.json);
  const packets = await countVideoPackets(options.out, tools);
  let segmentFrames = 0;
  for (const n of names) segmentFrames += await countVideoPackets(`${dir}/${n.mp4}`, tools);
  const announced = probe.frameCount;
  if (packets !== segmentFrames || lines !== segmentFrames || (announced !== undefined && announced !== segmentFrames)) {
    throw new FfmpegError(
      `${options.input}: joining ${count} chunks gave ${packets} frames (segments ${segmentFrames}, JSONL ${lines}${announced === undefined ? '' : `, input ${announced}`})`,
      { file: basename(options.input) },
    );
  }
  return { frames: packets };
}

/** Concatenates JSONL files, numbering the lines' `index` from 0. Resolves with the line count. */
async function joinJsonLines(files: readonly string[], out: string): Promise<number> {
  const sink = createWriteStream(out);
  let index = 0;
  try {
    for (const file of files) {
      for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
        if (line === '') continue;
        const record = JSON.parse(line) as { index: number };
        record.index = index++;
        if (!sink.write(`${JSON.stringify(record)}\n`)) await new Promise<void>((r) => sink.once('drain', () => r()));
      }
    }
  } finally {
    await new Promise<void>((resolveEnd, reject) => {
      sink.once('error', reject);
      sink.end(() => resolveEnd());
    });
  }
  return index;
}
