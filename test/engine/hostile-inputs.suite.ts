/**
 * The hostile-input catalogue of issue 19 (not a spec file): one named test per input, run unchanged on every store by
 * the `hostile-inputs.<store>.spec.ts` files, each through a real Nest app. For every input the expectation is the same:
 * a clear error (the documented class, a message that says what is wrong), and nothing corrupted or lost: the run in
 * question is refused before anything is stored, or ends with a clear error, and the store still serves other runs.
 */
import { rng } from '../../chaos/plan.js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import {
  DurableExecutionModule,
  Flow,
  InvalidArgumentError,
  PayloadTooLargeError,
  RunAlreadyExistsError,
  RunNotActiveError,
  SignalQueueFullError,
  WorkflowCancelledError,
  SerializationError,
  StoreError,
  Step,
  WORKFLOW_STORE,
  Workflow,
  WorkflowClient,
  WorkflowFailedError,
  type DurableExecutionOptions,
  type StepContext,
  type WorkflowStore,
} from '../../src/index.js';
import { TRUNCATION_MARKER } from '../../src/engine/error-text.js';
import { eventually, rejection, silentLogger, sleep } from '../nest/helpers.js';
import { bootApp } from '../support/workflows.js';

/** The module's default `maxPayloadBytes` (src/nest/durable-execution.options.ts: `1024 * 1024`). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** The stored error text cap (DEFAULT_ERROR_TEXT_LIMIT, README *Error text*). */
const ERROR_TEXT_LIMIT = 8_192;

// ---------------------------------------------------------------------------------------------------------------------
// Workflows

/** Step bodies that ran, per run id (a body that runs is recorded, whatever it returns). */
const bodies = new Map<string, unknown[]>();
function ran(runId: string, value: unknown): void {
  const list = bodies.get(runId) ?? [];
  list.push(value);
  bodies.set(runId, list);
}
/** Payloads consumed by collector runs, per run id. */
const consumed = new Map<string, unknown[]>();
/** Loop iterations of storm runs, per run id. */
const loops = new Map<string, number>();

@Workflow('hi-echo')
class Echo {
  @Step() echo(input: unknown, ctx: StepContext) {
    ran(ctx.runId, 'echo');
    return input;
  }
}

/** Returns its input with one more character: an input at the limit makes an output just over it. */
@Workflow('hi-grow')
class Grow {
  @Step() grow(input: string, ctx: StepContext) {
    ran(ctx.runId, 'grow');
    return `${input}x`;
  }
}

/** Builds a value about 200,000 levels deep without recursion (objects or arrays). */
export function deepValue(levels: number, kind: 'object' | 'array'): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < levels; i++) value = kind === 'object' ? { a: value } : [value];
  return value;
}

/** Hostile outputs a step can return, by name. */
function hostileOutput(kind: string): unknown {
  switch (kind) {
    case 'proto':
      return JSON.parse('{"safe":1,"__proto__":{"polluted":"yes"}}') as unknown;
    case 'constructor.prototype':
      return { safe: 1, constructor: { prototype: { polluted: 'yes' } } };
    case 'deep':
      return deepValue(200_000, 'object');
    case 'cyclic': {
      const node: Record<string, unknown> = { name: 'root', list: [] };
      node.self = node;
      (node.list as unknown[]).push(node, { back: node });
      return node;
    }
    case 'symbol':
      return { tag: Symbol('hostile') };
    case 'symbol-key':
      return { [Symbol('hostile')]: 1, plain: 2 };
    case 'getter':
      return {
        plain: 1,
        get boom(): unknown {
          throw new Error('the getter throws during serialization');
        },
      };
    default:
      return kind;
  }
}

@Workflow('hi-returns')
class Returns {
  @Step() make(kind: string, ctx: StepContext) {
    ran(ctx.runId, kind);
    return hostileOutput(kind);
  }
  @Step() after(value: unknown, ctx: StepContext) {
    ran(ctx.runId, 'after');
    return value;
  }
}

/** Thrown values, by name. */
function thrown(kind: string): unknown {
  switch (kind) {
    case 'string':
      return 'a plain string was thrown';
    case 'undefined':
      return undefined;
    case 'getter-object':
      return {
        get message(): string {
          throw new Error('the message getter throws');
        },
        get toJSON(): unknown {
          throw new Error('the toJSON getter throws');
        },
      };
    case 'huge':
      return new Error('m'.repeat(10 * 1024 * 1024));
    default:
      return new Error(kind);
  }
}

