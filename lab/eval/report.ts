/** The evaluation report as a markdown table and as the JSON `camstream eval --json` prints. */
import type { EvalReport } from './evaluate.ts';

export interface EvalContext {
  model: string;
  dataset: string;
  seed?: number;
  engine: string;
  backend: string;
  /** Class names by model class index (per-class rows fall back to the index). */
  labels?: readonly string[];
}

const pct = (v: number | undefined | null): string => (v === undefined || v === null ? 'n/a' : `${(v * 100).toFixed(2)}%`);

/** A markdown table: one row per metric, one column per box rule. */
export function formatEvalMarkdown(report: EvalReport, context: EvalContext): string {
  const p = report.paper;
  const o = report.official;
  const rows: Array<[string, string, string]> = [
    ['classification accuracy (top-1)', pct(report.accuracy), pct(report.accuracy)],
    ['classification accuracy (top-5)', pct(report.top5Accuracy), pct(report.top5Accuracy)],
    [`top-1 localization (IoU >= ${report.iouThreshold})`, pct(p?.top1Loc), pct(o?.top1Loc)],
    [`top-5 localization (IoU >= ${report.iouThreshold})`, pct(p?.top5Loc), pct(o?.top5Loc)],
    [
      'MaxBoxAcc (true class, best threshold)',
      p ? `${pct(p.maxBoxAcc)} (at ${p.maxBoxAccThreshold.toFixed(2)})` : 'n/a',
      o ? `${pct(o.maxBoxAcc)} (at ${o.maxBoxAccThreshold.toFixed(2)})` : 'n/a',
    ],
    ['mean IoU of the true class box', p ? p.meanIou.toFixed(3) : 'n/a', o ? o.meanIou.toFixed(3) : 'n/a'],
  ];
  const header = [
    `Model: ${context.model} (${context.engine}/${context.backend}); dataset: ${context.dataset}` +
      `${context.seed === undefined ? '' : `, seed ${context.seed}`}; n = ${report.n}; ${report.seconds.toFixed(1)} s`,
    '',
    `| metric | paper rule (largest component > ${report.paperThreshold} x max) | released-code rule |`,
    '| --- | --- | --- |',
  ];
  const name = (label: number): string => context.labels?.[label] ?? String(label);
  const perClass =
    report.perClass.length > 1
      ? [
          '',
          'Per true class (top-1 localization by the paper rule):',
          '',
          '| class | images | accuracy | top-1 loc. |',
          '| --- | --- | --- | --- |',
          ...report.perClass.map((k) => `| ${name(k.label)} | ${k.n} | ${pct(k.accuracy)} | ${pct(k.top1Loc)} |`),
        ]
      : [];
  return [...header, ...rows.map((r) => `| ${r.join(' | ')} |`), ...perClass, ''].join('\n');
}

/** The JSON object: `n`, `accuracy`, `top1Loc`, `top5Loc`, `maxBoxAcc` (paper rule, fractions 0-1) first. */
export function evalJson(report: EvalReport, context: EvalContext): Record<string, unknown> {
  return {
    n: report.n,
    accuracy: report.accuracy,
    top1Loc: report.paper?.top1Loc ?? null,
    top5Loc: report.paper?.top5Loc ?? null,
    maxBoxAcc: report.paper?.maxBoxAcc ?? null,
    maxBoxAccThreshold: report.paper?.maxBoxAccThreshold ?? null,
    top5Accuracy: report.top5Accuracy,
    meanIou: report.paper?.meanIou ?? null,
    official: report.official,
    perClass: report.perClass.map((k) => ({ ...k, name: context.labels?.[k.label] ?? null })),
    iouThreshold: report.iouThreshold,
    paperThreshold: report.paperThreshold,
    engine: context.engine,
    backend: context.backend,
    model: context.model,
    dataset: context.dataset,
    seed: context.seed ?? null,
    seconds: report.seconds,
  };
}
