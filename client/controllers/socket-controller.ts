/**
 * The WebSocket to the camstream server as a ReactiveController: connects when the host connects,
 * reconnects with backoff after a drop, keeps a clock offset to the server (ping/pong), and closes in
 * hostDisconnected. Results go to `onResult`; control messages update the fields the host renders.
 */
import type { ReactiveController, ReactiveControllerHost } from 'lit';
import { CloseCode, decodeResult, type ClientMessage, type ResultMessage, type ServerMessage } from '../../protocol/index.ts';

type Hello = Extract<ServerMessage, { type: 'hello' }>;
type SourceInfo = Extract<ServerMessage, { type: 'source' }>;
type Stats = Extract<ServerMessage, { type: 'stats' }>;
type Status = Extract<ServerMessage, { type: 'status' }>;
type Settings = Extract<ServerMessage, { type: 'settings' }>['settings'];
type ModelInfo = Extract<ServerMessage, { type: 'model' }>;
type ModelStatus = Extract<ServerMessage, { type: 'model-status' }>;

/** Close codes after which reconnecting would only repeat the error. */
const FATAL_CLOSE = new Set<number>([CloseCode.BadMessage, CloseCode.Unauthorized, CloseCode.UnsupportedVersion, CloseCode.MessageTooLarge, CloseCode.BadFrame]);

export class SocketController implements ReactiveController {
  hello: Hello | undefined;
  source: SourceInfo | undefined;
  settings: Settings | undefined;
  status: Status | undefined;
  stats: Stats | undefined;
  /** The model the selected source runs (undefined before a source is selected). */
  model: ModelInfo | undefined;
  /** The last word on a model being loaded for the source: loading (with bytes), ready, or failed. */
  modelStatus: ModelStatus | undefined;
  /** Called when the source's model changes (a viewer switched it, or a new source was selected). */
  onModel: ((model: ModelInfo) => void) | undefined;
  /** The last non-fatal error the server sent, or a close reason. */
  error: string | undefined;
  connected = false;
  /** Server clock minus this page's Date.now(), ms (from ping/pong; 0 until measured). */
  clockOffsetMs = 0;
  onResult: ((result: ResultMessage) => void) | undefined;
  /** Called when the server says which source this viewer now watches (after each select). */
  onSource: ((source: SourceInfo) => void) | undefined;
  /** Called after each (re)connection, once `hello` arrived: the host re-sends its selection. */
  onReady: (() => void) | undefined;

  private ws: WebSocket | undefined;
  private retryMs = 500;
  private retryTimer: number | undefined;
  private pingTimer: number | undefined;
  private active = false;

  constructor(
    private readonly host: ReactiveControllerHost,
    private readonly url: string,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    this.active = true;
    this.open();
  }

  hostDisconnected(): void {
    this.active = false;
    window.clearTimeout(this.retryTimer);
    window.clearInterval(this.pingTimer);
    this.ws?.close(CloseCode.Normal, 'page closed');
    this.ws = undefined;
    this.connected = false;
  }

  /** Bytes queued on the socket (the camera skips frames while this is high). */
  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  send(message: ClientMessage): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  sendBinary(bytes: Uint8Array): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(bytes);
    return true;
  }

  private open(): void {
    const ws = new WebSocket(this.url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.connected = true;
      this.retryMs = 500;
      this.error = undefined;
      this.ping();
      this.pingTimer = window.setInterval(() => this.ping(), 5000);
      this.host.requestUpdate();
    };
    ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
      if (typeof event.data === 'string') this.control(JSON.parse(event.data) as ServerMessage);
      else this.onResult?.(decodeResult(new Uint8Array(event.data)));
    };
    ws.onclose = (event) => {
      window.clearInterval(this.pingTimer);
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.connected = false;
      if (event.code !== CloseCode.Normal) this.error = `connection closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`;
      this.host.requestUpdate();
      if (this.active && !FATAL_CLOSE.has(event.code)) {
        this.retryTimer = window.setTimeout(() => this.open(), this.retryMs);
        this.retryMs = Math.min(10_000, this.retryMs * 2);
      }
    };
  }

  private ping(): void {
    this.send({ type: 'ping', t: Date.now() });
  }

  private control(m: ServerMessage): void {
    switch (m.type) {
      case 'hello':
        this.hello = m;
        this.settings = m.settings;
        this.onReady?.();
        break;
      case 'source':
        this.source = m;
        this.onSource?.(m);
        break;
      case 'settings':
        this.settings = m.settings;
        break;
      case 'model':
        this.model = m;
        this.onModel?.(m);
        break;
      case 'model-status':
        this.modelStatus = m;
        break;
      case 'status':
        this.status = m;
        break;
      case 'stats':
        this.stats = m;
        break;
      case 'error':
        this.error = `${m.code}: ${m.message}`;
        break;
      case 'pong': {
        // The server's clock at the middle of the round trip.
        const now = Date.now();
        this.clockOffsetMs = m.serverMs - (m.t + now) / 2;
        break;
      }
    }
    this.host.requestUpdate();
  }
}
