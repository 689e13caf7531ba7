/**
 * The Redis store's run history, heartbeats, `keepInput` and `publish`, as stored: the key layout, the seq counter,
 * what a commit without events leaves untouched, damaged history data, and the wire format of published messages. The
 * behaviour every store shares is in the conformance suite.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { InvalidArgumentError } from '../../src/errors/errors.js';
import { decodeRun, encodeStep } from '../../src/store/redis/redis.codec.js';
import { decodeEventMessage, encodeMessageEvent } from '../../src/store/redis/redis.events.js';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import { PUBLISH_MAX_BYTES, RUN_HISTORY_LIMIT, type StoreEvent, type StoredStep } from '../../src/store/workflow-store.interface.js';
import { testRedis } from '../setup/test-servers.js';
import { deletePrefix } from './redis-test-helpers.js';

const redis = testRedis();
const quiet = { log() {}, warn() {}, error() {} };
const LEASE = { owner: 'history', leaseMs: 30_000 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Redis codec: step heartbeats', () => {
  const snapshot = (step: string): [string[], string[]] => [
    ['id', 'r', 'wf', 'w', 'ver', '1', 'st', 'running', 'in', '1', 'state', '{}', 'pr', '0', 'ca', '1', 'ua', '1'],
    ['0', step],
  ];

  it('round-trips a heartbeat with and without details', () => {
    const at = new Date(1_700_000_000_123);
    for (const heartbeat of [{ at, details: '{"done":41} ünï 🚀' }, { at }, { at, details: '' }]) {
      const step: StoredStep = { name: 'a', status: 'running', attempts: 1, heartbeat };
      const run = decodeRun(snapshot(encodeStep(step)), 'r')!;
      expect(run.corrupt).toBeUndefined();
      expect(run.steps[0]).toEqual(step);
    }
    const plain = JSON.parse(encodeStep({ name: 'a', status: 'running', attempts: 0 })) as Record<string, unknown>;
    expect('heartbeat' in plain).toBe(false);
  });

  it('reports a damaged heartbeat through corrupt, and reads the rest of the step', () => {
    for (const heartbeat of ['"soon"', '{"at":"soon"}', '{"at":1,"details":7}', '[1]', 'null', '{}']) {
      const run = decodeRun(snapshot(`{"name":"a","status":"running","attempts":2,"heartbeat":${heartbeat}}`), 'r')!;
      expect(run.corrupt).toMatch(/step 0 of run "r": unreadable heartbeat/);
      expect(run.steps[0]).toEqual({ name: 'a', status: 'running', attempts: 2 });
    }
  });
});

describe('Redis events wire format', () => {
  it('decodes run events and messages, and ignores anything else', () => {
    expect(decodeEventMessage('{"type":"ready","runId":"x"}')).toEqual({ type: 'ready', runId: 'x' });
    expect(decodeEventMessage(encodeMessageEvent('{"a":"ü"}'))).toEqual({ type: 'message', body: '{"a":"ü"}' });
    expect(decodeEventMessage(encodeMessageEvent(''))).toEqual({ type: 'message', body: '' });
    for (const text of ['', 'null', '7', '{"type":"message"}', '{"type":"message","body":1}', '{"type":"ready"}', '{"type":"nope","runId":"x"}', '{"type":"message","runId":"x"}']) {
      expect(decodeEventMessage(text)).toBeUndefined();
    }
  });
});

redis.describe('RedisStore history (as stored)', () => {
  const prefix = `cairn-history-${randomUUID().slice(0, 8)}:`;
  let store: RedisStore;
  let admin: Redis;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    store = new RedisStore({ url: redis.url, keyPrefix: prefix, logger: quiet });
    await store.init();
    admin = new Redis(redis.url);
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });
  afterAll(async () => {
    await store.close();
    admin.disconnect();
    await deletePrefix(redis.url, prefix);
  });

  async function claimed(events?: string[]): Promise<{ runId: string; token: string }> {
    const runId = `h-{${randomUUID()}}`;
    const { run } = await store.createRun({ runId, workflow: 'wf', version: 1, input: '1', state: '{}', events }, { onConflict: 'keep', lease: LEASE });
    return { runId, token: run.leaseToken! };
  }

  it('keeps `<seq>:<body>` entries in the run\'s :e list, and the last seq in the run hash', async () => {
    const { runId, token } = await claimed(['a', 'b:c']);
    const keys = store.keys.run(runId);
    expect(await admin.lrange(keys.events, 0, -1)).toEqual(['1:a', '2:b:c']);
    expect(await admin.hget(keys.run, 'hs')).toBe('2');
    expect(await admin.type(keys.events)).toBe('list');
    expect((await store.commit(runId, token, { leaseMs: 30_000, events: [''] })).ok).toBe(true);
    expect(await admin.lrange(keys.events, 0, -1)).toEqual(['1:a', '2:b:c', '3:']);
    expect(await store.listEvents(runId, { limit: 10 })).toEqual([
      { seq: 1, body: 'a' },
      { seq: 2, body: 'b:c' },
      { seq: 3, body: '' },
    ]);
    // the getRun / claim decoders ignore the counter
    expect((await store.getRun(runId))!.corrupt).toBeUndefined();
  });

  it('does no history work for a run or commit without events', async () => {
    const { runId, token } = await claimed();
    const keys = store.keys.run(runId);
    expect(await store.commit(runId, token, { leaseMs: 30_000, state: '{"x":1}' })).toEqual({ ok: true });
    expect(await admin.exists(keys.events)).toBe(0);
    expect(await admin.hexists(keys.run, 'hs')).toBe(0);
    expect(await store.listEvents(runId, { limit: 10 })).toEqual([]);
  });

  it('trims to the limit in the same script, and pages from the oldest entry kept', async () => {
    const { runId, token } = await claimed(['first']);
    const many = Array.from({ length: RUN_HISTORY_LIMIT * 2 + 3 }, (_, i) => `${i}`);
    expect(await store.commit(runId, token, { leaseMs: 30_000, events: many })).toMatchObject({ ok: true, lastEventSeq: many.length + 1 });
    const keys = store.keys.run(runId);
    expect(await admin.llen(keys.events)).toBe(RUN_HISTORY_LIMIT);
    const oldest = many.length + 1 - RUN_HISTORY_LIMIT + 1;
    expect(await admin.lindex(keys.events, 0)).toBe(`${oldest}:${oldest - 2}`);
    expect((await store.listEvents(runId, { afterSeq: oldest + 10, limit: 2 })).map((e) => e.seq)).toEqual([oldest + 11, oldest + 12]);
    expect((await store.listEvents(runId, { afterSeq: 0, limit: 1 })).map((e) => e.seq)).toEqual([oldest]);
    expect(await store.listEvents(runId, { afterSeq: many.length + 1, limit: 5 })).toEqual([]);
    // odd arguments: a fraction, a negative afterSeq, a huge limit, no limit left
    expect((await store.listEvents(runId, { afterSeq: oldest + 0.5, limit: 1.9 })).map((e) => e.seq)).toEqual([oldest + 1]);
    expect((await store.listEvents(runId, { afterSeq: -5, limit: 1 })).map((e) => e.seq)).toEqual([oldest]);
    expect(await store.listEvents(runId, { limit: Number.MAX_SAFE_INTEGER })).toHaveLength(RUN_HISTORY_LIMIT);
    expect(await store.listEvents(runId, { limit: 0 })).toEqual([]);
    expect(await store.listEvents(runId, { afterSeq: Infinity, limit: 5 })).toEqual([]);
    await expect(store.listEvents(runId, { afterSeq: NaN, limit: 5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.listEvents(runId, { limit: NaN })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('goes on from the newest entry when the counter is damaged or lost, without failing the commit halfway', async () => {
    const { runId, token } = await claimed(['a', 'b']);
    const keys = store.keys.run(runId);
    await admin.hset(keys.run, 'hs', 'garbage');
    expect(await store.commit(runId, token, { leaseMs: 30_000, state: '{"n":1}', events: ['c'] })).toMatchObject({ ok: true, lastEventSeq: 3 });
    expect((await store.getRun(runId))!.state).toBe('{"n":1}');
    await admin.hdel(keys.run, 'hs');
    expect(await store.sendSignal(runId, 's', '1', 'd')).toMatchObject({ outcome: 'ok', eventSeq: 4 });
    expect(await admin.hget(keys.run, 'hs')).toBe('4');
    expect((await store.listEvents(runId, { limit: 10 })).map((e) => `${e.seq}:${e.body}`)).toEqual(['1:a', '2:b', '3:c', '4:d']);
  });

  it('replaces a history key of another type instead of failing the write halfway', async () => {
    const { runId, token } = await claimed(['a']);
    const keys = store.keys.run(runId);
    await admin.del(keys.events);
    await admin.set(keys.events, 'not a list');
    expect(await store.listEvents(runId, { limit: 10 })).toEqual([]);
    expect(await store.commit(runId, token, { leaseMs: 30_000, state: '{"n":2}', events: ['b'] })).toMatchObject({ ok: true, lastEventSeq: 2 });
    expect((await store.getRun(runId))!.state).toBe('{"n":2}');
    expect(await store.listEvents(runId, { limit: 10 })).toEqual([{ seq: 2, body: 'b' }]);
  });

  it('reads past a damaged entry and leaves it out; a history without its run reads as none', async () => {
    const { runId } = await claimed(['a', 'b', 'c']);
    const keys = store.keys.run(runId);
    await admin.lset(keys.events, 0, 'garbage');
    expect((await store.listEvents(runId, { afterSeq: 1, limit: 10 })).map((e) => e.seq)).toEqual([2, 3]);
    await admin.del(keys.run);
    expect(await admin.exists(keys.events)).toBe(1);
    expect(await store.listEvents(runId, { limit: 10 })).toEqual([]);
    // a new run of that id starts its history afresh (the leftover list is deleted)
    const again = await store.createRun({ runId, workflow: 'wf', version: 1, input: '1', state: '{}', events: ['new'] }, { onConflict: 'keep' });
    expect(again.lastEventSeq).toBe(1);
    expect(await admin.lrange(keys.events, 0, -1)).toEqual(['1:new']);
  });

  it('writes no event for a kept run, a fenced-out commit or a request that is not recorded', async () => {
    const { runId, token } = await claimed(['a']);
    const kept = await store.createRun({ runId, workflow: 'wf', version: 1, input: '1', state: '{}', events: ['x'] }, { onConflict: 'keep' });
    expect(kept.created).toBe(false);
    expect(kept.lastEventSeq).toBeUndefined();
    expect(await store.commit(runId, 'stale', { leaseMs: 30_000, events: ['x'] })).toEqual({ ok: false });
    expect(await store.control(runId, { action: 'resume' }, 'x')).toEqual({ outcome: 'noop', status: 'running' });
    expect(await store.control(runId, { action: 'retry' }, 'x')).toEqual({ outcome: 'invalid-state', status: 'running' });
    expect(await store.control(`missing-${randomUUID()}`, { action: 'cancel', compensate: true }, 'x')).toEqual({ outcome: 'not-found' });
    expect(await admin.lrange(store.keys.run(runId).events, 0, -1)).toEqual(['1:a']);
    expect(await admin.hget(store.keys.run(runId).run, 'hs')).toBe('1');
    await expect(store.commit(runId, token, { leaseMs: 30_000, events: [1 as never] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.sendSignal(runId, 's', '1', {} as never)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('keeps ni through a commit with keepInput, and only then', async () => {
    const { runId, token } = await claimed();
    await store.sendSignal(runId, 'go', '"p"');
    expect(await store.commit(runId, token, { leaseMs: 30_000, wait: { signals: ['go'] } })).toMatchObject({ consumedSignal: { name: 'go', payload: '"p"' } });
    const keys = store.keys.run(runId);
    await store.commit(runId, token, { leaseMs: 30_000, keepInput: true, state: '{"a":1}' });
    expect(await admin.hget(keys.run, 'ni')).toBe('"p"');
    await store.commit(runId, token, { leaseMs: 30_000, state: '{"a":2}' });
    expect(await admin.hexists(keys.run, 'ni')).toBe(0);
  });

  it('publishes messages on the events channel, and refuses bodies over the limit', async () => {
    const seen: StoreEvent[] = [];
    const other = new RedisStore({ url: redis.url, keyPrefix: prefix, logger: quiet });
    await other.init();
    cleanups.push(() => other.close());
    const unsubscribe = await other.subscribe((event) => seen.push(event));
    cleanups.push(unsubscribe);
    const raw = new Redis(redis.url);
    cleanups.push(async () => raw.disconnect());
    const wire: string[] = [];
    raw.on('message', (_channel: string, text: string) => wire.push(text));
    await raw.subscribe(store.keys.channel);

    const largest = 'é'.repeat(PUBLISH_MAX_BYTES / 2);
    await store.publish('{"hello":1}');
    await store.publish(largest);
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline && seen.length < 2) await sleep(10);
    expect(seen).toEqual([
      { type: 'message', body: '{"hello":1}' },
      { type: 'message', body: largest },
    ]);
    expect(JSON.parse(wire[0])).toEqual({ type: 'message', body: '{"hello":1}' });
    await expect(store.publish(`${largest}x`)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.publish(7 as never)).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
