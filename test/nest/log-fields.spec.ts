/**
 * Log lines about a run carry its id, workflow, step and attempt as structured fields (the logger call's last argument),
 * read by Nest's ConsoleLogger in JSON and text mode, and by pino through the hook the README shows for nestjs-pino.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { ConsoleLogger, type INestApplicationContext, type LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Writable } from 'node:stream';
import type { Logger as PinoLogger, LogFn } from 'pino';
import { DurableExecutionModule, RetryPolicy, Step, Workflow, type WorkflowClient } from '../../src/index.js';
import { WorkflowClient as Client } from '../../src/index.js';

@Workflow('logged')
class Logged {
  @Step({ retry: RetryPolicy.fixed(2, 10) }) charge() {
    throw new Error('card declined');
  }
}

/** Everything written to stdout and stderr while a test runs. */
let written: string[] = [];
let apps: INestApplicationContext[] = [];

beforeEach(() => {
  written = [];
  const capture = (chunk: unknown) => {
    written.push(String(chunk));
    return true;
  };
  jest.spyOn(process.stdout, 'write').mockImplementation(capture);
  jest.spyOn(process.stderr, 'write').mockImplementation(capture);
});

afterEach(async () => {
  for (const app of apps.splice(0)) await app.close().catch(() => undefined);
  jest.restoreAllMocks();
});

async function failRun(logger: LoggerService, runId: string): Promise<WorkflowClient> {
  const module = await Test.createTestingModule({
    imports: [DurableExecutionModule.forRoot({ worker: { pollIntervalMs: 50, shutdownGraceMs: 1_000 } })],
    providers: [Logged],
  })
    .setLogger(logger)
    .compile();
  const app = await module.init();
  apps.push(app);
  const client = app.get(Client);
  const handle = await client.start(Logged, undefined, { id: runId });
  await expect(handle.result({ timeout: '5s' })).rejects.toThrow('card declined');
  return client;
}

const fields = (runId: string, event: string, attempt: number, extra: Record<string, unknown> = {}) => ({
  event,
  runId,
  workflow: 'logged',
  step: 'charge',
  attempt,
  ...extra,
  error: { name: 'Error', message: 'card declined' },
});

const RETRY_TEXT = (runId: string) => `Run "${runId}" (logged): step "charge" attempt 1 failed (Error: card declined); retrying in 10 ms, per the step's retry policy`;
const FAILED_TEXT = (runId: string) =>
  `Run "${runId}" (logged): step "charge" failed for good after 2 attempt(s): Error: card declined. The run ends failed: fix the cause, ` +
  `then client.retry("${runId}") runs the step again with a fresh budget (or client.skip() records an output for it).`;

