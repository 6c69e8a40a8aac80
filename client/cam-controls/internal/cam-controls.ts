/**
 * `<cam-controls>`: source, classes (top-k or named classes), smoothing and box rule (sent to the server,
 * shared by everyone watching the source), and the display-only choices (which map, opacity, colormap,
 * boxes on/off: instant, local). Pure render from properties; every change goes up as an event:
 * `select-source` {source}, `settings-change` {settings}, `display-change` {patch}, `pause` {paused},
 * `seek` {seconds}, `snapshot`, `model-change` {id} (a model of `hello.models` for the source).
 */
import { css, html, LitElement, nothing } from 'lit';
import { live } from 'lit/directives/live.js';
import type { ServerMessage, SourceSettings, SourceSpec } from '../../../protocol/index.ts';
import type { MapChoice } from '../../cam-viewer/cam-viewer.ts';

type Hello = Extract<ServerMessage, { type: 'hello' }>;
type SourceInfo = Extract<ServerMessage, { type: 'source' }>;

export interface DisplayOptions {
  choice: MapChoice;
  opacity: number;
  colormap: string;
  showBoxes: boolean;
}

export class CamControls extends LitElement {
  static override properties = {
    hello: { attribute: false },
    settings: { attribute: false },
    source: { attribute: false },
    display: { attribute: false },
    labels: { attribute: false },
    modelId: { type: String },
    modelLoad: { type: String },
    classLabels: { attribute: false },
    maxTopK: { type: Number },
    paused: { type: Boolean },
    position: { type: Number },
    seekTo: { state: true },
  };

  static override styles = css`
    :host { display: block; font: 13px system-ui, sans-serif; color: #ddd; }
    fieldset { border: 1px solid #333; border-radius: 6px; margin: 0 0 8px; padding: 6px 8px; display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; }
    legend { color: #999; font-size: 11px; }
    label { display: inline-flex; gap: 6px; align-items: center; }
    input[type='text'] { width: 15em; }
    input, select, button { font: inherit; }
    button { cursor: pointer; }
    input:focus-visible, select:focus-visible, button:focus-visible { outline: 2px solid #8ab4f8; outline-offset: 2px; }
    #time { font-variant-numeric: tabular-nums; color: #aaa; }
  `;

  declare hello: Hello | undefined;
  declare settings: SourceSettings | undefined;
  declare source: SourceInfo | undefined;
  declare display: DisplayOptions;
  /** Labels of the current result's classes, best first (for the map choice). */
  declare labels: string[];
  /** Id (in `hello.models`) of the model the source runs. */
  declare modelId: string;
  /**
   * The last model switch's state (`loading`, `ready`, `failed`; '' before any). A switch that fails leaves
   * `modelId` as it was, so without this nothing would re-render the picker, which would go on showing the
   * model the user picked rather than the one the source kept.
   */
  declare modelLoad: string;
  /** Every class label of the source's model (the classes field's suggestions). */
  declare classLabels: string[];
  /** Largest top-k the source's model allows. */
  declare maxTopK: number;
  declare paused: boolean;
  /** Seconds into the source: the latest map's position (server sources). */
  declare position: number;
  /** Where the user dragged the seek bar to, until the source gets there (or gives up, 2 s later). */
  declare seekTo: { seconds: number; at: number; released: boolean } | undefined;

  constructor() {
    super();
    this.display = { choice: 'shown', opacity: 0.5, colormap: 'turbo', showBoxes: true };
    this.labels = [];
    this.modelId = '';
    this.modelLoad = '';
    this.classLabels = [];
    this.maxTopK = 10;
    this.paused = false;
    this.position = 0;
  }

