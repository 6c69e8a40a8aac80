/**
 * `<review-app>`: the review page. Picks a dataset, holds the filters, loads grid rows and the selected
 * image's detail from `/api/review`, and turns the children's events (select, decide, close) and the
 * keyboard into API calls. Shortcuts: j / → next, k / ← previous, Enter open, Esc close, a accept,
 * r reject, 1 / 2 / 3 tag (object / actor / background), n note.
 */
import { css, html, LitElement } from 'lit';
import {
  DEFAULT_FILTER,
  exportUrl,
  imageDetail,
  listDatasets,
  listRows,
  saveDecision,
  type DecisionChange,
  type ReviewDatasetInfo,
  type ReviewFilter,
  type ReviewImageDetail,
  type ReviewRowWire,
} from '../../internal/review-api.ts';
import '../../review-detail/review-detail.ts';
import { TAGS, type ReviewDetail } from '../../review-detail/internal/review-detail.ts';
import '../../review-grid/review-grid.ts';
import '../../review-metrics/review-metrics.ts';

/** The live page, with this page's `?token=` carried over. */
function liveLink(): string {
  const token = new URLSearchParams(location.search).get('token');
  return token ? `./?token=${encodeURIComponent(token)}` : './';
}

export class ReviewApp extends LitElement {
  static override properties = {
    datasets: { state: true },
    current: { state: true },
    filter: { state: true },
    rows: { state: true },
    selected: { state: true },
    detail: { state: true },
    error: { state: true },
    loading: { state: true },
  };

  static override styles = css`
    :host { display: block; max-width: 1300px; margin: 0 auto; padding: 12px; color: #eee; font: 14px system-ui, sans-serif; }
    header, .filters { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; margin-bottom: 10px; }
    h1 { font-size: 18px; margin: 0 12px 0 0; }
    select, input, a.button { background: #1d1f24; color: #eee; border: 1px solid #444; border-radius: 4px; padding: 3px 6px; font: inherit; }
    a.button { text-decoration: none; font-size: 13px; }
    input[type='number'] { width: 64px; }
    .error { color: #fca5a5; }
    .muted { color: #999; font-size: 12px; }
    review-detail { margin-bottom: 12px; }
    details { margin-bottom: 10px; }
  `;

  declare datasets: ReviewDatasetInfo[];
  declare current: ReviewDatasetInfo | null;
  declare filter: ReviewFilter;
  declare rows: ReviewRowWire[];
  declare selected: number;
  declare detail: ReviewImageDetail | null;
  declare error: string;
  declare loading: boolean;
  private readonly onKey = (e: KeyboardEvent) => this.key(e);
  private request = 0;

  constructor() {
    super();
    this.datasets = [];
    this.current = null;
    this.filter = { ...DEFAULT_FILTER };
    this.rows = [];
    this.selected = -1;
    this.detail = null;
    this.error = '';
    this.loading = true;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener('keydown', this.onKey);
    void this.start();
  }

  override disconnectedCallback(): void {
    window.removeEventListener('keydown', this.onKey);
    super.disconnectedCallback();
  }

  private async start(): Promise<void> {
    try {
      this.datasets = await listDatasets();
      const wanted = new URLSearchParams(location.search).get('dataset');
      this.current = this.datasets.find((d) => d.name === wanted) ?? this.datasets[0] ?? null;
      await this.reload();
    } catch (err) {
      this.error = (err as Error).message;
    } finally {
      this.loading = false;
    }
  }

  private async reload(): Promise<void> {
    if (!this.current) return;
    const ticket = ++this.request;
    try {
      const rows = await listRows(this.current.id, this.filter);
      if (ticket !== this.request) return; // a newer filter won
      const keep = this.detail ? rows.findIndex((r) => r.id === this.detail!.id) : -1;
      this.rows = rows;
      this.selected = keep >= 0 ? keep : rows.length > 0 ? 0 : -1;
      if (keep < 0) this.detail = null;
      this.error = '';
    } catch (err) {
      this.error = (err as Error).message;
    }
  }

  private setFilter(change: Partial<ReviewFilter>): void {
    this.filter = { ...this.filter, ...change };
    void this.reload();
  }

  private async open(index: number): Promise<void> {
    if (index < 0 || index >= this.rows.length) return;
    this.selected = index;
    try {
      this.detail = await imageDetail(this.rows[index].id);
    } catch (err) {
      this.error = (err as Error).message;
    }
  }

  private async decide(change: DecisionChange): Promise<void> {
    const row = this.detail ?? this.rows[this.selected];
    if (!row) return;
    try {
      const decision = await saveDecision(row.id, change);
      this.rows = this.rows.map((r) => (r.id === row.id ? { ...r, decision } : r));
      if (this.detail && this.detail.id === row.id) this.detail = { ...this.detail, decision };
    } catch (err) {
      this.error = (err as Error).message;
    }
  }

