import type { HistoryEventView, RunDetail, ShownValue, StepView } from '../dashboard-api.interface.js';
import { html, type SafeHtml } from './html.js';
import { duration, layout, query, runHref, statusBadge, time, type PageContext } from './layout.view.js';
import { messageBlock, messageText, valueBlock } from './value.view.js';

/**
 * The run page: summary (with parent, generation, what it waits for), actions, error, input and output, the children,
 * the step timeline, queued signals and the history. Each `data-live` region is replaced whole when the page refreshes.
 */
export function runPage(ctx: PageContext, run: RunDetail): string {
  const showAll = (value: ShownValue) => (value.ref ? `${runHref(ctx, run.runId)}/value${query({ ref: value.ref })}` : undefined);
  const runMs = (run.finishedAt ?? run.updatedAt).getTime() - run.createdAt.getTime();
  const content = html`
<p class="crumbs"><a href="${ctx.root}">Runs</a> › <a href="${ctx.root}${query({ workflow: run.workflow })}">${run.workflow}</a></p>
<section data-live="summary" class="summary">
  <h1><span class="id">${run.runId}</span> ${statusBadge(run.status)}</h1>
  <dl class="facts">
    <div><dt>Workflow</dt><dd>${run.workflow} <span class="muted">v${run.version}</span></dd></div>
    <div><dt>Current step</dt><dd>${run.currentStep ?? '–'}</dd></div>
    ${waitingFor(run)}
    ${run.parentRunId !== undefined ? html`<div><dt>Parent run</dt><dd class="id"><a class="parent-run" href="${runHref(ctx, run.parentRunId)}">${run.parentRunId}</a></dd></div>` : ''}
    ${run.generation > 1 ? html`<div><dt>Generation</dt><dd class="generation" title="continue-as-new or terminate-existing started this run id again">${run.generation}</dd></div>` : ''}
    ${run.blockedBy ? html`<div><dt>Blocked by</dt><dd class="blocked-by" title="${run.blockedBy === 'concurrency' ? 'every slot of its concurrency key is held' : 'its rate limit window is full'}">${run.blockedBy === 'concurrency' ? 'concurrency limit' : 'rate limit'}</dd></div>` : ''}
    ${run.concurrencyKey !== undefined ? html`<div><dt>Concurrency key</dt><dd class="concurrency-key">${run.concurrencyKey}</dd></div>` : ''}
    ${run.priority !== 0 ? html`<div><dt>Priority</dt><dd class="priority">${run.priority}</dd></div>` : ''}
    ${run.dueAt && run.status !== 'running' ? html`<div><dt>Due</dt><dd class="due-at">${time(run.dueAt)}</dd></div>` : ''}
    <div><dt>Created</dt><dd>${time(run.createdAt)}</dd></div>
    <div><dt>Updated</dt><dd>${time(run.updatedAt)}</dd></div>
    <div><dt>Finished</dt><dd>${time(run.finishedAt)}</dd></div>
    <div><dt>${run.finishedAt ? 'Took' : 'Running for'}</dt><dd>${duration(runMs)}</dd></div>
  </dl>
</section>
${ctx.readOnly ? '' : html`<section data-live="actions">${actions(run)}</section>`}
<section data-live="body">
${run.error
  ? html`<section class="panel error-panel"><h2>Error</h2>
  <p><b>${run.error.name}</b>${run.error.step !== undefined ? html` at step <b>${run.error.step}</b>` : ''}${run.error.phase === 'compensation' ? ' (in a compensation)' : ''}</p>
  ${messageBlock(run.error.message, showAll(run.error.message))}</section>`
  : ''}
<div class="io">
  <section class="panel"><h2>Input</h2>${valueBlock(run.input, showAll(run.input))}</section>
  <section class="panel"><h2>Output</h2>${run.output ? valueBlock(run.output, showAll(run.output)) : html`<p class="muted">${run.status === 'completed' ? 'undefined' : 'Not finished.'}</p>`}</section>
</div>
</section>
<section data-live="children">${childrenPanel(ctx, run)}</section>
<section data-live="steps">
<section class="panel"><h2>Steps</h2>
  ${run.steps.length === 0 ? html`<p class="muted">No step has started yet.</p>` : html`<ol class="timeline">${run.steps.map((step) => stepItem(step, showAll))}</ol>`}
</section>
<section class="panel"><h2>Pending signals <span class="muted small">${run.signals.length}</span></h2>
  ${run.signals.length === 0
    ? html`<p class="muted">No signal is queued.</p>`
    : html`<ol class="signals">${run.signals.map((s) => html`<li><span class="mono">${s.name}</span>${valueBlock(s.payload, showAll(s.payload))}</li>`)}</ol>`}
</section>
<section class="panel"><h2>History <span class="muted small">${run.history.length} events</span></h2>
  ${run.historyTrimmed ? html`<p class="muted small">Older events were dropped: a run keeps its newest 1,000.</p>` : ''}
  <table class="history">
    <thead><tr><th>#</th><th>Time</th><th>Event</th><th>Step</th><th>Attempt</th><th>Duration</th><th>Details</th><th>Instance</th></tr></thead>
    <tbody>${run.history.map(historyRow)}</tbody>
  </table>
</section>
</section>`;
  return layout(ctx, { title: run.runId, stream: { runId: run.runId } }, content);
}

