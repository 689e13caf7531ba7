import { randomBytes, timingSafeEqual } from 'node:crypto';
import { CSRF_COOKIE } from './dashboard.constants.js';

/** What the dashboard reads of a request, on Express and Fastify alike. */
export interface DashboardRequest {
  headers: Record<string, string | string[] | undefined>;
  url?: string;
  originalUrl?: string;
  user?: unknown;
}

/** A header's first value. */
export function header(request: DashboardRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The request's path as sent (percent-encoded, without the query). */
export function requestPath(request: DashboardRequest): string {
  const url = request.originalUrl ?? request.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

const OPERATOR_KEYS = ['id', 'name', 'email', 'username', 'sub'] as const;

/**
 * Who makes an operator action: `request.user` as the guard left it (a string, or its `id`, `name`, `email`,
 * `username` or `sub`), or undefined without one.
 */
export function operatorOf(request: DashboardRequest): string | undefined {
  const user = request.user;
  const clip = (v: string) => (v.length > 255 ? v.slice(0, 255) : v);
  if (typeof user === 'string' && user.length > 0) return clip(user);
  if (user && typeof user === 'object') {
    for (const key of OPERATOR_KEYS) {
      const v = (user as Record<string, unknown>)[key];
      if ((typeof v === 'string' && v.length > 0) || typeof v === 'number') return clip(String(v));
    }
  }
  return undefined;
}

const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** The CSRF token the request's cookie carries, when it has a well-formed one. */
export function csrfCookie(request: DashboardRequest): string | undefined {
  const cookies = header(request, 'cookie');
  if (!cookies) return undefined;
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === CSRF_COOKIE) {
      const value = part.slice(eq + 1).trim();
      return TOKEN.test(value) ? value : undefined;
    }
  }
  return undefined;
}

/** A fresh CSRF token (256 random bits). */
export function newCsrfToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The `Set-Cookie` value that hands a token to the browser (sent back only by same-site requests). */
export function csrfSetCookie(token: string): string {
  return `${CSRF_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict`;
}

/** Whether the header's token is the cookie's (constant time). */
export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !TOKEN.test(a) || !TOKEN.test(b)) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
