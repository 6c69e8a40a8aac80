/**
 * One queued job, run by a worker: the untrusted job data is checked (paths confined to the worker's
 * roots, the model from its allowed list, options picked field by field), the existing job
 * (`annotateVideo`, `annotateImages`) runs into a private staging folder, and its outputs are renamed
 * into place under names made of the job id and the input's hash. A re-run of the same job (at-least-once
 * delivery, a worker killed mid-job) first deletes what an earlier attempt left in staging, then replaces
 * the same final names, so two copies never exist.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { InputError, type CamModel } from '../../models/index.ts';
import { probeMedia, type FfmpegTools } from '../ffmpeg/index.ts';
import { writeJsonFile } from '../sinks/manifest.ts';
import { annotateChunk, checkChunkSpec, chunkFiles, joinChunks } from './chunks.ts';
import { annotateImages } from './image.ts';
import { annotateVideo, runManifest } from './video.ts';
import { confineJobPath } from './confine.ts';
import type { CamJobData, CamJobProgress, CamJobResult, ImageJobOptions, VideoJobOptions } from './queue-config.ts';

/** What a job run gets from the worker. */
export interface JobRunContext {
  jobId: string;
  /** Real paths of the worker's roots. */
  inputRoot: string;
  outRoot: string;
  tools: FfmpegTools;
  /** The model a job names (already checked against the allowed list). */
  model: CamModel;
  worker: string;
  /** Called at most once per tick (`progressMs`) and once at the end. */
  onProgress: (progress: CamJobProgress) => void;
  progressMs: number;
  signal?: AbortSignal;
  /** The id of the `join` job a `chunk` job belongs to (from BullMQ's flow, not from the job data). */
  parentId?: string;
}

/** Staging folder of a job under its output folder: hidden, one per job id. */
export function stagingDir(outDir: string, jobId: string): string {
  return join(outDir, `.camstream-job-${safeId(jobId)}`);
}

/** Folder where the segments of the split video joined by job `parentId` wait for the join: hidden. */
export function chunksDir(outDir: string, parentId: string): string {
  return join(outDir, `.camstream-chunks-${safeId(parentId)}`);
}

