import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { Type } from '@nestjs/common';
import {
  InvalidArgumentError,
  MemoryStore,
  Flow,
  Step,
  Workflow,
  WorkflowDefinitionError,
  type StepContext,
  type WorkflowHandle,
} from '../../src/index.js';
import { bootError, eventually, gate, rejection, sleep, useApps, type Gate } from './helpers.js';

function workflowWith(options: Record<string, unknown>): Type {
  @Workflow({ name: `bad_${Math.random().toString(36).slice(2)}`, ...options })
  class Bad {
    @Step() a() {
      return 1;
    }
  }
  return Bad;
}

describe('flow control: bad definitions fail at bootstrap', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['a zero concurrency', { concurrency: 0 }, /concurrency must be an integer >= 1/],
    ['a negative concurrency limit', { concurrency: { limit: -2 } }, /concurrency\.limit must be an integer >= 1/],
    ['a fractional concurrency', { concurrency: 1.5 }, /concurrency must be an integer >= 1/],
    ['an unknown scope', { concurrency: { limit: 1, scope: 'process' } }, /concurrency\.scope must be 'run' or 'step'/],
    ['a key that is not a function', { concurrency: { limit: 1, key: 'customerId' } }, /concurrency\.key must be a function/],
    ['a zero rate limit', { rateLimit: { limit: 0, per: '1s' } }, /rateLimit\.limit must be an integer >= 1/],
    ['a rate window that is not a duration', { rateLimit: { limit: 5, per: 'often' } }, /rateLimit\.per must be a positive/],
    ['a zero rate window', { rateLimit: { limit: 5, per: 0 } }, /rateLimit\.per must be a positive/],
    ['a fractional priority', { priority: 0.5 }, /priority must be an integer/],
  ];
  it.each(cases)('refuses %s', async (_what, options, message) => {
    const error = await rejection(bootError([workflowWith(options)]).then((e) => Promise.reject(e)), WorkflowDefinitionError, 'CAIRN_WORKFLOW_DEFINITION');
    expect(error.message).toMatch(message);
  });
});

// --- behaviour ------------------------------------------------------------------------------------------------------

let running = new Map<string, number>();
let maxRunning = new Map<string, number>();
let order: string[] = [];
let begins: number[] = [];
let hold: Gate = gate();

@Workflow({ name: 'PerCustomer', concurrency: { limit: 1, key: (input: { customer: string }) => input.customer } })
class PerCustomer {
  @Step() async work(input: { customer: string; id: string }) {
    const now = (running.get(input.customer) ?? 0) + 1;
    running.set(input.customer, now);
    maxRunning.set(input.customer, Math.max(maxRunning.get(input.customer) ?? 0, now));
    order.push(input.id);
    await hold.promise;
    running.set(input.customer, running.get(input.customer)! - 1);
    return input.id;
  }
}

@Workflow({ name: 'BadKey', concurrency: { limit: 1, key: (input: { throws?: boolean }) => (input.throws ? (null as any).x : 42) } })
class BadKey {
  @Step() a() {
    return 1;
  }
}

@Workflow({ name: 'Ordered' })
class Ordered {
  @Step() async work(input: string) {
    order.push(input);
    await hold.promise;
    return input;
  }
}

@Workflow({ name: 'Limited', rateLimit: { limit: 2, per: '1s' } })
class Limited {
  @Step() async work(input: number) {
    begins.push(Date.now());
    return input;
  }
}

@Workflow({ name: 'Search' })
class Search {
  @Step() async work(input: string, ctx: StepContext) {
    return `${input}:${ctx.runId}`;
  }
}

@Workflow({ name: 'FanOutToCustomers' })
class FanOutToCustomers {
  @Step() spread(customers: string[]) {
    return Flow.all(customers.map((customer, i) => Flow.child(PerCustomer, { customer, id: `child-${i}` })));
  }
}