/** What a waiting run waits for: its signal names, or the children its current step started. */
function waitingFor(run: RunDetail): SafeHtml | string {
  if (run.waitingForChildren !== undefined) {
    const n = run.waitingForChildren;
    return html`<div><dt>Waiting for</dt><dd class="waiting-for">${n.toLocaleString('en')} child run${n === 1 ? '' : 's'}</dd></div>`;
  }
  const names = run.waitingForSignals ?? (run.waitingFor !== undefined ? [run.waitingFor] : []);
  if (names.length === 0) return '';
  return html`<div><dt>Waiting for</dt><dd class="waiting-for">${names.length === 1 ? 'signal ' : 'any of the signals '}${names.map(
    (name, i) => html`${i > 0 ? ', ' : ''}<span class="mono signal-name">${name}</span>`,
  )}</dd></div>`;
}

/** The run's first children (id, workflow, status), with a link to all of them on the runs list when there are more. */
function childrenPanel(ctx: PageContext, run: RunDetail): SafeHtml | string {
  const { runs, more, total } = run.children;
  if (runs.length === 0) return '';
  const allHref = `${ctx.root}${query({ parent: run.runId })}`;
  const allText = total !== undefined && total > runs.length ? `all ${total.toLocaleString('en')} children` : 'all children';
  return html`<section class="panel children"><h2>Children <span class="muted small">${more ? (total !== undefined && total > runs.length ? total.toLocaleString('en') : `more than ${runs.length}`) : runs.length}</span></h2>
  <table class="runs children-table">
    <thead><tr><th>Run</th><th>Workflow</th><th>Status</th><th>Step</th><th>Created</th></tr></thead>
    <tbody>${runs.map(
      (child) => html`<tr data-run="${child.runId}">
      <td class="id"><a href="${runHref(ctx, child.runId)}">${child.runId}</a></td>
      <td>${child.workflow}<span class="muted small"> v${child.version}</span></td>
      <td>${statusBadge(child.status)}</td>
      <td>${child.currentStep ?? ''}</td>
      <td>${time(child.createdAt)}</td>
    </tr>`,
    )}</tbody>
  </table>
  ${more ? html`<p class="small">The ${runs.length} newest. <a class="all-children" href="${allHref}">${allText}</a></p>` : ''}
</section>`;
}

