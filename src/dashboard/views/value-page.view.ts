import type { ShownValue } from '../dashboard-api.interface.js';
import type { RunStatus } from '../../store/workflow-store.interface.js';
import { html } from './html.js';
import { layout, runHref, statusBadge, type PageContext } from './layout.view.js';
import { valueBlock } from './value.view.js';

/** "Show all": one value of a run, whole (up to a very large cap). */
export function valuePage(ctx: PageContext, run: { runId: string; workflow: string; status: RunStatus }, ref: string, value: ShownValue): string {
  const content = html`
<p class="crumbs"><a href="${ctx.root}">Runs</a> › <a href="${runHref(ctx, run.runId)}">${run.runId}</a> ${statusBadge(run.status)}</p>
<h1>${ref}</h1>
${value.truncated ? html`<p class="muted">Still cut: the value is larger than the page shows.</p>` : ''}
${valueBlock(value)}`;
  return layout(ctx, { title: `${run.runId} ${ref}` }, content);
}
