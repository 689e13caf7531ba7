import type { AttemptOutcome } from '../engine/step-invoker.js';
import type { AttemptScope, AttemptSpanInfo, ClientSpan, ClientSpanAttributes, Instrumentation, TelemetryOptions, TraceCarrier } from './instrumentation.interface.js';
import { OtelInstrumentation } from './otel.instrumentation.js';
import type { OtelApiModule } from './trace-carrier.js';

const NOOP_SPAN: ClientSpan = Object.freeze({ setAttribute: () => undefined });

/** Records nothing: `runAttempt` just runs the attempt, `clientCall` just makes the call. */
export const NOOP_INSTRUMENTATION: Instrumentation = Object.freeze({
  enabled: false,
  captureTrace: (): TraceCarrier | undefined => undefined,
  runAttempt: (_info: AttemptSpanInfo, body: () => Promise<AttemptOutcome>) => body(),
  startAttempt: (): AttemptScope | undefined => undefined,
  clientCall: <T>(_name: string, _attributes: ClientSpanAttributes, body: (span: ClientSpan) => Promise<T>): Promise<T> => body(NOOP_SPAN),
  runStarted: () => undefined,
  runEnded: () => undefined,
  stepEnded: () => undefined,
  checkpoint: () => undefined,
  claimLag: () => undefined,
  leaseTakeover: () => undefined,
  inFlight: () => undefined,
});

/** Options of {@link createInstrumentation}. */
export interface InstrumentationOptions extends TelemetryOptions {
  /** Told, once, why nothing is recorded when `@opentelemetry/api` cannot be loaded. */
  logger?: { debug?(message: string): unknown };
}

/**
 * The instrumentation the engine uses: on `@opentelemetry/api` when it is installed (an optional peer, loaded here
 * with `import()`) and `enabled` is not false; otherwise {@link NOOP_INSTRUMENTATION}, with one debug line when the
 * API could not be loaded. Never rejects.
 */
export async function createInstrumentation(options: InstrumentationOptions = {}): Promise<Instrumentation> {
  if (options.enabled === false) return NOOP_INSTRUMENTATION;
  let api: OtelApiModule;
  try {
    api = (await import('@opentelemetry/api')) as OtelApiModule;
  } catch {
    options.logger?.debug?.('@opentelemetry/api could not be loaded (not installed): no traces nor metrics are recorded');
    return NOOP_INSTRUMENTATION;
  }
  return new OtelInstrumentation(api);
}
