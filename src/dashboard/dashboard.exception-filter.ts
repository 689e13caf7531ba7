import { Catch, HttpException, Inject, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { DurableExecutionError } from '../errors/durable-execution.error.js';
import { httpStatusOf } from '../nest/durable-execution.exception-filter.js';
import type { PageContext } from './views/layout.view.js';
import { errorPage } from './views/error.view.js';
import { escapeHtml } from './views/html.js';
import { PAGE_HEADERS } from './dashboard-headers.js';

/** A page handler's failure, with the page's context so the error page can link back and load its style sheet. */
export class DashboardPageFailure extends Error {
  constructor(
    override readonly cause: unknown,
    readonly context: PageContext,
  ) {
    super('dashboard page failed');
  }
}

interface Described {
  status: number;
  error: string;
  code?: string;
  message: string;
}

const logger = new Logger('DurableExecutionDashboard');

/** Status and text of an exception; server errors are logged and never described to the client. */
function describe(exception: unknown): Described {
  if (exception instanceof HttpException) {
    const body = exception.getResponse();
    const raw = typeof body === 'string' ? body : (body as { message?: unknown }).message;
    const message = Array.isArray(raw) ? raw.join('; ') : typeof raw === 'string' ? raw : exception.message;
    const error = typeof body === 'object' && body && typeof (body as { error?: unknown }).error === 'string' ? (body as { error: string }).error : exception.name;
    return { status: exception.getStatus(), error, message };
  }
  if (exception instanceof DurableExecutionError) {
    const status = httpStatusOf(exception);
    if (status !== undefined) return { status, error: exception.name, code: exception.code, message: exception.message };
  }
  logger.error(exception instanceof Error ? exception.message : String(exception), exception instanceof Error ? exception.stack : undefined);
  return { status: 500, error: 'Internal Server Error', message: 'The dashboard failed to answer; the server log says why.' };
}

/** Errors of the JSON API: `{ statusCode, error, code?, message }`, on Express and Fastify. */
@Catch()
export class DashboardApiExceptionFilter implements ExceptionFilter {
  constructor(@Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const adapter = this.adapterHost.httpAdapter;
    const response = host.switchToHttp().getResponse<unknown>();
    const d = describe(exception);
    if (adapter.isHeadersSent(response)) return void adapter.end(response);
    adapter.setHeader(response, 'Cache-Control', 'no-store');
    adapter.reply(response, { statusCode: d.status, error: d.error, ...(d.code ? { code: d.code } : {}), message: d.message }, d.status);
  }
}

/** Errors of the pages: an HTML page (the dashboard's own when the page got far enough to know where it is). */
@Catch()
export class DashboardPageExceptionFilter implements ExceptionFilter {
  constructor(@Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const adapter = this.adapterHost.httpAdapter;
    const response = host.switchToHttp().getResponse<unknown>();
    const failure = exception instanceof DashboardPageFailure ? exception : undefined;
    const d = describe(failure ? failure.cause : exception);
    if (adapter.isHeadersSent(response)) return void adapter.end(response);
    for (const [name, value] of Object.entries(PAGE_HEADERS)) adapter.setHeader(response, name, value);
    const body = failure
      ? errorPage(failure.context, d.status, d.error, d.message)
      : `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${d.status}</title></head><body><h1>${d.status} ${escapeHtml(d.error)}</h1><p>${escapeHtml(d.message)}</p></body></html>`;
    adapter.reply(response, body, d.status);
  }
}
