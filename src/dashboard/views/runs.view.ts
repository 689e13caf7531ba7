import { RUN_STATUSES } from '../../store/run-state-machine.js';
import type { RunsFilter, RunsPage } from '../dashboard-api.interface.js';
import { DEFAULT_PAGE_SIZE } from '../dashboard.constants.js';
import { html } from './html.js';
import { layout, query, runHref, statusBadge, time, type PageContext } from './layout.view.js';

/** The filter as the page's query (what links keep, what bulk actions send). */
export function filterQuery(filter: RunsFilter): Record<string, string | undefined> {
  return {
    workflow: filter.workflow,
    status: filter.statuses?.join(','),
    from: filter.createdFrom?.toISOString(),
    to: filter.createdTo?.toISOString(),
    id: filter.runId,
    parent: filter.parentRunId,
  };
}

/** A `datetime-local` value of an instant in the zone the filter was entered in. */
function localInput(date: Date | undefined, tzOffset: number | undefined): string {
  if (!date) return '';
  return new Date(date.getTime() - (tzOffset ?? 0) * 60_000).toISOString().slice(0, 16);
}

/** The runs page: filters, counts per status, a page of runs, paging, bulk actions. */
export function runsPage(ctx: PageContext, filter: RunsFilter, page: RunsPage, workflows: string[]): string {
  const current = filterQuery(filter);
  const names = filter.workflow && !workflows.includes(filter.workflow) ? [...workflows, filter.workflow] : workflows;
  const status = filter.statuses?.length === 1 ? filter.statuses[0] : filter.statuses?.join(',');
  const total = Object.values(page.counts).reduce((a, b) => a + b, 0);
  const nextHref = page.cursor ? `${ctx.root}${query({ ...current, limit: filter.limit === DEFAULT_PAGE_SIZE ? undefined : filter.limit, cursor: page.cursor })}` : undefined;
  const content = html`
${filter.parentRunId !== undefined
  ? html`<p class="crumbs parent-filter"><a href="${ctx.root}">Runs</a> › children of <a class="id" href="${runHref(ctx, filter.parentRunId)}">${filter.parentRunId}</a> <a class="small" href="${ctx.root}${query({ ...current, parent: undefined })}">(all runs)</a></p>`
  : ''}
<h1>${filter.parentRunId !== undefined ? 'Child runs' : 'Runs'}</h1>
<form class="filters" method="get" action="${ctx.root}">
  <label>Workflow
    <select name="workflow"><option value="">All workflows</option>${names.map(
      (name) => html`<option value="${name}"${name === filter.workflow ? html` selected` : ''}>${name}</option>`,
    )}</select></label>
  <label>Status
    <select name="status"><option value="">Any status</option>${RUN_STATUSES.map(
      (s) => html`<option value="${s}"${s === status ? html` selected` : ''}>${s}</option>`,
    )}${status && !RUN_STATUSES.includes(status as never) ? html`<option value="${status}" selected>${status}</option>` : ''}</select></label>
  <label>Created from <input type="datetime-local" name="from" value="${localInput(filter.createdFrom, filter.tzOffset)}"></label>
  <label>to <input type="datetime-local" name="to" value="${localInput(filter.createdTo, filter.tzOffset)}"></label>
  <label>Run id <input type="search" name="id" value="${filter.runId ?? ''}" maxlength="255" placeholder="exact id"></label>
  <label>Children of <input type="search" name="parent" value="${filter.parentRunId ?? ''}" maxlength="255" placeholder="parent run id"></label>
  <input type="hidden" name="tz" value="${filter.tzOffset ?? ''}">
  <button type="submit">Filter</button>
  <a class="button secondary" href="${ctx.root}">Clear</a>
</form>
<section data-live="counts" class="counts" aria-label="Runs per status">
  <a class="count${filter.statuses ? '' : ' active'}" href="${ctx.root}${query({ workflow: filter.workflow, parent: filter.parentRunId })}">all <b>${total.toLocaleString('en')}</b></a>
  ${RUN_STATUSES.map(
    (s) =>
      html`<a class="count s-${s}${status === s ? ' active' : ''}" data-status="${s}" href="${ctx.root}${query({ workflow: filter.workflow, parent: filter.parentRunId, status: s })}">${s} <b>${page.counts[s].toLocaleString('en')}</b></a>`,
  )}
  <span class="muted small">${filter.workflow ? html`of ${filter.workflow}, ` : ''}all time${filter.parentRunId !== undefined ? ', every run (not only these children)' : ''}</span>
</section>
${ctx.readOnly
  ? ''
  : html`<div class="bulk" data-filter="${JSON.stringify(current)}">
  <button type="button" class="secondary" data-bulk="cancel">Cancel matching runs…</button>
  <button type="button" class="secondary" data-bulk="retry">Retry matching failed runs…</button>
</div>`}
<section data-live="runs">
<table class="runs">
  <thead><tr><th>Run</th><th>Workflow</th><th>Status</th><th>Step</th><th>Created</th><th>Updated</th><th>Error</th></tr></thead>
  <tbody>
  ${page.runs.length === 0
    ? html`<tr><td colspan="7" class="empty">${filter.parentRunId !== undefined ? 'No child run of this run matches this filter.' : 'No runs match this filter.'}</td></tr>`
    : page.runs.map(
        (run) => html`<tr data-run="${run.runId}">
    <td class="id"><a href="${runHref(ctx, run.runId)}">${run.runId}</a></td>
    <td>${run.workflow}<span class="muted small"> v${run.version}</span></td>
    <td>${statusBadge(run.status)}</td>
    <td>${run.currentStep ?? ''}</td>
    <td>${time(run.createdAt)}</td>
    <td>${time(run.updatedAt)}</td>
    <td class="error-cell">${run.error ? html`<span class="err-name">${run.error.name}</span> ${run.error.message}` : ''}</td>
  </tr>`,
      )}
  </tbody>
</table>
<nav class="pager">
  ${filter.cursor ? html`<a href="${ctx.root}${query(current)}">« First page</a>` : ''}
  ${nextHref ? html`<a rel="next" href="${nextHref}">Next page »</a>` : ''}
</nav>
</section>`;
  return layout(ctx, { title: filter.parentRunId !== undefined ? `Children of ${filter.parentRunId}` : 'Runs', nav: 'runs', stream: filter.workflow ? { workflow: filter.workflow } : {} }, content);
}
