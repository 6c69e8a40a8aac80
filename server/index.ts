/**
 * The live server's public surface: what the CLI, the tests and the benches use. The wire protocol the
 * server speaks is protocol/'s (import it from protocol/index.ts); the hub, sessions, the `ws` adapter and
 * the HTTP routes stay inside server/.
 */

/** Starting and stopping: `startServer` binds HTTP + WebSocket and returns `{ url, dispose, ... }`. */
export { startServer, type LiveServer, type ServerStats, type StartServerOptions } from './start.ts';

/** The models a server offers besides its own (`StartServerOptions.models`). */
export type { ModelEntry } from './core/model-registry.ts';

/** Configuration: grouped fields, frozen defaults, and the resolver the CLI calls to fail fast. */
export {
  DEFAULT_SERVER_CONFIG,
  isLoopbackHost,
  resolveServerConfig,
  type HttpConfig,
  type LimitsConfig,
  type LiveConfig,
  type ResolvedServerConfig,
  type ReviewConfig,
  type ServerConfig,
  type SourcesConfig,
} from './config.ts';

/** The guards on what a client names or presents: media paths confined to the root, token comparison. */
export { confineMediaPath, listMedia, MediaPathError } from './http/media.ts';
export { tokensEqual } from './http/auth.ts';

/** The address check in front of URL sources (loopback, private, link-local... refused unless allowed). */
export { privateAddressKind, urlHostRefusal, type HostLookup } from './core/url-guard.ts';
