/**
 * OpenTelemetry for the worker processes of the crash tests (not a spec file): spans go to a JSON-lines file that the
 * test process reads, one line when a span starts and one when it ends, each appended synchronously (a SIGKILL cannot
 * lose a line already written). The start lines show the attempt a killed process never finished.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { context, trace, type Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BasicTracerProvider, SimpleSpanProcessor, type ReadableSpan, type Span, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

/** One line of the span file. */
export interface SpanLine {
  phase: 'start' | 'end';
  pid: number;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  /** On `end`: the span's status code (0 unset, 1 ok, 2 error). */
  status?: number;
}

function lineOf(span: ReadableSpan, phase: SpanLine['phase']): string {
  const ctx = span.spanContext();
  const line: SpanLine = {
    phase,
    pid: process.pid,
    name: span.name,
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    attributes: { ...span.attributes },
    ...(phase === 'end' ? { status: span.status.code } : {}),
  };
  return `${JSON.stringify(line)}\n`;
}

/** Appends every finished span to `path` (with a SimpleSpanProcessor: one export per span, as it ends). */
export class FileSpanExporter implements SpanExporter {
  constructor(private readonly path: string) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    try {
      for (const span of spans) appendFileSync(this.path, lineOf(span, 'end'));
      resultCallback({ code: ExportResultCode.SUCCESS });
    } catch (error) {
      resultCallback({ code: ExportResultCode.FAILED, error: error as Error });
    }
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Appends a line when a span starts. */
class SpanStartRecorder implements SpanProcessor {
  constructor(private readonly path: string) {}
  onStart(span: Span, _parent: Context): void {
    appendFileSync(this.path, lineOf(span, 'start'));
  }
  onEnd(): void {}
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Registers the global context manager and a tracer provider that writes spans to `path`. Call before the app starts. */
export function registerFileTracing(path: string): void {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SpanStartRecorder(path), new SimpleSpanProcessor(new FileSpanExporter(path))] }));
}

/** The lines of a span file (none when it does not exist yet). */
export function readSpanLines(path: string): SpanLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as SpanLine);
}
