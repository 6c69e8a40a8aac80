/**
 * The configuration of a video job (`annotateVideo`): the caller's `VideoConfig`, grouped by stage
 * (decode, infer, queue, smooth, localize, overlay, encode), its frozen defaults, and `resolveVideoConfig`,
 * which checks everything once and returns a frozen `ResolvedVideoConfig`. The one value only a run can
 * know, the batch size under `auto`, is settled by `settleVideoConfig` into the pipeline's config.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { checkInt } from '../../common/index.ts';
import { ConfigError, type CamModel } from '../../models/index.ts';
import { resolveInput, type FfmpegTools, type InputScheme } from '../ffmpeg/index.ts';
import type { VideoDecodeSettings, VideoEncodeSettings, VideoInferSettings, VideoPipelineConfig } from '../compose/video.ts';
import { chooseBatchFrames, resolveInferStageConfig, type BatchChoice } from '../stages/infer.ts';
import { resolveLocalizeConfig, type LocalizeConfig } from '../stages/localize.ts';
import { resolveOfflineQueueConfig, type OfflineQueueConfig } from '../stages/queue-offline.ts';
import { resolveVideoOverlayConfig, type VideoOverlayConfig } from '../stages/render.ts';
import { resolveSmoothConfig, type SmoothConfig } from '../stages/smooth.ts';

/** Frames per engine call, or `auto`: time 1 and 4 on the first frame, keep 4 only if 15% faster per frame. */
export type BatchFramesSetting = number | 'auto';

/** What a caller asks of a video job. Only `out` is required; every group and field has a default. */
export interface VideoConfig {
  /** Output video path (H.264 in the container its extension names; `.mp4` expected). Required. */
  out: string;
  /** JSONL path, one line per frame. Default: none. */
  json?: string;
  /** Run manifest path; default `<out>.manifest.json`; `false` writes none. */
  manifest?: string | false;
  /** Default `locateFfmpeg()`. */
  tools?: FfmpegTools;
  /**
   * Nice value given to the two ffmpeg children (decoder and compositing encoder), 0-19. Default 10: the
   * engine's threads then get a core the moment they need one and ffmpeg fills the gaps between operators
   * and batches; the run is lossless, so ffmpeg yielding only reorders work. bench/README.md has the
   * measurements (ResNet-50, 2 cores: 16.1 vs 15.0 fps with spin-waiting off). 0 leaves them as they are.
   */
  ffmpegNice?: number;
  /**
   * Largest frame accepted, in pixels (width x height of the input's video stream); a larger input is
   * refused with an InputError before anything is decoded. Default 64 000 000 (64 MP).
   */
  maxFramePixels?: number;
  /** The model-size decode. Decode threads default to 1: scaling to 224 pixels is light, and cores are scarce. */
  decode?: Partial<VideoDecodeSettings>;
  /** The inference stage; `batchFrames` defaults to `auto`. */
  infer?: Partial<Omit<VideoInferSettings, 'batchFrames'>> & { batchFrames?: BatchFramesSetting };
  /** Frames in flight at most (offline queue). Default 8, raised to the batch size when smaller. */
  queue?: OfflineQueueConfig;
  smooth?: SmoothConfig;
  localize?: LocalizeConfig;
  overlay?: VideoOverlayConfig;
  /** The compositing encoder. */
  encode?: Partial<VideoEncodeSettings>;
}

/** Defaults of the groups this module owns (smooth, localize and overlay keep their stages' defaults). */
export const DEFAULT_VIDEO_CONFIG = Object.freeze({
  ffmpegNice: 10,
  maxFramePixels: 64_000_000,
  decode: Object.freeze({
    threads: 1,
    strict: true,
    inputOptions: Object.freeze([]) as readonly string[],
    schemes: Object.freeze(['file', 'http', 'https', 'rtsp']) as readonly InputScheme[],
  }),
  infer: Object.freeze({ topK: 5, batchFrames: 'auto' as BatchFramesSetting, everyFrames: 1 }),
  queue: Object.freeze({ maxQueueFrames: 8 }),
  encode: Object.freeze({ threads: 0, preset: 'veryfast', crf: 23, audio: true }),
});

