/**
 * What a reviewed dataset looks like outside the UI: the metric table (`camstream review report`), its JSON
 * form, and exports as CSV (one row per image), JSON (summary, head and rows) or a static, self-contained HTML
 * report (inline CSS and SVG plots, overlay thumbnails as data URIs). Files are written atomically.
 */
import { relative, sep } from 'node:path';
import { ConfigError, InputError } from '../common/index.ts';
import { writeFileAtomic } from '../pipelines/index.ts';
import { renderReviewOverlay } from './overlay.ts';
import type { ReviewStore } from './store.ts';
import type { DatasetRecord, ReviewRow, ReviewSummary } from './types.ts';
import { EXPORT_FORMATS, exportFormatFor, type ExportFormat } from './formats.ts';

export { EXPORT_FORMATS, exportFormatFor, type ExportFormat };

function analysed(dataset: DatasetRecord): ReviewSummary {
  if (!dataset.summary) throw new InputError(`dataset ${dataset.name} was imported but not analysed; run camstream review import again`);
  return dataset.summary;
}

const pct = (v: number | null): string => (v === null ? '–' : `${(v * 100).toFixed(1)}%`);
const num = (v: number | null): string => (v === null ? '–' : v.toFixed(3));

const REPORT_HEAD = ['class', 'images', 'accuracy', 'mean IoU', 'IoU (official)', 'inside', 'pointing', 'IoU>=0.5'];

/** The table's cells: one row per class, then the totals (`all`). */
function reportRows(summary: ReviewSummary): string[][] {
  const rows = summary.perClass.map((c) => [c.name, String(c.images), pct(c.accuracy), num(c.meanIoU), num(c.meanIoUOfficial), pct(c.meanInside), pct(c.pointingGame), pct(c.locAccuracy)]);
  rows.push([
    'all',
    String(summary.images),
    pct(summary.accuracy),
    num(summary.meanIoU),
    num(summary.meanIoUOfficial),
    pct(summary.meanInside),
    pct(summary.pointingGame),
    pct(summary.locAccuracy),
  ]);
  return rows;
}

/** The metric table as plain text (one line per class, then the totals). */
export function formatReportTable(summary: ReviewSummary): string {
  const head = REPORT_HEAD;
  const rows = reportRows(summary);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const c = summary.classifier;
  return [
    `dataset ${summary.dataset}: ${summary.images} test images (${summary.trainImages} train, ${summary.validationImages} validation, ${summary.skipped} files skipped)`,
    `classifier: softmax on ${c.featureDims}-d GAP features, lambda ${c.lambda} (${c.chosenBy}), train accuracy ${pct(c.trainAccuracy)}`,
    `localization: the true class's CAM against the annotated boxes (${summary.boxedImages} test images with boxes)`,
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.slice(0, -1).map(line),
    line(widths.map((w) => '-'.repeat(w))),
    line(rows[rows.length - 1]),
    '',
  ].join('\n');
}

/**
 * The metric table as HTML: the same columns and figures as `formatReportTable` and the served /review
 * page, one row per class and a totals row, under the dataset, classifier and localization lines.
 */
export function reportTableHtml(summary: ReviewSummary): string {
  const cells = (tag: 'td' | 'th', values: readonly string[]) => values.map((v) => `<${tag}>${escapeHtml(v)}</${tag}>`).join('');
  const c = summary.classifier;
  return [
    `<p>Dataset ${escapeHtml(summary.dataset)}: ${summary.images} test images (${summary.trainImages} train, ${summary.validationImages} validation, ${summary.skipped} files skipped).<br>`,
    `Classifier: softmax on ${c.featureDims}-d GAP features, lambda ${c.lambda} (${escapeHtml(c.chosenBy)}), train accuracy ${pct(c.trainAccuracy)}.<br>`,
    `Localization: the true class's CAM against the annotated boxes (${summary.boxedImages} test images with boxes).</p>`,
    '<table class="summary" data-table="per-class">',
    `<tr>${cells('th', REPORT_HEAD)}</tr>`,
    ...reportRows(summary).map((r, i, all) => `<tr${i === all.length - 1 ? ' class="all"' : ''}>${cells('td', r)}</tr>`),
    '</table>',
  ].join('\n');
}

/** The `--json` report object: the summary (fractions in [0, 1]). */
export function reportJson(store: ReviewStore, datasetName: string): ReviewSummary {
  return analysed(store.requireDataset(datasetName));
}