  private emit(type: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  private onSource(e: Event): void {
    const value = (e.target as HTMLSelectElement).value;
    const spec = parseSourceValue(value, this.renderRoot.querySelector<HTMLInputElement>('#location')?.value ?? '');
    if (spec) this.emit('select-source', { source: spec });
  }

  private onOpenLocation(): void {
    const value = this.renderRoot.querySelector<HTMLInputElement>('#location')?.value.trim() ?? '';
    if (!value) return;
    const source: SourceSpec = value.startsWith('/dev/') ? { kind: 'device', path: value } : { kind: 'url', url: value };
    this.emit('select-source', { source });
  }

  private onSeekInput(e: Event): void {
    this.seekTo = { seconds: Number((e.target as HTMLInputElement).value), at: performance.now(), released: false };
  }

  private onSeekChange(e: Event): void {
    const seconds = Number((e.target as HTMLInputElement).value);
    this.seekTo = { seconds, at: performance.now(), released: true };
    this.emit('seek', { seconds });
  }

  /** The bar's value: the drag while dragging or until the source reaches it, else the source's position. */
  private shownPosition(): number {
    const t = this.seekTo;
    if (!t) return this.position;
    const arrived = t.released && (Math.abs(this.position - t.seconds) < 1 || performance.now() - t.at > 2000);
    if (!arrived) return t.seconds;
    this.seekTo = undefined;
    return this.position;
  }

  private renderSeek(duration: number) {
    const at = this.shownPosition();
    return html`<label>seek
        <input id="seek" type="range" min="0" max=${duration} step="0.1" aria-valuetext=${`${clock(at)} of ${clock(duration)}`}
          .value=${String(at)} @input=${this.onSeekInput} @change=${this.onSeekChange} /></label>
      <span id="time" aria-live="off">${clock(at)} / ${clock(duration)}</span>`;
  }

  private renderModels() {
    const choices = this.hello?.models ?? [];
    if (choices.length === 0) return nothing;
    const current = this.modelId || this.hello?.modelId || '';
    // A switch applies to a source: before one is selected there is nothing to switch.
    return html`<label>model
      <select id="model-picker" aria-label="model for this source" ?disabled=${!this.source} .value=${live(current)}
        @change=${(e: Event) => this.emit('model-change', { id: (e.target as HTMLSelectElement).value })}>
        ${choices.map((c) => html`<option value=${c.id} ?selected=${c.id === current}>${c.name}${c.note ? ` (${c.note.split(':')[0]})` : ''}</option>`)}
      </select></label>`;
  }

  private onClasses(e: Event): void {
    const text = (e.target as HTMLInputElement).value.trim();
    if (!text) {
      this.emit('settings-change', { settings: { classes: null } });
      return;
    }
    const labels = this.classLabels;
    const ids: number[] = [];
    for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
      const n = Number(part);
      const id = Number.isInteger(n) ? n : labels.findIndex((l) => l.toLowerCase() === part.toLowerCase());
      if (id >= 0 && id < labels.length && !ids.includes(id)) ids.push(id);
    }
    if (ids.length > 0) this.emit('settings-change', { settings: { classes: ids.slice(0, this.maxTopK) } });
  }

