import type { LiveScope } from '../dashboard-live.service.js';
import { html, type SafeHtml } from './html.js';

/** What every page needs to know about where it is and who asks. */
export interface PageContext {
  /** Relative href of the runs page (the dashboard's root), e.g. `workflows` or `../../workflows`. */
  root: string;
  /** Relative prefix of every other route, e.g. `workflows/` or `../`. */
  base: string;
  /** The CSRF token the page's script sends with actions. */
  csrf: string;
  readOnly: boolean;
  live: LiveScope;
  /** Hashed file names of the script and the style sheet. */
  assets: { script: string; style: string };
}

/** The live stream of a page: the query of `<base>api/events`. */
export type StreamQuery = { runId?: string; workflow?: string } | undefined;

/** A page: the shared head, header, confirmation dialog and toast around `content`. */
export function layout(ctx: PageContext, page: { title: string; nav?: 'runs' | 'workflows'; stream?: StreamQuery }, content: SafeHtml): string {
  const stream = page.stream ? `api/events${query(page.stream)}` : undefined;
  const liveTitle =
    ctx.live === 'cluster'
      ? 'Live updates from every instance'
      : "Live updates show this instance's events only: set events: { cluster: true } in DurableExecutionModule.forRoot() on every instance to see all of them";
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
${ctx.readOnly ? '' : html`<meta name="cairn-csrf" content="${ctx.csrf}">`}
<link rel="icon" href="data:,">
<title>${page.title} · cairn</title>
<link rel="stylesheet" href="${ctx.base}assets/${ctx.assets.style}">
<script src="${ctx.base}assets/${ctx.assets.script}" defer></script>
</head>
<body data-base="${ctx.base}" data-stream="${stream ?? ''}" data-read-only="${String(ctx.readOnly)}">
<header class="top">
  <a class="brand" href="${ctx.root}">cairn</a>
  <nav>
    <a href="${ctx.root}"${page.nav === 'runs' ? html` aria-current="page"` : ''}>Runs</a>
    <a href="${ctx.base}workflows"${page.nav === 'workflows' ? html` aria-current="page"` : ''}>Workflows</a>
  </nav>
  ${stream ? html`<span id="live" class="live" data-scope="${ctx.live}" title="${liveTitle}">${ctx.live === 'cluster' ? 'live' : 'live (this instance)'}</span>` : ''}
  ${ctx.readOnly ? html`<span class="ro">read-only</span>` : ''}
</header>
<main>
${content}
</main>
${ctx.readOnly
  ? ''
  : html`<dialog id="confirm"><form method="dialog">
  <p class="confirm-text"></p>
  <label class="confirm-option" hidden><input type="checkbox" name="option" checked> <span></span></label>
  <div class="buttons"><button value="cancel" type="submit" class="secondary">Back</button><button value="ok" type="submit" class="danger confirm-ok">Confirm</button></div>
</form></dialog>`}
<div id="toast" role="status" aria-live="polite"></div>
</body>
</html>
`.value;
}

/** A query string of the given values (empty ones left out), `?` included when any. */
export function query(values: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value !== undefined && value !== '') params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** A time the script shows in the browser's zone (UTC ISO without it). */
export function time(date: Date | undefined, ms = false): SafeHtml {
  if (!date) return html`<span class="muted">–</span>`;
  const iso = date.toISOString();
  const text = iso.replace('T', ' ').replace(ms ? /Z$/ : /\.\d+Z$/, 'Z');
  return html`<time datetime="${iso}"${ms ? html` data-ms` : ''}>${text}</time>`;
}

/** A duration in ms as `850 ms`, `3.2 s`, `4 m 05 s`, `2 h 10 m`. */
export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${ms % 1_000 === 0 ? ms / 1_000 : (ms / 1_000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} m ${String(Math.floor((ms % 60_000) / 1_000)).padStart(2, '0')} s`;
  return `${Math.floor(ms / 3_600_000)} h ${String(Math.floor((ms % 3_600_000) / 60_000)).padStart(2, '0')} m`;
}

/** A status as a coloured badge. */
export function statusBadge(status: string): SafeHtml {
  return html`<span class="badge s-${status}">${status}</span>`;
}

/** The href of a run's page. */
export function runHref(ctx: PageContext, runId: string): string {
  return `${ctx.base}runs/${encodeURIComponent(runId)}`;
}
