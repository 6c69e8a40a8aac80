/** Markdown rendering of the forward + CAM bench results. */
import type { CaseResult } from './case.ts';
import type { PreparedModel } from './models.ts';

/**
 * ORT cpu forward times measured on the development machine (2 cores, 2 threads) when issue 2 was written:
 * the targets are "within 10% of these, CAM adding at most 3%".
 */
export const REFERENCE_FORWARD_MS: Readonly<Record<string, number>> = Object.freeze({
  'onnx/cpu/resnet50': 22.5,
  'onnx/cpu/mobilenetv2': 2.5,
});

export interface CaseRow {
  result?: CaseResult;
  /** Set when the case failed: the reason, one line. */
  error?: string;
  engine: string;
  backend: string;
  model: string;
  /** 1-minute load average at the case's start and end (the machine may be shared). */
  loadAvg: [number, number];
}

const ms = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const pct = (v: number): string => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}%`;

export function referenceFor(r: { engine: string; backend: string; model: string }): number | undefined {
  return REFERENCE_FORWARD_MS[`${r.engine}/${r.backend}/${r.model}`];
}

/** The results table, one row per case. */
export function renderTable(rows: readonly CaseRow[], frameSize: [number, number]): string {
  const [fw, fh] = frameSize;
  const head = [
    'engine',
    'backend',
    'model',
    'threads',
    'forward ms',
    'forward, BN folded ms',
    'infer@model ms',
    `infer@${fw}x${fh} ms`,
    'CAM share (median / min)',
    'CAM+resize share',
    'forward / ref',
    'load ms (plain / camstream)',
    'peak RSS MiB',
    'load avg',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const row of rows) {
    const r = row.result;
    const load = `${row.loadAvg[0].toFixed(1)}-${row.loadAvg[1].toFixed(1)}`;
    if (!r) {
      lines.push(`| ${row.engine} | ${row.backend} | ${row.model} | | failed: ${row.error ?? 'unknown'} | | | | | | | | | ${load} |`);
      continue;
    }
    const ref = referenceFor(r);
    lines.push(
      `| ${[
        r.engine,
        r.backend,
        r.model,
        r.forwardThreads === r.threads ? `${r.threads}` : `${r.forwardThreads} / ${r.threads}`,
        `${ms(r.forward.medianMs)} (min ${ms(r.forward.minMs)})`,
        r.forwardFolded ? ms(r.forwardFolded.medianMs) : '',
        `${ms(r.inferModel.medianMs)} (min ${ms(r.inferModel.minMs)})`,
        `${ms(r.inferFrame.medianMs)}`,
        `${pct(r.camShare)} / ${pct(r.camShareMin)}`,
        pct(r.camShareWithResize),
        ref === undefined ? '' : `${(r.forward.medianMs / ref).toFixed(2)}x (ref ${ref})`,
        `${ms(r.forwardLoadMs)} / ${ms(r.camLoadMs)}`,
        r.peakRssMiB.toFixed(0),
        load,
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

/** One line per model: size and how long building and writing it took. */
export function renderModels(models: readonly PreparedModel[]): string {
  return models
    .map(
      (m) =>
        `- ${m.name} ${m.inputSize[0]}x${m.inputSize[1]}: ${m.parameters.toLocaleString('en-US')} parameters, ` +
        `spec built in ${ms(m.buildMs)} ms, written as TF.js in ${ms(m.writeTfjsMs)} ms and as ONNX in ${ms(m.writeOnnxMs)} ms`,
    )
    .join('\n');
}
