// Temporary (obs-): CPU cost of cairn's OpenTelemetry calls per 3-step run, with an SDK registered.
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { createInstrumentation } from '../../src/observability/instrumentation.js';

const done = (cb: (r: { code: number }) => void) => cb({ code: 0 });
const useSdk = process.argv[2] !== 'none';
if (useSdk) {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor({ export: (_s, cb) => done(cb), shutdown: async () => undefined })] }));
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: { export: (_m, cb) => done(cb), forceFlush: async () => undefined, shutdown: async () => undefined, selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE }, exportIntervalMillis: 5_000 })] }));
}
const inst = await createInstrumentation(useSdk ? {} : { enabled: false });
const ok = { ok: true as const, value: 1 };
async function oneRun(i: number) {
  let trace: ReturnType<typeof inst.captureTrace>;
  await inst.clientCall('cairn.start bench3', { 'cairn.workflow': 'bench3', 'cairn.run_id': undefined }, async (span) => {
    trace = inst.captureTrace();
    inst.runStarted('bench3');
    span.setAttribute('cairn.run_id', `run-${i}`);
    span.setAttribute('cairn.created', true);
  });
  inst.inFlight(1);
  for (const step of ['a', 'b', 'c']) {
    await inst.runAttempt({ runId: `run-${i}`, workflow: 'bench3', version: 1, step, attempt: 1, kind: 'step', instanceId: 'host:1:abc', trace }, async () => ok);
    inst.stepEnded('bench3', step, 0.05, true);
    inst.checkpoint(0.1, true);
  }
  inst.checkpoint(0.1, true);
  inst.runEnded('bench3', 'completed');
  inst.inFlight(-1);
}
const N = Number(process.argv[3] ?? 50_000);
for (let i = 0; i < 20_000; i++) await oneRun(i);
const c0 = process.cpuUsage();
for (let i = 0; i < N; i++) await oneRun(i);
const cpu = process.cpuUsage(c0);
console.log(`${useSdk ? 'sdk' : 'none'} cpu_us_per_run=${((cpu.user + cpu.system) / N).toFixed(2)}`);
process.exit(0);
