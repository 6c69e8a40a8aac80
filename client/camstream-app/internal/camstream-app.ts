/**
 * `<camstream-app>`: the page. Owns the socket and the camera (both ReactiveControllers) and wires the
 * viewer, the controls and the stats: results go to the viewer, what it drew goes to the stats, and the
 * controls' events become control messages or display changes. `?source=webcam|file:<path>|url:<url>`
 * selects a source on load; `?renderer=2d` forces the canvas 2D overlay. The source's model (the server's
 * `model` message; a pick in the controls asks for another) drives the header, the note, the verdict
 * ("no digit" included, verdict.ts) and the size of the camera frames sent.
 */
import { css, html, LitElement } from 'lit';
import { percentile } from '../../../common/index.ts';
import { encodeFrame, WS_PATH, type ModelSummary, type ResultMessage, type SourceSettings, type SourceSpec } from '../../../protocol/index.ts';
import { parseSourceValue, type DisplayOptions } from '../../cam-controls/cam-controls.ts';
import '../../cam-controls/cam-controls.ts';
import '../../cam-stats/cam-stats.ts';
import type { CamDrawnDetail, CamViewer } from '../../cam-viewer/cam-viewer.ts';
import '../../cam-viewer/cam-viewer.ts';
import { CameraController, type CapturedFrame } from '../../controllers/camera-controller.ts';
import { SocketController } from '../../controllers/socket-controller.ts';
import { verdict, type NoneRule } from './verdict.ts';