  private key(e: KeyboardEvent): void {
    const target = e.composedPath()[0] as HTMLElement | undefined;
    if (target && ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName)) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const row = this.rows[this.selected];
    const move = (d: number) => {
      const next = Math.max(0, Math.min(this.rows.length - 1, this.selected + d));
      if (this.detail) void this.open(next);
      else this.selected = next;
    };
    switch (e.key) {
      case 'j':
      case 'ArrowRight':
        move(1);
        break;
      case 'k':
      case 'ArrowLeft':
        move(-1);
        break;
      case 'Enter':
        void this.open(this.selected);
        break;
      case 'Escape':
        this.detail = null;
        break;
      case 'a':
        if (row) void this.decide({ status: row.decision.status === 'accepted' ? null : 'accepted' });
        break;
      case 'r':
        if (row) void this.decide({ status: row.decision.status === 'rejected' ? null : 'rejected' });
        break;
      case '1':
      case '2':
      case '3': {
        const tag = TAGS[Number(e.key) - 1][0];
        if (row) void this.decide({ tag: row.decision.tag === tag ? null : tag });
        break;
      }
      case 'n':
        (this.renderRoot.querySelector('review-detail') as ReviewDetail | null)?.focusNote();
        break;
      default:
        return;
    }
    e.preventDefault();
  }

  private numberOrNull(value: string): number | null {
    return value.trim() === '' ? null : Math.max(0, Math.min(1, Number(value)));
  }

  protected override render() {
    if (this.loading) return html`<p class="muted">loading…</p>`;
    const d = this.current;
    const f = this.filter;
    return html`
      <header>
        <h1>camstream review</h1>
        <nav><a href=${liveLink()}>live</a></nav>
        ${this.datasets.length === 0
          ? html`<span class="muted">No datasets yet: run <code>camstream review import &lt;dir&gt; --model &lt;backbone&gt;</code>.</span>`
          : html`<select
              aria-label="dataset"
              @change=${(e: Event) => {
                this.current = this.datasets.find((x) => String(x.id) === (e.target as HTMLSelectElement).value) ?? null;
                this.filter = { ...DEFAULT_FILTER };
                this.detail = null;
                void this.reload();
              }}
            >
              ${this.datasets.map((x) => html`<option value=${x.id} ?selected=${x.id === d?.id}>${x.name}</option>`)}
            </select>`}
        ${d
          ? html`<a class="button" data-export="csv" href=${exportUrl(d.id, 'csv')} download>export CSV</a>
              <a class="button" data-export="json" href=${exportUrl(d.id, 'json')} download>export JSON</a>
              <a class="button" data-export="html" href=${exportUrl(d.id, 'html')} download>HTML report</a>`
          : ''}
        ${this.error ? html`<span class="error">${this.error}</span>` : ''}
      </header>
      ${d?.summary
        ? html`<details open><summary>metrics (test split; ${d.summary.classifier.featureDims}-d GAP features, λ ${d.summary.classifier.lambda})</summary>
            <review-metrics .summary=${d.summary}></review-metrics></details>`
        : ''}
      ${d
        ? html`<div class="filters">
            <label>split <select name="split" @change=${(e: Event) => this.setFilter({ split: (e.target as HTMLSelectElement).value as ReviewFilter['split'] })}>
              ${['test', 'train', 'val', 'all'].map((s) => html`<option ?selected=${f.split === s}>${s}</option>`)}</select></label>
            <label>class <select name="class" @change=${(e: Event) => {
              const v = (e.target as HTMLSelectElement).value;
              this.setFilter({ classId: v === '' ? null : Number(v) });
            }}>
              <option value="" ?selected=${f.classId === null}>all</option>
              ${d.classes.map((c, i) => html`<option value=${i} ?selected=${f.classId === i}>${c}</option>`)}</select></label>
            <label>result <select name="correct" @change=${(e: Event) => this.setFilter({ correct: (e.target as HTMLSelectElement).value as ReviewFilter['correct'] })}>
              ${['all', 'right', 'wrong'].map((s) => html`<option ?selected=${f.correct === s}>${s}</option>`)}</select></label>
            <label>IoU from <input name="iouMin" type="number" min="0" max="1" step="0.05" .value=${f.iouMin === null ? '' : String(f.iouMin)}
              @change=${(e: Event) => this.setFilter({ iouMin: this.numberOrNull((e.target as HTMLInputElement).value) })} /></label>
            <label>to <input name="iouMax" type="number" min="0" max="1" step="0.05" .value=${f.iouMax === null ? '' : String(f.iouMax)}
              @change=${(e: Event) => this.setFilter({ iouMax: this.numberOrNull((e.target as HTMLInputElement).value) })} /></label>
            <label>decision <select name="status" @change=${(e: Event) => this.setFilter({ status: (e.target as HTMLSelectElement).value as ReviewFilter['status'] })}>
              ${['', 'accepted', 'rejected', 'undecided'].map((s) => html`<option value=${s} ?selected=${f.status === s}>${s || 'any'}</option>`)}</select></label>
            <label>sort <select name="sort" @change=${(e: Event) => this.setFilter({ sort: (e.target as HTMLSelectElement).value as ReviewFilter['sort'] })}>
              ${['confidence', 'iou', 'key'].map((s) => html`<option ?selected=${f.sort === s}>${s}</option>`)}</select></label>
            <select name="order" aria-label="order" @change=${(e: Event) => this.setFilter({ order: (e.target as HTMLSelectElement).value as ReviewFilter['order'] })}>
              ${['desc', 'asc'].map((s) => html`<option ?selected=${f.order === s}>${s}</option>`)}</select>
            <span class="muted" data-count=${this.rows.length}>${this.rows.length} images · j/k move · Enter open · a/r accept/reject · 1-3 tag · n note</span>
          </div>`
        : ''}
      ${this.detail
        ? html`<review-detail
            .detail=${this.detail}
            .classes=${d?.classes ?? []}
            @review-decide=${(e: CustomEvent<{ change: DecisionChange }>) => void this.decide(e.detail.change)}
            @review-close=${() => (this.detail = null)}
          ></review-detail>`
        : ''}
      <review-grid
        .rows=${this.rows}
        .classes=${d?.classes ?? []}
        .selected=${this.selected}
        @review-select=${(e: CustomEvent<{ index: number }>) => void this.open(e.detail.index)}
      ></review-grid>
    `;
  }
}
