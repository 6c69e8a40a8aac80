/**
 * `inferCams`: frames through the engine, class activation maps out. Lossless and in order: one output per
 * input. Runs one `infer()` at a time (engines are not re-entrant), so the next batch starts as soon as the
 * previous one returns while later stages (render, encode) work on the frames already out: inference,
 * rendering and ffmpeg overlap.
 */
import { bufferCount, concatMap, from, map, mergeMap, type OperatorFunction } from 'rxjs';
import { stripUndefined } from '../../common/index.ts';
import { ConfigError, type CamModel, type CamResult, type Frame } from '../../models/index.ts';
import type { StageTimings } from './frame.ts';

export interface InferStageConfig {
  /** Classes per frame whose maps are returned, best first. Integer in [1, numClasses]. Default 5. */
  topK?: number;
  /**
   * Frames per `infer()` call, an integer in [1, 64]. Default 1. Larger batches help engines that gain
   * from them (see `chooseBatchFrames`); the offline queue must hold at least this many frames.
   */
  batchFrames?: number;
  /**
   * Infer every N-th frame (index 0, N, 2N, ...) and give the frames between the last result, an integer
   * >= 1. Default 1 (every frame).
   */
  everyFrames?: number;
  /**
   * Awaited before each engine call. An engine that computes on the JS thread (tfjs: wasm, cpu) blocks
   * every pipe while it runs, so the offline pipeline passes a wait for the earlier frames to leave the
   * pipeline: the encoder then holds whole frames to work on while the engine computes the next ones.
   * Default none.
   */
  beforeInfer?: () => Promise<void> | void;
}

export const DEFAULT_INFER_STAGE_CONFIG: Readonly<Required<Omit<InferStageConfig, 'beforeInfer'>>> = Object.freeze({
  topK: 5,
  batchFrames: 1,
  everyFrames: 1,
});

export function resolveInferStageConfig(config: InferStageConfig, numClasses: number): Required<Omit<InferStageConfig, 'beforeInfer'>> {
  const { beforeInfer: _ignored, ...rest } = config;
  const c = { ...DEFAULT_INFER_STAGE_CONFIG, ...stripUndefined(rest) };
  if (!Number.isInteger(c.topK) || c.topK < 1 || c.topK > numClasses) {
    throw new ConfigError(`topK must be an integer in [1, ${numClasses}] (the model's classes), got ${String(c.topK)}`);
  }
  if (!Number.isInteger(c.batchFrames) || c.batchFrames < 1 || c.batchFrames > 64) {
    throw new ConfigError(`batchFrames must be an integer in [1, 64], got ${String(c.batchFrames)}`);
  }
  if (!Number.isInteger(c.everyFrames) || c.everyFrames < 1) {
    throw new ConfigError(`everyFrames must be an integer >= 1, got ${String(c.everyFrames)}`);
  }
  return c;
}

/** What `inferCams` needs of a frame record. */
export interface InferInput {
  index: number;
  /** Pixels at (or near) the model's input size. */
  pixels: Frame;
  ms: StageTimings;
}

/**
 * Adds `result` (the engine's CamResult: plain arrays, no tensors) and `inferred` to each frame. Frames
 * are grouped into batches of `batchFrames` (the last batch may be shorter). With `everyFrames` N > 1,
 * only frames whose index is a multiple of N go to the engine; the others carry the latest result and
 * `inferred: false`. Lossless, ordered, one `infer()` in flight at a time. An engine error errors the
 * stream. `ms.infer` gets the batch's wall time split over its inferred frames. A model with a
 * `parallelism` above 1 (an InferPool, infer-pool.ts) gets that many batches in flight, output still in order.
 */
