import { Catch, HttpStatus, type ArgumentsHost } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import {
  DurableExecutionError,
  InvalidArgumentError,
  InvalidRunStateError,
  PayloadTooLargeError,
  RunAlreadyExistsError,
  RunNotActiveError,
  RunNotFoundError,
} from './cairn.js';

/** The HTTP status for a workflow client error, or undefined for a server error. */
export function httpStatusOf(error: DurableExecutionError): number | undefined {
  if (error instanceof RunNotFoundError) return HttpStatus.NOT_FOUND;
  if (error instanceof RunNotActiveError || error instanceof InvalidRunStateError || error instanceof RunAlreadyExistsError) {
    return HttpStatus.CONFLICT;
  }
  if (error instanceof InvalidArgumentError || error instanceof PayloadTooLargeError) return HttpStatus.BAD_REQUEST;
  return undefined;
}

interface JsonResponse {
  status(code: number): JsonResponse;
  json(body: unknown): unknown;
}

/** Maps the workflow client's errors to HTTP: unknown run 404, ended or wrong-state run 409, bad argument 400. */
@Catch(DurableExecutionError)
export class CairnErrorsFilter extends BaseExceptionFilter {
  override catch(error: DurableExecutionError, host: ArgumentsHost): void {
    const status = httpStatusOf(error);
    if (status === undefined || host.getType() !== 'http') return super.catch(error, host);
    host
      .switchToHttp()
      .getResponse<JsonResponse>()
      .status(status)
      .json({ statusCode: status, error: error.name, code: error.code, message: error.message });
  }
}
