/**
 * What the job queue shares between submitters, workers and the server: the queue's name, the Redis
 * connection from a `redis://` or `rediss://` URL, the job data (untrusted on the worker's side) and the
 * defaults for retries.
 */
import type { ConnectionOptions, JobsOptions } from 'bullmq';
import { ConfigError } from '../../models/index.ts';
import type { ChunkSpec } from './chunks.ts';
import type { JobKind, JobProgress } from '../../protocol/jobs.ts';

/** The BullMQ queue every camstream submitter and worker uses. */
export const CAM_QUEUE_NAME = 'camstream';

/** Options of a video job (the `camstream video` flags a job may carry). Every field is optional. */
export interface VideoJobOptions {
  top?: number;
  smooth?: number;
  every?: number;
  /** Frames per engine call; default `auto` (measured at start). */
  batch?: number;
  boxRule?: 'paper' | 'official';
  threshold?: number;
  colormap?: 'turbo' | 'jet' | 'inferno';
  alpha?: number;
  maxFrames?: number;
  preset?: string;
  crf?: number;
  audio?: boolean;
  /** Write the per-frame JSONL beside the MP4. Default true. */
  json?: boolean;
}

/** Options of an image job. */
export interface ImageJobOptions {
  top?: number;
  boxRule?: 'paper' | 'official';
  threshold?: number;
  /** Write an overlay per image. Default true. */
  overlays?: boolean;
}

/** One job as it sits in Redis. Paths are file names inside the worker's roots (relative, or absolute inside). */
export interface CamJobData {
  /** `chunk`: one segment of a split video; `join`: the parent that joins a split video's segments. */
  kind: JobKind;
  /** One video, or the images of a batch. */
  inputs: string[];
  /** Output folder inside the worker's `--out-root`. */
  outDir: string;
  /** A model name from the worker's allowed list; default: the worker's first model. */
  model?: string;
  video?: VideoJobOptions;
  image?: ImageJobOptions;
  /** The segment a `chunk` job annotates. */
  chunk?: ChunkSpec;
  /** Segments a `join` job joins (its children). */
  chunks?: number;
}

/** What a finished job returns (stored by BullMQ as the job's return value). */
export interface CamJobResult {
  outputs: string[];
  frames?: number;
  images?: number;
  inputHash: string;
  worker: string;
}

/** Progress of a running job, written at most once per progress tick (the wire shape, protocol/jobs.ts). */
export type CamJobProgress = JobProgress;

/** Retries for transient failures: attempts in all and the first backoff delay (doubled each retry). */
export interface JobRetryConfig {
  attempts?: number;
  backoffMs?: number;
}

export const DEFAULT_JOB_RETRY_CONFIG = Object.freeze({ attempts: 3, backoffMs: 2000 });

/** BullMQ options of a new job from the retry config and a priority (1 is the highest; 0 means none). */
export function resolveJobOptions(retry: JobRetryConfig = {}, priority = 0): JobsOptions {
  const attempts = retry.attempts ?? DEFAULT_JOB_RETRY_CONFIG.attempts;
  const backoffMs = retry.backoffMs ?? DEFAULT_JOB_RETRY_CONFIG.backoffMs;
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 100) throw new ConfigError(`attempts must be a whole number in [1, 100], got ${String(attempts)}`);
  if (!Number.isFinite(backoffMs) || backoffMs < 0) throw new ConfigError(`backoffMs must be a number >= 0, got ${String(backoffMs)}`);
  if (!Number.isInteger(priority) || priority < 0 || priority > 2_097_152) throw new ConfigError(`priority must be a whole number in [0, 2097152], got ${String(priority)}`);
  return {
    attempts,
    backoff: { type: 'exponential', delay: backoffMs },
    ...(priority > 0 ? { priority } : {}),
    removeOnComplete: false,
    removeOnFail: false,
  };
}

/**
 * BullMQ's connection options from a Redis URL: `redis://[user:password@]host[:port][/db]`, or `rediss://`
 * for TLS. Requests wait through a Redis restart (`maxRetriesPerRequest: null`, as BullMQ workers need).
 */
export function redisConnection(url: string): ConnectionOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`--redis must be a redis:// or rediss:// URL, got '${url}'`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(`--redis must be a redis:// or rediss:// URL, got '${url}'`);
  }
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new ConfigError(`--redis database must be a whole number, got '${parsed.pathname.slice(1)}'`);
  return {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
    db,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: { servername: parsed.hostname } } : {}),
    maxRetriesPerRequest: null,
    // Reconnect quickly after a blip, never more than 2 s apart.
    retryStrategy: (times: number) => Math.min(100 * times, 2000),
  };
}
