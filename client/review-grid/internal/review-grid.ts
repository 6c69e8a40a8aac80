/**
 * `<review-grid>`: analysed images as overlay thumbnails (rendered by the server: the true class's CAM,
 * green annotated boxes, red CAM box) with class, prediction, confidence, IoU and decision. Clicking a card
 * fires `review-select` with `{ index }`; `selected` marks the keyboard cursor.
 */
import { css, html, LitElement } from 'lit';
import { overlayUrl, type ReviewRowWire } from '../../internal/review-api.ts';

export class ReviewGrid extends LitElement {
  static override properties = {
    rows: { attribute: false },
    classes: { attribute: false },
    selected: { type: Number },
  };

  static override styles = css`
    :host { display: block; }
    .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
    .card { background: #1d1f24; border: 2px solid transparent; border-radius: 6px; padding: 4px; cursor: pointer; font-size: 12px; color: #ccc; }
    .card.sel { border-color: #60a5fa; }
    .card.accepted { box-shadow: inset 0 -4px 0 #22c55e; }
    .card.rejected { box-shadow: inset 0 -4px 0 #ef4444; }
    img { width: 100%; aspect-ratio: 1; object-fit: contain; background: #000; display: block; border-radius: 4px; }
    .ok { color: #4ade80; } .bad { color: #f87171; }
    .key { font-weight: 600; color: #eee; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    .empty { color: #999; padding: 24px; }
  `;

  declare rows: ReviewRowWire[];
  declare classes: string[];
  declare selected: number;

  constructor() {
    super();
    this.rows = [];
    this.classes = [];
    this.selected = -1;
  }

  protected override render() {
    if (this.rows.length === 0) return html`<div class="empty">No images match the filters.</div>`;
    return html`<div class="grid">
      ${this.rows.map(
        (r, i) => html`<div
          class="card ${i === this.selected ? 'sel' : ''} ${r.decision.status ?? ''}"
          data-key=${r.key}
          data-id=${r.id}
          data-status=${r.decision.status ?? 'undecided'}
          @click=${() => this.dispatchEvent(new CustomEvent('review-select', { detail: { index: i }, bubbles: true, composed: true }))}
        >
          <img loading="lazy" alt=${r.key} src=${overlayUrl(r.id, 240)} />
          <div class="key">${r.key}</div>
          <div>
            ${this.classes[r.label]} → <span class=${r.correct ? 'ok' : 'bad'}>${this.classes[r.predicted]}</span>
            ${(r.confidence * 100).toFixed(0)}%
          </div>
          <div>IoU ${r.iouPaper === null ? '–' : r.iouPaper.toFixed(2)} ${r.pointing === null ? '' : r.pointing ? '· peak in' : '· peak out'}
            ${r.decision.status ? html`· <b>${r.decision.status}</b>` : ''} ${r.decision.tag ? `· ${r.decision.tag}` : ''}</div>
        </div>`,
      )}
    </div>`;
  }
}
