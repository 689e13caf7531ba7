import { Catch, HttpStatus, type ArgumentsHost } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { DurableExecutionError } from '../errors/durable-execution.error.js';
import {
  InvalidArgumentError,
  InvalidRunStateError,
  PayloadTooLargeError,
  RunAlreadyExistsError,
  RunNotActiveError,
  RunNotFoundError,
  ScheduleNotFoundError,
  SignalQueueFullError,
} from '../errors/errors.js';

/**
 * The HTTP status for an error of this library that a request can cause, or undefined when it is a server error:
 * 404 unknown run or schedule, 409 a run that has ended, is in the wrong state or already exists, 400 a bad argument, 413 a payload
 * over `maxPayloadBytes`, 429 a run whose signal queue is full.
 */
export function httpStatusOf(error: DurableExecutionError): number | undefined {
  if (error instanceof RunNotFoundError || error instanceof ScheduleNotFoundError) return HttpStatus.NOT_FOUND;
  if (error instanceof RunNotActiveError || error instanceof InvalidRunStateError || error instanceof RunAlreadyExistsError) {
    return HttpStatus.CONFLICT;
  }
  if (error instanceof PayloadTooLargeError) return HttpStatus.PAYLOAD_TOO_LARGE;
  if (error instanceof SignalQueueFullError) return HttpStatus.TOO_MANY_REQUESTS;
  if (error instanceof InvalidArgumentError) return HttpStatus.BAD_REQUEST;
  return undefined;
}

/**
 * Maps the workflow client's errors to HTTP responses (see {@link httpStatusOf}) with a JSON body
 * `{ statusCode, error, code, message }`; every other error goes to Nest's default handling (a 500). Works on the
 * Express and Fastify adapters. Register it globally:
 *
 * ```ts
 * providers: [{ provide: APP_FILTER, useClass: DurableExecutionExceptionFilter }]
 * ```
 *
 * or on a controller with `@UseFilters(DurableExecutionExceptionFilter)`.
 */
@Catch(DurableExecutionError)
export class DurableExecutionExceptionFilter extends BaseExceptionFilter {
  override catch(error: DurableExecutionError, host: ArgumentsHost): void {
    const status = httpStatusOf(error);
    if (status === undefined || host.getType() !== 'http') return super.catch(error, host);
    const adapter = this.httpAdapterHost?.httpAdapter ?? this.applicationRef;
    const body = { statusCode: status, error: error.name, code: error.code, message: error.message };
    if (adapter) return void adapter.reply(host.switchToHttp().getResponse(), body, status);
    super.catch(error, host);
  }
}
