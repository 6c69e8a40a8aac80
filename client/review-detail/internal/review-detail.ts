/**
 * `<review-detail>`: one image: the top-k CAMs (server-rendered overlays, one per class, the true class
 * first), the annotated boxes and the CAM box, the figures, and the decision controls: accept / reject, a
 * tag (what the CAM lit up: the object of interaction, the actor, the background) and a note. Changes go up
 * as `review-decide` events with `{ change }`; `review-close` closes.
 */
import { css, html, LitElement } from 'lit';
import { overlayUrl, type DecisionChange, type ReviewImageDetail } from '../../internal/review-api.ts';

export const TAGS = [
  ['object', 'object of interaction'],
  ['actor', 'actor'],
  ['background', 'background'],
] as const;

export class ReviewDetail extends LitElement {
  static override properties = {
    detail: { attribute: false },
    classes: { attribute: false },
  };

  static override styles = css`
    :host { display: block; background: #16181d; border: 1px solid #333; border-radius: 8px; padding: 12px; color: #ddd; font: 13px system-ui, sans-serif; }
    .maps { display: flex; gap: 10px; flex-wrap: wrap; }
    figure { margin: 0; width: 300px; }
    figure img { width: 300px; background: #000; display: block; border-radius: 4px; }
    figcaption { font-size: 12px; color: #bbb; margin-top: 2px; }
    .bar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin: 10px 0; }
    button { background: #2a2d34; color: #eee; border: 1px solid #444; border-radius: 4px; padding: 4px 10px; cursor: pointer; }
    button.on { background: #2563eb; border-color: #2563eb; }
    button.accept.on { background: #16a34a; } button.reject.on { background: #dc2626; }
    textarea { width: 100%; min-height: 48px; background: #0f1115; color: #eee; border: 1px solid #444; border-radius: 4px; }
    .legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px; }
    kbd { background: #333; border-radius: 3px; padding: 0 4px; }
  `;

  declare detail: ReviewImageDetail | null;
  declare classes: string[];

  constructor() {
    super();
    this.detail = null;
    this.classes = [];
  }

  private decide(change: DecisionChange): void {
    this.dispatchEvent(new CustomEvent('review-decide', { detail: { change }, bubbles: true, composed: true }));
  }

  protected override render() {
    const d = this.detail;
    if (!d) return html``;
    const classesShown = [d.mapClass, ...d.top.map((t) => t.classId).filter((c) => c !== d.mapClass)];
    const prob = (c: number) => d.top.find((t) => t.classId === c)?.probability;
    const status = d.decision.status;
    return html`
      <div class="bar">
        <b>${d.key}</b> · ${d.split} · true <b>${this.classes[d.label]}</b> · predicted
        <b>${this.classes[d.predicted]}</b> (${(d.confidence * 100).toFixed(1)}%) · IoU ${d.iouPaper?.toFixed(3) ?? '–'}
        (official ${d.iouOfficial?.toFixed(3) ?? '–'}) · inside ${d.insidePaper === null ? '–' : `${(d.insidePaper * 100).toFixed(0)}%`} · pointing
        ${d.pointing === null ? '–' : d.pointing ? 'hit' : 'miss'}
        <button @click=${() => this.dispatchEvent(new CustomEvent('review-close', { bubbles: true, composed: true }))}>close <kbd>Esc</kbd></button>
      </div>
      <div class="legend"><span style="background:#22c55e"></span>annotated box<span style="background:#ef4444"></span>CAM box (paper rule)</div>
      <div class="maps">
        ${classesShown.map(
          (c) => html`<figure data-class=${c}>
            <img alt="CAM of ${this.classes[c]}" src=${overlayUrl(d.id, 600, c)} />
            <figcaption>${c === d.mapClass ? 'true class: ' : ''}${this.classes[c]}${prob(c) === undefined ? '' : ` · p ${(prob(c)! * 100).toFixed(1)}%`}</figcaption>
          </figure>`,
        )}
      </div>
      <div class="bar">
        <button class="accept ${status === 'accepted' ? 'on' : ''}" data-action="accept" @click=${() => this.decide({ status: status === 'accepted' ? null : 'accepted' })}>accept <kbd>a</kbd></button>
        <button class="reject ${status === 'rejected' ? 'on' : ''}" data-action="reject" @click=${() => this.decide({ status: status === 'rejected' ? null : 'rejected' })}>reject <kbd>r</kbd></button>
        CAM shows:
        ${TAGS.map(
          ([tag, label], i) =>
            html`<button class=${d.decision.tag === tag ? 'on' : ''} data-tag=${tag} @click=${() => this.decide({ tag: d.decision.tag === tag ? null : tag })}>${label} <kbd>${i + 1}</kbd></button>`,
        )}
      </div>
      <textarea
        placeholder="note (n to focus, saved on leaving the field)"
        .value=${d.decision.note}
        @change=${(e: Event) => this.decide({ note: (e.target as HTMLTextAreaElement).value })}
        @keydown=${(e: KeyboardEvent) => e.stopPropagation()}
      ></textarea>
    `;
  }

  /** Focuses the note field (keyboard shortcut n). */
  focusNote(): void {
    this.renderRoot.querySelector('textarea')?.focus();
  }
}