function safeId(jobId: string): string {
  return jobId.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** SHA-256 of a file's bytes, hex. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Checks the job data's shape; InputError names the field. Paths are checked later, against the roots. */
export function checkJobData(data: unknown): CamJobData {
  const d = data as Partial<CamJobData> | null;
  if (d === null || typeof d !== 'object') throw new InputError(`job data must be an object, got ${JSON.stringify(data)}`);
  if (d.kind !== 'video' && d.kind !== 'image' && d.kind !== 'chunk' && d.kind !== 'join') {
    throw new InputError(`job kind must be video, image, chunk or join, got ${JSON.stringify(d.kind)}`);
  }
  if (!Array.isArray(d.inputs) || d.inputs.length === 0 || d.inputs.some((i) => typeof i !== 'string')) {
    throw new InputError(`job inputs must be a non-empty list of paths, got ${JSON.stringify(d.inputs)}`);
  }
  if (d.kind !== 'image' && d.inputs.length !== 1) throw new InputError(`a ${d.kind} job takes one input, got ${d.inputs.length}`);
  if (d.kind === 'chunk') d.chunk = checkChunkSpec(d.chunk);
  if (d.kind === 'join' && (!Number.isInteger(d.chunks) || (d.chunks as number) < 1 || (d.chunks as number) > 100_000)) {
    throw new InputError(`join job chunks must be a whole number in [1, 100000], got ${JSON.stringify(d.chunks)}`);
  }
  if (typeof d.outDir !== 'string') throw new InputError(`job outDir must be a path, got ${JSON.stringify(d.outDir)}`);
  if (d.model !== undefined && typeof d.model !== 'string') throw new InputError(`job model must be a name, got ${JSON.stringify(d.model)}`);
  return d as CamJobData;
}

/** Runs a checked job to its final outputs. Rejects with the job's own errors (FfmpegError, ConfigError, InputError). */
export async function runCamJob(data: CamJobData, ctx: JobRunContext): Promise<CamJobResult> {
  const inputs = [];
  for (const input of data.inputs) inputs.push(await confineJobPath(ctx.inputRoot, input, 'file', 'input'));
  const outDir = await confineJobPath(ctx.outRoot, data.outDir, 'dir', 'output folder');
  // A segment's outputs are named by its index; hashing the whole input once per segment would be waste.
  const hashes = data.kind === 'chunk' ? [''] : await Promise.all(inputs.map(hashFile));
  const inputHash = hashes.length === 1 ? hashes[0] : createHash('sha256').update(hashes.join('\n')).digest('hex');
  const tag = `${safeId(ctx.jobId)}-${inputHash.slice(0, 12)}`;
  const staging = stagingDir(outDir, ctx.jobId);
  // Whatever an earlier attempt of this job left (a killed worker's temporary files) goes first.
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    const finished =
      data.kind === 'video'
        ? await runVideo(inputs[0], outDir, staging, tag, data.video ?? {}, ctx)
        : data.kind === 'chunk'
          ? await runChunk(inputs[0], outDir, staging, data, ctx)
          : data.kind === 'join'
            ? await runJoin(inputs[0], outDir, staging, tag, data, ctx)
            : await runImages(inputs, outDir, staging, tag, data.image ?? {}, ctx);
    return { ...finished, inputHash, worker: ctx.worker };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** A progress callback that forwards at most one update per `ms` (the last one always goes out at the end). */
function throttled(ctx: JobRunContext): { tick: (p: CamJobProgress) => void; flush: () => void } {
  let last = -Infinity;
  let pending: CamJobProgress | undefined;
  return {
    tick: (p) => {
      pending = p;
      const now = performance.now();
      if (now - last >= ctx.progressMs) {
        last = now;
        pending = undefined;
        ctx.onProgress(p);
      }
    },
    flush: () => {
      if (pending) ctx.onProgress(pending);
    },
  };
}

async function runVideo(input: string, outDir: string, staging: string, tag: string, o: VideoJobOptions, ctx: JobRunContext): Promise<Omit<CamJobResult, 'inputHash' | 'worker'>> {
  const stem = `${basename(input, extname(input))}.${tag}`;
  const wantJson = o.json !== false;
  const temp = { out: join(staging, `${stem}.cam.mp4`), json: wantJson ? join(staging, `${stem}.frames.jsonl`) : undefined };
  const final = { out: join(outDir, `${stem}.cam.mp4`), json: wantJson ? join(outDir, `${stem}.frames.jsonl`) : undefined };
  // A playlist or concat list under the root may name files outside it: refused here, before annotateVideo
  // opens it (ffmpeg's format whitelist, see ffmpeg/confine.ts).
  await probeMedia(input, { tools: ctx.tools, schemes: ['file'], confine: true });
  const progress = throttled(ctx);
  const report = await annotateVideo(
    ctx.model,
    input,
    {
      out: temp.out,
      json: temp.json,
      manifest: false,
      tools: ctx.tools,
      decode: { maxFrames: o.maxFrames, schemes: ['file'] },
      infer: { topK: o.top, everyFrames: o.every, batchFrames: o.batch },
      smooth: o.smooth === undefined ? undefined : { pastWeight: o.smooth },
      localize: { boxRule: o.boxRule, threshold: o.threshold },
      overlay: { colormap: o.colormap, alpha: o.alpha },
      encode: { preset: o.preset, crf: o.crf, audio: o.audio },
    },
    { signal: ctx.signal, onProgress: (p) => progress.tick({ done: p.frames, total: p.totalFrames ?? null }) },
  );
  progress.flush();
  // Renames replace the files of an earlier run of this job atomically: readers see the old or the new.
  if (temp.json && final.json) await rename(temp.json, final.json);
  await rename(temp.out, final.out);
  const manifest = `${final.out}.manifest.json`;
  await writeJsonFile(manifest, { ...runManifest(ctx.model, ctx.tools, { ...report, out: final.out, json: final.json }), job: { id: ctx.jobId, worker: ctx.worker } });
  return { outputs: [final.out, ...(final.json ? [final.json] : []), manifest], frames: report.frames };
}

async function runImages(inputs: string[], outDir: string, staging: string, tag: string, o: ImageJobOptions, ctx: JobRunContext): Promise<Omit<CamJobResult, 'inputHash' | 'worker'>> {
  const folder = join(staging, `images.${tag}`);
  await mkdir(folder);
  const progress = throttled(ctx);
  let done = 0;
  const records = await annotateImages(inputs, ctx.model, { topK: o.top, boxRule: o.boxRule, threshold: o.threshold, outDir: o.overlays === false ? undefined : folder }, () =>
    progress.tick({ done: ++done, total: inputs.length }),
  );
  progress.flush();
  const lines = records.map((r) => JSON.stringify({ ...r, overlay: r.overlay === undefined ? undefined : basename(r.overlay) })).join('\n');
  await writeFile(join(folder, 'records.jsonl'), `${lines}\n`);
  const final = join(outDir, `images.${tag}`);
  // A folder cannot be renamed onto a non-empty one: an earlier run's folder goes just before.
  await rm(final, { recursive: true, force: true });
  await rename(folder, final);
  return { outputs: [final], images: records.length };
}

async function runChunk(input: string, outDir: string, staging: string, data: CamJobData, ctx: JobRunContext): Promise<Omit<CamJobResult, 'inputHash' | 'worker'>> {
  if (ctx.parentId === undefined) throw new InputError('a chunk job must be the child of a join job (submit with --chunk-seconds)');
  const spec = data.chunk!;
  const dir = chunksDir(outDir, ctx.parentId);
  await mkdir(dir, { recursive: true });
  const names = chunkFiles(spec.index);
  const temp = { mp4: join(staging, names.mp4), jsonl: join(staging, names.jsonl) };
  const progress = throttled(ctx);
  const { frames } = await annotateChunk(ctx.model, input, spec, {
    out: temp.mp4,
    json: temp.jsonl,
    tools: ctx.tools,
    video: data.video ?? {},
    signal: ctx.signal,
    onProgress: (done, total) => progress.tick({ done, total: total ?? null }),
  });
  progress.flush();
  // A re-run of this segment replaces its files by rename: the join never sees half a segment.
  await rename(temp.jsonl, join(dir, names.jsonl));
  await rename(temp.mp4, join(dir, names.mp4));
  return { outputs: [join(dir, names.mp4), join(dir, names.jsonl)], frames };
}

async function runJoin(input: string, outDir: string, staging: string, tag: string, data: CamJobData, ctx: JobRunContext): Promise<Omit<CamJobResult, 'inputHash' | 'worker'>> {
  const stem = `${basename(input, extname(input))}.${tag}`;
  const wantJson = data.video?.json !== false;
  const final = { out: join(outDir, `${stem}.cam.mp4`), json: join(outDir, `${stem}.frames.jsonl`) };
  const manifest = `${final.out}.manifest.json`;
  const outputs = [final.out, ...(wantJson ? [final.json] : []), manifest];
  const dir = chunksDir(outDir, ctx.jobId);
  // An earlier attempt got as far as removing the segments: its outputs are complete.
  if (!existsSync(dir) && outputs.every((f) => existsSync(f))) return { outputs };
  const temp = { out: join(staging, `${stem}.cam.mp4`), json: join(staging, `${stem}.frames.jsonl`) };
  const { frames } = await joinChunks({ dir, count: data.chunks!, input, out: temp.out, json: temp.json, audio: data.video?.audio !== false, tools: ctx.tools });
  ctx.onProgress({ done: frames, total: frames });
  if (wantJson) await rename(temp.json, final.json);
  await rename(temp.out, final.out);
  await writeJsonFile(manifest, {
    input,
    outputs: { video: final.out, json: wantJson ? final.json : null },
    frames,
    chunks: data.chunks,
    settings: data.video ?? {},
    model: { source: ctx.model.info.source, engine: ctx.model.info.engine },
    ffmpeg: ctx.tools.ffmpeg.version,
    job: { id: ctx.jobId, worker: ctx.worker },
  });
  await rm(dir, { recursive: true, force: true });
  return { outputs, frames };
}
