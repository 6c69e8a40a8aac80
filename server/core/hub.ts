/**
 * The server core, transport-free: sessions, the sources they watch (shared by key), the model lock, and
 * the once-a-second stats. `connect(socket)` is all a transport needs to call.
 */
import { stat } from 'node:fs/promises';
import { colormapLut, COLORMAP_NAMES, ConfigError, type CamModel } from '../../models/index.ts';
import {
  FfmpegError,
  oneLine,
  probeMedia,
  SOURCE_KINDS,
  type FfmpegSource,
  type LiveSource,
  type MediaInfo,
  type SourceContext,
  type SourceModel,
  type SourceStats,
  type WebcamSource,
} from '../../pipelines/index.ts';
import { resolveInput } from '../../pipelines/ffmpeg/index.ts';
import { liveSourceConfig, type ResolvedServerConfig } from '../config.ts';
import {
  CloseCode,
  FRAME_HEADER_BYTES,
  PROTOCOL_VERSION,
  type ClientMessage,
  type ControlLimits,
  type ServerMessage,
  type WireLimits,
} from '../../protocol/index.ts';
import { confineMediaPath, listMedia, MediaPathError } from '../http/media.ts';
import { ModelLock } from '../../models/pool/model-lock.ts';
import { ModelRegistry, type LoadProgress } from './model-registry.ts';
import { Session, SourceRefusal, type SessionHost, type SessionSocket } from './session.ts';
import { urlHostRefusal } from './url-guard.ts';
import { publicSource } from './model-names.ts';

/** Figures of the whole server (tests, the soak bench). */
export interface HubStats {
  sessions: Array<{ id: number; source: string | undefined; sent: number; skipped: number }>;
  sources: SourceStats[];
}

const DEVICE_RE = /^\/dev\/video\d{1,3}$/;

/** The label of a class meaning "nothing to see" (the embedded digits model's extra class). */
const NONE_LABEL = 'no digit';

export class Hub implements SessionHost {
  readonly limits: WireLimits;
  private readonly sessions = new Set<Session>();
  private readonly shared = new Map<string, FfmpegSource>();
  private readonly opening = new Map<string, Promise<FfmpegSource>>();
  /** Opens in flight by the remote address that asked for them (the caps of `sources.maxOpening*`). */
  private readonly openingBy = new Map<string, number>();
  private readonly webcams = new Map<Session, WebcamSource>();
  private readonly lock = new ModelLock();
  private readonly ctx: SourceContext;
  /** The model each session last switched to: new sources it opens start on it. */
  private readonly preferred = new WeakMap<Session, string>();
  private readonly statsTimer: NodeJS.Timeout;
  private disposed = false;

  constructor(
    /** The models viewers may pick; the first is the one every source starts on. */
    readonly models: ModelRegistry,
    readonly config: ResolvedServerConfig,
    /** The media root's real path, or undefined (file sources off). */
    private readonly mediaRoot: string | undefined,
  ) {
    const model = models.main.model;
    const [inH, inW] = model.info.preprocess.inputSize;
    // Webcam frames are sized for the source's model, which a viewer may switch to a larger one.
    const maxRawBytes = Math.max(inW * inH * 3, config.limits.maxJpegBytes);
    this.limits = {
      maxControlBytes: config.limits.maxControlBytes,
      maxJpegBytes: config.limits.maxJpegBytes,
      maxRawBytes,
      maxFrameSide: config.limits.maxFrameSide,
      maxPayload: FRAME_HEADER_BYTES + Math.max(config.limits.maxJpegBytes, maxRawBytes, config.limits.maxControlBytes),
    };
    this.ctx = { model, modelId: models.defaultId, lock: this.lock, config: liveSourceConfig(config), describeModel: (m) => this.describeModel(m) };
    this.statsTimer = setInterval(() => this.sendStats(), 1000);
    this.statsTimer.unref();
  }

  /** A new viewer on `socket`. */
  connect(socket: SessionSocket): Session {
    if (this.disposed) {
      socket.close(CloseCode.GoingAway, 'server shutting down');
      throw new Error('the server is shutting down');
    }
    const session = new Session(socket, this);
    this.sessions.add(session);
    return session;
  }

