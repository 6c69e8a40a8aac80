/** Registers `<cam-controls>` (see internal/cam-controls.ts). */
import { CamControls } from './internal/cam-controls.ts';

export { CamControls, parseSourceValue, sourceValue, type DisplayOptions } from './internal/cam-controls.ts';

if (!customElements.get('cam-controls')) customElements.define('cam-controls', CamControls);

declare global {
  interface HTMLElementTagNameMap {
    'cam-controls': CamControls;
  }
}
