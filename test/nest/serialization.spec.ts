import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  PayloadTooLargeError,
  SerializationError,
  Step,
  Workflow,
  WorkflowFailedError,
  type StepContext,
} from '../../src/index.js';
import { rejection, useApps } from './helpers.js';

let received: unknown[] = [];
let calls: Record<string, number> = {};

class Money {
  constructor(readonly cents: number) {}
}

@Workflow()
class Echo {
  @Step() first(input: unknown, ctx: StepContext) {
    received.push(input, ctx.input);
    return input;
  }
  @Step() second(prev: unknown, ctx: StepContext) {
    received.push(prev, ctx.results.first);
    return prev;
  }
}

@Workflow()
class BadOutput {
  @Step({ retry: { maxAttempts: 3, delay: 5 } }) produce(kind: string) {
    calls[kind] = (calls[kind] ?? 0) + 1;
    switch (kind) {
      case 'function':
        return { fn: () => 1 };
      case 'symbol':
        return { sym: Symbol('s') };
      case 'class':
        return { price: new Money(100) };
      case 'big':
        return 'y'.repeat(2_000);
      default:
        return kind;
    }
  }
  @Step() next(prev: unknown) {
    calls.next = (calls.next ?? 0) + 1;
    return prev;
  }
}

function richValue() {
  return {
    when: new Date('2024-02-03T04:05:06.789Z'),
    big: 12345678901234567890n,
    map: new Map<string, unknown>([
      ['a', 1],
      ['b', { nested: new Date(0) }],
    ]),
    set: new Set([1, 'two', 3n]),
    nothing: undefined,
    nil: null,
    nested: { list: [1, undefined, { deep: [new Set(['x'])] }], empty: {} },
    text: 'unicode ✓ “quotes” \\ backslash',
    num: -0.5,
  };
}

function expectRich(value: unknown) {
  const v = value as ReturnType<typeof richValue>;
  expect(v.when).toBeInstanceOf(Date);
  expect(v.when.toISOString()).toBe('2024-02-03T04:05:06.789Z');
  expect(typeof v.big).toBe('bigint');
  expect(v.big).toBe(12345678901234567890n);
  expect(v.map).toBeInstanceOf(Map);
  expect(v.map.get('a')).toBe(1);
  expect((v.map.get('b') as { nested: Date }).nested).toBeInstanceOf(Date);
  expect(v.set).toBeInstanceOf(Set);
  expect([...v.set]).toEqual([1, 'two', 3n]);
  expect('nothing' in v).toBe(true);
  expect(v.nothing).toBeUndefined();
  expect(v.nil).toBeNull();
  expect(v.nested.list).toHaveLength(3);
  expect(1 in v.nested.list).toBe(true);
  expect(v.nested.list[1]).toBeUndefined();
  expect((v.nested.list[2] as { deep: Set<string>[] }).deep[0]).toBeInstanceOf(Set);
  expect(v.nested.empty).toEqual({});
  expect(v.text).toBe('unicode ✓ “quotes” \\ backslash');
  expect(v.num).toBe(-0.5);
}

