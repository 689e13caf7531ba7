import type { CanActivate, Type } from '@nestjs/common';

/** Which value of a run `redact` is given. */
export type RedactedField = 'input' | 'output' | 'signal' | 'heartbeat' | 'error';

/** Where a value that `redact` is given comes from. */
export interface RedactionContext {
  runId: string;
  workflow: string;
  /**
   * `input`: the run's input; `output`: the run's output or a step's output; `signal`: a queued signal's payload;
   * `heartbeat`: a step's heartbeat details; `error`: an error message (the run's, a step's or a history event's, as
   * text).
   */
  field: RedactedField;
}

/** Options of {@link DurableExecutionDashboardModule.forRoot}. */
export interface DurableExecutionDashboardOptions {
  /** Where the dashboard is mounted (pages there, the JSON API under `<path>/api`). @default '/workflows' */
  path?: string;
  /**
   * A guard class that protects every page, asset and API route of the dashboard (e.g. your auth guard). It is
   * instantiated in the dashboard's module: its dependencies must come from global modules. When it sets
   * `request.user`, operator actions record who made them (`user.id`, `name`, `email` or `username`, or the string).
   */
  guard?: Type<CanActivate>;
  /** No operator actions: neither the buttons nor the routes exist. @default false */
  readOnly?: boolean;
  /**
   * Must be true to mount the dashboard without a `guard` when `NODE_ENV=production` (say, behind a proxy that
   * authenticates). Otherwise bootstrap fails with ConfigurationError. @default false
   */
  allowUnauthenticated?: boolean;
  /**
   * Called on the server with every value before it is shown or sent (inputs, outputs, signal payloads, heartbeat
   * details, error messages); what it returns is shown instead. A redact that throws hides the value.
   */
  redact?: (value: unknown, where: RedactionContext) => unknown;
}
