/** Registers `<review-grid>` (see internal/review-grid.ts). */
import { ReviewGrid } from './internal/review-grid.ts';

export { ReviewGrid } from './internal/review-grid.ts';

if (!customElements.get('review-grid')) customElements.define('review-grid', ReviewGrid);

declare global {
  interface HTMLElementTagNameMap {
    'review-grid': ReviewGrid;
  }
}
