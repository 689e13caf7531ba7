import { Header, applyDecorators } from '@nestjs/common';

/**
 * Headers of every page: HTML, never cached, and a Content Security Policy that runs only the dashboard's own script
 * and style sheet (no inline script can run, whatever a value contains), in no frame.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'same-origin',
};

/** Headers of the JSON API's answers. */
export const API_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
};

/** Sets {@link PAGE_HEADERS} on a page route. */
export const HtmlPage = () => applyDecorators(...Object.entries(PAGE_HEADERS).map(([name, value]) => Header(name, value)));

/** Sets {@link API_HEADERS} on a JSON route. */
export const JsonApi = () => applyDecorators(...Object.entries(API_HEADERS).map(([name, value]) => Header(name, value)));