  /**
   * What client messages are checked against: class ids up to the largest model loaded (a source's own model
   * is checked when its settings change, so a viewer racing a switch gets an error, not a closed socket).
   */
  get controlLimits(): ControlLimits {
    const numClasses = Math.max(...this.models.loadedModels().map((m) => m.info.numClasses));
    return { numClasses, maxTopK: this.config.live.maxTopK, maxControlBytes: this.config.limits.maxControlBytes };
  }

  /** The `model` message for a source's model: its summary and labels, and how the page reads "none". */
  describeModel(m: SourceModel): ServerMessage {
    const { info } = m.model;
    const choice = this.models.choice(m.id);
    const none = info.labels.findIndex((l) => l.trim().toLowerCase() === NONE_LABEL);
    return {
      type: 'model',
      id: m.id,
      model: this.summary(m.model, choice?.name, choice?.note),
      labels: info.labels,
      maxTopK: Math.min(this.config.live.maxTopK, info.numClasses),
      noneClass: none >= 0 ? none : null,
      lowConfidence: this.config.live.lowConfidence,
    };
  }

  private summary(model: CamModel, name: string | undefined, note: string | undefined) {
    const { info } = model;
    return {
      engine: info.engine,
      backend: info.backend,
      source: publicSource(info.source),
      inputSize: info.preprocess.inputSize,
      resize: info.preprocess.resize,
      featureShape: info.featureShape,
      numClasses: info.numClasses,
      ...(note ? { note } : {}),
      ...(name ? { name } : {}),
    };
  }

  /**
   * Switches the session's source to the offered model `id`: its viewers hear `loading` (with bytes for URL
   * models) while the old model keeps running, then the new model, or `failed` with the reason while the
   * old one runs on. Refusals (no source, unknown id) are SourceRefusals.
   */
  async switchModel(session: Session, id: string): Promise<void> {
    const choice = this.models.choice(id);
    if (!choice) throw new SourceRefusal('unknown-model', `model '${id.slice(0, 64)}' is not offered here; offered: ${this.models.choices.map((c) => c.id).join(', ')}`);
    const source = session.source;
    if (!source) throw new SourceRefusal('no-source', 'select a source before switching its model');
    if (source.model.id === id) return;
    const tell = (m: ServerMessage): void => {
      for (const v of source.viewers) v.notify(m);
      if (!source.viewers.has(session)) session.notify(m);
    };
    const status = { type: 'model-status' as const, id, name: choice.name };
    let offered;
    if (this.models.loaded(id)) offered = this.models.loaded(id)!;
    else {
      tell({ ...status, state: 'loading' });
      try {
        offered = await this.models.get(id, (p: LoadProgress) => tell({ ...status, state: 'loading', loaded: p.loaded, ...(p.total !== undefined ? { total: p.total } : {}) }));
      } catch (err) {
        this.config.log(`model ${choice.name} failed to load: ${oneLine(err)}`);
        tell({ ...status, state: 'failed', message: this.models.redact(id, oneLine(err)) });
        return;
      }
      tell({ ...status, state: 'ready' });
    }
    this.preferred.set(session, id);
    // The viewer may have left the source while the model loaded: switch what it watches now, if anything.
    const now = session.source;
    if (this.disposed || !now) return;
    now.setModel({ id, model: offered.model });
  }

  /** The context a new source opened for `session` starts with: the model it last picked, if loaded. */
  private contextFor(session: Session): SourceContext {
    const id = this.preferred.get(session);
    const offered = id === undefined ? undefined : this.models.loaded(id);
    return offered ? { ...this.ctx, model: offered.model, modelId: offered.id } : this.ctx;
  }

  async hello(): Promise<ServerMessage> {
    const main = this.models.main;
    const { info } = main.model;
    const colormaps: Record<string, string> = {};
    for (const name of COLORMAP_NAMES) colormaps[name] = Buffer.from(colormapLut(name)).toString('base64');
    const kinds: Array<'webcam' | 'file' | 'url' | 'device'> = ['webcam'];
    if (this.mediaRoot) kinds.push('file');
    if (this.config.sources.urlSources) kinds.push('url');
    if (this.config.sources.deviceSources) kinds.push('device');
    return {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      model: this.summary(main.model, main.name, main.note),
      labels: info.labels,
      colormaps,
      limits: this.limits,
      media: this.mediaRoot ? await listMedia(this.mediaRoot) : [],
      sourceKinds: kinds,
      settings: this.config.live.settings,
      maxTopK: Math.min(this.config.live.maxTopK, info.numClasses),
      models: [...this.models.choices],
      modelId: main.id,
    };
  }