export function inferCams<T extends InferInput>(
  model: CamModel,
  config: InferStageConfig = {},
): OperatorFunction<T, T & { result: CamResult; inferred: boolean }> {
  const { topK, batchFrames, everyFrames } = resolveInferStageConfig(config, model.info.numClasses);
  const parallel = parallelismOf(model);
  return (source) => {
    // Per subscription: whether a frame has been sent to the engine yet (decided in order, as batches
    // arrive) and the last result (assigned in order, as batches finish), for the frames `everyFrames` skips.
    let planned = false;
    let last: CamResult | undefined;
    interface Started {
      batch: T[];
      need: boolean[];
      done: Promise<{ results: CamResult[]; perFrameMs: number }>;
    }
    const plan = (batch: T[]): { need: boolean[]; toInfer: T[] } => {
      const need = batch.map((f) => {
        const n = f.index % everyFrames === 0 || !planned;
        planned ||= n;
        return n;
      });
      return { need, toInfer: batch.filter((_, i) => need[i]) };
    };
    const run = async (toInfer: T[]): Promise<{ results: CamResult[]; perFrameMs: number }> => {
      if (toInfer.length === 0) return { results: [], perFrameMs: 0 };
      const t0 = performance.now();
      const results = await model.infer(
        toInfer.map((f) => f.pixels),
        { topK },
      );
      return { results, perFrameMs: (performance.now() - t0) / toInfer.length };
    };
    const finish = async ({ batch, need, done }: Started): Promise<Array<T & { result: CamResult; inferred: boolean }>> => {
      const { results, perFrameMs } = await done;
      let j = 0;
      return batch.map((f, i) => {
        if (need[i]) {
          last = results[j++];
          f.ms.infer = perFrameMs;
        } else {
          f.ms.infer = 0;
        }
        return { ...f, result: last!, inferred: need[i] };
      });
    };
    if (parallel <= 1) {
      // One call at a time: the next batch starts once the previous one returned (after `beforeInfer`).
      return source.pipe(
        bufferCount(batchFrames),
        concatMap(async (batch) => {
          const { need, toInfer } = plan(batch);
          if (toInfer.length > 0) await config.beforeInfer?.();
          return finish({ batch, need, done: run(toInfer) });
        }),
        mergeMap((frames) => from(frames)),
      );
    }
    // A pool (InferPool): each batch starts as soon as it is complete (the pool queues beyond its workers,
    // and the offline queue bounds the frames in flight); results are awaited in arrival order. The engine
    // does not block this thread, so `beforeInfer` does not apply.
    return source.pipe(
      bufferCount(batchFrames),
      map((batch): Started => {
        const { need, toInfer } = plan(batch);
        const done = run(toInfer);
        // Awaited in order by `finish`; until then a failure must not count as unhandled.
        done.catch(() => undefined);
        return { batch, need, done };
      }),
      concatMap(finish),
      mergeMap((frames) => from(frames)),
    );
  };
}

/** `infer()` calls a model runs at once: `info.parallelism` (an InferPool's worker count), otherwise 1. */
function parallelismOf(model: CamModel): number {
  const p: unknown = model.info.parallelism;
  return typeof p === 'number' && Number.isInteger(p) && p > 1 ? p : 1;
}

/** What `chooseBatchFrames` measured. */
export interface BatchChoice {
  batchFrames: number;
  /** Milliseconds per frame at each batch size tried. */
  msPerFrame: Record<number, number>;
}

/**
 * Picks the batch size for offline runs by timing the engine on `frame`: each candidate once untimed
 * (kernel compilation, allocation), then `rounds` timed calls each, interleaved so outside load hits them
 * alike. A larger batch is chosen only when it saves at least `minGain` (default 15%) per frame: on CPUs
 * batching often gains nothing and only adds latency and memory.
 */
export async function chooseBatchFrames(
  model: CamModel,
  frame: Frame,
  options: { candidates?: readonly number[]; rounds?: number; minGain?: number; topK?: number } = {},
): Promise<BatchChoice> {
  const candidates = [...(options.candidates ?? [1, 4])].sort((a, b) => a - b);
  const rounds = options.rounds ?? 1;
  const minGain = options.minGain ?? 0.15;
  const topK = Math.min(options.topK ?? 5, model.info.numClasses);
  const batches = new Map(candidates.map((n) => [n, Array.from({ length: n }, () => frame)]));
  for (const n of candidates) await model.infer(batches.get(n)!, { topK });
  const total = new Map(candidates.map((n) => [n, 0]));
  for (let r = 0; r < rounds; r++) {
    for (const n of candidates) {
      const t0 = performance.now();
      await model.infer(batches.get(n)!, { topK });
      total.set(n, total.get(n)! + (performance.now() - t0));
    }
  }
  const msPerFrame: Record<number, number> = {};
  for (const n of candidates) msPerFrame[n] = total.get(n)! / rounds / n;
  let best = candidates[0];
  for (const n of candidates.slice(1)) {
    if (msPerFrame[n] < msPerFrame[best] * (1 - minGain)) best = n;
  }
  return { batchFrames: best, msPerFrame };
}
