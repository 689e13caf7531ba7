import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Flow, NonRetryableError, RunNotFoundError, Step, Workflow, type WorkflowClient } from '../../src/index.js';
import { eventually, rejection, useApps } from './helpers.js';

const spans = new InMemorySpanExporter();
let failCharge = false;

@Workflow('spanned')
class Spanned {
  @Step() ask(input: string) {
    return Flow.waitForSignal('approve', { value: input });
  }
  @Step() charge(payload: unknown) {
    if (failCharge) throw new NonRetryableError('card declined');
    return { charged: payload };
  }
}

const named = (name: string) => spans.getFinishedSpans().filter((s) => s.name === name);
function only(name: string): ReadableSpan {
  const found = named(name);
  expect(found).toHaveLength(1);
  return found[0];
}
const ids = (span: Pick<ReadableSpan, 'spanContext'>) => ({ traceId: span.spanContext().traceId, spanId: span.spanContext().spanId });
const parentOf = (span: ReadableSpan) => ({ traceId: span.spanContext().traceId, spanId: span.parentSpanContext?.spanId });

async function statusOf(client: WorkflowClient, runId: string, status: string) {
  await eventually(async () => (await client.describe(runId))?.status === status);
}

describe('client spans: start, signal and control calls', () => {
  const apps = useApps();
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  });
  afterAll(() => {
    trace.disable();
    context.disable();
  });
  beforeEach(() => {
    spans.reset();
    failCharge = false;
  });

  it('start is a CLIENT span under the caller’s span, and the run’s step spans are its children; signal is a span of its own', async () => {
    const { client } = await apps.boot([Spanned]);
    const request = trace.getTracer('the-app').startSpan('POST /orders');
    const handle = await context.with(trace.setSpan(ROOT_CONTEXT, request), () => client.start(Spanned, 'order-1', { id: 'spans-1' }));
    request.end();
    await statusOf(client, 'spans-1', 'waiting');
    await context.with(ROOT_CONTEXT, () => client.signal('spans-1', 'approve', 'yes'));
    expect(await handle.result()).toEqual({ charged: 'yes' });

    const start = only('cairn.start spanned');
    expect(start.kind).toBe(SpanKind.CLIENT);
    expect(start.attributes).toEqual({ 'cairn.workflow': 'spanned', 'cairn.run_id': 'spans-1', 'cairn.created': true });
    expect(parentOf(start)).toEqual(ids(request));
    // Both steps, before and after the signal, are children of the start span (the context stored with the run).
    for (const name of ['cairn.step spanned.ask', 'cairn.step spanned.charge']) expect(parentOf(only(name))).toEqual(ids(start));

    const signal = only('cairn.signal approve');
    expect(signal.kind).toBe(SpanKind.CLIENT);
    expect(signal.attributes).toEqual({ 'cairn.run_id': 'spans-1', 'cairn.signal': 'approve' });
    expect(signal.parentSpanContext).toBeUndefined();
    expect(signal.status.code).toBe(SpanStatusCode.UNSET);

    // start() of an id that exists (use-existing) is traced too, and says it created nothing.
    await client.start(Spanned, 'again', { id: 'spans-1' });
    expect(named('cairn.start spanned').map((s) => s.attributes['cairn.created'])).toEqual([true, false]);
  });

  it('pause, resume, cancel, retry, skip and fork are CLIENT spans naming the run', async () => {
    const { client } = await apps.boot([Spanned]);
    await client.start(Spanned, 'o', { id: 'spans-ctl' });
    await statusOf(client, 'spans-ctl', 'waiting');
    await client.pause('spans-ctl');
    await client.resume('spans-ctl');
    await client.cancel('spans-ctl', { compensate: false });
    await statusOf(client, 'spans-ctl', 'cancelled');

    failCharge = true;
    await client.start(Spanned, 'o', { id: 'spans-fail' });
    await statusOf(client, 'spans-fail', 'waiting');
    await client.signal('spans-fail', 'approve', 'p');
    await statusOf(client, 'spans-fail', 'failed');
    await client.retry('spans-fail');
    await statusOf(client, 'spans-fail', 'failed');
    await client.skip('spans-fail', { output: 'skipped' });
    await statusOf(client, 'spans-fail', 'completed');

    for (const [name, attributes] of [
      ['cairn.pause', { 'cairn.run_id': 'spans-ctl' }],
      ['cairn.resume', { 'cairn.run_id': 'spans-ctl' }],
      ['cairn.cancel', { 'cairn.run_id': 'spans-ctl', 'cairn.compensate': false }],
      ['cairn.retry', { 'cairn.run_id': 'spans-fail' }],
      ['cairn.skip', { 'cairn.run_id': 'spans-fail' }],
    ] as const) {
      const span = only(name);
      expect([name, span.kind, span.attributes, span.status.code]).toEqual([name, SpanKind.CLIENT, attributes, SpanStatusCode.UNSET]);
    }

    // fork: the new run stores the fork span's context, so its steps are the fork span's children.
    failCharge = false;
    spans.reset();
    const forked = await client.fork('spans-fail', { fromStep: 'charge', id: 'spans-forked', input: 'x' });
    expect(await forked.result()).toBeDefined();
    const fork = only('cairn.fork');
    expect(fork.kind).toBe(SpanKind.CLIENT);
    expect(fork.attributes).toEqual({
      'cairn.run_id': 'spans-fail',
      'cairn.from_step': 'charge',
      'cairn.workflow': 'spanned',
      'cairn.forked_run_id': 'spans-forked',
    });
    expect(parentOf(only('cairn.step spanned.charge'))).toEqual(ids(fork));
  });

  it('a call that fails leaves its span ERROR with the exception', async () => {
    const { client } = await apps.boot([Spanned]);
    await rejection(client.cancel('no-such-run'), RunNotFoundError);
    const span = only('cairn.cancel');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.status.message).toMatch(/^RunNotFoundError: /);
    expect(span.events.map((e) => e.attributes?.['exception.type'])).toEqual(['RunNotFoundError']);
  });
});