describe('serialization', () => {
  const apps = useApps();
  beforeEach(() => {
    received = [];
    calls = {};
  });

  it('Date, BigInt, Map, Set, undefined and nested values round-trip through input, steps, output and describe', async () => {
    const { client } = await apps.boot([Echo]);
    const output = await client.execute(Echo, richValue(), { id: 'rich' });
    expectRich(output);
    expect(received).toHaveLength(4);
    for (const r of received) expectRich(r);
    const info = await client.describe('rich');
    expectRich(info?.input);
    expectRich(info?.output);
    expectRich(info?.steps[0].output);
    expectRich(info?.steps[1].output);
    const listed = (await client.list()).runs[0];
    expectRich(listed.input);
    expectRich(listed.output);
  });

  it('a Date, a BigInt and undefined round-trip as top-level values', async () => {
    const { client } = await apps.boot([Echo]);
    const d = await client.execute(Echo, new Date(5));
    expect(d).toBeInstanceOf(Date);
    expect((d as Date).getTime()).toBe(5);
    expect(await client.execute(Echo, 7n)).toBe(7n);
    expect(await client.execute(Echo, undefined, { id: 'undef' })).toBeUndefined();
    expect((await client.describe('undef'))?.status).toBe('completed');
    expect(await client.execute(Echo, null)).toBeNull();
  });

  it('circular and shared references round-trip', async () => {
    const { client } = await apps.boot([Echo]);
    const node: { name: string; self?: unknown; children: unknown[] } = { name: 'root', children: [] };
    node.self = node;
    const shared = { s: 1 };
    node.children.push(shared, shared);
    const output = (await client.execute(Echo, node, { id: 'circ' })) as typeof node;
    expect(output.name).toBe('root');
    expect(output.self).toBe(output);
    expect(output.children[0]).toEqual({ s: 1 });
    const info = await client.describe('circ');
    const input = info?.input as typeof node;
    expect(input.self).toBe(input);
  });

  it('an object with a key named like the internal envelope round-trips', async () => {
    const { client } = await apps.boot([Echo]);
    const tricky = { __superjson: { json: 'not really', meta: 1 } };
    expect(await client.execute(Echo, tricky)).toEqual(tricky);
    expect(await client.execute(Echo, { inner: tricky })).toEqual({ inner: tricky });
  });

  it('a step output holding a function fails the run with SerializationError naming the step, not retried', async () => {
    const { client } = await apps.boot([BadOutput]);
    const handle = await client.start(BadOutput, 'function', { id: 'ser-fn' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.step).toBe('produce');
    expect(error.cause.name).toBe(SerializationError.name);
    expect(error.cause.message).toContain('produce');
    expect(error.cause.message).toContain('fn');
    expect(calls.function).toBe(1);
    expect(calls.next).toBeUndefined();
    const info = await client.describe('ser-fn');
    expect(info?.status).toBe('failed');
    expect(info?.error).toMatchObject({ name: 'SerializationError', step: 'produce', phase: 'step' });
    expect(info?.steps).toEqual([expect.objectContaining({ name: 'produce', status: 'failed', attempts: 1 })]);
    expect(info?.steps[0].output).toBeUndefined();
    expect(info?.input).toBe('function');
  });

  it('a step output holding a symbol fails the run with SerializationError, not retried', async () => {
    const { client } = await apps.boot([BadOutput]);
    const handle = await client.start(BadOutput, 'symbol', { id: 'ser-sym' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.cause.name).toBe('SerializationError');
    expect(error.cause.message).toContain('produce');
    expect(calls.symbol).toBe(1);
    expect((await client.describe('ser-sym'))?.steps[0].attempts).toBe(1);
  });

  it('a step output holding a class instance fails the run with SerializationError naming the class, not retried', async () => {
    const { client } = await apps.boot([BadOutput]);
    const handle = await client.start(BadOutput, 'class', { id: 'ser-cls' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.cause.name).toBe('SerializationError');
    expect(error.cause.message).toContain('produce');
    expect(error.cause.message).toContain('Money');
    expect(calls.class).toBe(1);
  });

  it('an input holding a function makes start() throw SerializationError and stores nothing', async () => {
    const { client } = await apps.boot([Echo]);
    const error = await rejection(client.start(Echo, { cb: () => 1 }, { id: 'in-fn' }), SerializationError, 'CAIRN_SERIALIZATION');
    expect(error.message).toContain('cb');
    await rejection(client.start(Echo, { s: Symbol('x') }, { id: 'in-sym' }), SerializationError);
    await rejection(client.start(Echo, { m: new Money(1) }, { id: 'in-cls' }), SerializationError);
    await rejection(client.execute(Echo, () => 1, { id: 'in-fn2' }), SerializationError);
    for (const id of ['in-fn', 'in-sym', 'in-cls', 'in-fn2']) expect(await client.describe(id)).toBeUndefined();
    expect((await client.list()).runs).toEqual([]);
    expect(received).toEqual([]);
  });

  it('an input over maxPayloadBytes makes start() throw PayloadTooLargeError and stores nothing', async () => {
    const { client } = await apps.boot([Echo], { maxPayloadBytes: 1_000 });
    await rejection(client.start(Echo, 'x'.repeat(1_200), { id: 'big-in' }), PayloadTooLargeError, 'CAIRN_PAYLOAD_TOO_LARGE');
    await rejection(client.start(Echo, { list: new Array(300).fill('é') }, { id: 'big-in-2' }), PayloadTooLargeError);
    expect(await client.describe('big-in')).toBeUndefined();
    expect(await client.describe('big-in-2')).toBeUndefined();
    expect((await client.list()).runs).toEqual([]);
    expect(await client.execute(Echo, 'x'.repeat(900))).toBe('x'.repeat(900));
  });

  it('the payload limit counts bytes, not characters', async () => {
    const { client } = await apps.boot([Echo], { maxPayloadBytes: 1_000 });
    // 400 three-byte characters: 1,200+ bytes in 400 characters.
    await rejection(client.start(Echo, '✓'.repeat(400), { id: 'utf8' }), PayloadTooLargeError);
    expect(await client.describe('utf8')).toBeUndefined();
  });

  it('a step output over maxPayloadBytes fails the run with PayloadTooLargeError, not retried', async () => {
    const { client } = await apps.boot([BadOutput], { maxPayloadBytes: 1_000 });
    const handle = await client.start(BadOutput, 'big', { id: 'big-out' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.step).toBe('produce');
    expect(error.cause.name).toBe(PayloadTooLargeError.name);
    expect(calls.big).toBe(1);
    const info = await client.describe('big-out');
    expect(info?.status).toBe('failed');
    expect(info?.steps[0]).toMatchObject({ name: 'produce', status: 'failed', attempts: 1 });
    expect(info?.steps[0].output).toBeUndefined();
  });
});