  protected override render() {
    const hello = this.hello;
    const s = this.settings;
    const kinds = hello?.sourceKinds ?? [];
    const current = this.source ? sourceValue(this.source) : '';
    const d = this.display;
    const seekable = this.source?.seekable ?? false;
    const duration = this.source?.durationSeconds ?? 0;
    return html`
      <fieldset>
        <legend>Source</legend>
        <label>source
          <select id="source" @change=${this.onSource} .value=${current}>
            <option value="" ?selected=${current === ''}>choose…</option>
            ${kinds.includes('webcam') ? html`<option value="webcam" ?selected=${current === 'webcam'}>this browser's camera</option>` : nothing}
            ${(hello?.media ?? []).map((m) => html`<option value=${`file:${m}`} ?selected=${current === `file:${m}`}>${m}</option>`)}
          </select>
        </label>
        ${kinds.includes('url') || kinds.includes('device')
          ? html`<label>URL or device <input id="location" type="text" placeholder="rtsp://… or /dev/video0" @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && this.onOpenLocation()} /></label>
              <button @click=${this.onOpenLocation}>open</button>`
          : nothing}
        ${this.source && this.source.kind !== 'webcam'
          ? html`<button id="pause" @click=${() => this.emit('pause', { paused: !this.paused })}>${this.paused ? 'play' : 'pause'}</button>`
          : nothing}
        ${seekable ? this.renderSeek(duration) : nothing}
        <button id="snapshot" aria-label="snapshot: save the picture with its map as PNG" @click=${() => this.emit('snapshot', {})}>snapshot (PNG)</button>
      </fieldset>
      <fieldset>
        <legend>Model (shared by everyone watching this source)</legend>
        ${this.renderModels()}
        <label>top-k
          <input id="topk" type="number" min="1" max=${this.maxTopK} .value=${String(s?.topK ?? 5)}
            @change=${(e: Event) => this.emit('settings-change', { settings: { topK: Number((e.target as HTMLInputElement).value) } })} />
        </label>
        <label>classes <input id="classes" type="text" list="labels" placeholder="top-k, or labels / ids, comma-separated" @change=${this.onClasses} /></label>
        <datalist id="labels">${this.classLabels.slice(0, 2000).map((l) => html`<option value=${l}></option>`)}</datalist>
        <label>smoothing
          <input id="smoothing" type="range" min="0" max="0.95" step="0.05" .value=${String(s?.smoothing ?? 0.7)}
            @change=${(e: Event) => this.emit('settings-change', { settings: { smoothing: Number((e.target as HTMLInputElement).value) } })} />
        </label>
        <label>boxes
          <select id="box-rule" .value=${s?.boxRule ?? 'paper'} @change=${(e: Event) => this.emit('settings-change', { settings: { boxRule: (e.target as HTMLSelectElement).value } })}>
            <option value="paper">paper (largest component)</option>
            <option value="official">official (released code)</option>
            <option value="off">off</option>
          </select>
        </label>
      </fieldset>
      <fieldset>
        <legend>Display (this page only)</legend>
        <label>map
          <select id="choice" @change=${(e: Event) => {
            const v = (e.target as HTMLSelectElement).value;
            this.emit('display-change', { patch: { choice: v === 'max' || v === 'shown' ? v : Number(v) } });
          }}>
            <option value="shown" ?selected=${d.choice === 'shown'}>shown (held by smoothing)</option>
            ${this.labels.map((l, i) => html`<option value=${i} ?selected=${d.choice === i}>${i === 0 ? `top: ${l}` : `#${i + 1}: ${l}`}</option>`)}
            <option value="max" ?selected=${d.choice === 'max'}>all (max of top-k)</option>
          </select>
        </label>
        <label>opacity <input id="opacity" type="range" min="0" max="1" step="0.05" .value=${String(d.opacity)} @input=${(e: Event) => this.emit('display-change', { patch: { opacity: Number((e.target as HTMLInputElement).value) } })} /></label>
        <label>colormap
          <select id="colormap" @change=${(e: Event) => this.emit('display-change', { patch: { colormap: (e.target as HTMLSelectElement).value } })}>
            ${Object.keys(hello?.colormaps ?? { turbo: '' }).map((c) => html`<option value=${c} ?selected=${c === d.colormap}>${c}</option>`)}
          </select>
        </label>
        <label><input id="show-boxes" type="checkbox" .checked=${d.showBoxes} @change=${(e: Event) => this.emit('display-change', { patch: { showBoxes: (e.target as HTMLInputElement).checked } })} /> show boxes</label>
      </fieldset>
    `;
  }
}

/** `m:ss.s` for a time in seconds. */
export function clock(seconds: number): string {
  const s = Math.max(0, seconds);
  const m = Math.floor(s / 60);
  const rest = (s - 60 * m).toFixed(1).padStart(4, '0');
  return `${m}:${rest}`;
}

/** `webcam`, `file:<path>`, `url:<url>`, `device:<path>`: the select's values and the page's `?source=`. */
export function sourceValue(s: SourceInfo | SourceSpec): string {
  if (s.kind === 'webcam') return 'webcam';
  if ('name' in s) return `${s.kind}:${s.name}`;
  return s.kind === 'url' ? `url:${s.url}` : `${s.kind}:${s.path}`;
}

export function parseSourceValue(value: string, _location = ''): SourceSpec | undefined {
  if (value === 'webcam') return { kind: 'webcam' };
  const i = value.indexOf(':');
  if (i < 0) return undefined;
  const kind = value.slice(0, i);
  const rest = value.slice(i + 1);
  if (!rest) return undefined;
  if (kind === 'file') return { kind: 'file', path: rest };
  if (kind === 'url') return { kind: 'url', url: rest };
  if (kind === 'device') return { kind: 'device', path: rest };
  return undefined;
}
