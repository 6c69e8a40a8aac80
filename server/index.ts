/**
 * The live server's public surface: `startServer` (HTTP + WebSocket in front of a transport-free hub), its
 * configuration, the wire protocol (see docs/protocol.md), and the session core for other transports.
 */
export { startServer, DEFAULT_CLIENT_DIR, WS_PATH, type LiveServer, type StartServerOptions } from './start.ts';
export {
  DEFAULT_SERVER_CONFIG,
  DEFAULT_SOURCE_SETTINGS,
  isLoopbackHost,
  resolveServerConfig,
  type ResolvedServerConfig,
  type ServerConfig,
} from './config.ts';
export * from './protocol.ts';
export { Hub, type HubStats } from './internal/hub.ts';
export { Session, SourceRefusal, type SessionSocket } from './internal/session.ts';
export type { SourceStats } from './internal/sources.ts';
export { processLatest } from './internal/process-latest.ts';
export { ModelLock } from './internal/model-lock.ts';
export { confineMediaPath, listMedia, MediaPathError } from './internal/media.ts';
export { tokensEqual } from './internal/auth.ts';
export { adaptWebSocket } from './internal/ws-adapter.ts';
export { ReviewRoutes, REVIEW_API, REVIEW_PAGE, type ReviewRoutesOptions } from './internal/review-routes.ts';
export type { DecisionChange, ReviewDatasetInfo, ReviewImageDetail, ReviewMapWire, ReviewRowWire } from './internal/review-protocol.ts';