function actions(run: RunDetail): SafeHtml {
  const can = new Set(run.actions);
  if (can.size === 0) return html``;
  return html`<div class="actions" data-run-id="${run.runId}">
  ${can.has('pause') ? html`<button type="button" data-action="pause">Pause</button>` : ''}
  ${can.has('resume') ? html`<button type="button" data-action="resume">Resume</button>` : ''}
  ${can.has('retry') ? html`<button type="button" data-action="retry">Retry</button>` : ''}
  ${can.has('cancel') ? html`<button type="button" class="danger" data-action="cancel">Cancel…</button>` : ''}
  ${can.has('signal')
    ? html`<details class="action-form"><summary>Send signal…</summary>
    <form data-action="signal">
      <label>Name <input name="name" required maxlength="255" value="${run.waitingFor ?? ''}" autocomplete="off"></label>
      <label>Payload (JSON, optional) <textarea name="payload" data-json rows="4" placeholder='{"approved": true}'></textarea></label>
      <p class="json-error" aria-live="polite"></p>
      <button type="submit">Send signal</button>
    </form></details>`
    : ''}
  ${can.has('skip')
    ? html`<details class="action-form"><summary>Skip failed step…</summary>
    <form data-action="skip">
      <p class="small">Records step <b>${run.error?.step ?? run.currentStep ?? ''}</b> as completed with this output; the run goes on with the next step.</p>
      <label>Output (JSON) <textarea name="output" data-json required rows="4">null</textarea></label>
      <p class="json-error" aria-live="polite"></p>
      <button type="submit">Skip step</button>
    </form></details>`
    : ''}
  ${can.has('fork')
    ? html`<details class="action-form"><summary>Fork…</summary>
    <form data-action="fork">
      <p class="small">A new run of ${run.workflow} that reuses the outputs of the steps before the one you choose, and starts there.</p>
      <label>From step <select name="fromStep">${run.forkSteps.map((s) => html`<option value="${s}">${s}</option>`)}</select></label>
      <label>New run id (optional) <input name="id" maxlength="255" autocomplete="off"></label>
      <label>Input (JSON, optional: the source run's input when empty) <textarea name="input" data-json rows="3"></textarea></label>
      <p class="json-error" aria-live="polite"></p>
      <button type="submit">Fork run</button>
    </form></details>`
    : ''}
</div>`;
}

function stepItem(step: StepView, showAll: (v: ShownValue) => string | undefined): SafeHtml {
  return html`<li class="step" data-step="${step.name}">
  <div class="step-head">
    <b class="mono">${step.name}</b> ${statusBadge(step.status)}
    <span class="muted small">${step.attempts} attempt${step.attempts === 1 ? '' : 's'} · ${duration(step.durationMs)} · started ${time(step.startedAt)}</span>
  </div>
  <div class="track">${step.tries.map(
    (t) =>
      html`<span class="bar o-${t.outcome} k-${t.kind}" data-left="${t.left ?? 0}" data-width="${t.width ?? 0.5}" title="${t.kind} attempt ${t.attempt ?? ''}: ${t.outcome}, ${duration(t.durationMs)}"></span>`,
  )}</div>
  ${step.tries.length > 0
    ? html`<ul class="tries">${step.tries.map(
        (t) => html`<li class="o-${t.outcome}">${t.kind === 'compensation' ? 'compensation ' : ''}attempt ${t.attempt ?? '?'} · ${t.outcome} · ${duration(t.durationMs)} · ${time(t.endedAt, true)}${t.error ? html` · <span class="err-name">${t.error.name}</span> ${messageText(t.error.message)}` : ''}</li>`,
      )}</ul>`
    : ''}
  ${step.error ? html`<div class="step-error"><span class="label">Error</span>${messageBlock(step.error, showAll(step.error))}</div>` : ''}
  ${step.heartbeat
    ? html`<div class="heartbeat"><span class="label">Heartbeat</span> ${time(step.heartbeat.at)}${step.heartbeat.details ? valueBlock(step.heartbeat.details, showAll(step.heartbeat.details)) : ''}</div>`
    : ''}
  ${step.output ? html`<details class="step-output"><summary>Output</summary>${valueBlock(step.output, showAll(step.output))}</details>` : ''}
</li>`;
}

function historyRow(event: HistoryEventView): SafeHtml {
  return html`<tr class="ev ev-${event.type.replace('.', '-')}">
  <td class="muted">${event.seq}</td>
  <td>${time(event.at, true)}</td>
  <td class="mono">${event.type}</td>
  <td>${event.step ?? ''}</td>
  <td>${event.attempt ?? ''}</td>
  <td>${event.durationMs !== undefined ? duration(event.durationMs) : ''}</td>
  <td>${event.error ? html`<span class="err-name">${event.error.name}</span> ${messageText(event.error.message)}` : ''}${
    event.detail !== undefined ? html`<code class="detail">${detailText(event.detail)}</code>` : ''
  }</td>
  <td class="muted small">${event.instanceId ?? ''}</td>
</tr>`;
}

/** An event's detail (the engine's own plain JSON: versions, delays, signal names, operators). */
function detailText(detail: unknown): string {
  try {
    const text = JSON.stringify(detail);
    return text.length > 500 ? `${text.slice(0, 500)}…` : text;
  } catch {
    return String(detail);
  }
}