  webcam(session: Session): WebcamSource {
    let source = this.webcams.get(session);
    if (!source) {
      source = SOURCE_KINDS.webcam.create(`webcam:${session.id}`, this.contextFor(session));
      // A frame this client sent broke its pipeline (a JPEG that does not decode): close it, typed.
      source.onFailure = (err) => session.close((err as { closeCode?: number }).closeCode ?? CloseCode.InternalError, oneLine(err));
      this.webcams.set(session, source);
    }
    return source;
  }

  async join(session: Session, m: ClientMessage & { type: 'select' }): Promise<LiveSource> {
    const spec = m.source;
    if (spec.kind === 'webcam') return this.webcam(session);
    const { key, open } = await this.resolve(spec, this.contextFor(session));
    const existing = this.shared.get(key);
    if (existing) return existing;
    let pending = this.opening.get(key);
    if (!pending) {
      const release = this.admitOpen(session.remoteAddress);
      pending = open().finally(() => {
        this.opening.delete(key);
        release();
      });
      this.opening.set(key, pending);
    }
    const source = await pending;
    if (this.disposed) {
      source.dispose();
      throw new SourceRefusal('source-failed', 'the server is shutting down');
    }
    this.shared.set(key, source);
    return source;
  }

  /**
   * Counts one more source being probed and opened for `address`, or refuses it with `busy` when the server
   * or that address already has its maximum in flight. Returns the release.
   */
  private admitOpen(address: string): () => void {
    const { maxOpening, maxOpeningPerAddress } = this.config.sources;
    const total = [...this.openingBy.values()].reduce((a, b) => a + b, 0);
    const mine = this.openingBy.get(address) ?? 0;
    if (total >= maxOpening) throw new SourceRefusal('busy', `${total} sources are being opened on this server (at most ${maxOpening} at once); try again shortly`);
    if (mine >= maxOpeningPerAddress) throw new SourceRefusal('busy', `${mine} sources are being opened for ${address} (at most ${maxOpeningPerAddress} at once); try again shortly`);
    this.openingBy.set(address, mine + 1);
    return () => {
      const left = (this.openingBy.get(address) ?? 1) - 1;
      if (left > 0) this.openingBy.set(address, left);
      else this.openingBy.delete(address);
    };
  }

  private async resolve(spec: Exclude<ClientMessage & { type: 'select' }, never>['source'], ctx: SourceContext): Promise<{ key: string; open: () => Promise<FfmpegSource> }> {
    const tools = this.config.sources.tools;
    const probe = async (input: string, schemes: Array<'file' | 'http' | 'https' | 'rtsp'>, confine = false): Promise<MediaInfo> => {
      try {
        return await probeMedia(input, { tools, schemes, timeoutMs: 15_000, confine });
      } catch (err) {
        if (err instanceof FfmpegError || err instanceof ConfigError) throw new SourceRefusal('bad-source', oneLine(err));
        throw err;
      }
    };
    switch (spec.kind) {
      case 'file': {
        if (!this.mediaRoot) throw new SourceRefusal('source-disabled', 'file sources are off: start the server with --media-root <folder>');
        let real: string;
        try {
          real = await confineMediaPath(this.mediaRoot, spec.path);
        } catch (err) {
          if (err instanceof MediaPathError) throw new SourceRefusal(err.code, err.message);
          throw err;
        }
        const loop = spec.loop ?? true;
        return {
          key: `file:${real}:${loop}`,
          open: async () => {
            const info = await probe(real, ['file'], true);
            return SOURCE_KINDS.file.create(`file:${spec.path}`, ctx, { input: real, name: spec.path, loop, probe: info, tools });
          },
        };
      }
      case 'url': {
        const { input, display } = await this.checkUrl(spec.url);
        return {
          key: `url:${input}`,
          open: async () => {
            const info = await probe(input, ['http', 'https', 'rtsp']);
            return SOURCE_KINDS.url.create(`url:${display}`, ctx, { input, name: display, loop: false, probe: info, tools });
          },
        };
      }
      case 'device': {
        if (!this.config.sources.deviceSources) throw new SourceRefusal('source-disabled', 'device sources are off on this server');
        if (!DEVICE_RE.test(spec.path)) throw new SourceRefusal('forbidden-path', `device '${spec.path}' is not a v4l2 camera (/dev/videoN)`);
        try {
          await stat(spec.path);
        } catch {
          throw new SourceRefusal('not-found', `device '${spec.path}' does not exist`);
        }
        return {
          key: `device:${spec.path}`,
          open: async () => SOURCE_KINDS.device.create(`device:${spec.path}`, ctx, { input: spec.path, name: spec.path, loop: false, probe: undefined, tools }),
        };
      }
      default:
        throw new SourceRefusal('bad-source', 'webcam sources are the client\'s own');
    }
  }

