/** Registers `<review-app>` (see internal/review-app.ts). */
import { ReviewApp } from './internal/review-app.ts';

export { ReviewApp } from './internal/review-app.ts';

if (!customElements.get('review-app')) customElements.define('review-app', ReviewApp);

declare global {
  interface HTMLElementTagNameMap {
    'review-app': ReviewApp;
  }
}
