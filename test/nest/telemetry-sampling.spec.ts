import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ROOT_CONTEXT, TraceFlags, context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader, type HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, ParentBasedSampler, SimpleSpanProcessor, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { Step, Workflow } from '../../src/index.js';
import { useApps } from './helpers.js';

class PullReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

const spans = new InMemorySpanExporter();
const reader = new PullReader();

@Workflow('sampled')
class Sampled {
  @Step() a(n: number) {
    return n + 1;
  }
  @Step() b(n: number) {
    return n + 1;
  }
  @Step() c(n: number) {
    return n + 1;
  }
}

// A request that arrived with a sampled W3C trace context (traceparent flags 01).
const sampledParent = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
});

describe('OpenTelemetry sampling (an app that traces a share of its requests)', () => {
  const apps = useApps();
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    // New traces are never sampled; a sampled parent's children are.
    const sampler = new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) });
    trace.setGlobalTracerProvider(new BasicTracerProvider({ sampler, spanProcessors: [new SimpleSpanProcessor(spans)] }));
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  });
  afterAll(() => {
    trace.disable();
    metrics.disable();
    context.disable();
  });

  it('records the attempts of a run started in a sampled trace, none of an unsampled one, and the metrics of both', async () => {
    const { client } = await apps.boot([Sampled]);
    expect(await context.with(sampledParent, () => client.execute(Sampled, 1, { id: 'in-sampled-trace' }))).toBe(4);
    expect(await client.execute(Sampled, 1, { id: 'in-new-trace' })).toBe(4);

    const finished = spans.getFinishedSpans();
    const attempts = finished.filter((s) => s.name.startsWith('cairn.step sampled.'));
    // the sampling decision stored with the run at start() holds for its attempts: the three of the sampled run only
    expect(attempts.map((s) => s.attributes['cairn.run_id'])).toEqual(['in-sampled-trace', 'in-sampled-trace', 'in-sampled-trace']);
    for (const span of attempts) expect(span.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(finished.filter((s) => s.name.startsWith('cairn.start')).map((s) => s.attributes['cairn.run_id'])).toEqual(['in-sampled-trace']);

    // metrics do not sample: each of the six attempts is a point
    const { resourceMetrics } = await reader.collect();
    const duration = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'cairn.step.duration') as HistogramMetricData;
    expect(duration.dataPoints.reduce((n, p) => n + p.value.count, 0)).toBe(6);
  });
});
