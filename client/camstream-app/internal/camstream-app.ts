/**
 * `<camstream-app>`: the page. Owns the socket and the camera (both ReactiveControllers) and wires the
 * viewer, the controls and the stats: results go to the viewer, what it drew goes to the stats, and the
 * controls' events become control messages or display changes. `?source=webcam|file:<path>|url:<url>`
 * selects a source on load; `?renderer=2d` forces the canvas 2D overlay.
 */
import { css, html, LitElement } from 'lit';
import { percentile } from '../../../common/index.ts';
import { encodeFrame, WS_PATH, type ResultMessage, type SourceSettings, type SourceSpec } from '../../../protocol/index.ts';
import { parseSourceValue, type DisplayOptions } from '../../cam-controls/cam-controls.ts';
import '../../cam-controls/cam-controls.ts';
import '../../cam-stats/cam-stats.ts';
import type { CamDrawnDetail, CamViewer } from '../../cam-viewer/cam-viewer.ts';
import '../../cam-viewer/cam-viewer.ts';
import { CameraController, type CapturedFrame } from '../../controllers/camera-controller.ts';
import { SocketController } from '../../controllers/socket-controller.ts';

function socketUrl(): string {
  const url = new URL(WS_PATH, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = new URLSearchParams(location.search).get('token');
  if (token) url.searchParams.set('token', token);
  return url.toString();
}

export class CamstreamApp extends LitElement {
  static override properties = {
    display: { state: true },
    mode: { state: true },
    labels: { state: true },
    figures: { state: true },
  };

  static override styles = css`
    :host { display: block; max-width: 1100px; margin: 0 auto; padding: 12px; color: #eee; font: 14px system-ui, sans-serif; }
    header { display: flex; align-items: baseline; gap: 12px; margin-bottom: 8px; }
    h1 { font-size: 18px; margin: 0; }
    .model, .error { font-size: 12px; color: #aaa; }
    .error { color: #ff8a80; }
    .layout { display: grid; grid-template-columns: minmax(0, 3fr) minmax(260px, 2fr); gap: 12px; }
    @media (max-width: 800px) { .layout { grid-template-columns: 1fr; } }
    cam-stats { margin-top: 8px; }
    .top { margin-top: 8px; font-size: 13px; }
    .top li { font-variant-numeric: tabular-nums; }
  `;

  declare display: DisplayOptions;
  declare mode: 'webcam' | 'server' | 'none';
  declare labels: string[];
  declare figures: { frames: number; fps: number; p50: number; p95: number; inferMs: number };

  private readonly socket = new SocketController(this, socketUrl());
  private readonly camera = new CameraController(this, (f) => this.sendFrame(f));
  private readonly params = new URLSearchParams(location.search);
  private selected: SourceSpec | undefined;
  private luts: Record<string, Uint8Array> = {};
  private latencies: number[] = [];
  private drawTimes: number[] = [];
  private lastResult: ResultMessage | undefined;

  constructor() {
    super();
    this.display = { choice: 0, opacity: 0.5, colormap: 'turbo', showBoxes: true };
    this.mode = 'none';
    this.labels = [];
    this.figures = { frames: 0, fps: 0, p50: Number.NaN, p95: Number.NaN, inferMs: Number.NaN };
    this.socket.onResult = (r) => this.onResult(r);
    this.socket.onReady = () => this.onReady();
  }

  /** Figures the stats show (also read by tests). */
  get stats() {
    return { ...this.figures, dropped: this.socket.stats?.dropped ?? 0, skipped: this.socket.stats?.skipped ?? 0, renderer: this.viewer?.rendererKind };
  }

  private get viewer(): CamViewer | null {
    return this.renderRoot.querySelector('cam-viewer');
  }

  private onReady(): void {
    const hello = this.socket.hello!;
    this.luts = Object.fromEntries(Object.entries(hello.colormaps).map(([name, b64]) => [name, Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))]));
    // After a reconnect, ask for the same source again; on first load, the page's ?source=.
    const wanted = this.selected ?? parseSourceValue(this.params.get('source') ?? '');
    if (wanted) void this.select(wanted);
    this.requestUpdate();
  }

  private async select(source: SourceSpec): Promise<void> {
    this.selected = source;
    this.viewer?.reset();
    this.latencies = [];
    this.drawTimes = [];
    this.figures = { frames: 0, fps: 0, p50: Number.NaN, p95: Number.NaN, inferMs: Number.NaN };
    this.socket.send({ type: 'select', source });
    if (source.kind === 'webcam') {
      this.mode = 'webcam';
      await this.updateComplete;
      const model = this.socket.hello!.model;
      const [inH, inW] = model.inputSize;
      let size: [number, number] = [inW, inH];
      if (model.resize === 'letterbox') {
        // Keep the camera's aspect: the engine pads, and the map's content rectangle says where.
        const video = this.viewer!.video;
        const aspect = video.videoWidth > 0 ? video.videoWidth / video.videoHeight : 4 / 3;
        size = aspect >= inW / inH ? [inW, Math.max(1, Math.round(inW / aspect))] : [Math.max(1, Math.round(inH * aspect)), inH];
      }
      await this.camera.start(this.viewer!.video, size);
    } else {
      this.camera.stop();
      this.mode = 'server';
    }
  }

  private sendFrame(f: CapturedFrame): boolean {
    // Behind on our own upload: skip this frame rather than queue it.
    if (this.socket.bufferedAmount > 512 * 1024) return false;
    return this.socket.sendBinary(encodeFrame(f));
  }

  private onResult(r: ResultMessage): void {
    if (this.mode === 'webcam') this.camera.answered(r.frameId);
    this.lastResult = r;
    this.viewer?.present(r);
    if (r.labels.join('\n') !== this.labels.join('\n')) this.labels = r.labels;
  }

  private onDrawn(e: CustomEvent<CamDrawnDetail>): void {
    const { result, drawnAt } = e.detail;
    const latency = this.mode === 'webcam' ? drawnAt - result.captureMs : Date.now() + this.socket.clockOffsetMs - result.captureMs;
    this.latencies.push(latency);
    if (this.latencies.length > 120) this.latencies.shift();
    this.drawTimes.push(drawnAt);
    while (this.drawTimes.length > 0 && drawnAt - this.drawTimes[0] > 2000) this.drawTimes.shift();
    const span = this.drawTimes.length > 1 ? (drawnAt - this.drawTimes[0]) / 1000 : 0;
    this.figures = {
      frames: this.figures.frames + 1,
      fps: span > 0 ? (this.drawTimes.length - 1) / span : 0,
      p50: percentile(this.latencies, 0.5),
      p95: percentile(this.latencies, 0.95),
      inferMs: result.timings.inferMs,
    };
  }

  private onDisplay(e: CustomEvent<{ patch: Partial<DisplayOptions> }>): void {
    this.display = { ...this.display, ...e.detail.patch };
  }

  private async onSnapshot(): Promise<void> {
    const viewer = this.viewer;
    if (!viewer || !this.lastResult) return;
    const blob = await viewer.snapshot();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `camstream-${new Date().toISOString().replace(/[:.]/g, '-')}.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }

  protected override render() {
    const s = this.socket;
    const hello = s.hello;
    const status = s.status;
    const statusText = !s.connected ? 'disconnected' : status ? `${status.state}${status.attempt ? ` (attempt ${status.attempt})` : ''}` : 'connected';
    return html`
      <header>
        <h1>camstream</h1>
        <span class="model">${hello ? `${hello.model.source} · ${hello.model.engine}/${hello.model.backend} · ${hello.model.inputSize[1]}x${hello.model.inputSize[0]}` : 'connecting…'}</span>
      </header>
      ${s.error || this.camera.error || status?.message ? html`<div class="error" role="status">${this.camera.error ?? s.error ?? status?.message}</div>` : ''}
      <div class="layout">
        <div>
          <cam-viewer
            .mode=${this.mode}
            .luts=${this.luts}
            .opacity=${this.display.opacity}
            .colormap=${this.display.colormap}
            .choice=${this.display.choice}
            .showBoxes=${this.display.showBoxes}
            .prefer=${this.params.get('renderer') === '2d' ? '2d' : 'webgl'}
            @cam-drawn=${this.onDrawn}
          ></cam-viewer>
          <cam-stats
            .fps=${this.figures.fps}
            .frames=${this.figures.frames}
            .latencyP50=${this.figures.p50}
            .latencyP95=${this.figures.p95}
            .inferMs=${this.figures.inferMs}
            .dropped=${s.stats?.dropped ?? 0}
            .skipped=${s.stats?.skipped ?? 0}
            .sourceFps=${s.stats?.sourceFps ?? 0}
            .renderer=${this.viewer?.rendererKind ?? ''}
            .status=${statusText}
          ></cam-stats>
          ${this.lastResult
            ? html`<ol class="top">${this.lastResult.labels.map((l, i) => html`<li>${l} — ${(100 * this.lastResult!.probabilities[i]).toFixed(1)}%</li>`)}</ol>`
            : ''}
        </div>
        <cam-controls
          .hello=${hello}
          .settings=${s.settings}
          .source=${s.source}
          .display=${this.display}
          .labels=${this.labels}
          .paused=${status?.state === 'paused'}
          .position=${status?.position ?? 0}
          @select-source=${(e: CustomEvent<{ source: SourceSpec }>) => void this.select(e.detail.source)}
          @settings-change=${(e: CustomEvent<{ settings: Partial<SourceSettings> }>) => s.send({ type: 'settings', settings: e.detail.settings })}
          @display-change=${this.onDisplay}
          @pause=${(e: CustomEvent<{ paused: boolean }>) => s.send({ type: 'pause', paused: e.detail.paused })}
          @seek=${(e: CustomEvent<{ seconds: number }>) => s.send({ type: 'seek', seconds: e.detail.seconds })}
          @snapshot=${() => void this.onSnapshot()}
        ></cam-controls>
      </div>
    `;
  }
}
