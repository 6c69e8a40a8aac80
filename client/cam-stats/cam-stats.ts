/** Registers `<cam-stats>` (see internal/cam-stats.ts). */
import { CamStats } from './internal/cam-stats.ts';

export { CamStats } from './internal/cam-stats.ts';

if (!customElements.get('cam-stats')) customElements.define('cam-stats', CamStats);

declare global {
  interface HTMLElementTagNameMap {
    'cam-stats': CamStats;
  }
}