function socketUrl(): string {
  const url = new URL(WS_PATH, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = new URLSearchParams(location.search).get('token');
  if (token) url.searchParams.set('token', token);
  return url.toString();
}

/** The header's model line: name, engine and backend, input size, class count. */
function modelLine(m: ModelSummary): string {
  const name = m.name ?? m.source.split(/[\\/]/).filter((p) => p && p !== 'model.json').pop() ?? m.source;
  return `${name} · ${m.engine}/${m.backend} · ${m.inputSize[1]}x${m.inputSize[0]} · ${m.numClasses} classes`;
}

/** Indices of `scores`, highest first (ties keep their order). */
export function rankByScore(scores: ArrayLike<number>): number[] {
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
}

/** Bytes as megabytes with one decimal. */
function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** localStorage key of the last source picked here: the next visit starts it again. */
const REMEMBERED_SOURCE = 'camstream.source';

/** Remembers a webcam or media-file choice (other kinds may carry credentials, and are not stored). */
function remember(source: SourceSpec): void {
  if (source.kind !== 'webcam' && source.kind !== 'file') return;
  try {
    localStorage.setItem(REMEMBERED_SOURCE, source.kind === 'webcam' ? 'webcam' : `file:${source.path}`);
  } catch {
    // Storage off (private mode): the page just asks again next time.
  }
}

function remembered(): SourceSpec | undefined {
  try {
    return parseSourceValue(localStorage.getItem(REMEMBERED_SOURCE) ?? '');
  } catch {
    return undefined;
  }
}

/** `path` with this page's `?token=` carried over (the review page and the live page link to each other). */
function withToken(path: string): string {
  const token = new URLSearchParams(location.search).get('token');
  return token ? `${path}?token=${encodeURIComponent(token)}` : path;
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
    .note { margin: 0 0 8px; color: #ffd54f; }
    .loading { margin: 0 0 8px; color: #8ab4f8; }
    .verdict { margin: 8px 0 0; font-size: 20px; font-weight: 600; }
    .verdict.none { color: #aaa; }
    .start { display: flex; gap: 12px; align-items: center; margin-bottom: 8px; }
    .start button { font: inherit; font-size: 15px; padding: 6px 14px; }
    .error { color: #ff8a80; }
    .layout { display: grid; grid-template-columns: minmax(0, 3fr) minmax(260px, 2fr); gap: 12px; }
    @media (max-width: 800px) { .layout { grid-template-columns: 1fr; } }
    cam-stats { margin-top: 8px; }
    .top { margin-top: 8px; font-size: 13px; }
    .top li { font-variant-numeric: tabular-nums; }
    .top li.held { font-weight: 600; }
    .tag { font-size: 11px; color: #00e676; border: 1px solid #00e676; border-radius: 3px; padding: 0 3px; }
    nav a { color: #8ab4f8; font-size: 13px; }
    a:focus-visible, button:focus-visible { outline: 2px solid #8ab4f8; outline-offset: 2px; }
    a:focus:not(:focus-visible) { outline: none; }
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
  /**
   * Whether results belong to the selected source: false from a select until the server confirms the new
   * source, so a result of the previous one (still in flight) never enters the new source's stats.
   */
  private accepting = false;

  constructor() {
    super();
    this.display = { choice: 'shown', opacity: 0.5, colormap: 'turbo', showBoxes: true };
    this.mode = 'none';
    this.labels = [];
    this.figures = { frames: 0, fps: 0, p50: Number.NaN, p95: Number.NaN, inferMs: Number.NaN };
    this.socket.onResult = (r) => this.onResult(r);
    this.socket.onReady = () => this.onReady();
    this.socket.onSource = (m) => {
      if (this.selected?.kind !== m.kind) return;
      this.accepting = true;
      this.resetFigures();
    };
    this.socket.onModel = (m) => {
      // Figures are per model too: a slower model's latencies say nothing of the last one's.
      if (m.id !== this.modelId) this.resetFigures();
      this.modelId = m.id;
    };
  }

  /** Id of the model whose figures are being gathered. */
  private modelId: string | undefined;

  /** The model the selected source runs (the server's default until a source says otherwise). */
  private get activeModel(): ModelSummary | undefined {
    return this.socket.model?.model ?? this.socket.hello?.model;
  }

  /** How the page reads "no digit" for the source's model (none before its model message). */
  private get noneRule(): NoneRule | undefined {
    const m = this.socket.model;
    return m ? { noneClass: m.noneClass, lowConfidence: m.lowConfidence } : undefined;
  }

  /** Starts the stats afresh (a new source: its latencies and rates have nothing to do with the last one's). */
  private resetFigures(): void {
    this.latencies = [];
    this.drawTimes = [];
    this.figures = { frames: 0, fps: 0, p50: Number.NaN, p95: Number.NaN, inferMs: Number.NaN };
  }

  /** Figures the stats show (also read by tests). */
  get stats() {
    const s = this.socket.stats;
    return { ...this.figures, dropped: s?.dropped ?? 0, skipped: s?.skipped ?? 0, sourceFps: s?.sourceFps ?? 0, pts: this.lastResult?.pts ?? 0, renderer: this.viewer?.rendererKind };
  }

  private get viewer(): CamViewer | null {
    return this.renderRoot.querySelector('cam-viewer');
  }

  private onReady(): void {
    const hello = this.socket.hello!;
    this.luts = Object.fromEntries(Object.entries(hello.colormaps).map(([name, b64]) => [name, Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))]));
    // After a reconnect, ask for the same source again; on first load, the page's ?source=.
    const wanted = this.selected ?? parseSourceValue(this.params.get('source') ?? '') ?? remembered();
    if (wanted && (hello.sourceKinds.includes(wanted.kind) || this.selected)) void this.select(wanted);
    this.requestUpdate();
  }

  private async select(source: SourceSpec): Promise<void> {
    this.selected = source;
    remember(source);
    this.accepting = false;
    this.lastResult = undefined;
    this.socket.model = undefined;
    this.socket.modelStatus = undefined;
    this.viewer?.reset();
    this.resetFigures();
    if (source.kind !== 'webcam') this.camera.stop();
    this.socket.send({ type: 'select', source });
    if (source.kind === 'webcam') {
      this.mode = 'webcam';
      await this.updateComplete;
      // Only a model-sized frame travels. A stretching model gets its own input shape; a letterboxing one
      // the camera's aspect (the engine pads, and the map's content rectangle says where). Read at each
      // capture: a viewer may switch the source's model.
      const size = (vw: number, vh: number): [number, number] => {
        const model = this.activeModel!;
        const [inH, inW] = model.inputSize;
        if (model.resize !== 'letterbox') return [inW, inH];
        const aspect = vw > 0 && vh > 0 ? vw / vh : 4 / 3;
        return aspect >= inW / inH ? [inW, Math.max(1, Math.round(inW / aspect))] : [Math.max(1, Math.round(inH * aspect)), inH];
      };
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
    const fromWebcam = r.jpeg === undefined;
    if (fromWebcam && this.mode === 'webcam') this.camera.answered(r.frameId);
    // Only the selected source's results: webcam results carry no frame, server sources' do.
    if (!this.accepting || fromWebcam !== (this.mode === 'webcam')) return;
    this.lastResult = r;
    this.viewer?.present(r);
    if (r.labels.join('\n') !== this.labels.join('\n')) this.labels = r.labels;
  }

  private onDrawn(e: CustomEvent<CamDrawnDetail>): void {
    const { result, drawnAt } = e.detail;
    if (!this.accepting || (result.jpeg === undefined) !== (this.mode === 'webcam')) return;
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

  /**
   * The top-k by score, best first. The class the map shows (the result's `shown`) may be held there by
   * hysteresis while another scores higher: it is marked as shown, not moved to the top.
   */
  private renderTop(r: ResultMessage) {
    const order = rankByScore(r.probabilities);
    return html`<ol class="top" aria-label="top classes by score">
      ${order.map((i) => html`<li class=${i === r.shown ? 'held' : ''}>${r.labels[i] ?? r.ids[i]} — ${(100 * r.probabilities[i]).toFixed(1)}%${i === r.shown ? html` <span class="tag">${r.ids[i] === this.socket.model?.noneClass ? 'shown, no map' : 'on the map'}</span>` : ''}</li>`)}
    </ol>`;
  }

  /** The answer the page gives for `r`: the class on the map, or "no digit" (see verdict.ts). */
  private renderVerdict(r: ResultMessage) {
    const v = verdict(r, this.noneRule);
    if (!v) return '';
    return html`<p class="verdict ${v.none ? 'none' : ''}" id="verdict" aria-live="polite">${v.text}${v.none ? '' : ` ${(100 * v.probability).toFixed(0)}%`}</p>`;
  }

  /** Loading a model for the source: progress, or why it failed (the source keeps its old model). */
  private renderModelStatus() {
    const st = this.socket.modelStatus;
    if (!st || st.state === 'ready') return '';
    if (st.state === 'failed') return html`<div class="error" id="model-error" role="alert">Could not load ${st.name}: ${st.message ?? 'unknown error'}. The source keeps its model.</div>`;
    const bytes = st.loaded !== undefined ? (st.total ? ` ${Math.floor((100 * st.loaded) / st.total)}% (${mb(st.loaded)} of ${mb(st.total)})` : ` ${mb(st.loaded)}`) : '';
    return html`<p class="loading" id="model-status" role="status">Loading ${st.name}…${bytes}</p>`;
  }

  protected override render() {
    const s = this.socket;
    const hello = s.hello;
    const model = this.activeModel;
    const others = (hello?.models ?? []).filter((c) => c.id !== (s.model?.id ?? hello?.modelId));
    const status = s.status;
    const statusText = !s.connected ? 'disconnected' : status ? `${status.state}${status.attempt ? ` (attempt ${status.attempt})` : ''}` : 'connected';
    return html`
      <header>
        <h1>camstream</h1>
        <nav><a href=${withToken('review')}>review</a></nav>
        <span class="model" id="model">${model ? modelLine(model) : 'connecting…'}</span>
      </header>
      ${model?.note
        ? html`<p class="note" id="model-note">This is ${model.note}.${others.length > 0 ? ` Other models: ${others.map((c) => c.name).join(', ')} (pick one under Model).` : ''}</p>`
        : ''}
      ${this.renderModelStatus()}
      ${s.error || this.camera.error || status?.message ? html`<div class="error" role="alert">${this.camera.error ?? s.error ?? status?.message}</div>` : ''}
      ${hello && hello.sourceKinds.includes('webcam') && (this.mode === 'none' || this.camera.error)
        ? html`<div class="start"><button id="start-camera" @click=${() => void this.select({ kind: 'webcam' })}>Start the camera</button>
            <span>${hello.media.length > 0 ? 'or pick a file under Source' : ''}</span></div>`
        : ''}
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
            .hiddenClass=${s.model?.noneClass ?? null}
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
          ${this.lastResult ? this.renderVerdict(this.lastResult) : ''}
          ${this.lastResult ? this.renderTop(this.lastResult) : ''}
        </div>
        <cam-controls
          .hello=${hello}
          .settings=${s.settings}
          .source=${s.source}
          .display=${this.display}
          .labels=${this.labels}
          .modelId=${s.model?.id ?? hello?.modelId ?? ''}
          .modelLoad=${s.modelStatus?.state ?? ''}
          .classLabels=${s.model?.labels ?? hello?.labels ?? []}
          .maxTopK=${s.model?.maxTopK ?? hello?.maxTopK ?? 10}
          .paused=${status?.state === 'paused'}
          .position=${(status?.state === 'paused' ? status.position : this.lastResult?.pts) ?? status?.position ?? 0}
          @select-source=${(e: CustomEvent<{ source: SourceSpec }>) => void this.select(e.detail.source)}
          @settings-change=${(e: CustomEvent<{ settings: Partial<SourceSettings> }>) => s.send({ type: 'settings', settings: e.detail.settings })}
          @display-change=${this.onDisplay}
          @pause=${(e: CustomEvent<{ paused: boolean }>) => s.send({ type: 'pause', paused: e.detail.paused })}
          @seek=${(e: CustomEvent<{ seconds: number }>) => s.send({ type: 'seek', seconds: e.detail.seconds })}
          @snapshot=${() => void this.onSnapshot()}
          @model-change=${(e: CustomEvent<{ id: string }>) => s.send({ type: 'model', id: e.detail.id })}
        ></cam-controls>
      </div>
    `;
  }
}
