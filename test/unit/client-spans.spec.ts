import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type Span, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createInstrumentation } from '../../src/observability/instrumentation.js';

const spans = new InMemorySpanExporter();
/** An app's span processor that throws on start while `failing` is set. */
let failing = false;
const hostile: SpanProcessor = {
  onStart(_span: Span, _parent: Context) {
    if (failing) throw new Error('processor exploded');
  },
  onEnd() {},
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [hostile, new SimpleSpanProcessor(spans)] }));
});

afterEach(() => {
  spans.reset();
  failing = false;
});

function only(name: string): ReadableSpan {
  const found = spans.getFinishedSpans().filter((s) => s.name === name);
  expect(found).toHaveLength(1);
  return found[0];
}

describe('client spans (Instrumentation.clientCall)', () => {
  it('wraps the call in a CLIENT span, child of the active span and active while the call runs', async () => {
    const instrumentation = await createInstrumentation();
    const request = trace.getTracer('the-app').startSpan('POST /orders');
    const inside = await context.with(trace.setSpan(ROOT_CONTEXT, request), () =>
      instrumentation.clientCall('cairn.start order', { 'cairn.workflow': 'order', 'cairn.run_id': undefined }, async (span) => {
        span.setAttribute('cairn.run_id', 'run-1');
        // What start() stores with the run: the trace context captured here, inside the client span.
        return { carrier: instrumentation.captureTrace(), active: trace.getActiveSpan()?.spanContext() };
      }),
    );
    request.end();

    const client = only('cairn.start order');
    expect(client.kind).toBe(SpanKind.CLIENT);
    expect(client.attributes).toEqual({ 'cairn.workflow': 'order', 'cairn.run_id': 'run-1' });
    expect(client.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(client.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(client.status.code).toBe(SpanStatusCode.UNSET);
    expect(inside.active?.spanId).toBe(client.spanContext().spanId);
    expect(inside.carrier).toEqual({ traceparent: `00-${client.spanContext().traceId}-${client.spanContext().spanId}-01` });
  });

  it('marks a rejected call ERROR with the exception, and rejects with the same error', async () => {
    const instrumentation = await createInstrumentation();
    const thrown = Object.assign(new Error('Run "r-9" was not found'), { name: 'RunNotFoundError' });
    await expect(instrumentation.clientCall('cairn.cancel', { 'cairn.run_id': 'r-9' }, () => Promise.reject(thrown))).rejects.toBe(thrown);
    const span = only('cairn.cancel');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'RunNotFoundError: Run "r-9" was not found' });
    expect(span.events.map((e) => [e.name, e.attributes?.['exception.type']])).toEqual([['exception', 'RunNotFoundError']]);
  });

  it("makes the call untraced when the app's span processor throws, and still returns its result", async () => {
    const instrumentation = await createInstrumentation();
    failing = true;
    expect(await instrumentation.clientCall('cairn.pause', { 'cairn.run_id': 'r' }, async (span) => (span.setAttribute('x', 1), 'paused'))).toBe('paused');
    failing = false;
    expect(spans.getFinishedSpans().map((s) => s.name)).not.toContain('cairn.pause');
  });
});
