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
export * from '../protocol/live.ts';
export { Hub, type HubStats } from './core/hub.ts';
export { Session, SourceRefusal, type SessionSocket } from './core/session.ts';
export { confineMediaPath, listMedia, MediaPathError } from './http/media.ts';
export { tokensEqual } from './http/auth.ts';
export { adaptWebSocket } from './adapters/ws.ts';
export { ReviewRoutes, REVIEW_API, REVIEW_PAGE, type ReviewRoutesOptions } from './http/review.ts';
export type { DecisionChange, ReviewDatasetInfo, ReviewImageDetail, ReviewMapWire, ReviewRowWire } from '../protocol/review.ts';
