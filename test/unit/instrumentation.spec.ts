import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  context,
  createTraceState,
  metrics,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
// NOTE: @opentelemetry/core is a dependency of the SDK packages (no devDependency of its own needed).
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader, type HistogramMetricData, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { AttemptOutcome } from '../../src/engine/step-invoker.js';
import { createInstrumentation, NOOP_INSTRUMENTATION } from '../../src/observability/instrumentation.js';
import type { AttemptSpanInfo, TraceCarrier } from '../../src/observability/instrumentation.interface.js';
import { CAIRN_METRICS } from '../../src/observability/otel.instrumentation.js';
import { PACKAGE_NAME, PACKAGE_VERSION } from '../../src/observability/package-version.js';
import { MAX_CARRIER_BYTES } from '../../src/observability/trace-carrier.js';

/** A pull reader: the test collects when it wants. */
class TestMetricReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

const spans = new InMemorySpanExporter();
const reader = new TestMetricReader();
const appTracer = () => trace.getTracer('the-app');

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
});

afterEach(() => {
  spans.reset();
  propagation.disable();
});

function attempt(overrides: Partial<AttemptSpanInfo> = {}): AttemptSpanInfo {
  return { runId: 'run-1', workflow: 'order', version: 2, step: 'charge', attempt: 1, kind: 'step', instanceId: 'pod-a', ...overrides };
}

const ok = (value: unknown): Promise<AttemptOutcome> => Promise.resolve({ ok: true, value });

function finished(name: string): ReadableSpan {
  const found = spans.getFinishedSpans().filter((s) => s.name === name);
  expect(found).toHaveLength(1);
  return found[0];
}

/** The carrier captured inside a span of the app (e.g. the HTTP request that started the run), and that span. */
function captureInRequestSpan(capture: () => TraceCarrier | undefined, parent: Context = ROOT_CONTEXT) {
  return appTracer().startActiveSpan('POST /orders', {}, parent, (span) => {
    const carrier = capture();
    span.end();
    return { carrier, request: span.spanContext() };
  });
}

/** As another instance would read it back from the store. */
const roundTrip = (carrier: TraceCarrier | undefined): TraceCarrier => JSON.parse(JSON.stringify(carrier)) as TraceCarrier;

