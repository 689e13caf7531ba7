import type * as OtelApi from '@opentelemetry/api';
import type { TraceCarrier } from './instrumentation.interface.js';

/** The `@opentelemetry/api` module, loaded at run time. */
export type OtelApiModule = typeof OtelApi;

/** Largest carrier stored with a run, in bytes of its JSON. */
export const MAX_CARRIER_BYTES = 512;

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The trace context active now, to store with a run. It holds the active span's context as W3C `traceparent` and
 * `tracestate` (readable without any registered propagator), then whatever the global propagator injects (its own
 * headers, baggage). Past {@link MAX_CARRIER_BYTES}, `baggage` goes first, then the propagator's other headers, then
 * `tracestate`. Undefined when there is nothing to store.
 */
export function captureCarrier(api: OtelApiModule): TraceCarrier | undefined {
  const active = api.context.active();
  const own: TraceCarrier = {};
  const spanContext = api.trace.getSpanContext(active);
  if (spanContext && api.isSpanContextValid(spanContext)) {
    own.traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${hex2(spanContext.traceFlags)}`;
    const state = spanContext.traceState?.serialize();
    if (state) own.tracestate = state;
  }
  const injected: Record<string, unknown> = {};
  api.propagation.inject(active, injected);
  let carrier: TraceCarrier = { ...own };
  for (const [key, value] of Object.entries(injected)) if (typeof value === 'string') carrier[key] = value;
  if (tooLarge(carrier)) delete carrier.baggage;
  if (tooLarge(carrier)) carrier = { ...own };
  if (tooLarge(carrier)) delete carrier.tracestate;
  return Object.keys(carrier).length > 0 ? carrier : undefined;
}

/**
 * The context to parent a span on from a stored carrier, on any instance: what the global propagator extracts when it
 * finds a span context there, else the carrier's own `traceparent`/`tracestate` as a remote parent (keeping any
 * baggage the propagator extracted). `ROOT_CONTEXT` when the carrier holds neither.
 */
export function restoreContext(api: OtelApiModule, carrier: TraceCarrier): OtelApi.Context {
  if (typeof carrier !== 'object' || carrier === null) return api.ROOT_CONTEXT;
  let context = api.ROOT_CONTEXT;
  try {
    context = api.propagation.extract(api.ROOT_CONTEXT, carrier);
  } catch {
    // NOTE: a stored carrier a propagator chokes on must not cost the step its run: fall back to our own fields.
  }
  const extracted = api.trace.getSpanContext(context);
  if (extracted && api.isSpanContextValid(extracted)) return context;
  const parent = parseTraceparent(api, carrier.traceparent, carrier.tracestate);
  return parent ? api.trace.setSpanContext(context, parent) : context;
}

function parseTraceparent(api: OtelApiModule, traceparent: unknown, tracestate: unknown): OtelApi.SpanContext | undefined {
  const match = typeof traceparent === 'string' ? TRACEPARENT.exec(traceparent) : null;
  if (!match || match[1] === 'ff') return undefined;
  const [, , traceId, spanId, flags] = match;
  if (!api.isValidTraceId(traceId) || !api.isValidSpanId(spanId)) return undefined;
  return {
    traceId,
    spanId,
    traceFlags: parseInt(flags, 16),
    traceState: typeof tracestate === 'string' && tracestate !== '' ? api.createTraceState(tracestate) : undefined,
    isRemote: true,
  };
}

function hex2(value: number): string {
  return (value & 0xff).toString(16).padStart(2, '0');
}

function tooLarge(carrier: TraceCarrier): boolean {
  // NOTE: a bound first, without serializing: JSON writes a character in at most 6 bytes (`\u001f`), and each entry
  // adds at most 6 more (quotes, colon, comma). A lone `traceparent` is well under the cap.
  let bound = 2;
  for (const key in carrier) bound += 6 + 6 * (key.length + carrier[key].length);
  return bound > MAX_CARRIER_BYTES && Buffer.byteLength(JSON.stringify(carrier)) > MAX_CARRIER_BYTES;
}
