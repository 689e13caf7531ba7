import { html } from './html.js';
import { layout, type PageContext } from './layout.view.js';

/** A page for a request that failed (bad parameter, unknown run, refused by the guard…). */
export function errorPage(ctx: PageContext, status: number, title: string, message: string): string {
  const content = html`
<section class="panel error-panel">
  <h1>${status} ${title}</h1>
  <p>${message}</p>
  <p><a href="${ctx.root}">Back to the runs</a></p>
</section>`;
  return layout(ctx, { title: `${status} ${title}` }, content);
}
