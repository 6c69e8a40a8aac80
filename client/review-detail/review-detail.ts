/** Registers `<review-detail>` (see internal/review-detail.ts). */
import { ReviewDetail } from './internal/review-detail.ts';

export { ReviewDetail } from './internal/review-detail.ts';

if (!customElements.get('review-detail')) customElements.define('review-detail', ReviewDetail);

declare global {
  interface HTMLElementTagNameMap {
    'review-detail': ReviewDetail;
  }
}
