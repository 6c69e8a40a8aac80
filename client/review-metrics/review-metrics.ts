/** Registers `<review-metrics>` (see internal/review-metrics.ts). */
import { ReviewMetrics } from './internal/review-metrics.ts';

export { ReviewMetrics } from './internal/review-metrics.ts';

if (!customElements.get('review-metrics')) customElements.define('review-metrics', ReviewMetrics);

declare global {
  interface HTMLElementTagNameMap {
    'review-metrics': ReviewMetrics;
  }
}
