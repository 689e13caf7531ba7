import type { HttpServer } from '@nestjs/common';
import { SCRIPT_ASSET, STYLE_ASSET } from './assets/dashboard-assets.js';
import type { LiveScope } from './dashboard-live.service.js';
import { csrfCookie, csrfSetCookie, newCsrfToken, requestPath, type DashboardRequest } from './dashboard-request.context.js';
import type { PageContext } from './views/layout.view.js';

/**
 * Links between pages are relative to the page's own address, so the dashboard works under a global prefix or behind
 * a proxy that mounts the app elsewhere. `depth`: the route's segments after the mount path (0 for the runs page,
 * 2 for `runs/:runId`).
 */
export function relativeLinks(path: string, depth: number): { root: string; base: string } {
  const trailing = path.length > 1 && path.endsWith('/');
  const segments = path.split('/').filter((s) => s.length > 0);
  const mountSegment = segments[segments.length - depth - 1];
  const ups = '../'.repeat(depth + (trailing ? 1 : 0));
  if (mountSegment === undefined) {
    const here = ups || './';
    return { root: here, base: here };
  }
  return { root: `${ups}${mountSegment}`, base: `${ups}${mountSegment}/` };
}

/**
 * The context of a page for this request: its relative links, and the CSRF token (the request's cookie, or a new
 * token set as a `SameSite=Strict` cookie on the response).
 */
export function pageContext(
  request: DashboardRequest,
  response: unknown,
  adapter: HttpServer,
  depth: number,
  options: { readOnly: boolean; live: LiveScope },
): PageContext {
  let csrf = csrfCookie(request);
  if (!csrf && !options.readOnly) {
    csrf = newCsrfToken();
    adapter.setHeader(response, 'Set-Cookie', csrfSetCookie(csrf));
  }
  return {
    ...relativeLinks(requestPath(request), depth),
    csrf: csrf ?? '',
    readOnly: options.readOnly,
    live: options.live,
    assets: { script: SCRIPT_ASSET.name, style: STYLE_ASSET.name },
  };
}
