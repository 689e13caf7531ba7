/**
 * Observability across a real process crash, on PostgreSQL and on Redis: worker processes are SIGKILLed in the middle
 * of a step and another process finishes the run.
 *
 * - Traces: the workers register an OpenTelemetry SDK whose spans go to a file (otel-file-exporter.ts). A run started
 *   in the test process under a parent span of a known trace id forms one trace: every attempt span, on either
 *   process (the killed one's unfinished attempt included), is in that trace and a child of the `cairn.start` span
 *   whose context the run stored.
 * - Heartbeats: a step heartbeats `{ done: n }` in one process, which is killed once the last details are stored; the
 *   next attempt, in another process, receives them as `ctx.lastHeartbeat`.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { context, ROOT_CONTEXT, SpanKind, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { WORKFLOW_STORE, type WorkflowStore } from '../../src/index.js';
import { CRASH_WORKFLOW, killAllWorkers, readLedger, starts, startWorker, waitAllCompleted, waitFor, type StoreKind } from './harness.js';
import { HEARTBEAT_WORKFLOW, type HeartbeatLedgerEntry } from './heartbeat-workflow.js';
import { readSpanLines } from './otel-file-exporter.js';
import { report, withScenario } from './scenarios.js';
import { testPostgres, testRedis } from '../setup/test-servers.js';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_SPAN_ID = 'b7ad6b7169203331';

const spans = new InMemorySpanExporter();

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
});

afterAll(async () => {
  await killAllWorkers();
  trace.disable();
  context.disable();
});

const servers: [StoreKind, ReturnType<typeof testPostgres>][] = [
  ['postgres', testPostgres()],
  ['redis', testRedis()],
];

describe.each(servers)('crash observability: %s store', (kind, server) => {
  server.describe(`(${kind})`, () => {
    it('a run killed mid-step in one process and finished in another forms one trace under its start span', async () => {
      await withScenario(kind, server.url, async (s) => {
        const spanFile = join(s.ledger.dir, 'spans.jsonl');
        const runId = `traced-${kind}`;
        const a = await startWorker(s.store, s.ledger, { slowStep: 'two', slowMs: 60_000, otelSpans: spanFile });

        // The run is started in this process, under a parent span with a known trace id (an incoming request's).
        const parent = trace.wrapSpanContext({ traceId: TRACE_ID, spanId: PARENT_SPAN_ID, traceFlags: TraceFlags.SAMPLED, isRemote: true });
        await context.with(trace.setSpan(ROOT_CONTEXT, parent), () => s.client.client.start(CRASH_WORKFLOW, { i: 0 }, { id: runId }));
        const start = spans.getFinishedSpans().find((span) => span.name === `cairn.start ${CRASH_WORKFLOW}` && span.attributes['cairn.run_id'] === runId)!;
        expect(start.kind).toBe(SpanKind.CLIENT);
        expect(start.spanContext().traceId).toBe(TRACE_ID);
        expect(start.parentSpanContext?.spanId).toBe(PARENT_SPAN_ID);
        const startSpanId = start.spanContext().spanId;
        // What the run stored: the start span's context, as W3C traceparent.
        const stored = (await s.client.app.get<WorkflowStore>(WORKFLOW_STORE).getRun(runId))!;
        expect((JSON.parse(stored.state) as { trace?: Record<string, string> }).trace).toEqual({ traceparent: `00-${TRACE_ID}-${startSpanId}-01` });

        // A finishes step one and is killed in step two; B finishes the run.
        await waitFor('step two running on A', () => starts(s.ledger.read(), runId, 'two').some((e) => e.pid === a.pid), 15_000, 20);
        await a.kill9();
        const b = await startWorker(s.store, s.ledger, { otelSpans: spanFile });
        await waitAllCompleted(s.client.client, [runId], 15_000);

        const attempts = readSpanLines(spanFile).filter((l) => l.attributes['cairn.run_id'] === runId && l.name.startsWith(`cairn.step ${CRASH_WORKFLOW}.`));
        const seen = attempts.map((l) => [l.pid === a.pid ? 'A' : l.pid === b.pid ? 'B' : l.pid, l.phase, l.name]);
        expect(seen).toEqual([
          ['A', 'start', 'cairn.step crash.one'],
          ['A', 'end', 'cairn.step crash.one'],
          ['A', 'start', 'cairn.step crash.two'], // never ended: A was killed in it
          ['B', 'start', 'cairn.step crash.two'],
          ['B', 'end', 'cairn.step crash.two'],
          ['B', 'start', 'cairn.step crash.three'],
          ['B', 'end', 'cairn.step crash.three'],
        ]);
        for (const line of attempts) {
          expect({ traceId: line.traceId, parentSpanId: line.parentSpanId }).toEqual({ traceId: TRACE_ID, parentSpanId: startSpanId });
          expect(line.attributes).toEqual(expect.objectContaining({ 'cairn.workflow': CRASH_WORKFLOW, 'cairn.attempt': 1 }));
        }
        // Each process named itself in its spans: two instances, one trace.
        expect(new Set(attempts.map((l) => l.attributes['cairn.instance_id'])).size).toBe(2);
        report(`${kind} trace-across-sigkill`, { spans: attempts.length, processes: new Set(attempts.map((l) => l.pid)).size });
      });
    }, 30_000);

    it('a step heartbeats, its process is SIGKILLed, and the next attempt in another process resumes from the last heartbeat', async () => {
      await withScenario(kind, server.url, async (s) => {
        const runId = `heartbeat-${kind}`;
        const a = await startWorker(s.store, s.ledger);
        await s.client.client.start(HEARTBEAT_WORKFLOW, { items: 5 }, { id: runId });
        const ledger = () => readLedger(s.ledger.path) as unknown as HeartbeatLedgerEntry[];
        await waitFor('A heartbeated 5 times', () => ledger().some((e) => e.phase === 'heartbeated' && e.pid === a.pid), 15_000, 20);
        // Writes are throttled to one per second: { done: 1 } at once, { done: 5 } at the end of that second. Kill A
        // only once describe() shows the last one stored (and no sooner than 1.5 s after the heartbeats).
        const heartbeatsAt = Date.now();
        await waitFor(
          'the last heartbeat stored',
          async () => JSON.stringify((await s.client.client.describe(runId))?.steps[0]?.heartbeat?.details) === '{"done":5}',
          5_000,
          50,
        );
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1_500 - (Date.now() - heartbeatsAt))));
        await a.kill9();

        const b = await startWorker(s.store, s.ledger);
        const infos = await waitAllCompleted(s.client.client, [runId], 15_000);
        expect(infos.get(runId)!.output).toEqual({ resumedFrom: 5, pid: b.pid });
        const runStarts = ledger().filter((e) => e.phase === 'start' && e.runId === runId);
        expect(runStarts.map((e) => [e.pid, e.attempt, e.lastHeartbeat])).toEqual([
          [a.pid, 1, undefined],
          // A crash does not use up an attempt: the same attempt number, started over with the last heartbeat.
          [b.pid, 1, { done: 5 }],
        ]);
      });
    }, 30_000);
  });
});