@Workflow('hi-throws')
class Throws {
  @Step() boom(kind: string, ctx: StepContext) {
    ran(ctx.runId, kind);
    throw thrown(kind);
  }
}

/** Waits for the signal its input names, then returns that signal's payload. */
@Workflow('hi-waiter')
class Waiter {
  @Step() wait(name: string, ctx: StepContext) {
    ran(ctx.runId, 'wait');
    return Flow.waitForSignal(name);
  }
  @Step() got(payload: unknown, ctx: StepContext) {
    ran(ctx.runId, 'got');
    return payload;
  }
}

/** Consumes `count` "tick" signals one per visit, then waits for "stop" (so the rest stay queued and listable). */
@Workflow('hi-collector')
class Collector {
  @Step() wait() {
    return Flow.waitForSignal('tick');
  }
  @Step() take(payload: unknown, ctx: StepContext<{ count: number }>) {
    const list = consumed.get(ctx.runId) ?? [];
    list.push(payload);
    consumed.set(ctx.runId, list);
    if (list.length < ctx.input.count) return Flow.goto('wait', undefined);
    return Flow.waitForSignal('stop');
  }
  @Step() done(payload: unknown) {
    return payload;
  }
}

/** Loops for ever through waiting (20 ms) and running until a "finish" signal: a run in every live status. */
@Workflow('hi-storm')
class Storm {
  @Step() listen() {
    return Flow.waitForAny(['finish'], { timeout: 20 });
  }
  @Step() check(got: { signal: string | null }, ctx: StepContext) {
    loops.set(ctx.runId, (loops.get(ctx.runId) ?? 0) + 1);
    if (got.signal === 'finish') return Flow.complete('finished');
    return Flow.goto('listen', undefined);
  }
}

@Workflow('hi-start')
class Starter {
  @Step() async begin(input: number, ctx: StepContext) {
    ran(ctx.runId, { input, key: ctx.idempotencyKey });
    await sleep(1);
    return input;
  }
}

const WORKFLOWS = [Echo, Grow, Returns, Throws, Waiter, Collector, Storm, Starter];

// ---------------------------------------------------------------------------------------------------------------------
// Hostile strings

/** 255 UTF-16 units of metacharacters, cut so that no surrogate pair is split. */
function maxLengthId(): string {
  const pattern = "'; DROP TABLE runs; --]]{}\\\n🚀 redis.call('FLUSHALL') ";
  let id = '';
  while (id.length < 255) id += pattern;
  id = id.slice(0, 255);
  if (/[\ud800-\udbff]$/.test(id)) id = `${id.slice(0, 254)}x`;
  return id;
}

/** Run ids and signal names carrying SQL and Lua metacharacters, hash-tag braces, newlines, emoji, the maximum length. */
export const HOSTILE_NAMES: [string, string][] = [
  ['SQL injection', "x'; DROP TABLE cairn_runs; --"],
  ['SQL comment only', '--'],
  ['Lua long-bracket close', ']]'],
  ['Lua long-bracket open and close', '[[x]]--[==['],
  ['backslashes', '\\\\x\\'],
  ['empty hash tag', '{}'],
  ['unbalanced hash tag', '{run'],
  ['newlines and tab', 'line1\nline2\r\n\tend'],
  ['emoji', '🚀💥 run ✅'],
  ['glob and percent', '*?%_[a-z]'],
  ['maximum length (255)', maxLengthId()],
];

// ---------------------------------------------------------------------------------------------------------------------
// The suite

export interface HostileTarget {
  /** Store options of the app (a fresh schema, key prefix or folder). */
  store: () => DurableExecutionOptions['store'];
  /** Signals sent to one run; and how many of them the run consumes (the rest is read with listSignals). */
  signals: { sent: number; consumed: number };
  /** Concurrent starts of one id per conflict policy. */
  concurrentStarts: number;
  /** Interleaved cancel / pause / resume calls on one run. */
  controlCalls: number;
  /** A configuration whose store cannot be reached at startup, and what its error must name; absent: not applicable. */
  unreachable?: () => Promise<{ options: DurableExecutionOptions; names: (string | RegExp)[] }>;
  /** Extra time per test for slow stores (ms added to Jest's timeout of the long cases). */
  slow?: number;
}


