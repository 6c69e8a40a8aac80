/**
 * The transport-free session core: one `Session` per connected viewer, over the small `SessionSocket`
 * interface (the ws adapter implements it; tests can implement it in memory). A session parses and
 * validates what its client sends, keeps its source selection, and sends results under the slow-client
 * policy: while `maxPendingSends` sends are unfinished or the socket holds more than `maxBufferedBytes`,
 * results are skipped (counted), never queued. Control messages are always sent: they are small and rare.
 */
import type { ResolvedServerConfig } from '../config.ts';
import {
  CLOSE_REASONS,
  CloseCode,
  decodeFrame,
  FrameEncoding,
  parseClientMessage,
  ProtocolViolation,
  type ClientMessage,
  type ControlLimits,
  type ErrorCode,
  type ServerMessage,
  type WireLimits,
} from '../../protocol/index.ts';
import type { LiveSource, SourceViewer, WebcamSource } from '../../pipelines/index.ts';

/** What a session needs of a transport. */
export interface SessionSocket {
  /** Sends one message; resolves once the transport has written it out, rejects if it cannot. */
  send(data: Uint8Array | string): Promise<void>;
  /** Bytes accepted by `send` and not yet written out. */
  readonly bufferedAmount: number;
  /** Closes with a code and a short reason. Idempotent. */
  close(code: number, reason: string): void;
  /** Registers the handler of incoming messages (text as string, binary as bytes). */
  onMessage(handler: (data: Uint8Array | string) => void): void;
  /** Registers the handler called once when the transport closes, whoever closed it. */
  onClose(handler: () => void): void;
  /** The peer's address, for the per-address limits; transports without one leave it out. */
  readonly remoteAddress?: string;
}

/** What a session needs of the hub (the server core). */
export interface SessionHost {
  readonly config: ResolvedServerConfig;
  readonly limits: WireLimits;
  readonly controlLimits: ControlLimits;
  hello(): Promise<ServerMessage>;
  /** Opens (or joins) the source a viewer selected. Throws SourceRefusal for a refused or bad source. */
  join(session: Session, message: ClientMessage & { type: 'select' }): Promise<LiveSource>;
  /** The session's own webcam source (created on its first frame). */
  webcam(session: Session): WebcamSource;
  leave(session: Session, source: LiveSource): void;
  closed(session: Session): void;
  /** Runs the session's source on another offered model (loading it first). Throws SourceRefusal. */
  switchModel(session: Session, id: string): Promise<void>;
}

/** A refused source selection: the error code sent to the viewer, the connection stays open. */
export class SourceRefusal extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SourceRefusal';
  }
}

let nextSessionId = 1;