/** A checked `VideoConfig` for one input: frozen, paths absolute, the batch size possibly still `auto`. */
export interface ResolvedVideoConfig extends Readonly<Omit<VideoPipelineConfig, 'infer'>> {
  readonly infer: Readonly<Omit<VideoInferSettings, 'batchFrames'> & { batchFrames: BatchFramesSetting }>;
  /** Absolute manifest path; undefined writes none. */
  readonly manifest: string | undefined;
  readonly ffmpegNice: number;
  readonly maxFramePixels: number;
}

/**
 * Validates `config` for `input` and `model` (ConfigError naming the field, the value and the range) and
 * merges the defaults. `infer.batchFrames: 'auto'` stays `auto` here; `settleVideoConfig` measures it.
 */
export function resolveVideoConfig(input: string, config: VideoConfig, model: CamModel): ResolvedVideoConfig {
  const outputs = resolveOutputs(input, config);
  const infer = resolveInfer(config.infer ?? {}, model.info.numClasses);
  const queue = Object.freeze(resolveOfflineQueueConfig({ maxQueueFrames: config.queue?.maxQueueFrames ?? DEFAULT_VIDEO_CONFIG.queue.maxQueueFrames }));
  const encode = resolveEncode(config.encode ?? {});
  return Object.freeze({
    input,
    ...outputs,
    decode: resolveDecode(config.decode ?? {}),
    infer,
    queue,
    smooth: resolveSmoothConfig(config.smooth),
    localize: resolveLocalizeConfig(config.localize),
    overlay: resolveVideoOverlayConfig(config.overlay),
    encode,
    ffmpegNice: checkInt('ffmpegNice', config.ffmpegNice ?? DEFAULT_VIDEO_CONFIG.ffmpegNice, 0, 19),
    maxFramePixels: checkInt('maxFramePixels', config.maxFramePixels ?? DEFAULT_VIDEO_CONFIG.maxFramePixels, 1, Number.MAX_SAFE_INTEGER),
  });
}

/**
 * Output paths made absolute; refused when one is the input or another output (compared by real path and
 * by device and inode, so a symlink or a hard link to the input counts), or when a folder is missing.
 */
function resolveOutputs(input: string, config: VideoConfig): Pick<ResolvedVideoConfig, 'out' | 'json' | 'manifest'> {
  if (typeof config.out !== 'string' || config.out.trim() === '') throw new ConfigError(`out must be a file path, got ${JSON.stringify(config.out)}`);
  const source = resolveInput(input, config.decode?.schemes);
  const out = resolve(config.out);
  const json = config.json === undefined ? undefined : resolve(config.json);
  for (const [flag, path] of [['out', out], ['json', json]] as const) {
    if (path === undefined) continue;
    const dir = dirname(path);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ConfigError(`${flag}: folder ${JSON.stringify(dir)} does not exist`);
  }
  const manifest = config.manifest === false ? undefined : resolve(config.manifest ?? `${out}.manifest.json`);
  const named: Array<[string, string | undefined]> = [['output', out], ['JSONL path', json], ['manifest path', manifest]];
  const files = named.filter((n): n is [string, string] => n[1] !== undefined).map(([what, path]) => ({ what, path, id: fileIdentity(path) }));
  const inputId = source.scheme === 'file' ? fileIdentity(source.url) : undefined;
  for (const [i, f] of files.entries()) {
    if (inputId && sameIdentity(f.id, inputId)) {
      throw new ConfigError(`${f.what} ${JSON.stringify(f.path)} is the input itself (${JSON.stringify(input)}); refusing to overwrite it`);
    }
    const other = files.slice(0, i).find((g) => sameIdentity(f.id, g.id));
    if (other) throw new ConfigError(`the ${f.what} ${JSON.stringify(f.path)} is also the ${other.what} ${JSON.stringify(other.path)}`);
  }
  return { out, json, manifest };
}

/** What a path names on disk: its real path (the folder's, for a file not there yet) and, when it exists, device and inode. */
interface FileIdentity {
  real: string;
  devIno: string | undefined;
}

