/**
 * The job queue's public surface: submitting and watching jobs (queue.ts), the worker (worker.ts), the job
 * data and Redis connection (queue-config.ts), and the root confinement every job path goes through.
 */
export { CamQueue, type CamJobAction, type CamJobStatus, type CamQueueCounts } from './queue.ts';
export { DEFAULT_CAM_WORKER_CONFIG, startCamWorker, type CamWorker, type CamWorkerConfig } from './worker.ts';
export {
  CAM_QUEUE_NAME,
  DEFAULT_JOB_RETRY_CONFIG,
  redisConnection,
  resolveJobOptions,
  type CamJobData,
  type CamJobProgress,
  type CamJobResult,
  type ImageJobOptions,
  type JobRetryConfig,
  type VideoJobOptions,
} from './queue-config.ts';
export { confineJobPath } from './confine.ts';
export { checkJobData, chunksDir, hashFile, stagingDir } from './run-job.ts';
export {
  annotateChunk,
  checkChunkSpec,
  chunkFiles,
  DEFAULT_WARMUP_SECONDS,
  joinChunks,
  keyframeTimes,
  planChunks,
  planVideoChunks,
  type ChunkRange,
  type ChunkSpec,
} from './chunks.ts';