export class Session implements SourceViewer {
  readonly id = nextSessionId++;
  source: LiveSource | undefined;
  private pendingSends = 0;
  private skippedCount = 0;
  private sentCount = 0;
  private closedFlag = false;
  /** Control messages run one after another (select may wait for a probe). */
  private control: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: SessionSocket,
    private readonly host: SessionHost,
  ) {
    socket.onMessage((data) => this.receive(data));
    socket.onClose(() => this.onClosed());
    host.hello().then(
      (m) => this.notify(m),
      (err: unknown) => this.fail(err),
    );
  }

  /** The peer's address (`local` for a transport without one). */
  get remoteAddress(): string {
    return this.socket.remoteAddress ?? 'local';
  }

  get skipped(): number {
    return this.skippedCount;
  }

  get sent(): number {
    return this.sentCount;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Result messages: skipped while this client is behind (see the module doc). */
  deliver(message: Uint8Array): void {
    if (this.closedFlag) return;
    const { maxPendingSends, maxBufferedBytes } = this.host.config.limits;
    if (this.pendingSends >= maxPendingSends || this.socket.bufferedAmount > maxBufferedBytes) {
      this.skippedCount++;
      return;
    }
    this.pendingSends++;
    this.sentCount++;
    this.socket.send(message).then(
      () => {
        this.pendingSends--;
      },
      () => {
        this.pendingSends--;
      },
    );
  }

  notify(message: ServerMessage): void {
    if (this.closedFlag) return;
    this.socket.send(JSON.stringify(message)).catch(() => {});
  }

  /** Closes the connection with a typed code (idempotent). */
  close(code: number, reason?: string): void {
    if (this.closedFlag) return;
    this.socket.close(code, (reason ?? CLOSE_REASONS[code] ?? '').slice(0, 120));
    this.onClosed();
  }

  private receive(data: Uint8Array | string): void {
    if (this.closedFlag) return;
    try {
      if (typeof data === 'string') {
        const message = parseClientMessage(data, this.host.controlLimits);
        this.control = this.control.then(() => this.handle(message)).catch((err: unknown) => this.fail(err));
      } else {
        this.frame(data);
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    if (err instanceof ProtocolViolation) this.close(err.closeCode, err.message);
    else if (err instanceof SourceRefusal) this.notify({ type: 'error', code: err.code, message: err.message });
    else this.close(CloseCode.InternalError, err instanceof Error ? err.message : String(err));
  }

  private frame(bytes: Uint8Array): void {
    const f = decodeFrame(bytes, this.host.limits);
    // A frame selects this client's webcam: a Node client need not send `select` first.
    const webcam = this.host.webcam(this);
    if (this.source !== webcam) {
      if (this.source) this.host.leave(this, this.source);
      this.source = webcam;
      webcam.addViewer(this);
    }
    // The payload is a view into the socket's buffer; the pipeline keeps it only while the frame waits.
    const common = { frameId: f.frameId, pts: 0, captureMs: f.captureMs, arrivedAt: performance.now(), width: f.width, height: f.height };
    if (f.encoding === FrameEncoding.Jpeg) webcam.push({ ...common, jpeg: f.payload });
    else webcam.push({ ...common, pixels: { data: f.payload, width: f.width, height: f.height } });
  }

  private async handle(m: ClientMessage): Promise<void> {
    if (this.closedFlag) return;
    switch (m.type) {
      case 'ping':
        this.notify({ type: 'pong', t: m.t, serverMs: Date.now() });
        return;
      case 'select': {
        const source = await this.host.join(this, m);
        if (this.closedFlag) {
          this.host.leave(this, source);
          return;
        }
        if (this.source && this.source !== source) this.host.leave(this, this.source);
        if (this.source !== source) {
          this.source = source;
          source.addViewer(this);
        }
        return;
      }
      case 'settings': {
        if (!this.source) throw new SourceRefusal('no-source', 'select a source before changing its settings');
        // Checked against the source's own model (the parser only knows the largest one loaded).
        const { numClasses } = this.source.model.model.info;
        const bad = m.settings.classes?.find((id) => id >= numClasses);
        if (bad !== undefined) throw new SourceRefusal('bad-settings', `class id ${bad} is not one of the ${numClasses} classes of the source's model`);
        if (m.settings.topK !== undefined && m.settings.topK > numClasses) throw new SourceRefusal('bad-settings', `topK ${m.settings.topK} is over the ${numClasses} classes of the source's model`);
        this.source.updateSettings(m.settings);
        return;
      }
      case 'model':
        // Not waited for: a model may take seconds to load, and this viewer's other messages must not queue behind it.
        this.host.switchModel(this, m.id).catch((err: unknown) => this.fail(err));
        return;
      case 'pause': {
        if (!this.source) throw new SourceRefusal('no-source', 'select a source before pausing it');
        const refused = this.source.pause(m.paused);
        if (refused) throw new SourceRefusal('not-seekable', refused);
        return;
      }
      case 'seek': {
        if (!this.source) throw new SourceRefusal('no-source', 'select a source before seeking');
        const refused = this.source.seek(m.seconds);
        if (refused) throw new SourceRefusal('not-seekable', refused);
        return;
      }
    }
  }

  private onClosed(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    if (this.source) this.host.leave(this, this.source);
    this.source = undefined;
    this.host.closed(this);
  }
}
