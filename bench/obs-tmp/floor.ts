// Temporary (obs-): the SDK floor of what cairn records per run (4 spans, 9 metric points), vs cairn's instrumentation.
import { context, metrics, trace, ROOT_CONTEXT } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { createInstrumentation } from '../../src/observability/instrumentation.js';

const done = (cb: (r: { code: number }) => void) => cb({ code: 0 });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor({ export: (_s, cb) => done(cb), shutdown: async () => undefined })] }));
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: { export: (_m, cb) => done(cb), forceFlush: async () => undefined, shutdown: async () => undefined, selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE }, exportIntervalMillis: 5_000 })] }));
const inst = await createInstrumentation({});
const tracer = trace.getTracer('floor');
const meter = metrics.getMeter('floor');
const h1 = meter.createHistogram('h1'); const h2 = meter.createHistogram('h2'); const c1 = meter.createCounter('c1'); const c2 = meter.createCounter('c2');
const A = { a: 'bench3' }; const B = { a: 'bench3', b: 'x', c: 'ok' }; const C = { o: 'ok' }; const D = { a: 'bench3', s: 'completed' };
const ok = { ok: true as const, value: 1 };
async function floorRun(i: number) {
  const s0 = tracer.startSpan('cairn.start bench3', { attributes: { 'cairn.workflow': 'bench3' } }, ROOT_CONTEXT);
  const ctx = trace.setSpan(ROOT_CONTEXT, s0);
  s0.end();
  c1.add(1, A);
  for (let k = 0; k < 3; k++) {
    const s = tracer.startSpan('cairn.step bench3.x', { attributes: { 'cairn.run_id': `r${i}`, 'cairn.workflow': 'bench3', 'cairn.workflow_version': 1, 'cairn.step': 'x', 'cairn.attempt': 1, 'cairn.kind': 'step', 'cairn.instance_id': 'i' } }, ctx);
    await context.with(trace.setSpan(ctx, s), async () => ok);
    s.end();
    h1.record(0.05, B); h2.record(0.1, C);
  }
  h2.record(0.1, C); c2.add(1, D);
}
async function cairnRun(i: number) {
  let tr: ReturnType<typeof inst.captureTrace>;
  await inst.clientCall('cairn.start bench3', { 'cairn.workflow': 'bench3', 'cairn.run_id': undefined }, async (span) => {
    tr = inst.captureTrace(); inst.runStarted('bench3'); span.setAttribute('cairn.run_id', `run-${i}`); span.setAttribute('cairn.created', true);
  });
  inst.inFlight(1);
  for (const step of ['a', 'b', 'c']) {
    await inst.runAttempt({ runId: `run-${i}`, workflow: 'bench3', version: 1, step, attempt: 1, kind: 'step', instanceId: 'host:1:abc', trace: tr }, async () => ok);
    inst.stepEnded('bench3', step, 0.05, true); inst.checkpoint(0.1, true);
  }
  inst.checkpoint(0.1, true); inst.runEnded('bench3', 'completed'); inst.inFlight(-1);
}
async function measure(fn: (i: number) => Promise<void>, n: number) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn(i);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}
for (let i = 0; i < 30000; i++) { await floorRun(i); await cairnRun(i); }
const res: Record<string, number[]> = { floor: [], cairn: [] };
for (let t = 0; t < 6; t++) { res.floor.push(await measure(floorRun, 30000)); res.cairn.push(await measure(cairnRun, 30000)); }
for (const [k, v] of Object.entries(res)) console.log(k, 'min', Math.min(...v).toFixed(2), 'all', v.map((x) => x.toFixed(1)).join(' '));
process.exit(0);
