/** The review page's entry: registers the elements; review.html holds <review-app>. */
import './review-app/review-app.ts';