describe('OpenTelemetry instrumentation', () => {
  it('traces an attempt as a child of the span active at start, on another instance, after a JSON round trip', async () => {
    const starter = await createInstrumentation();
    expect(starter.enabled).toBe(true);
    const { carrier, request } = captureInRequestSpan(() => starter.captureTrace());
    expect(carrier).toEqual({ traceparent: `00-${request.traceId}-${request.spanId}-01` });

    // NOTE: another instance, no registered propagator, no ambient context: only the stored carrier links the span.
    const worker = await createInstrumentation();
    const outcome = await context.with(ROOT_CONTEXT, () => worker.runAttempt(attempt({ attempt: 3, trace: roundTrip(carrier) }), () => ok(42)));

    expect(outcome).toEqual({ ok: true, value: 42 });
    const span = finished('cairn.step order.charge');
    expect(span.spanContext().traceId).toBe(request.traceId);
    expect(span.parentSpanContext?.spanId).toBe(request.spanId);
    expect(span.parentSpanContext?.isRemote).toBe(true);
    expect(span.kind).toBe(SpanKind.INTERNAL);
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.instrumentationScope).toMatchObject({ name: PACKAGE_NAME, version: PACKAGE_VERSION });
    expect(span.attributes).toEqual({
      'cairn.run_id': 'run-1',
      'cairn.workflow': 'order',
      'cairn.workflow_version': 2,
      'cairn.step': 'charge',
      'cairn.attempt': 3,
      'cairn.kind': 'step',
      'cairn.instance_id': 'pod-a',
    });
  });

  it('carries tracestate and, with propagators registered, baggage; drops the baggage past the size cap', async () => {
    propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
    const instrumentation = await createInstrumentation();
    const parent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: TraceFlags.SAMPLED,
      traceState: createTraceState('vendor=abc'),
    });
    const withBaggage = (value: string) => propagation.setBaggage(parent, propagation.createBaggage({ tenant: { value } }));

    const carrier = context.with(withBaggage('acme'), () => instrumentation.captureTrace());
    expect(carrier).toEqual({
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'vendor=abc',
      baggage: 'tenant=acme',
    });
    let tenant: string | undefined;
    await instrumentation.runAttempt(attempt({ trace: roundTrip(carrier) }), async () => {
      tenant = propagation.getActiveBaggage()?.getEntry('tenant')?.value;
      return { ok: true, value: undefined };
    });
    expect(tenant).toBe('acme');
    const span = finished('cairn.step order.charge');
    expect(span.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(span.spanContext().traceState?.serialize()).toBe('vendor=abc');

    const big = context.with(withBaggage('x'.repeat(600)), () => instrumentation.captureTrace());
    expect(big).toEqual({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=abc' });
    expect(Buffer.byteLength(JSON.stringify(big))).toBeLessThan(MAX_CARRIER_BYTES);
  });

  it('keeps an unsampled parent unsampled, and finds no trace where there is none', async () => {
    const instrumentation = await createInstrumentation();
    expect(context.with(ROOT_CONTEXT, () => instrumentation.captureTrace())).toBeUndefined();
    const unsampled = trace.setSpanContext(ROOT_CONTEXT, { traceId: '1'.repeat(32), spanId: '2'.repeat(16), traceFlags: TraceFlags.NONE });
    const carrier = context.with(unsampled, () => instrumentation.captureTrace());
    expect(carrier).toEqual({ traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-00` });
    await instrumentation.runAttempt(attempt({ trace: carrier }), () => ok(1));
    expect(spans.getFinishedSpans()).toHaveLength(0);
  });

  it('makes the attempt span a root when the run has no stored trace, whatever context is ambient', async () => {
    const instrumentation = await createInstrumentation();
    await appTracer().startActiveSpan('poll', async (poll) => {
      await instrumentation.runAttempt(attempt(), () => ok(1));
      poll.end();
    });
    expect(finished('cairn.step order.charge').parentSpanContext).toBeUndefined();
  });

  it('ignores a damaged carrier: the span is a root and the attempt runs', async () => {
    const instrumentation = await createInstrumentation();
    const damaged = { traceparent: 'not-a-traceparent', tracestate: '' };
    expect(await instrumentation.runAttempt(attempt({ trace: damaged }), () => ok('done'))).toEqual({ ok: true, value: 'done' });
    expect(finished('cairn.step order.charge').parentSpanContext).toBeUndefined();
  });

  it('marks a failed attempt ERROR with the exception, for steps and compensations, even from a hostile error', async () => {
    const instrumentation = await createInstrumentation();
    const failure = new TypeError('card declined');
    expect(await instrumentation.runAttempt(attempt(), async () => ({ ok: false, error: failure }))).toEqual({ ok: false, error: failure });
    const step = finished('cairn.step order.charge');
    expect(step.status).toEqual({ code: SpanStatusCode.ERROR, message: 'TypeError: card declined' });
    expect(step.events.map((e) => [e.name, e.attributes?.['exception.type'], e.attributes?.['exception.message']])).toEqual([
      ['exception', 'TypeError', 'card declined'],
    ]);

    const hostile = new Proxy(new Error('x'), {
      get() {
        throw new Error('getter trap');
      },
    });
    const outcome = await instrumentation.runAttempt(attempt({ kind: 'compensation' }), async () => ({ ok: false, error: hostile }));
    expect(outcome.ok).toBe(false);
    const compensation = finished('cairn.compensate order.charge');
    expect(compensation.attributes['cairn.kind']).toBe('compensation');
    expect(compensation.status.code).toBe(SpanStatusCode.ERROR);

    spans.reset();
    const thrown = new Error('body threw');
    await expect(instrumentation.runAttempt(attempt(), () => Promise.reject(thrown))).rejects.toBe(thrown);
    expect(finished('cairn.step order.charge').status.code).toBe(SpanStatusCode.ERROR);
  });

  it("runs the body with the attempt span active: the step's own spans nest under it", async () => {
    const instrumentation = await createInstrumentation();
    await instrumentation.runAttempt(attempt(), async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      appTracer().startActiveSpan('charge card', (span) => span.end());
      return { ok: true, value: undefined };
    });
    const step = finished('cairn.step order.charge');
    const user = finished('charge card');
    expect(user.parentSpanContext?.spanId).toBe(step.spanContext().spanId);
    expect(user.spanContext().traceId).toBe(step.spanContext().traceId);
  });

  it('records the cairn.* metrics', async () => {
    const instrumentation = await createInstrumentation();
    instrumentation.runStarted('order');
    instrumentation.runStarted('order');
    instrumentation.runEnded('order', 'completed');
    instrumentation.stepEnded('order', 'charge', 12, true);
    instrumentation.stepEnded('order', 'charge', 30, false);
    instrumentation.checkpoint(4, true);
    instrumentation.checkpoint(9, false);
    instrumentation.claimLag('order', 250);
    instrumentation.leaseTakeover('order');
    instrumentation.inFlight(1);
    instrumentation.inFlight(1);
    instrumentation.inFlight(-1);

    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    const scope = resourceMetrics.scopeMetrics.find((s) => s.scope.name === PACKAGE_NAME);
    expect(scope?.scope.version).toBe(PACKAGE_VERSION);
    const byName = new Map<string, MetricData>(scope!.metrics.map((m) => [m.descriptor.name, m]));
    const points = (name: string) => byName.get(name)!.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value }));
    const histogram = (name: string) =>
      (byName.get(name) as HistogramMetricData).dataPoints.map((p) => ({ attributes: p.attributes, count: p.value.count, sum: p.value.sum }));

    expect([...byName.keys()].sort()).toEqual(Object.values(CAIRN_METRICS).sort());
    expect(points(CAIRN_METRICS.runsStarted)).toEqual([{ attributes: { 'cairn.workflow': 'order' }, value: 2 }]);
    expect(points(CAIRN_METRICS.runsEnded)).toEqual([{ attributes: { 'cairn.workflow': 'order', 'cairn.status': 'completed' }, value: 1 }]);
    expect(histogram(CAIRN_METRICS.stepDuration)).toEqual([
      { attributes: { 'cairn.workflow': 'order', 'cairn.step': 'charge', 'cairn.outcome': 'ok' }, count: 1, sum: 12 },
      { attributes: { 'cairn.workflow': 'order', 'cairn.step': 'charge', 'cairn.outcome': 'error' }, count: 1, sum: 30 },
    ]);
    expect(points(CAIRN_METRICS.stepFailures)).toEqual([{ attributes: { 'cairn.workflow': 'order', 'cairn.step': 'charge' }, value: 1 }]);
    expect(histogram(CAIRN_METRICS.checkpointDuration)).toEqual([
      { attributes: { 'cairn.outcome': 'ok' }, count: 1, sum: 4 },
      { attributes: { 'cairn.outcome': 'error' }, count: 1, sum: 9 },
    ]);
    expect(points(CAIRN_METRICS.checkpointFailures)).toEqual([{ attributes: {}, value: 1 }]);
    expect(histogram(CAIRN_METRICS.claimLag)).toEqual([{ attributes: { 'cairn.workflow': 'order' }, count: 1, sum: 250 }]);
    expect(points(CAIRN_METRICS.leaseTakeovers)).toEqual([{ attributes: { 'cairn.workflow': 'order' }, value: 1 }]);
    expect(points(CAIRN_METRICS.runsInFlight)).toEqual([{ attributes: {}, value: 1 }]);
    expect(byName.get(CAIRN_METRICS.stepDuration)!.descriptor.unit).toBe('ms');
    expect(byName.get(CAIRN_METRICS.claimLag)!.descriptor.unit).toBe('ms');
  });

  it('adds the counters of two apps of one process in one series, read at each collection', async () => {
    const a = await createInstrumentation();
    const b = await createInstrumentation();
    const started = async () => {
      const { resourceMetrics } = await reader.collect();
      const scope = resourceMetrics.scopeMetrics.find((s) => s.scope.name === PACKAGE_NAME)!;
      const metric = scope.metrics.find((m) => m.descriptor.name === CAIRN_METRICS.runsStarted)!;
      return metric.dataPoints.filter((p) => p.attributes['cairn.workflow'] === 'invoice').map((p) => p.value);
    };
    a.runStarted('invoice');
    b.runStarted('invoice');
    b.runStarted('invoice');
    // NOTE: observing one attribute set twice in a collection keeps the last value: the apps must share the series.
    expect(await started()).toEqual([3]);
    a.runStarted('invoice');
    expect(await started()).toEqual([4]);
  });

  it('startAttempt: the span is active inside run() and ends once, with the failure recorded', async () => {
    const instrumentation = await createInstrumentation();
    const scope = instrumentation.startAttempt(attempt({ step: 'ship' }))!;
    expect(scope).toBeDefined();
    const inside = scope.run(() => trace.getSpan(context.active())?.spanContext().spanId);
    expect(spans.getFinishedSpans()).toHaveLength(0);
    scope.end({ ok: false, error: new Error('carrier down') });
    scope.end({ ok: true, value: 1 });
    const span = finished('cairn.step order.ship');
    expect(span.spanContext().spanId).toBe(inside);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.events.map((e) => e.name)).toEqual(['exception']);
    expect(NOOP_INSTRUMENTATION.startAttempt(attempt())).toBeUndefined();
  });

  it('records nothing when disabled, and just runs the body', async () => {
    const instrumentation = await createInstrumentation({ enabled: false });
    expect(instrumentation).toBe(NOOP_INSTRUMENTATION);
    expect(instrumentation.enabled).toBe(false);
    const { carrier } = captureInRequestSpan(() => instrumentation.captureTrace());
    expect(carrier).toBeUndefined();
    const result = ok('ran');
    expect(instrumentation.runAttempt(attempt(), () => result)).toBe(result);
    expect(await result).toEqual({ ok: true, value: 'ran' });
    expect(await instrumentation.clientCall('cairn.cancel', { 'cairn.run_id': 'r' }, async () => 'called')).toBe('called');
    expect(spans.getFinishedSpans().map((s) => s.name)).toEqual(['POST /orders']);
  });

  it("names the tracer and meter with package.json's version", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
    expect({ name: PACKAGE_NAME, version: PACKAGE_VERSION }).toEqual({ name: pkg.name, version: pkg.version });
  });
});
