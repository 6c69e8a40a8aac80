/**
 * `<jobs-app>`: the job queue page at /jobs. Polls `/api/jobs` (every `interval` ms, default 1000) and
 * shows the queue counts, one row per job with a progress bar (frames or images done of the total), the
 * worker, the attempts and a failed job's error, with Retry and Cancel buttons where the state allows.
 * Styled as the review page.
 */
import { css, html, LitElement, nothing } from 'lit';
import { canCancel, canRetry, jobAction, listJobs, progressFraction, type JobStatus, type QueueCounts, type QueueState } from './jobs-api.ts';
import { PollController } from './poll-controller.ts';

const COUNT_ORDER: readonly QueueState[] = ['active', 'waiting', 'prioritized', 'delayed', 'waiting-children', 'completed', 'failed'];

/** The review page, with this page's `?token=` carried over. */
function pageLink(path: string): string {
  const token = new URLSearchParams(location.search).get('token');
  return token ? `${path}?token=${encodeURIComponent(token)}` : path;
}

function fileName(path: string): string {
  return path.split('/').pop() ?? path;
}

export class JobsApp extends LitElement {
  static override properties = {
    counts: { state: true },
    jobs: { state: true },
    error: { state: true },
    notice: { state: true },
    interval: { type: Number },
  };

  static override styles = css`
    :host { display: block; max-width: 1300px; margin: 0 auto; padding: 12px; color: #eee; font: 14px system-ui, sans-serif; }
    header { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; margin-bottom: 10px; }
    h1 { font-size: 18px; margin: 0 12px 0 0; }
    a.button, button { background: #1d1f24; color: #eee; border: 1px solid #444; border-radius: 4px; padding: 2px 8px; font: inherit; font-size: 13px; text-decoration: none; cursor: pointer; }
    button:disabled { opacity: 0.4; cursor: default; }
    .counts { display: flex; gap: 14px; flex-wrap: wrap; margin-bottom: 12px; }
    .count b { font-size: 16px; margin-right: 4px; }
    .count.failed b { color: #fca5a5; }
    table { width: 100%; border-collapse: collapse; }
    th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #2a2d33; vertical-align: top; }
    th { color: #999; font-weight: normal; font-size: 12px; }
    .bar { width: 180px; height: 10px; background: #2a2d33; border-radius: 5px; overflow: hidden; display: inline-block; vertical-align: middle; }
    .bar > span { display: block; height: 100%; background: #38bdf8; }
    tr.failed .bar > span { background: #f87171; }
    tr.completed .bar > span { background: #4ade80; }
    .error, .err { color: #fca5a5; }
    .err { font-size: 12px; white-space: pre-wrap; word-break: break-word; max-width: 420px; }
    .muted { color: #999; font-size: 12px; }
  `;

  declare counts: QueueCounts | null;
  declare jobs: JobStatus[];
  declare error: string;
  declare notice: string;
  /** Milliseconds between two polls. */
  declare interval: number;
  private readonly poller = new PollController(this, () => this.poll(), () => this.interval);

  constructor() {
    super();
    this.counts = null;
    this.jobs = [];
    this.error = '';
    this.notice = '';
    this.interval = 1000;
  }

  private async poll(): Promise<void> {
    try {
      const listing = await listJobs();
      this.counts = listing.counts;
      this.jobs = listing.jobs;
      this.error = '';
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
    }
  }

  private async act(job: JobStatus, action: 'retry' | 'cancel'): Promise<void> {
    try {
      const result = await jobAction(job.id, action);
      this.notice = `job ${result.id}: ${result.note}`;
    } catch (err) {
      this.notice = `job ${job.id}: ${err instanceof Error ? err.message : String(err)}`;
    }
    await this.poller.again();
  }

  private renderProgress(job: JobStatus) {
    const fraction = progressFraction(job);
    const p = job.progress;
    const label = p ? `${p.done}/${p.total ?? '?'}` : job.state === 'completed' ? 'done' : '';
    return html`<span
        class="bar"
        role="progressbar"
        aria-valuemin="0"
        aria-valuemax="100"
        aria-valuenow=${fraction === null ? nothing : Math.round(fraction * 100)}
        aria-label=${`job ${job.id} progress`}
        ><span style=${`width: ${fraction === null ? 0 : (fraction * 100).toFixed(1)}%`}></span></span
      >
      <span class="muted">${label}</span>`;
  }

  private renderJob(job: JobStatus) {
    const what = job.kind === 'image' ? `${job.inputs.length} image${job.inputs.length === 1 ? '' : 's'}` : fileName(job.inputs[0] ?? '');
    const kind = job.kind === 'chunk' && job.parent ? `chunk of ${job.parent}` : job.kind;
    return html`<tr class=${job.state} data-id=${job.id}>
      <td>${job.id}</td>
      <td>${kind}</td>
      <td title=${job.inputs.join('\n')}>${what}</td>
      <td class="state">${job.state}</td>
      <td>${this.renderProgress(job)}</td>
      <td>${job.worker ?? '-'}</td>
      <td>${job.attempts}</td>
      <td>${job.error ? html`<div class="err">${job.error}</div>` : nothing}</td>
      <td>
        <button class="retry" ?disabled=${!canRetry(job)} @click=${() => void this.act(job, 'retry')}>Retry</button>
        <button class="cancel" ?disabled=${!canCancel(job)} @click=${() => void this.act(job, 'cancel')}>Cancel</button>
      </td>
    </tr>`;
  }

  override render() {
    const counts = this.counts;
    return html`
      <header>
        <h1>camstream jobs</h1>
        <a class="button" href=${pageLink('./')}>live</a>
        <a class="button" href=${pageLink('./review')}>review</a>
        ${this.error ? html`<span class="error">${this.error}</span>` : nothing}
        ${this.notice ? html`<span class="muted notice">${this.notice}</span>` : nothing}
      </header>
      ${counts
        ? html`<div class="counts">
            ${COUNT_ORDER.map((k) => html`<span class="count ${k}" data-state=${k}><b>${counts[k] ?? 0}</b>${k}</span>`)}
          </div>`
        : html`<p class="muted">loading...</p>`}
      <table>
        <thead>
          <tr><th>id</th><th>kind</th><th>input</th><th>state</th><th>progress</th><th>worker</th><th>attempts</th><th>error</th><th></th></tr>
        </thead>
        <tbody>
          ${this.jobs.map((j) => this.renderJob(j))}
        </tbody>
      </table>
      ${this.jobs.length === 0 && counts ? html`<p class="muted">No jobs. Submit some with <code>camstream jobs submit</code>.</p>` : nothing}
    `;
  }
}
