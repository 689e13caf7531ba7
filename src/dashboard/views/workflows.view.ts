import { RUN_STATUSES } from '../../store/run-state-machine.js';
import type { StepDefinitionView, WorkflowView } from '../dashboard-api.interface.js';
import { html } from './html.js';
import { duration, layout, query, type PageContext } from './layout.view.js';

/** The workflows page: each registered definition's steps, retry policies, timeouts, compensations and run counts. */
export function workflowsPage(ctx: PageContext, workflows: WorkflowView[]): string {
  const content = html`
<h1>Workflows</h1>
${workflows.length === 0 ? html`<p class="muted">No workflow is registered in this app.</p>` : ''}
${workflows.map(
  (wf) => html`<section class="panel workflow" data-workflow="${wf.name}">
  <h2><a href="${ctx.root}${query({ workflow: wf.name })}">${wf.name}</a> <span class="muted small">v${wf.version} · class ${wf.className}</span></h2>
  <div class="counts">${RUN_STATUSES.filter((s) => wf.counts[s] > 0).map(
    (s) => html`<a class="count s-${s}" href="${ctx.root}${query({ workflow: wf.name, status: s })}">${s} <b>${wf.counts[s].toLocaleString('en')}</b></a>`,
  )}${RUN_STATUSES.every((s) => wf.counts[s] === 0) ? html`<span class="muted small">No runs.</span>` : html`<span class="muted small">runs of every version</span>`}</div>
  <table>
    <thead><tr><th>#</th><th>Step</th><th>Method</th><th>Retry</th><th>Timeout</th><th>Heartbeat timeout</th><th>Compensation</th></tr></thead>
    <tbody>${wf.steps.map(
      (step, i) => html`<tr>
      <td class="muted">${i + 1}</td><td class="mono">${step.name}</td><td class="mono">${step.method}()</td>
      <td>${retryText(step)}</td><td>${step.timeoutMs !== undefined ? duration(step.timeoutMs) : '–'}</td>
      <td>${step.heartbeatTimeoutMs !== undefined ? duration(step.heartbeatTimeoutMs) : '–'}</td>
      <td class="mono">${step.compensate ? `${step.compensate}()` : '–'}</td></tr>`,
    )}</tbody>
  </table>
</section>`,
)}`;
  return layout(ctx, { title: 'Workflows', nav: 'workflows' }, content);
}

function retryText(step: StepDefinitionView): string {
  const r = step.retry;
  if (r.maxAttempts <= 1) return 'none (1 attempt)';
  const delays =
    r.backoff === 'fixed'
      ? `every ${duration(r.delayMs)}`
      : `from ${duration(r.delayMs)} ×${r.multiplier}${r.maxDelayMs ? `, at most ${duration(r.maxDelayMs)}` : ''}`;
  return `${r.maxAttempts} attempts, ${r.backoff} ${delays}${r.jitter ? ', jitter' : ''}${r.retryIf ? ', retryIf' : ''}`;
}
