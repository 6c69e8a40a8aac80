/** Registers `<camstream-app>` (see internal/camstream-app.ts). */
import { CamstreamApp } from './internal/camstream-app.ts';

export { CamstreamApp } from './internal/camstream-app.ts';

if (!customElements.get('camstream-app')) customElements.define('camstream-app', CamstreamApp);

declare global {
  interface HTMLElementTagNameMap {
    'camstream-app': CamstreamApp;
  }
}
