/** `<cam-stats>`: live figures, rendered from properties only. */
import { css, html, LitElement } from 'lit';

export class CamStats extends LitElement {
  static override properties = {
    fps: { type: Number },
    frames: { type: Number },
    latencyP50: { type: Number },
    latencyP95: { type: Number },
    dropped: { type: Number },
    skipped: { type: Number },
    inferMs: { type: Number },
    sourceFps: { type: Number },
    renderer: { type: String },
    status: { type: String },
  };

  static override styles = css`
    :host { display: block; font: 13px system-ui, sans-serif; color: #ddd; }
    dl { display: grid; grid-template-columns: repeat(auto-fill, minmax(110px, 1fr)); gap: 6px; margin: 0; }
    div { background: #1d1f24; border-radius: 4px; padding: 4px 8px; }
    dt { font-size: 11px; color: #999; }
    dd { margin: 0; font-variant-numeric: tabular-nums; font-size: 15px; }
  `;

  /** Maps drawn per second at this page. */
  declare fps: number;
  /** Maps drawn since the source was selected. */
  declare frames: number;
  /** Capture to map drawn, ms (webcam: this page's clock; server sources: server clock, offset-corrected). */
  declare latencyP50: number;
  declare latencyP95: number;
  /** Frames the model had no time for (source-wide). */
  declare dropped: number;
  /** Results skipped for this page because its connection was behind. */
  declare skipped: number;
  declare inferMs: number;
  /** Frames per second the source delivers. */
  declare sourceFps: number;
  declare renderer: string;
  declare status: string;

  constructor() {
    super();
    this.fps = 0;
    this.frames = 0;
    this.latencyP50 = Number.NaN;
    this.latencyP95 = Number.NaN;
    this.dropped = 0;
    this.skipped = 0;
    this.inferMs = Number.NaN;
    this.sourceFps = 0;
    this.renderer = '';
    this.status = '';
  }

  protected override render() {
    const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(0)} ms` : '–');
    const item = (name: string, value: string, key: string) => html`<div><dt>${name}</dt><dd data-stat=${key}>${value}</dd></div>`;
    return html`<dl>
      ${item('status', this.status || '–', 'status')}
      ${item('maps / s', this.fps.toFixed(1), 'fps')}
      ${item('source fps', this.sourceFps.toFixed(1), 'source-fps')}
      ${item('latency p50', ms(this.latencyP50), 'p50')}
      ${item('latency p95', ms(this.latencyP95), 'p95')}
      ${item('model', ms(this.inferMs), 'infer')}
      ${item('dropped', String(this.dropped), 'dropped')}
      ${item('skipped', String(this.skipped), 'skipped')}
      ${item('frames', String(this.frames), 'frames')}
      ${item('overlay', this.renderer || '–', 'renderer')}
    </dl>`;
  }
}