function fileIdentity(path: string): FileIdentity {
  try {
    const st = statSync(path);
    return { real: realpathSync(path), devIno: `${st.dev}:${st.ino}` };
  } catch {
    // Not there yet (or a dangling link): the real folder plus the name is where it would be written.
    let dir = dirname(path);
    try {
      dir = realpathSync(dir);
    } catch {
      // A missing folder is reported by the caller.
    }
    return { real: join(dir, basename(path)), devIno: undefined };
  }
}

function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.real === b.real || (a.devIno !== undefined && a.devIno === b.devIno);
}

function resolveInfer(config: NonNullable<VideoConfig['infer']>, numClasses: number): ResolvedVideoConfig['infer'] {
  const { batchFrames } = config;
  const stage = resolveInferStageConfig(
    {
      topK: config.topK ?? DEFAULT_VIDEO_CONFIG.infer.topK,
      batchFrames: typeof batchFrames === 'number' ? batchFrames : undefined,
      everyFrames: config.everyFrames,
    },
    numClasses,
  );
  if (batchFrames !== undefined && batchFrames !== 'auto' && typeof batchFrames !== 'number') {
    throw new ConfigError(`batchFrames must be an integer in [1, 64] or 'auto', got ${JSON.stringify(batchFrames)}`);
  }
  const auto = (batchFrames ?? DEFAULT_VIDEO_CONFIG.infer.batchFrames) === 'auto';
  return Object.freeze({ topK: stage.topK, batchFrames: auto ? 'auto' : stage.batchFrames, everyFrames: stage.everyFrames });
}

function resolveDecode(config: Partial<VideoDecodeSettings>): Readonly<VideoDecodeSettings> {
  const d = DEFAULT_VIDEO_CONFIG.decode;
  return Object.freeze({
    threads: checkInt('decodeThreads', config.threads ?? d.threads, 0, 64),
    strict: config.strict ?? d.strict,
    maxFrames: config.maxFrames === undefined ? undefined : checkInt('maxFrames', config.maxFrames, 1, Number.MAX_SAFE_INTEGER),
    inputOptions: Object.freeze([...(config.inputOptions ?? d.inputOptions)]),
    schemes: Object.freeze([...(config.schemes ?? d.schemes)]),
  });
}

function resolveEncode(config: Partial<VideoEncodeSettings>): Readonly<VideoEncodeSettings> {
  const e = DEFAULT_VIDEO_CONFIG.encode;
  const crf = checkInt('crf', config.crf ?? e.crf, 0, 51);
  const preset = config.preset ?? e.preset;
  if (typeof preset !== 'string' || !/^[a-z]+$/.test(preset)) throw new ConfigError(`preset must be an x264 preset name, got ${JSON.stringify(preset)}`);
  return Object.freeze({
    threads: checkInt('encodeThreads', config.threads ?? e.threads, 0, 64),
    preset,
    crf,
    audio: config.audio ?? e.audio,
  });
}

/**
 * The pipeline's config for a run of `model`: the batch size settled (`auto` is measured with
 * `chooseBatchFrames` on a grey frame of the model's input size) and the queue raised to hold one batch.
 * `resolved` is left as it is.
 */
export async function settleVideoConfig(
  model: CamModel,
  resolved: ResolvedVideoConfig,
): Promise<{ config: VideoPipelineConfig; batchChoice: BatchChoice | undefined }> {
  const { manifest: _manifest, ffmpegNice: _nice, maxFramePixels: _pixels, infer, queue, ...stages } = resolved;
  let batchChoice: BatchChoice | undefined;
  let batchFrames: number;
  if (infer.batchFrames === 'auto') {
    const [h, w] = model.info.preprocess.inputSize;
    const blank = { data: new Uint8Array(h * w * 3).fill(128), width: w, height: h };
    batchChoice = await chooseBatchFrames(model, blank, { topK: infer.topK });
    batchFrames = batchChoice.batchFrames;
  } else {
    batchFrames = infer.batchFrames;
  }
  const config: VideoPipelineConfig = Object.freeze({
    ...stages,
    infer: Object.freeze({ ...infer, batchFrames }),
    queue: Object.freeze({ maxQueueFrames: Math.max(queue.maxQueueFrames, batchFrames) }),
  });
  return { config, batchChoice };
}