describe('structured log fields', () => {
  it("ConsoleLogger({ json: true }): one record per line, the run's fields under params", async () => {
    await failRun(new ConsoleLogger({ json: true }), 'log-json');
    const records = written
      .join('')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((r) => r.context === 'DurableExecution' && String(r.message).startsWith('Run "log-json"'));
    expect(records).toEqual([
      expect.objectContaining({ level: 'warn', message: RETRY_TEXT('log-json'), params: fields('log-json', 'step.retrying', 1, { delayMs: 10 }) }),
      expect.objectContaining({ level: 'warn', message: FAILED_TEXT('log-json'), params: fields('log-json', 'step.failed', 2) }),
    ]);
  });

  it('ConsoleLogger({ json: true, flattenParams: true }): the fields at the top level of the record', async () => {
    await failRun(new ConsoleLogger({ json: true, flattenParams: true }), 'log-flat');
    const failed = written
      .join('')
      .split('\n')
      .filter((line) => line.includes('"step.failed"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(failed).toEqual([expect.objectContaining({ level: 'warn', message: FAILED_TEXT('log-flat'), context: 'DurableExecution', ...fields('log-flat', 'step.failed', 2) })]);
  });

  it("Nest's default text logger: the readable message, then the fields, on one line", async () => {
    await failRun(new ConsoleLogger({ colors: false }), 'log-text');
    const lines = written.join('').split('\n').filter((line) => line.includes('[DurableExecution] Run "log-text"'));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[Nest\] \d+ {2}- .+ {4}WARN \[DurableExecution\] /);
    expect(lines[0].replace(/^.*\[DurableExecution\] /, '')).toBe(
      `${RETRY_TEXT('log-text')} { event: 'step.retrying', runId: 'log-text', workflow: 'logged', step: 'charge', attempt: 1, delayMs: 10, ` +
        `error: { name: 'Error', message: 'card declined' } }`,
    );
    expect(lines[1].replace(/^.*\[DurableExecution\] /, '')).toMatch(/^Run "log-text" \(logged\): step "charge" failed for good .* \{ event: 'step\.failed', .*attempt: 2/);
  });

  it("pino, called as nestjs-pino calls it: the README's logMethod hook puts the fields in the line", async () => {
    // What the engine logs, recorded as nestjs-pino's Logger receives it: (message, fields, context).
    const calls: unknown[][] = [];
    const record = (...args: unknown[]) => void calls.push(args);
    await failRun({ log: record, warn: record, error: record, debug() {}, verbose() {} }, 'log-pino');
    const [message, runFields] = calls.find((c) => String(c[0]).includes('failed for good'))!;
    expect(runFields).toEqual(fields('log-pino', 'step.failed', 2));

    const { pino } = await import('pino');
    const lines: string[] = [];
    const stream = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    /** The README's hook ("Logs"): merges cairn's fields into pino's merging object. */
    function logMethod(this: PinoLogger, args: Parameters<LogFn>, method: LogFn) {
      const [merging, text, extra] = args as unknown[];
      const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
      if (args.length === 3 && typeof text === 'string' && isObject(merging) && merging.context === 'DurableExecution' && isObject(extra)) {
        return method.call(this, { ...merging, ...extra }, text);
      }
      return method.apply(this, args);
    }
    // nestjs-pino's Logger turns warn(message, fields, context) into pino.warn({ context }, message, fields).
    pino({ base: undefined }, stream).warn({ context: 'DurableExecution' }, message as string, runFields);
    pino({ base: undefined, hooks: { logMethod } }, stream).warn({ context: 'DurableExecution' }, message as string, runFields);
    const [without, withHook] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(without).not.toHaveProperty('runId'); // pino drops an argument its message has no placeholder for
    expect(withHook).toEqual(expect.objectContaining({ msg: message, context: 'DurableExecution', ...fields('log-pino', 'step.failed', 2) }));
  });
});

describe('the lease-lost line', () => {
  it('names the workflow, step and attempt of the interrupted run', async () => {
    const { MemoryStore } = await import('../../src/index.js');
    class LosingStore extends MemoryStore {
      lose = false;
      override async renewLease(runId: string, token: string, leaseMs: number) {
        return this.lose ? ({ ok: false } as const) : super.renewLease(runId, token, leaseMs);
      }
    }
    @Workflow('held')
    class Held {
      @Step() wait(_: unknown, ctx: { signal: AbortSignal }) {
        return new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve('aborted')));
      }
    }
    const store = new LosingStore();
    const calls: unknown[][] = [];
    const record = (...args: unknown[]) => void calls.push(args);
    const module = await Test.createTestingModule({
      imports: [DurableExecutionModule.forRoot({ store, worker: { leaseMs: 300, pollIntervalMs: 50, shutdownGraceMs: 100 } })],
      providers: [Held],
    })
      .setLogger({ log: record, warn: record, error: record, debug() {}, verbose() {} })
      .compile();
    const app = await module.init();
    apps.push(app);
    await app.get(Client).start(Held, null, { id: 'lost-lease' });
    store.lose = true;
    const deadline = Date.now() + 5_000;
    let line: unknown[] | undefined;
    while (!line && Date.now() < deadline) {
      line = calls.find((c) => String(c[0]).includes('lease lost to another instance; interrupting it here'));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(line?.[1]).toEqual({ event: 'lease.lost', runId: 'lost-lease', workflow: 'held', step: 'wait', attempt: 1 });
  });
});
