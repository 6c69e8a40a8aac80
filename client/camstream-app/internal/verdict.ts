/**
 * What the page says the picture shows, from one result: the class on the map and its probability, or
 * "no digit" for a model with a class meaning none (a label `no digit`) when that class leads or is on
 * the map, or when the best probability is under the server's low-confidence level: a weak guess at a
 * digit is not shown as a digit.
 */
import type { ResultMessage } from '../../../protocol/index.ts';

/** What the model message says about reading "none" (see ServerMessage `model`). */
export interface NoneRule {
  noneClass: number | null;
  lowConfidence: number;
}

export interface Verdict {
  /** A label, or `no digit`. */
  text: string;
  /** The probability of the class named (of the best class when `none` came from low confidence), 0..1. */
  probability: number;
  /** True when the page reads the result as "nothing to see". */
  none: boolean;
}

/** The text the page shows for "nothing to see". */
export const NONE_TEXT = 'no digit';

/** The verdict for `r` under `rule` (no rule: the class on the map, as it is). Undefined for a result without classes. */
export function verdict(r: Pick<ResultMessage, 'ids' | 'probabilities' | 'labels' | 'shown'>, rule: NoneRule | undefined): Verdict | undefined {
  const k = r.ids.length;
  if (k === 0) return undefined;
  const shown = Math.min(Math.max(0, r.shown ?? 0), k - 1);
  let best = 0;
  for (let i = 1; i < k; i++) if (r.probabilities[i] > r.probabilities[best]) best = i;
  const named = { text: r.labels[shown] ?? `class ${r.ids[shown]}`, probability: r.probabilities[shown], none: false };
  if (!rule || rule.noneClass === null) return named;
  if (r.ids[best] === rule.noneClass) return { text: NONE_TEXT, probability: r.probabilities[best], none: true };
  if (r.ids[shown] === rule.noneClass) return { text: NONE_TEXT, probability: r.probabilities[shown], none: true };
  if (r.probabilities[best] < rule.lowConfidence) return { text: NONE_TEXT, probability: r.probabilities[best], none: true };
  return named;
}