  /**
   * A URL a viewer named, checked: URL sources on, a scheme ffmpeg may open, no characters that ffmpeg's URL
   * parser reads differently from WHATWG's (backslashes, spaces, controls), and a public host unless private
   * URLs are allowed. `input` is the normalized URL ffmpeg gets; `display` the same without credentials.
   */
  private async checkUrl(url: string): Promise<{ input: string; display: string }> {
    const { urlSources, privateUrls } = this.config.sources;
    if (!urlSources) throw new SourceRefusal('source-disabled', 'URL sources are off: start the server with --allow-url-sources');
    let u: URL;
    try {
      resolveInput(url, ['http', 'https', 'rtsp']);
      if (/[\\\s\x00-\x1f\x7f]/.test(url)) throw new Error(`URL ${JSON.stringify(url)} contains a backslash, a space or a control character`);
      u = new URL(url);
    } catch (err) {
      throw new SourceRefusal('bad-source', oneLine(err));
    }
    const refused = await urlHostRefusal(u, privateUrls);
    if (refused) throw new SourceRefusal('forbidden-url', refused);
    const input = u.href;
    // Credentials stay on the server: viewers see the URL without them.
    u.username = '';
    u.password = '';
    return { input, display: u.href };
  }

  leave(session: Session, source: LiveSource): void {
    if (source.removeViewer(session)) {
      source.dispose();
      for (const [key, s] of this.shared) if (s === source) this.shared.delete(key);
      const cam = this.webcams.get(session);
      if (cam === source) this.webcams.delete(session);
    }
  }

  closed(session: Session): void {
    this.sessions.delete(session);
    const cam = this.webcams.get(session);
    if (cam) {
      cam.dispose();
      this.webcams.delete(session);
    }
  }

  stats(): HubStats {
    const sources: LiveSource[] = [...this.shared.values(), ...this.webcams.values()];
    return {
      sessions: [...this.sessions].map((s) => ({ id: s.id, source: s.source?.id, sent: s.sent, skipped: s.skipped })),
      sources: sources.map((s) => s.stats()),
    };
  }

  /** Sources currently running (shared ones and webcams). */
  sources(): LiveSource[] {
    return [...this.shared.values(), ...this.webcams.values()];
  }

  private sendStats(): void {
    const rates = new Map<LiveSource, { sourceFps: number; processedFps: number }>();
    for (const s of this.sources()) rates.set(s, s.sampleRates());
    for (const session of this.sessions) {
      const source = session.source;
      if (!source) continue;
      const r = rates.get(source) ?? { sourceFps: 0, processedFps: 0 };
      session.notify({
        type: 'stats',
        sourceFps: Math.round(r.sourceFps * 10) / 10,
        processedFps: Math.round(r.processedFps * 10) / 10,
        dropped: source.droppedFrames,
        skipped: session.skipped,
        viewers: source.viewers.size,
      });
    }
  }

  /** Resolves once no inference is running or waiting (after `dispose`, before the models are freed). */
  async drain(): Promise<void> {
    await this.lock.run(async () => {});
  }

  /** Closes every session (1001) and ends every source (their ffmpeg children with them). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearInterval(this.statsTimer);
    for (const s of [...this.sessions]) s.close(CloseCode.GoingAway, 'server shutting down');
    for (const s of this.sources()) s.dispose();
    this.shared.clear();
    this.webcams.clear();
  }
}
