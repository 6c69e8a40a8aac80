/**
 * The pipelines layer's public surface: RxJS stages and their composition, sources, sinks, rendering, the
 * still-image job and the offline video job. The ffmpeg layer has its own index (./ffmpeg/index.ts),
 * re-exported here as a namespace-free list of what callers need.
 */
export { annotateImages, overlayName, type ImageJobConfig, type ImageRecord, type ImageTopEntry } from './jobs/image.ts';
export { DEFAULT_MAX_IMAGE_PIXELS, readImageFrame, type ImageReadConfig } from './sources/image-file.ts';
export * from './render/index.ts';

export type { InferredFrame, LocalizedFrame, RenderedFrame, SmoothedFrame, StageTimings, VideoFrame } from './stages/frame.ts';
export { readVideo$, type VideoSourceConfig } from './sources/video.ts';
export { LiveSource, oneLine, type LiveSourceConfig, type SourceContext, type SourceModel, type SourceStats, type SourceViewer } from './sources/live-source.ts';
export { WebcamSource } from './sources/webcam.ts';
export { FfmpegSource, type FfmpegInput } from './sources/live-ffmpeg.ts';
export { SOURCE_KINDS, type FfmpegOpening, type SourceKind, type SourceKindEntry } from './sources/registry.ts';
export { processLatest } from './stages/process-latest.ts';
export {
  DEFAULT_OFFLINE_QUEUE_CONFIG,
  queueOffline,
  resolveOfflineQueueConfig,
  type OfflineQueueConfig,
} from './stages/queue-offline.ts';
export {
  chooseBatchFrames,
  DEFAULT_INFER_STAGE_CONFIG,
  inferCams,
  resolveInferStageConfig,
  type BatchChoice,
  type InferInput,
  type InferStageConfig,
} from './stages/infer.ts';
export {
  CamSmoother,
  DEFAULT_SMOOTH_CONFIG,
  meanAbsDiff,
  resolveSmoothConfig,
  smoothCams,
  thumbnail,
  type SmoothConfig,
  type SmoothedCams,
  type SmoothInput,
  type SmoothStats,
} from './stages/smooth.ts';
export {
  BOX_RULES,
  DEFAULT_LOCALIZE_CONFIG,
  frameGeometry,
  localize,
  mapAt,
  resolveLocalizeConfig,
  type BoxRule,
  type LocalizeConfig,
  type ResolvedLocalizeConfig,
} from './stages/localize.ts';
export { coarseGeometry, localizeCams, type LocalizeCamsConfig, type LocalizeInput } from './stages/localize-cams.ts';
export {
  compositeFilter,
  DEFAULT_VIDEO_OVERLAY_CONFIG,
  overlayLayout,
  renderOverlays,
  resolveVideoOverlayConfig,
  type OverlayLayout,
  type RenderInput,
  type VideoOverlayConfig,
} from './stages/render.ts';
export { writeOverlayVideo, type OverlaySinkInput, type OverlayVideoConfig } from './sinks/mp4.ts';
export { writeJsonLines } from './sinks/jsonl.ts';
export { writeFileAtomic, writeJsonFile } from './sinks/manifest.ts';
export {
  composeVideoPipeline,
  frameLine,
  layoutFor,
  type FrameLine,
  type VideoDecodeSettings,
  type VideoEncodeSettings,
  type VideoInferSettings,
  type VideoPipelineConfig,
  type VideoPipelineHooks,
} from './compose/video.ts';
export {
  DEFAULT_VIDEO_CONFIG,
  resolveVideoConfig,
  settleVideoConfig,
  type BatchFramesSetting,
  type ResolvedVideoConfig,
  type VideoConfig,
} from './jobs/video-config.ts';
export {
  annotateVideo,
  camstreamVersion,
  engineVersion,
  InterruptedError,
  runManifest,
  type StageReport,
  type VideoProgress,
  type VideoReport,
  type VideoRunHooks,
} from './jobs/video.ts';
export {
  activeFfmpegPids,
  FfmpegError,
  INPUT_SCHEMES,
  STDIN_INPUT,
  locateFfmpeg,
  probeMedia,
  runFfmpeg,
  shutdownFfmpeg,
  type FfmpegTools,
  type InputScheme,
  type MediaInfo,
} from './ffmpeg/index.ts';
