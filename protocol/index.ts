/**
 * The wire contract between the server and its clients; imports nothing, runs in Node and in browsers.
 * - live.ts: the live WebSocket's version, endpoint, close codes, size limits and binary codec.
 * - live-control.ts: the live WebSocket's JSON control messages and their validator.
 * - review.ts: the review REST API's base path and JSON shapes (types only, besides the path).
 * - jobs.ts: the same for the jobs REST API behind the /jobs page.
 * See docs/protocol.md.
 */
export {
  BinaryType,
  CLOSE_REASONS,
  CloseCode,
  decodeFrame,
  decodeResult,
  encodeFrame,
  encodeResult,
  FRAME_HEADER_BYTES,
  FrameEncoding,
  PROTOCOL_VERSION,
  ProtocolViolation,
  RESULT_HEADER_BYTES,
  ResultFlags,
  WS_PATH,
  type CloseCodeValue,
  type FrameEncodingValue,
  type FrameMessage,
  type ResultMessage,
  type WireLimits,
} from './live.ts';
export {
  parseClientMessage,
  type BoxRuleSetting,
  type ClientMessage,
  type ControlLimits,
  type ErrorCode,
  type ModelChoice,
  type ModelLoadState,
  type ModelSummary,
  type ServerMessage,
  type SourceSettings,
  type SourceSpec,
  type SourceState,
} from './live-control.ts';
export {
  REVIEW_API,
  type ClassMetrics,
  type Decision,
  type DecisionChange,
  type DecisionStatus,
  type DecisionTag,
  type ImportIssue,
  type ReviewDatasetInfo,
  type ReviewImageDetail,
  type ReviewMapWire,
  type ReviewRowWire,
  type ReviewSummary,
  type WireBox,
} from './review.ts';
export {
  JOBS_API,
  type JobAction,
  type JobKind,
  type JobProgress,
  type JobsListing,
  type JobStatus,
  type QueueCounts,
  type QueueState,
} from './jobs.ts';
