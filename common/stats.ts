/**
 * Summary statistics small enough to share between Node and the browser: the web client's latency
 * figures and the live benches use the same percentile, so their numbers compare.
 */

/**
 * The `q`-quantile of `values` (q in [0, 1]), interpolating linearly between the two nearest ranks (the
 * usual "type 7" definition, as numpy's default). NaN for no values. `values` is not modified.
 */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
