import { describe, expect, it } from '@jest/globals';
import { AesGcmCodec } from '../../src/codec/aes-gcm.codec.js';
import { CodecStore } from '../../src/codec/codec.store.js';
import { readableEvent, readableState } from '../../src/codec/engine-json.js';
import { encodeState, initialState, type EngineState } from '../../src/engine/engine-state.js';
import { encodeEvent, eventError, type NewRunEvent } from '../../src/engine/run-history.js';
import { MemoryStore } from '../../src/store/memory/memory.store.js';
import { testKey } from './codec-test-helpers.js';

const at = new Date();
const event = (over: Partial<NewRunEvent>) => encodeEvent({ type: 'step.completed', at, step: 'charge', attempt: 1, durationMs: 12, instanceId: 'host:1:abc', ...over });
const state = (over: Partial<EngineState>) => encodeState({ ...initialState('charge'), ...over });

describe('the engine JSON the codec may leave readable', () => {
  it('leaves the hot-path events and states readable: names, counters, times, signal names, W3C trace context', () => {
    for (const body of [
      event({}),
      event({ type: 'step.started', durationMs: undefined }),
      event({ type: 'run.started', step: undefined, detail: { version: 2 } }),
      event({ type: 'run.started', detail: { version: 1, forkedFrom: 'r-1', fromStep: 'ship' } }),
      event({ type: 'step.retrying', detail: { delayMs: 100 } }),
      event({ type: 'run.waiting', detail: { signal: 'approve', timeoutMs: 5000 } }),
      event({ type: 'run.sleeping', detail: { until: at.toISOString() } }),
      event({ type: 'run.recovered', detail: { previousOwner: 'host:2:def', orphanedMs: 12 } }),
      event({ type: 'operator.action', detail: { action: 'cancel', compensate: true } }),
    ]) {
      expect([body, readableEvent(body)]).toEqual([body, true]);
    }
    for (const text of [
      state({}),
      state({ cursor: null, entry: 3, tr: 3, rec: 1, base: 2 }),
      state({ wait: { entry: 1, signal: 'approve' }, failed: 'step' }),
      state({ trace: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=1' } }),
    ]) {
      expect([text, readableState(text)]).toEqual([text, true]);
    }
  });

  it('encodes whatever may hold user data, and anything it does not know', () => {
    for (const body of [
      event({ type: 'step.failed', error: eventError(new Error('card 4111 declined')) }),
      event({ type: 'operator.action', detail: { action: 'skip', by: 'alice@example.com' } }),
      event({ detail: { output: { card: '4111' } } }),
      event({ detail: { version: 1, nested: { a: 1 } } }),
      event({ detail: { signal: { not: 'a name' } } as never }),
      '{"t":"step.completed","at":1,"future":"field"}',
      '["t"]',
      'not json',
      '',
    ]) {
      expect([body, readableEvent(body)]).toEqual([body, false]);
    }
    for (const text of [
      state({ comp: { queue: [0], reason: 'failure', error: { name: 'E', message: 'card 4111 declined' }, attempts: 0, base: 0 } }),
      state({ trace: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', baggage: 'user=alice' } }),
      state({ wait: { entry: 1, signal: 'approve', extra: 1 } as never }),
      '{"v":1,"cursor":"a","future":"field"}',
      '{"s":1}',
      '"stale"',
      'null',
    ]) {
      expect([text, readableState(text)]).toEqual([text, false]);
    }
  });

  it('stores readable engine JSON as is and the rest marked and encoded, reading both back', async () => {
    const inner = new MemoryStore();
    const store = new CodecStore(inner, new AesGcmCodec({ keys: { k1: testKey() }, currentKeyId: 'k1' }));
    const plainState = state({});
    const secretState = state({ comp: { queue: [0], reason: 'failure', error: { name: 'E', message: 'secret' }, attempts: 0, base: 0 } });
    const plainEvent = event({});
    const secretEvent = event({ type: 'step.failed', error: { name: 'E', message: 'secret' } });
    const r = await store.createRun({ runId: 'e', workflow: 'w', version: 1, input: '1', state: plainState, events: [plainEvent, secretEvent] }, { onConflict: 'keep', lease: { owner: 'a', leaseMs: 30_000 } });
    expect((await inner.getRun('e'))!.state).toBe(plainState);
    const raw = await inner.listEvents('e', { limit: 10 });
    expect(raw[0].body).toBe(plainEvent);
    expect(raw[1].body.startsWith('~cairn:gcm:v1:k1:')).toBe(true);
    expect(raw[1].body).not.toContain('secret');
    await store.commit('e', r.run.leaseToken!, { state: secretState, leaseMs: 30_000 });
    const stored = (await inner.getRun('e'))!.state;
    expect(stored.startsWith('~cairn:gcm:v1:k1:')).toBe(true);
    expect(stored).not.toContain('secret');
    expect((await store.getRun('e'))!.state).toBe(secretState);
    expect((await store.listEvents('e', { limit: 10 })).map((e) => e.body)).toEqual([plainEvent, secretEvent]);
  });
});