function polluted(): string[] {
  const probe = {} as Record<string, unknown>;
  const found: string[] = [];
  if ('polluted' in probe) found.push('polluted');
  found.push(...Object.getOwnPropertyNames(Object.prototype).filter((k) => !ORIGINAL_OBJECT_PROTOTYPE_KEYS.has(k)));
  return found;
}
const ORIGINAL_OBJECT_PROTOTYPE_KEYS = new Set(Object.getOwnPropertyNames(Object.prototype));

export function hostileInputSuite(storeName: string, target: HostileTarget): void {
  describe(`hostile inputs: ${storeName}`, () => {
    let app: INestApplicationContext;
    let client: WorkflowClient;
    let store: WorkflowStore;
    let healthySeq = 0;

    beforeAll(async () => {
      const booted = await bootApp(WORKFLOWS, {
        store: target.store(),
        // NOTE: the storm run loops through a goto for as long as the test needs; the default bound would end it.
        maxTransitions: 1_000_000,
        // NOTE: the signal load test fills one run's queue to exactly this bound (see "load on one run").
        maxQueuedSignals: target.signals.sent,
        worker: { pollIntervalMs: 50, shutdownGraceMs: 1_000, concurrency: 200 },
      });
      app = booted.app;
      client = booted.client;
      store = app.get<WorkflowStore>(WORKFLOW_STORE);
    }, 60_000);
    afterAll(async () => {
      await app?.close();
    });

    /** The store still serves other runs: a fresh run completes with its own output. */
    async function stillServes(): Promise<void> {
      const n = ++healthySeq;
      const output = await client.execute(Echo, { healthy: n, text: 'fine' }, { timeout: 15_000 });
      expect(output).toEqual({ healthy: n, text: 'fine' });
    }

    /** Nothing was stored under this id. */
    async function nothingStored(runId: string): Promise<void> {
      expect(await client.describe(runId)).toBeUndefined();
      expect(await store.getRun(runId)).toBeUndefined();
    }

    const uid = (what: string) => `${what}-${randomUUID().slice(0, 8)}`;

    describe('prototype keys', () => {
      it.each([
        ['__proto__ (as JSON.parse makes it)', () => JSON.parse('{"ok":1,"nested":{"__proto__":{"polluted":"yes"}}}') as unknown, /"nested" has a property named "__proto__"/],
        ['constructor.prototype', () => ({ ok: 1, constructor: { prototype: { polluted: 'yes' } } }), /the value has a property named "constructor"/],
        ['prototype at the top level', () => ({ prototype: { polluted: 'yes' } }), /property named "prototype"/],
      ])('an input with %s is refused before anything is stored; Object.prototype stays clean', async (_what, make, message) => {
        const id = uid('proto-input');
        const error = await rejection(client.start(Echo, make(), { id }), SerializationError, 'CAIRN_SERIALIZATION');
        expect(error.message).toMatch(message);
        expect(error.message).toMatch(/input of workflow "hi-echo"/);
        await nothingStored(id);
        expect(polluted()).toEqual([]);
        await stillServes();
      });

      it('a signal payload with __proto__ is refused; the run still waits and takes a clean signal', async () => {
        const id = uid('proto-signal');
        await client.start(Waiter, 'go', { id });
        await eventually(async () => (await client.describe(id))?.status === 'waiting', 10_000);
        const error = await rejection(client.signal(id, 'go', JSON.parse('{"__proto__":{"polluted":"yes"}}')), SerializationError);
        expect(error.message).toMatch(/__proto__/);
        expect(await store.listSignals(id)).toEqual([]);
        await client.signal(id, 'go', { clean: true });
        expect(await client.getHandle(id).result({ timeout: 10_000 })).toEqual({ clean: true });
        expect(polluted()).toEqual([]);
      });

      it.each(['proto', 'constructor.prototype'])('a step output with %s fails the run with SerializationError naming the step', async (kind) => {
        const handle = await client.start(Returns, kind);
        const error = await rejection(handle.result({ timeout: 10_000 }), WorkflowFailedError);
        expect(error.cause).toMatchObject({ name: 'SerializationError', step: 'make' });
        expect(error.cause.message).toMatch(/output of step "make"/);
        expect(error.cause.message).toMatch(kind === 'proto' ? /"__proto__"/ : /"constructor"/);
        expect(bodies.get(handle.runId)).toEqual([kind]); // the next step never ran
        expect(polluted()).toEqual([]);
        await stillServes();
      });

      it('keeps "__proto__" as a Map key and as a string value (the README says they are fine there)', async () => {
        const value = { map: new Map([['__proto__', 1], ['constructor', 2]]), text: '__proto__' };
        const output = (await client.execute(Echo, value, { timeout: 10_000 })) as typeof value;
        expect(output.map).toBeInstanceOf(Map);
        expect([...output.map.entries()]).toEqual([['__proto__', 1], ['constructor', 2]]);
        expect(output.text).toBe('__proto__');
        expect(polluted()).toEqual([]);
      });
    });

    describe('a 200,000-level nested value', () => {
      it.each(['object', 'array'] as const)('as an input (%s) is refused with SerializationError before anything is stored', async (kind) => {
        const id = uid(`deep-${kind}`);
        const error = await rejection(client.start(Echo, deepValue(200_000, kind), { id }), SerializationError);
        expect(error.message).toMatch(/^Cannot serialize input of workflow "hi-echo"/);
        await nothingStored(id);
        await stillServes();
      });

      it('as a step output fails the run with SerializationError', async () => {
        const handle = await client.start(Returns, 'deep');
        const error = await rejection(handle.result({ timeout: 15_000 }), WorkflowFailedError);
        expect(error.cause).toMatchObject({ name: 'SerializationError', step: 'make' });
        expect(error.cause.message).toMatch(/output of step "make"/);
        expect(bodies.get(handle.runId)).toEqual(['deep']);
        await stillServes();
      });

      it('as a signal payload is refused; the run still waits', async () => {
        const id = uid('deep-signal');
        await client.start(Waiter, 'go', { id });
        await eventually(async () => (await client.describe(id))?.status === 'waiting', 10_000);
        await rejection(client.signal(id, 'go', deepValue(200_000, 'object')), SerializationError);
        expect(await store.listSignals(id)).toEqual([]);
        await client.signal(id, 'go', 'shallow');
        expect(await client.getHandle(id).result({ timeout: 10_000 })).toBe('shallow');
      });
    });

    describe('payloads around maxPayloadBytes (default 1 MiB)', () => {
      // NOTE: a string of n ASCII characters serializes to n + 2 bytes (its quotes).
      const atLimit = () => 'a'.repeat(DEFAULT_MAX_PAYLOAD_BYTES - 2);

      it('an input of exactly maxPayloadBytes is stored and round-trips', async () => {
        const input = atLimit();
        const handle = await client.start(Echo, input);
        const output = (await handle.result({ timeout: 20_000 })) as string;
        expect(output.length).toBe(input.length);
        expect(output === input).toBe(true);
        expect((await store.getRun(handle.runId))!.input.length).toBe(DEFAULT_MAX_PAYLOAD_BYTES);
      }, 30_000);

      it('an input one byte over is refused with PayloadTooLargeError before anything is stored', async () => {
        const id = uid('over');
        const error = await rejection(client.start(Echo, `${atLimit()}b`, { id }), PayloadTooLargeError, 'CAIRN_PAYLOAD_TOO_LARGE');
        expect(error).toMatchObject({ bytes: DEFAULT_MAX_PAYLOAD_BYTES + 1, maxBytes: DEFAULT_MAX_PAYLOAD_BYTES });
        expect(error.message).toMatch(/^Input of workflow "hi-echo" is 1048577 bytes serialized, over maxPayloadBytes \(1048576\)/);
        await nothingStored(id);
        await stillServes();
      });

      it('an input over in UTF-8 bytes but not in characters (3-byte €) is refused', async () => {
        const id = uid('over-utf8');
        const input = '€'.repeat(Math.ceil(DEFAULT_MAX_PAYLOAD_BYTES / 3)); // ~350,000 characters, > 1 MiB of UTF-8
        expect(input.length).toBeLessThan(DEFAULT_MAX_PAYLOAD_BYTES / 2);
        const error = await rejection(client.start(Echo, input, { id }), PayloadTooLargeError);
        expect(error.bytes).toBe(Buffer.byteLength(JSON.stringify(input)));
        await nothingStored(id);
      });

      it('a step output one byte over fails the run with PayloadTooLargeError naming the step', async () => {
        const handle = await client.start(Grow, atLimit().slice(1)); // input 1 byte under; output exactly; plus "x" below
        expect(await handle.result({ timeout: 20_000 })).toHaveLength(DEFAULT_MAX_PAYLOAD_BYTES - 2); // exactly at the limit
        const over = await client.start(Grow, atLimit()); // output one byte over
        const error = await rejection(over.result({ timeout: 20_000 }), WorkflowFailedError);
        expect(error.cause).toMatchObject({ name: 'PayloadTooLargeError', step: 'grow' });
        expect(error.cause.message).toMatch(/output of step "grow".* is 1048577 bytes serialized/i);
        await stillServes();
      }, 40_000);

      it('a signal payload at the limit is delivered; one byte over is refused and nothing is queued', async () => {
        const id = uid('signal-size');
        await client.start(Waiter, 'big', { id });
        await eventually(async () => (await client.describe(id))?.status === 'waiting', 10_000);
        const error = await rejection(client.signal(id, 'big', `${atLimit()}b`), PayloadTooLargeError);
        expect(error.bytes).toBe(DEFAULT_MAX_PAYLOAD_BYTES + 1);
        expect(await store.listSignals(id)).toEqual([]);
        const payload = atLimit();
        await client.signal(id, 'big', payload);
        const output = (await client.getHandle(id).result({ timeout: 20_000 })) as string;
        expect(output === payload).toBe(true);
      }, 30_000);
    });

    describe('thrown values', () => {
      it('an error with a 10 MB message is stored truncated to 8,192 characters ending with the marker', async () => {
        const handle = await client.start(Throws, 'huge');
        const error = await rejection(handle.result({ timeout: 20_000 }), WorkflowFailedError);
        // The run's error.message (RunErrorInfo) and the step's error ("Name: message"), as the client reads them …
        expect(error.cause.name).toBe('Error');
        expect(error.cause.message).toHaveLength(ERROR_TEXT_LIMIT);
        expect(error.cause.message.endsWith(TRUNCATION_MARKER)).toBe(true);
        expect(error.cause.message.startsWith('mmmm')).toBe(true);
        const info = (await handle.describe())!;
        expect(info.steps[0].error).toHaveLength(ERROR_TEXT_LIMIT);
        expect(info.steps[0].error!.startsWith('Error: mmm')).toBe(true);
        expect(info.steps[0].error!.endsWith(TRUNCATION_MARKER)).toBe(true);
        // … and as the store holds them (the run row / hash and the step record).
        const stored = (await store.getRun(handle.runId))!;
        expect(stored.error!.message).toHaveLength(ERROR_TEXT_LIMIT);
        expect(stored.error!.message.endsWith(TRUNCATION_MARKER)).toBe(true);
        expect(stored.steps[0].error).toHaveLength(ERROR_TEXT_LIMIT);
        // History events cut error messages at 2,000 characters, ending with "…" (README, *History*).
        const { events } = await client.history(handle.runId, { limit: 1000 });
        const withError = events.filter((e) => e.error);
        expect(withError.length).toBeGreaterThan(0);
        for (const event of withError) {
          expect(event.error!.message).toHaveLength(2_001);
          expect(event.error!.message.endsWith('m…')).toBe(true);
        }
        await stillServes();
      }, 30_000);

      it.each([
        ['a string', 'string', { name: 'string', message: 'a plain string was thrown' }],
        ['undefined', 'undefined', { name: 'undefined', message: 'undefined' }],
        ['an object whose getters throw', 'getter-object', { name: 'object', message: '[object Object]' }],
      ])('a thrown %s fails the run with a described error', async (_what, kind, expected) => {
        const handle = await client.start(Throws, kind);
        const error = await rejection(handle.result({ timeout: 10_000 }), WorkflowFailedError);
        expect(error.cause).toMatchObject({ ...expected, step: 'boom' });
        const info = (await handle.describe())!;
        expect(info.status).toBe('failed');
        expect(info.steps[0]).toMatchObject({ status: 'failed', error: `${expected.name}: ${expected.message}` });
        expect(bodies.get(handle.runId)).toEqual([kind]); // one attempt (the default), not a crash loop
        await stillServes();
      });
    });

    describe('outputs that resist serialization', () => {
      it('a cyclic output round-trips with its cycles (superjson keeps references)', async () => {
        const handle = await client.start(Returns, 'cyclic');
        const output = (await handle.result({ timeout: 10_000 })) as Record<string, unknown>;
        expect(output.name).toBe('root');
        expect(output.self).toBe(output);
        expect((output.list as unknown[])[0]).toBe(output);
        expect(((output.list as unknown[])[1] as { back: unknown }).back).toBe(output);
        expect(bodies.get(handle.runId)).toEqual(['cyclic', 'after']);
      });

      it('a cyclic input is stored and round-trips', async () => {
        const input: Record<string, unknown> = { n: 1 };
        input.me = input;
        const output = (await client.execute(Echo, input, { timeout: 10_000 })) as Record<string, unknown>;
        expect(output.me).toBe(output);
      });

      it.each([
        ['a symbol value', 'symbol', /"tag" is a symbol/],
        ['a symbol-keyed property', 'symbol-key', /symbol-keyed property/],
        ['a getter that throws', 'getter', /the getter throws during serialization/],
      ])('%s in an output fails the run with SerializationError naming the step', async (_what, kind, message) => {
        const handle = await client.start(Returns, kind);
        const error = await rejection(handle.result({ timeout: 10_000 }), WorkflowFailedError);
        expect(error.cause).toMatchObject({ name: 'SerializationError', step: 'make' });
        expect(error.cause.message).toMatch(message);
        expect(bodies.get(handle.runId)).toEqual([kind]);
        await stillServes();
      });

      it.each([
        ['a symbol value', () => ({ tag: Symbol('x') })],
        ['a symbol-keyed property', () => ({ [Symbol('x')]: 1 })],
        [
          'a getter that throws',
          () => ({
            get boom(): unknown {
              throw new Error('getter in an input');
            },
          }),
        ],
      ])('%s in an input is refused before anything is stored', async (_what, make) => {
        const id = uid('unserializable');
        await rejection(client.start(Echo, make(), { id }), SerializationError);
        await nothingStored(id);
      });
    });

    describe('run ids and signal names', () => {
      it.each(HOSTILE_NAMES)('%s: as a run id and a signal name, stored verbatim and delivered', async (_what, name) => {
        const handle = await client.start(Waiter, name, { id: name });
        expect(handle.runId).toBe(name);
        await eventually(async () => (await client.describe(name))?.status === 'waiting', 10_000);
        // A near id (one character less) is another run: none exists.
        if (name.length > 1) expect(await client.describe(name.slice(0, -1))).toBeUndefined();
        await client.signal(name, name, { from: name });
        expect(await handle.result({ timeout: 10_000 })).toEqual({ from: name });
        const info = (await client.describe(name))!;
        expect(info).toMatchObject({ runId: name, status: 'completed', output: { from: name } });
        const page = await client.list({ workflow: 'hi-waiter', status: 'completed', limit: 1000 });
        expect(page.runs.filter((r) => r.runId === name)).toHaveLength(1);
        const { events } = await client.history(name, { limit: 1000 });
        expect(events.find((e) => e.type === 'signal.received')?.detail).toMatchObject({ signal: name });
        // The same id again is the same run (use-existing), not a second one.
        expect((await client.start(Waiter, name, { id: name })).runId).toBe(name);
        expect(bodies.get(name)).toEqual(['wait', 'got']);
        await stillServes();
      });

      it('a run id of 256 characters is refused with InvalidArgumentError, and nothing is stored', async () => {
        const before = (await client.list({ workflow: 'hi-echo', limit: 1000 })).runs.length;
        const error = await rejection(client.start(Echo, 1, { id: 'i'.repeat(256) }), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
        expect(error.message).toMatch(/at most 255 characters \(got a string of 256 characters\)/);
        expect(await store.getRun('i'.repeat(256))).toBeUndefined();
        expect(await store.getRun('i'.repeat(255))).toBeUndefined();
        expect((await client.list({ workflow: 'hi-echo', limit: 1000 })).runs.length).toBe(before);
        await rejection(client.signal('i'.repeat(256), 'go'), InvalidArgumentError);
      });

      it('a signal name of 256 characters is refused with InvalidArgumentError; the run still takes a valid one', async () => {
        const id = uid('long-name');
        await client.start(Waiter, 'n'.repeat(255), { id });
        await eventually(async () => (await client.describe(id))?.status === 'waiting', 10_000);
        const error = await rejection(client.signal(id, 'n'.repeat(256), 1), InvalidArgumentError);
        expect(error.message).toMatch(/got a string of 256 characters/);
        expect(await store.listSignals(id)).toEqual([]);
        await client.signal(id, 'n'.repeat(255), 'ok');
        expect(await client.getHandle(id).result({ timeout: 10_000 })).toBe('ok');
      });
    });

    describe('load on one run', () => {
      const { sent, consumed: take } = target.signals;

      it(`${sent.toLocaleString('en')} signals to one run: the first ${take} consumed in order, the rest queued in order, and past maxQueuedSignals refused with SignalQueueFullError`, async () => {
        const id = uid('many-signals');
        await client.start(Collector, { count: take }, { id });
        await eventually(async () => (await client.describe(id))?.status === 'waiting', 10_000);
        const t0 = Date.now();
        for (let i = 0; i < sent; i++) await client.signal(id, 'tick', i);
        const sendMs = Date.now() - t0;
        await eventually(() => (consumed.get(id)?.length ?? 0) >= take, 30_000);
        // The run consumed exactly `take`, in the order sent, and now waits for "stop".
        await eventually(async () => {
          const info = await client.describe(id);
          // NOTE: the step that returned the wait is the current one: "take" waits for "stop" ("wait" waits for "tick").
          return info?.status === 'waiting' && info.currentStep === 'take';
        }, 10_000);
        expect(consumed.get(id)).toEqual(Array.from({ length: take }, (_, i) => i));
        const queued = await store.listSignals(id);
        expect(queued).toHaveLength(sent - take);
        expect(queued.every((s) => s.name === 'tick')).toBe(true);
        const payloads = queued.map((s) => JSON.parse(s.payload) as number);
        expect(payloads[0]).toBe(take);
        expect(payloads.every((p, i) => p === take + i)).toBe(true);
        // The bound (maxQueuedSignals = sent): fill the queue to it; the next signal is refused and nothing is queued.
        for (let i = 0; i < take; i++) await client.signal(id, 'tick', sent + i);
        const full = await rejection(client.signal(id, 'tick', 'over'), SignalQueueFullError, 'CAIRN_SIGNAL_QUEUE_FULL');
        expect(full.message).toMatch(new RegExp(`already holds ${sent} queued signals`));
        expect(await store.listSignals(id)).toHaveLength(sent);
        // Ending the run (a cancel: its "stop" signal would not fit in the full queue) deletes what is still queued.
        await client.cancel(id);
        await rejection(client.getHandle(id).result({ timeout: 20_000 }), WorkflowCancelledError);
        expect(await store.listSignals(id)).toEqual([]);
        await rejection(client.signal(id, 'tick', 'late'), RunNotActiveError);
        await stillServes();
        // eslint-disable-next-line no-console
        if (process.env.HOSTILE_VERBOSE) console.log(`${storeName}: ${sent} signals sent in ${sendMs} ms`);
      }, 120_000);

      for (const policy of ['use-existing', 'fail', 'terminate-existing'] as const) {
        it(`${target.concurrentStarts.toLocaleString('en')} concurrent starts of one id with conflictPolicy '${policy}': exactly one run survives`, async () => {
          const id = uid(`flood-${policy}`);
          const n = target.concurrentStarts;
          const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => client.start(Starter, i, { id, conflictPolicy: policy })));
          const fulfilled = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ i, runId: r.value.runId }] : []));
          const rejected = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
          expect(fulfilled.every((f) => f.runId === id)).toBe(true);
          if (policy === 'fail') {
            expect(fulfilled).toHaveLength(1);
            expect(rejected).toHaveLength(n - 1);
            expect(rejected.filter((e) => !(e instanceof RunAlreadyExistsError)).map((e) => `${e.name}: ${e.message}`)).toEqual([]);
          } else {
            expect(rejected.map((e) => `${e.name}: ${e.message}`)).toEqual([]);
          }
          const output = await client.getHandle(id).result({ timeout: 30_000 });
          const info = (await client.describe(id))!;
          expect(info.status).toBe('completed');
          expect(info.output).toBe(output);
          expect(info.input).toBe(output);
          const page = await client.list({ workflow: 'hi-start', limit: 1000 });
          expect(page.runs.filter((r) => r.runId === id)).toHaveLength(1);
          const executions = (bodies.get(id) ?? []) as { input: number; key: string }[];
          if (policy === 'fail') expect(info.input).toBe(fulfilled[0].i);
          if (policy === 'terminate-existing') {
            // Every call replaced the run before it: the survivor is the n-th incarnation, with its own key.
            expect(info.generation).toBe(n);
            expect(executions.filter((e) => e.key === `${id}:begin~${n}`)).toEqual([{ input: output, key: `${id}:begin~${n}` }]);
          } else {
            expect(info.generation).toBe(1);
            expect(executions).toEqual([{ input: output, key: `${id}:begin` }]);
          }
          // No idempotency key ran twice.
          expect(new Set(executions.map((e) => e.key)).size).toBe(executions.length);
          await stillServes();
        }, 120_000);
      }

      it(`${target.controlCalls.toLocaleString('en')} interleaved cancel, pause and resume calls: the run ends cancelled, only RunNotActiveError is thrown`, async () => {
        const id = uid('storm-mixed');
        await client.start(Storm, null, { id });
        await eventually(() => (loops.get(id) ?? 0) >= 2, 10_000);
        const random = rng(19);
        const actions = Array.from({ length: target.controlCalls }, () => (['cancel', 'pause', 'resume'] as const)[Math.floor(random() * 3)]);
        const results = await Promise.allSettled(actions.map((a) => client[a](id)));
        const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
        expect(errors.filter((e) => !(e instanceof RunNotActiveError)).map((e) => `${e.name}: ${e.message}`)).toEqual([]);
        const cancelsAccepted = results.filter((r, i) => r.status === 'fulfilled' && actions[i] === 'cancel').length;
        expect(cancelsAccepted).toBeGreaterThan(0);
        // A cancel was accepted on a run that cannot complete by itself: it ends cancelled. A pause that came after the
        // cancel may hold it paused; a resume then lets the cancel finish.
        await eventually(async () => ['cancelled', 'paused'].includes((await client.describe(id))!.status), 15_000);
        if ((await client.describe(id))!.status === 'paused') await client.resume(id);
        await eventually(async () => (await client.describe(id))!.status === 'cancelled', 15_000);
        await rejection(client.pause(id), RunNotActiveError);
        await rejection(client.resume(id), RunNotActiveError);
        await rejection(client.signal(id, 'finish'), RunNotActiveError);
        const settled = loops.get(id);
        await sleep(200);
        expect(loops.get(id)).toBe(settled); // nothing runs any more
        await stillServes();
      }, 60_000);

      it.each(['pause', 'resume'] as const)(
        `${target.controlCalls.toLocaleString('en')} interleaved pause and resume calls, the last one %s: the run ends consistently with it`,
        async (last) => {
          const id = uid(`storm-${last}`);
          await client.start(Storm, null, { id });
          await eventually(() => (loops.get(id) ?? 0) >= 2, 10_000);
          const random = rng(last === 'pause' ? 7 : 11);
          const actions = Array.from({ length: target.controlCalls - 1 }, () => (random() < 0.5 ? 'pause' : 'resume') as 'pause' | 'resume');
          const results = await Promise.allSettled(actions.map((a) => client[a](id)));
          expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
          await client[last](id);
          if (last === 'pause') {
            await eventually(async () => (await client.describe(id))!.status === 'paused', 15_000);
            const at = loops.get(id);
            await sleep(300);
            expect((await client.describe(id))!.status).toBe('paused');
            expect(loops.get(id)).toBe(at);
            await client.resume(id);
          }
          const before = loops.get(id) ?? 0;
          await eventually(() => (loops.get(id) ?? 0) > before + 1, 15_000); // it runs again
          await client.signal(id, 'finish');
          expect(await client.getHandle(id).result({ timeout: 15_000 })).toBe('finished');
          await stillServes();
        },
        60_000,
      );
    });

    if (target.unreachable) {
      it('a store that refuses connections at startup: bootstrap fails with a StoreError naming the store', async () => {
        const { options, names } = await target.unreachable!();
        let module: { init(): Promise<unknown>; close(): Promise<void> } | undefined;
        const error = await rejection(async () => {
          module = await Test.createTestingModule({ imports: [DurableExecutionModule.forRoot(options)] })
            .setLogger(silentLogger)
            .compile();
          await module.init();
        }, StoreError, 'CAIRN_STORE');
        await module?.close().catch(() => undefined);
        for (const name of names) expect(error.message).toMatch(name);
        await stillServes(); // the app already running on the real store is unaffected
      }, 30_000);
    }
  });
}
