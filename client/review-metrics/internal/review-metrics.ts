/**
 * `<review-metrics>`: the per-class metric table and two inline SVG plots (accuracy per class, the IoU
 * distribution) from a dataset's summary. Pure rendering from the `summary` property.
 */
import { css, html, LitElement, svg } from 'lit';
import type { ReviewSummary } from '../../internal/review-api.ts';

const pct = (v: number | null) => (v === null ? '–' : `${(v * 100).toFixed(1)}%`);
const num = (v: number | null) => (v === null ? '–' : v.toFixed(3));

export class ReviewMetrics extends LitElement {
  static override properties = { summary: { attribute: false } };

  static override styles = css`
    :host { display: block; color: #ddd; font: 12px system-ui, sans-serif; }
    table { border-collapse: collapse; margin-bottom: 8px; }
    th, td { padding: 2px 8px; text-align: right; border-bottom: 1px solid #2a2d34; }
    th:first-child, td:first-child { text-align: left; }
    tr.all td { font-weight: 600; border-top: 1px solid #555; }
    .plots { display: flex; gap: 16px; flex-wrap: wrap; }
  `;

  declare summary: ReviewSummary | null;

  constructor() {
    super();
    this.summary = null;
  }

  private bars(labels: string[], values: Array<number | null>, title: string, colour: string, max = 1) {
    const w = 40 + labels.length * 30;
    return svg`<svg width=${w} height="170" role="img" aria-label=${title}>
      <text x="4" y="12" font-size="11" fill="#eee">${title}</text>
      <line x1="28" y1="140" x2=${w} y2="140" stroke="#666"></line>
      <text x="24" y="26" font-size="9" text-anchor="end" fill="#aaa">${max}</text>
      ${labels.map((l, i) => {
        const h = Math.round(((values[i] ?? 0) / max) * 110);
        return svg`<rect x=${32 + i * 30} y=${140 - h} width="22" height=${h} fill=${colour}><title>${l}: ${values[i] ?? '–'}</title></rect>
          <text x=${43 + i * 30} y="154" font-size="9" text-anchor="middle" fill="#ccc">${l.slice(0, 5)}</text>`;
      })}
    </svg>`;
  }

  protected override render() {
    const s = this.summary;
    if (!s) return html``;
    const counts = s.iouHistogram.counts;
    return html`
      <table data-table="per-class">
        <tr><th>class</th><th>images</th><th>accuracy</th><th>mean IoU</th><th>official</th><th>inside</th><th>pointing</th><th>IoU≥0.5</th></tr>
        ${s.perClass.map(
          (c) => html`<tr><td>${c.name}</td><td>${c.images}</td><td>${pct(c.accuracy)}</td><td>${num(c.meanIoU)}</td><td>${num(c.meanIoUOfficial)}</td>
            <td>${pct(c.meanInside)}</td><td>${pct(c.pointingGame)}</td><td>${pct(c.locAccuracy)}</td></tr>`,
        )}
        <tr class="all"><td>all</td><td>${s.images}</td><td data-figure="accuracy">${pct(s.accuracy)}</td><td data-figure="meanIoU">${num(s.meanIoU)}</td>
          <td>${num(s.meanIoUOfficial)}</td><td>${pct(s.meanInside)}</td><td>${pct(s.pointingGame)}</td><td>${pct(s.locAccuracy)}</td></tr>
      </table>
      <div class="plots">
        ${this.bars(s.classes, s.perClass.map((c) => c.accuracy), 'accuracy per class', '#3b82f6')}
        ${this.bars(s.iouHistogram.edges.slice(0, -1).map((e) => e.toFixed(1)), counts, 'IoU distribution (test)', '#f59e0b', Math.max(1, ...counts))}
      </div>
    `;
  }
}