describe('flow control: runs', () => {
  const apps = useApps();
  beforeEach(() => {
    running = new Map();
    maxRunning = new Map();
    order = [];
    begins = [];
    hold = gate();
  });
  afterEach(() => hold.open());

  it('never runs two runs of one key at once, shows the blocked ones, and starts the next as soon as a slot frees', async () => {
    // A poll interval far longer than the test: only the freed slot can start the waiting runs.
    const { client } = await apps.boot([PerCustomer], { store: new MemoryStore(), worker: { pollIntervalMs: 60_000 } });
    const handles: WorkflowHandle[] = [];
    for (const [i, customer] of ['a', 'a', 'a', 'b'].entries()) handles.push(await client.start(PerCustomer, { customer, id: `${customer}${i}` }));
    await eventually(() => order.length === 2);
    const blocked = await handles[1].describe();
    expect(blocked).toMatchObject({ status: 'pending', blockedBy: 'concurrency', concurrencyKey: 'a', priority: 0 });
    expect((await handles[0].describe()).blockedBy).toBeUndefined();
    hold.open();
    expect(await Promise.all(handles.map((h) => h.result({ timeout: '5s' })))).toEqual(['a0', 'a1', 'a2', 'b3']);
    expect(maxRunning.get('a')).toBe(1);
    expect(maxRunning.get('b')).toBe(1);
  });

  it('child runs take no limit of their own (yet): a fan-out of one key runs its children at once', async () => {
    const { client } = await apps.boot([PerCustomer, FanOutToCustomers], { store: new MemoryStore() });
    const parent = await client.start(FanOutToCustomers, ['a', 'a']);
    await eventually(() => order.length === 2);
    hold.open();
    expect(await parent.result({ timeout: '5s' })).toEqual(['child-0', 'child-1']);
  });

  it('refuses a key function that throws or returns a non-string, and stores nothing', async () => {
    const { client } = await apps.boot([BadKey], { store: new MemoryStore() });
    const thrown = await rejection(client.start(BadKey, { throws: true }, { id: 'bk-1' }), InvalidArgumentError);
    expect(thrown.message).toMatch(/concurrency key function of workflow "BadKey" threw/);
    const wrong = await rejection(client.start(BadKey, {}, { id: 'bk-2' }), InvalidArgumentError);
    expect(wrong.message).toMatch(/must be a non-empty string .* \(got 42\)/);
    expect((await client.start(BadKey, {}, { id: 'bk-3', concurrencyKey: 'k' })).runId).toBe('bk-3');
    expect((await client.list({ workflow: 'BadKey' })).runs.map((r) => r.runId)).toEqual(['bk-3']);
  });

  it('refuses bad start options before anything is stored', async () => {
    const { client } = await apps.boot([Ordered, PerCustomer], { store: new MemoryStore() });
    const bad: [string, Parameters<typeof client.start>[2]][] = [
      ['a delay in the past', { delay: new Date(Date.now() - 60_000) }],
      ['a negative delay', { delay: -5 }],
      ['a delay that is not a duration', { delay: 'soon' }],
      ['a fractional priority', { priority: 1.5 }],
      ['a concurrencyKey without a limit', { concurrencyKey: 'x' }],
      ['debounce with an id', { id: 'x', debounce: { key: 'k', delay: 10 } }],
      ['debounce with a delay', { delay: 10, debounce: { key: 'k', delay: 10 } }],
      ['a maxDelay shorter than the delay', { debounce: { key: 'k', delay: '1m', maxDelay: '10s' } }],
      ['an empty debounce key', { debounce: { key: '', delay: 10 } }],
    ];
    for (const [what, options] of bad) {
      const error = await rejection(client.start(Ordered, 'x', options), InvalidArgumentError).catch((e: Error) => {
        throw new Error(`${what}: ${e.message}`);
      });
      expect(error.message.length).toBeGreaterThan(20);
    }
    const empty = await rejection(client.start(PerCustomer, { customer: '', id: 'e' }), InvalidArgumentError);
    expect(empty.message).toMatch(/non-empty string/);
    expect((await client.list({})).runs).toEqual([]);
  });

  it('claims higher priorities first', async () => {
    const { client } = await apps.boot([Ordered], { store: new MemoryStore(), worker: { concurrency: 1 } });
    const first = await client.start(Ordered, 'first');
    await eventually(() => order.length === 1);
    const low = await client.start(Ordered, 'low', { priority: -1 });
    await client.start(Ordered, 'plain');
    const high = await client.start(Ordered, 'high', { priority: 10 });
    expect((await high.describe()).priority).toBe(10);
    expect((await low.describe()).priority).toBe(-1);
    hold.open();
    await first.result({ timeout: '5s' });
    await low.result({ timeout: '5s' });
    expect(order).toEqual(['first', 'high', 'plain', 'low']);
  });

  it('keeps a delayed run pending until its time, and shows when', async () => {
    const { client } = await apps.boot([Search], { store: new MemoryStore() });
    const before = Date.now();
    const handle = await client.start(Search, 'later', { delay: 700 });
    const info = await handle.describe();
    expect(info.status).toBe('pending');
    expect(info.dueAt!.getTime()).toBeGreaterThanOrEqual(before + 650);
    await sleep(300);
    expect((await handle.describe()).status).toBe('pending');
    expect(await handle.result({ timeout: '5s' })).toBe(`later:${handle.runId}`);
    expect(Date.now() - before).toBeGreaterThanOrEqual(650);
  });

  it('debounces a burst of starts into one run with the last input', async () => {
    const { client } = await apps.boot([Search], { store: new MemoryStore() });
    const handles: WorkflowHandle[] = [];
    for (const q of ['n', 'ne', 'nes', 'nest']) handles.push(await client.start(Search, q, { debounce: { key: 'user-1', delay: 300, maxDelay: '5s' } }));
    expect(new Set(handles.map((h) => h.runId)).size).toBe(1);
    expect(await handles[0].result({ timeout: '5s' })).toBe(`nest:${handles[0].runId}`);
    expect((await client.list({ workflow: 'Search' })).runs).toHaveLength(1);
    const next = await client.start(Search, 'again', { debounce: { key: 'user-1', delay: 0 } });
    expect(next.runId).not.toBe(handles[0].runId);
  });

  it('lets at most `limit` runs begin in any window of the rate limit', async () => {
    const { client } = await apps.boot([Limited], { store: new MemoryStore() });
    const handles: WorkflowHandle[] = [];
    for (let i = 0; i < 5; i++) handles.push(await client.start(Limited, i));
    await eventually(async () => (await handles[2].describe()).blockedBy === 'rate-limit' || begins.length > 2);
    await Promise.all(handles.map((h) => h.result({ timeout: '10s' })));
    begins.sort((a, b) => a - b);
    for (let i = 0; i + 2 < begins.length; i++) expect(begins[i + 2] - begins[i]).toBeGreaterThanOrEqual(990);
  });
});
