import { ForbiddenException, Injectable, UnsupportedMediaTypeException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { CSRF_HEADER } from './dashboard.constants.js';
import * as messages from './dashboard.messages.js';
import { csrfCookie, header, sameToken, type DashboardRequest } from './dashboard-request.context.js';

/**
 * Guards every state-changing route of the dashboard against cross-site requests:
 * 1. `Sec-Fetch-Site`, when the browser sends it, must be `same-origin`;
 * 2. `Origin`, when sent, must name this host (`Host`, or `X-Forwarded-Host` behind a proxy);
 * 3. the body must be JSON (a cross-site form cannot send it without a CORS preflight);
 * 4. the `X-Cairn-CSRF` header must equal the token cookie (`SameSite=Strict`, set by the dashboard's pages).
 */
@Injectable()
export class DashboardCrossSiteGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<DashboardRequest>();
    const site = header(request, 'sec-fetch-site');
    if (site !== undefined && site !== 'same-origin') throw new ForbiddenException(messages.CROSS_SITE(`Sec-Fetch-Site: ${site.slice(0, 40)}`));
    const origin = header(request, 'origin');
    if (origin !== undefined) {
      const own = [header(request, 'host'), header(request, 'x-forwarded-host')?.split(',')[0]?.trim()].filter((h): h is string => !!h);
      if (!own.includes(hostOf(origin) ?? '\0')) throw new ForbiddenException(messages.CROSS_SITE(`Origin ${origin.slice(0, 100)}`));
    }
    const type = header(request, 'content-type');
    if (!type || !/^application\/json\s*(;|$)/i.test(type)) throw new UnsupportedMediaTypeException(messages.NOT_JSON);
    if (!sameToken(header(request, CSRF_HEADER), csrfCookie(request))) throw new ForbiddenException(messages.MISSING_TOKEN);
    return true;
  }
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host || undefined;
  } catch {
    return undefined;
  }
}
