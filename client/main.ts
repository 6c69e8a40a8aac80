/** The web client's entry: registers the elements; index.html holds <camstream-app>. */
import './camstream-app/camstream-app.ts';