const CSV_COLUMNS = [
  'key', 'split', 'class', 'predicted', 'correct', 'confidence', 'iou_paper', 'iou_official', 'inside_paper', 'inside_official', 'pointing',
  'cam_box', 'true_boxes', 'status', 'tag', 'note', 'path',
] as const;

/**
 * One CSV cell. Text a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, or a tab or
 * carriage return before one) gets a leading single quote, as OWASP's CSV injection advice says; numbers
 * are written as numbers, so a negative score stays a number.
 */
function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function rowRecord(row: ReviewRow, classes: readonly string[]) {
  return {
    key: row.key,
    split: row.split,
    class: classes[row.label],
    predicted: classes[row.predicted],
    correct: row.correct,
    confidence: row.confidence,
    iou_paper: row.iouPaper,
    iou_official: row.iouOfficial,
    inside_paper: row.insidePaper,
    inside_official: row.insideOfficial,
    pointing: row.pointing,
    cam_box: row.paperBox,
    true_boxes: row.boxes,
    status: row.decision.status,
    tag: row.decision.tag,
    note: row.decision.note,
    path: row.path,
  };
}

/** CSV: a header, then one row per analysed image (all splits), paths relative to the dataset folder. */
export function exportCsv(store: ReviewStore, datasetName: string): string {
  const d = store.requireDataset(datasetName);
  analysed(d);
  const lines = [CSV_COLUMNS.join(',')];
  for (const row of store.rows(d.id, { split: 'all' })) {
    // A shared CSV must not tell where the server keeps its files.
    const r = { ...rowRecord(row, d.classes), path: relative(d.root, row.path).split(sep).join('/') };
    lines.push(CSV_COLUMNS.map((c) => csvCell(r[c])).join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** JSON: the summary, the trained head (so others can recompute the maps) and one record per image. */
export function exportJsonObject(store: ReviewStore, datasetName: string) {
  const d = store.requireDataset(datasetName);
  const summary = analysed(d);
  return {
    summary,
    head: d.head ? { weights: Array.from(d.head.weights), bias: Array.from(d.head.bias), labels: d.head.labels ?? d.classes } : null,
    issues: d.issues,
    images: store.rows(d.id, { split: 'all' }).map((r) => ({ ...rowRecord(r, d.classes), top: r.top.map((t) => ({ class: d.classes[t.classId], ...t })) })),
  };
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Bar chart as inline SVG: `values` in [0, 1] (null drawn empty). */
export function barChartSvg(labels: readonly string[], values: ReadonlyArray<number | null>, title: string): string {
  const w = 40 + labels.length * 36;
  const h = 180;
  const bars = labels
    .map((l, i) => {
      const v = values[i] ?? 0;
      const bh = Math.round(v * 120);
      const x = 30 + i * 36;
      return `<rect x="${x}" y="${140 - bh}" width="26" height="${bh}" fill="#3b82f6"><title>${escapeHtml(l)}: ${values[i] === null ? '–' : (v * 100).toFixed(1) + '%'}</title></rect>` +
        `<text x="${x + 13}" y="155" font-size="9" text-anchor="middle" fill="#ccc">${escapeHtml(l.slice(0, 6))}</text>`;
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" role="img" aria-label="${escapeHtml(title)}"><text x="4" y="12" font-size="11" fill="#eee">${escapeHtml(title)}</text><line x1="28" y1="140" x2="${w}" y2="140" stroke="#666"/><line x1="28" y1="20" x2="28" y2="140" stroke="#666"/><text x="24" y="24" font-size="9" text-anchor="end" fill="#aaa">1</text><text x="24" y="140" font-size="9" text-anchor="end" fill="#aaa">0</text>${bars}</svg>`;
}

/** Histogram as inline SVG (counts per bin, bins labelled by their lower edge). */
export function histogramSvg(edges: readonly number[], counts: readonly number[], title: string): string {
  const max = Math.max(1, ...counts);
  const w = 40 + counts.length * 30;
  const bars = counts
    .map((n, i) => {
      const bh = Math.round((n / max) * 120);
      const x = 30 + i * 30;
      return `<rect x="${x}" y="${140 - bh}" width="24" height="${bh}" fill="#f59e0b"><title>[${edges[i].toFixed(1)}, ${edges[i + 1].toFixed(1)}): ${n}</title></rect><text x="${x + 12}" y="155" font-size="9" text-anchor="middle" fill="#ccc">${edges[i].toFixed(1)}</text>`;
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="180" role="img" aria-label="${escapeHtml(title)}"><text x="4" y="12" font-size="11" fill="#eee">${escapeHtml(title)}</text><line x1="28" y1="140" x2="${w}" y2="140" stroke="#666"/><text x="24" y="24" font-size="9" text-anchor="end" fill="#aaa">${max}</text>${bars}</svg>`;
}

/** A static, self-contained HTML report: metrics, plots, confusion matrix and up to `thumbnails` images. */
export async function exportHtml(store: ReviewStore, datasetName: string, options: { thumbnails?: number } = {}): Promise<string> {
  const d = store.requireDataset(datasetName);
  const s = analysed(d);
  const rows = store.rows(d.id, { split: 'test', sort: 'iou', order: 'asc' });
  const shown = rows.slice(0, options.thumbnails ?? 48);
  const cards: string[] = [];
  for (const r of shown) {
    const jpeg = await renderReviewOverlay(store, r.id, { maxSide: 200 });
    cards.push(
      `<figure><img alt="${escapeHtml(r.key)}" src="data:image/jpeg;base64,${jpeg.toString('base64')}"><figcaption>${escapeHtml(r.key)}<br>` +
        `${escapeHtml(d.classes[r.label])} → ${escapeHtml(d.classes[r.predicted])} ${r.correct ? '✓' : '✗'} · IoU ${num(r.iouPaper)}` +
        `${r.decision.status ? ` · ${r.decision.status}` : ''}${r.decision.tag ? ` · ${r.decision.tag}` : ''}${r.decision.note ? `<br><i>${escapeHtml(r.decision.note)}</i>` : ''}</figcaption></figure>`,
    );
  }
  const table = reportTableHtml(s);
  const confusion =
    `<table class="cm"><tr><th>true \\ predicted</th>${d.classes.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr>` +
    s.confusion.map((row, i) => `<tr><th>${escapeHtml(d.classes[i])}</th>${row.map((n, j) => `<td class="${i === j ? 'diag' : n ? 'off' : ''}">${n}</td>`).join('')}</tr>`).join('') +
    '</table>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>camstream review: ${escapeHtml(d.name)}</title>
<style>
body { background: #0f1115; color: #ddd; font: 14px system-ui, sans-serif; margin: 24px; }
table.summary { border-collapse: collapse; margin: 8px 0 16px; }
.summary th, .summary td { padding: 2px 8px; text-align: right; border-bottom: 1px solid #2a2d34; }
.summary th:first-child, .summary td:first-child { text-align: left; }
.summary tr.all td { font-weight: 600; border-top: 1px solid #555; }
.plots { display: flex; gap: 24px; flex-wrap: wrap; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 200px; font-size: 12px; }
figure img { width: 200px; display: block; }
table.cm { border-collapse: collapse; } .cm th, .cm td { border: 1px solid #333; padding: 2px 6px; text-align: right; }
.cm td.diag { background: #14532d; } .cm td.off { background: #7f1d1d; }
</style></head><body>
<h1>camstream review: ${escapeHtml(d.name)}</h1>
<p>Backbone ${escapeHtml(s.model.source)} (${escapeHtml(s.model.engine)}/${escapeHtml(s.model.backend)}); maps ${s.model.mapSize.join('x')}.
Green: annotated boxes. Red: the CAM box (paper rule) of the true class's map.</p>
${table}
<div class="plots">${barChartSvg(d.classes, s.perClass.map((c) => c.accuracy), 'accuracy per class')}${barChartSvg(d.classes, s.perClass.map((c) => c.meanIoU), 'mean IoU per class')}${histogramSvg(s.iouHistogram.edges, s.iouHistogram.counts, 'IoU distribution (test)')}</div>
<h2>Confusion matrix (test)</h2>${confusion}
<h2>Test images, lowest IoU first (${shown.length} of ${rows.length})</h2>
<div class="grid">${cards.join('\n')}</div>
</body></html>
`;
}

/** Renders the export of `format` for a dataset. */
export async function renderExport(store: ReviewStore, datasetName: string, format: ExportFormat): Promise<string> {
  if (format === 'csv') return exportCsv(store, datasetName);
  if (format === 'json') return `${JSON.stringify(exportJsonObject(store, datasetName), null, 2)}\n`;
  if (format === 'html') return exportHtml(store, datasetName);
  throw new ConfigError(`format must be one of ${EXPORT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
}

/** Writes the export to `out` atomically. */
export async function writeExport(store: ReviewStore, datasetName: string, format: ExportFormat, out: string): Promise<void> {
  await writeFileAtomic(out, await renderExport(store, datasetName, format));
}
