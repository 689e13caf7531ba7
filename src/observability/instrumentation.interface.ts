import type { AttemptOutcome } from '../engine/step-invoker.js';

/**
 * A trace context in a form that can be stored with a run (JSON, under 512 bytes): W3C `traceparent` and `tracestate`
 * always, plus whatever the app's registered propagator writes (e.g. `baggage`, `b3`).
 */
export type TraceCarrier = Record<string, string>;

/** Options of tracing and metrics (`DurableExecutionOptions.telemetry`). */
export interface TelemetryOptions {
  /** false: record nothing even when `@opentelemetry/api` is installed. @default true */
  enabled?: boolean;
}

/** What the span of one attempt describes. */
export interface AttemptSpanInfo {
  runId: string;
  workflow: string;
  version: number;
  /** The step, or for a compensation the step it undoes. */
  step: string;
  /** 1 for the first attempt. */
  attempt: number;
  kind: 'step' | 'compensation';
  /** The instance running the attempt. */
  instanceId: string;
  /** The trace context stored with the run at `start()`; the span is a root when undefined. */
  trace?: TraceCarrier;
}

/** One attempt's span, started by `Instrumentation.startAttempt`. Neither method throws for telemetry's sake. */
export interface AttemptScope {
  /** Runs `body` with the span active (spans the step opens nest under it); returns what it returns. */
  run<T>(body: () => T): T;
  /** Ends the span: status ERROR and the exception recorded for a failed outcome. Later calls do nothing. */
  end(outcome: AttemptOutcome): void;
}

/** Attributes of a client call's span (`cairn.workflow`, `cairn.run_id`, …); undefined values are left out. */
export type ClientSpanAttributes = Record<string, string | number | boolean | undefined>;

/** What a client call can add to its span once it knows more (e.g. the id of the run it created). */
export interface ClientSpan {
  setAttribute(key: string, value: string | number | boolean): void;
}

/**
 * The engine's view of tracing and metrics. Every method is cheap and never throws; when telemetry is off or
 * `@opentelemetry/api` is not installed, every method does nothing and `runAttempt` just returns `body()`.
 */
export interface Instrumentation {
  /** Whether anything can be recorded (the OpenTelemetry API is loaded and telemetry is enabled). */
  readonly enabled: boolean;
  /** The trace context active now (call it inside `start()`), to store with the run; undefined when none or disabled. */
  captureTrace(): TraceCarrier | undefined;
  /**
   * Runs one attempt inside a span `cairn.step <workflow>.<step>` (compensations: `cairn.compensate <workflow>.<step>`),
   * a child of `info.trace`, with that span active while `body` runs (spans the step opens nest under it). A failed
   * outcome sets the span's status to ERROR and records the exception. Returns what `body` returns.
   */
  runAttempt(info: AttemptSpanInfo, body: () => Promise<AttemptOutcome>): Promise<AttemptOutcome>;
  /**
   * The same span as `runAttempt`'s, for a caller that learns the outcome synchronously (the engine, through
   * `invokeAttempt`'s `onSettle`): `run(body)` runs body with the span active, `end(outcome)` ends it (once). No promise
   * of its own per attempt. Undefined when nothing is recorded (or the span could not be started): run the attempt as is.
   */
  startAttempt(info: AttemptSpanInfo): AttemptScope | undefined;
  /**
   * Runs one client call (`start`, `signal`, `cancel`, …) inside a span of kind CLIENT named `name` (e.g.
   * `cairn.start order`), a child of the context active now, with that span active while `body` runs: the trace
   * context a `start()` stores with its run is the span's, so the run's step spans are its children. A rejection sets
   * the span's status to ERROR and records the exception, then rejects as `body` did. Returns what `body` returns.
   */
  clientCall<T>(name: string, attributes: ClientSpanAttributes, body: (span: ClientSpan) => Promise<T>): Promise<T>;
  /** A run was created. */
  runStarted(workflow: string): void;
  /** A run reached a terminal status. */
  runEnded(workflow: string, status: string): void;
  /** One attempt of a step ended (`ok`: it returned). */
  stepEnded(workflow: string, step: string, durationMs: number, ok: boolean): void;
  /** One checkpoint write (`ok`: the store accepted it). */
  checkpoint(durationMs: number, ok: boolean): void;
  /** A run was claimed `ms` after it was due. */
  claimLag(workflow: string, ms: number): void;
  /** A claim took over another lease (an expired one, or its own previous process's). */
  leaseTakeover(workflow: string): void;
  /** Runs executing on this instance: +1 when a driver starts, -1 when it ends. */
  inFlight(delta: number): void;
}
