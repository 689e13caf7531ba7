import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { RetryPolicy, Step, Workflow, type StepContext } from '../../src/index.js';
import { SharedMemoryStore, eventually, gate, killableStore, useApps } from './helpers.js';

class PullReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

const spans = new InMemorySpanExporter();
const reader = new PullReader();
const release = gate();
let firstAttempts = 0;

@Workflow('traced')
class Traced {
  @Step({ retry: RetryPolicy.fixed(2, 10), compensate: 'undo' }) async charge(input: number, ctx: StepContext) {
    trace.getTracer('the-app').startActiveSpan('the-app.inside-step', (span) => span.end());
    if (ctx.attempt === 1) throw new Error('declined once');
    return input;
  }
  @Step() async wait(prev: number) {
    firstAttempts++;
    await release.promise;
    return prev;
  }
  undo() {
    return undefined;
  }
}

async function metric(name: string): Promise<MetricData | undefined> {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
}

describe('OpenTelemetry, wired into the engine', () => {
  const apps = useApps();
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  });
  afterAll(() => {
    trace.disable();
    metrics.disable();
    context.disable();
  });

  it('makes every attempt a child of the span that started the run, on whichever instance runs it', async () => {
    const shared = new SharedMemoryStore();
    const dying = killableStore(shared);
    const a = await apps.boot([Traced], { store: dying.store, worker: { leaseMs: 200 } });
    const request = trace.getTracer('the-app').startSpan('POST /orders');
    const handle = await context.with(trace.setSpan(context.active(), request), () => a.client.start(Traced, 7, { id: 'traced-1' }));
    request.end();
    await eventually(() => firstAttempts === 1);
    // the instance dies in the second step; another one takes the run over and ends it
    dying.kill();
    const b = await apps.boot([Traced], { store: shared, worker: { leaseMs: 200 } });
    await eventually(() => firstAttempts === 2, 5_000);
    release.open();
    expect(await b.client.getHandle(handle.runId).result()).toBe(7);

    const finished = spans.getFinishedSpans();
    const attempts = finished.filter((s) => s.name.startsWith('cairn.step traced.'));
    expect(attempts.map((s) => [s.name, s.attributes['cairn.attempt']])).toEqual(
      expect.arrayContaining([
        ['cairn.step traced.charge', 1],
        ['cairn.step traced.charge', 2],
        ['cairn.step traced.wait', 1],
      ]),
    );
    const traceId = request.spanContext().traceId;
    // start() is a client span under the request; every attempt is a child of it
    const start = finished.find((s) => s.name.startsWith('cairn.start'))!;
    expect(start.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    for (const span of attempts) {
      expect(span.spanContext().traceId).toBe(traceId);
      expect(span.parentSpanContext?.spanId).toBe(start.spanContext().spanId);
      expect(span.attributes['cairn.run_id']).toBe('traced-1');
    }
    const failed = attempts.find((s) => s.attributes['cairn.attempt'] === 1 && s.name.endsWith('charge'))!;
    expect(failed.status.code).toBe(2); // ERROR
    const inside = finished.filter((s) => s.name === 'the-app.inside-step');
    expect(inside).toHaveLength(2);
    for (const span of inside) expect(attempts.map((s) => s.spanContext().spanId)).toContain(span.parentSpanContext?.spanId);

    expect(await metric('cairn.runs.started')).toBeDefined();
    const ended = (await metric('cairn.runs.ended'))!;
    expect(ended.dataPoints).toContainEqual(expect.objectContaining({ attributes: { 'cairn.workflow': 'traced', 'cairn.status': 'completed' }, value: 1 }));
    const takeovers = (await metric('cairn.lease.takeovers'))!;
    expect(takeovers.dataPoints[0].value).toBe(1);
    expect(await metric('cairn.checkpoint.duration')).toBeDefined();
    expect(await metric('cairn.step.failures')).toBeDefined();
  });
});
