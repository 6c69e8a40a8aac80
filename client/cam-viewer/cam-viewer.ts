/** Registers `<cam-viewer>` (see internal/cam-viewer.ts). */
import { CamViewer } from './internal/cam-viewer.ts';

export { CamViewer, type CamDrawnDetail, type MapChoice } from './internal/cam-viewer.ts';

if (!customElements.get('cam-viewer')) customElements.define('cam-viewer', CamViewer);

declare global {
  interface HTMLElementTagNameMap {
    'cam-viewer': CamViewer;
  }
}
