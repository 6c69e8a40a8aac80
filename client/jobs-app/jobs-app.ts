/** Registers `<jobs-app>` (see internal/jobs-app.ts); jobs.html loads this file as its entry. */
import { JobsApp } from './internal/jobs-app.ts';

export { JobsApp } from './internal/jobs-app.ts';

if (!customElements.get('jobs-app')) customElements.define('jobs-app', JobsApp);

declare global {
  interface HTMLElementTagNameMap {
    'jobs-app': JobsApp;
  }
}
