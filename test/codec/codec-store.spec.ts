import { describe, expect, it } from '@jest/globals';
import { AesGcmCodec } from '../../src/codec/aes-gcm.codec.js';
import { CodecStore } from '../../src/codec/codec.store.js';
import type { PayloadCodec } from '../../src/codec/payload-codec.interface.js';
import { decodeEvent } from '../../src/engine/run-history.js';
import { ConfigurationError, InvalidArgumentError, StoreError } from '../../src/errors/errors.js';
import { MemoryStore } from '../../src/store/memory/memory.store.js';
import { PUBLISH_MAX_BYTES, type StoreEvent, type StoredRun, type WorkflowStore } from '../../src/store/workflow-store.interface.js';
import { aesCodec, asyncCodec, testKey } from './codec-test-helpers.js';

const LEASE = { owner: 'codec-a', leaseMs: 30_000 };
const OTHER = { owner: 'codec-b', leaseMs: 30_000 };
const MARKER = 'MARKER-7f3c';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (what: string) => JSON.stringify({ what, marker: MARKER });
/** A value as the codec wrote it (the engine's own JSON is marked with `~` when encoded). */
const isCodecValue = (value: unknown) => typeof value === 'string' && AesGcmCodec.keyIdOf(value.replace(/^~/, '')) !== undefined;

function wrapped(codec: PayloadCodec = aesCodec()) {
  const inner = new MemoryStore();
  return { inner, store: new CodecStore(inner, codec) };
}

/** Every string in `value` (deeply), with its path. */
function strings(value: unknown, path = '', out: [string, string][] = []): [string, string][] {
  if (typeof value === 'string') out.push([path, value]);
  else if (Array.isArray(value)) value.forEach((v, i) => strings(v, `${path}[${i}]`, out));
  else if (value && typeof value === 'object' && !(value instanceof Date)) for (const [k, v] of Object.entries(value)) strings(v, `${path}.${k}`, out);
  return out;
}

describe('CodecStore', () => {
  it('encodes child inputs, states and events, a restart input and signal ids pass through; outcomes come back decoded', async () => {
    const { inner, store } = wrapped();
    const parent = await store.createRun({ runId: 'p', workflow: 'w', version: 1, input: text('parent'), state: '{}' }, { onConflict: 'keep', lease: LEASE });
    const token = parent.run.leaseToken!;
    await store.commit('p', token, {
      children: {
        spawn: [
          { runId: 'p:0', workflow: 'c', version: 1, input: text('child 0'), state: text('child state'), events: [text('child event')] },
          { runId: 'p:1', workflow: 'c', version: 1, input: text('child 1'), state: '{}', held: true },
        ],
        endedAtLeast: 1,
        failFast: true,
      },
      leaseMs: 30_000,
    });
    for (const id of ['p:0', 'p:1']) {
      const raw = (await inner.getRun(id))!;
      expect(isCodecValue(raw.input)).toBe(true);
      expect(raw.parentRunId).toBe('p');
    }
    expect(isCodecValue((await inner.getRun('p:0'))!.state)).toBe(true);
    expect(isCodecValue((await inner.listEvents('p:0', { limit: 10 }))[0].body)).toBe(true);
    expect((await store.getRun('p:1'))!.input).toBe(text('child 1'));

    const child = (await store.claimRun('p:0', OTHER))!;
    await store.commit('p:0', child.leaseToken, { status: 'completed', output: text('child output'), leaseMs: 30_000 });
    expect(isCodecValue((await inner.getRunOutcomes(['p:0']))[0].output)).toBe(true);
    const outcomes = await store.getRunOutcomes(['p', 'p:0', 'p:1', 'missing']);
    expect(outcomes.find((o) => o.runId === 'p')).toMatchObject({ status: 'waiting', childrenEnded: 1 });
    expect(outcomes.find((o) => o.runId === 'p:0')).toMatchObject({ status: 'completed', output: text('child output'), held: false });
    expect(outcomes.find((o) => o.runId === 'p:1')).toMatchObject({ status: 'pending', held: true });
    expect(outcomes).toHaveLength(3);

    const again = (await store.claimRun('p', LEASE))!;
    await store.commit('p', again.leaseToken, { restart: { input: text('next generation') }, status: 'pending', release: true, due: { delayMs: 0 }, leaseMs: 30_000 });
    const raw = (await inner.getRun('p'))!;
    expect(isCodecValue(raw.input)).toBe(true);
    expect(raw.generation).toBe(2);
    expect((await store.getRun('p'))!.input).toBe(text('next generation'));

    expect((await store.sendSignal('p', 'go', text('signal'), undefined, { id: 'e1' })).outcome).toBe('ok');
    expect((await store.sendSignal('p', 'go', text('signal'), undefined, { id: 'e1' })).outcome).toBe('noop');
    expect(await store.listSignals('p')).toEqual([{ name: 'go', payload: text('signal') }]);
  });

  it('stores every opaque value encoded and hands it back decoded; ids, names, statuses and times stay plain', async () => {
    const { inner, store } = wrapped();
    const at = new Date();
    const created = await store.createRun(
      {
        runId: 'r1',
        workflow: 'order',
        version: 1,
        input: text('input'),
        state: text('state'),
        steps: [{ name: 'charge', status: 'running', attempts: 1, error: `Error: ${MARKER}`, heartbeat: { at, details: text('beat') }, startedAt: at }],
        currentStep: 'charge',
        events: [text('event 1'), text('event 2')],
      },
      { onConflict: 'keep', lease: LEASE },
    );
    expect(created.run.input).toBe(text('input'));
    expect(created.run.steps[0].heartbeat).toEqual({ at, details: text('beat') });
    const token = created.run.leaseToken!;
    const res = await store.commit('r1', token, {
      state: text('state 2'),
      steps: [
        { index: 0, step: { name: 'charge', status: 'completed', attempts: 1, output: text('output'), heartbeat: { at, details: text('beat') } } },
        { index: 1, step: { name: 'ship', status: 'failed', attempts: 2, error: `Boom: ${MARKER}` } },
      ],
      output: text('run output'),
      error: { name: 'Boom', message: `it broke: ${MARKER}`, step: 'ship', phase: 'step' },
      status: 'failed',
      events: [text('event 3')],
      leaseMs: 30_000,
    });
    expect(res).toMatchObject({ ok: true, lastEventSeq: 3 });
    expect((await store.control('r1', { action: 'retry', nextInput: text('skip') }, text('event 4'))).outcome).toBe('ok');
    expect((await store.sendSignal('r1', 'approve', text('signal'), text('event 5'))).outcome).toBe('ok');

    // raw: every value the port treats as user data is a codec value, and nothing holds the marker
    const raw = (await inner.getRun('r1'))!;
    const rawEvents = await inner.listEvents('r1', { limit: 100 });
    const rawSignals = await inner.listSignals('r1');
    for (const [path, value] of strings({ raw, rawEvents, rawSignals })) expect([path, value.includes(MARKER)]).toEqual([path, false]);
    for (const value of [raw.input, raw.state, raw.nextInput, raw.steps[0].output, raw.steps[0].heartbeat?.details, raw.steps[1].error, ...rawEvents.map((e) => e.body), ...rawSignals.map((s) => s.payload)]) {
      expect(isCodecValue(value)).toBe(true);
    }
    expect(raw).toMatchObject({ runId: 'r1', workflow: 'order', version: 1, status: 'pending', currentStep: 'charge' });
    expect(raw.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([['charge', 'completed', 1], ['ship', 'failed', 2]]);
    expect(rawSignals.map((s) => s.name)).toEqual(['approve']);

    // decoded through the wrapper
    const run = (await store.getRun('r1'))!;
    expect(run.corrupt).toBeUndefined();
    expect(run).toMatchObject({ input: text('input'), state: text('state 2'), nextInput: text('skip') });
    expect(run.steps).toEqual([
      { name: 'charge', status: 'completed', attempts: 1, output: text('output'), heartbeat: { at, details: text('beat') } },
      { name: 'ship', status: 'failed', attempts: 2, error: `Boom: ${MARKER}` },
    ]);
    expect((await store.listEvents('r1', { limit: 100 })).map((e) => [e.seq, e.body])).toEqual(
      ['event 1', 'event 2', 'event 3', 'event 4', 'event 5'].map((w, i) => [i + 1, text(w)]),
    );
    expect(await store.listSignals('r1')).toEqual([{ name: 'approve', payload: text('signal') }]);
    expect((await store.listRuns({ workflow: 'order', limit: 10 }))[0]).toEqual(run);

    // a commit that consumes the signal hands back its payload decoded
    const claimed = (await store.claimRun('r1', LEASE))!;
    expect(claimed).toMatchObject({ input: text('input'), nextInput: text('skip') });
    const consumed = await store.commit('r1', claimed.leaseToken, { wait: { signals: ['approve'] }, leaseMs: 30_000 });
    expect(consumed).toMatchObject({ ok: true, consumedSignal: { payload: text('signal') } });
    expect(isCodecValue((await inner.getRun('r1'))!.nextInput)).toBe(true);

    // and takeSignal
    await store.sendSignal('r1', 'again', text('signal 2'));
    await store.commit('r1', claimed.leaseToken, { wait: { signals: ['other'] }, leaseMs: 30_000 });
    await store.sendSignal('r1', 'other', text('signal 3'));
    const again = (await store.claimRun('r1', OTHER))!;
    expect(await store.takeSignal('r1', again.leaseToken, ['other'])).toMatchObject({ ok: true, payload: text('signal 3'), timedOut: false });
    // the error and output as written
    const failed = await store.createRun({ runId: 'r2', workflow: 'order', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE });
    await store.commit('r2', failed.run.leaseToken!, { status: 'failed', output: text('out'), error: { name: 'Boom', message: `m ${MARKER}`, step: 's', phase: 'compensation' }, leaseMs: 1 });
    expect((await inner.getRun('r2'))!.error).toMatchObject({ name: 'Boom', step: 's', phase: 'compensation' });
    expect(isCodecValue((await inner.getRun('r2'))!.error!.message)).toBe(true);
    expect((await store.getRun('r2'))!).toMatchObject({ output: text('out'), error: { name: 'Boom', message: `m ${MARKER}`, step: 's', phase: 'compensation' } });
  });

  it('passes through what carries no user data, and defines optional methods only when the inner store has them', async () => {
    const { inner, store } = wrapped();
    expect(store.name).toBe('memory');
    expect(store.inner).toBe(inner);
    expect(typeof store.subscribe).toBe('function');
    expect(typeof store.publish).toBe('function');
    expect(typeof store.claimOwnedRuns).toBe('function');
    const bare: WorkflowStore = Object.create(inner) as WorkflowStore;
    for (const method of ['subscribe', 'publish', 'claimOwnedRuns'] as const) Object.defineProperty(bare, method, { value: undefined });
    const plain = new CodecStore(bare, aesCodec());
    expect(plain.subscribe).toBeUndefined();
    expect(plain.publish).toBeUndefined();
    expect(plain.claimOwnedRuns).toBeUndefined();

    const a = await store.createRun({ runId: 'a', workflow: 'w', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE });
    expect((await store.renewLease('a', a.run.leaseToken!, 50_000)).ok).toBe(true);
    expect(await store.countRuns({ workflow: 'w' })).toMatchObject({ running: 1 });
    const owned = await store.claimOwnedRuns!(LEASE, 10);
    expect(owned.map((r) => [r.runId, r.input])).toEqual([['a', '1']]);
    await store.commit('a', owned[0].leaseToken, { status: 'completed', leaseMs: 1 });
    await sleep(5);
    expect(await store.purge(['completed'], 0)).toBe(1);
    expect(await store.getRun('a')).toBeUndefined();
  });

  it('reads a value it cannot decode as a placeholder, names the run, the field and the key in corrupt, and rewrites nothing', async () => {
    const k1 = testKey();
    const old = new AesGcmCodec({ keys: { k1 }, currentKeyId: 'k1' });
    const { inner, store: writer } = wrapped(old);
    const at = new Date();
    await writer.createRun(
      { runId: 'old', workflow: 'w', version: 1, input: '"in"', state: '{"secret":1}', steps: [{ name: 's', status: 'failed', attempts: 1, error: 'E: m', heartbeat: { at, details: '7' } }] },
      { onConflict: 'keep' },
    );
    const r = await writer.createRun({ runId: 'done', workflow: 'w', version: 1, input: '"in"', state: '{}' }, { onConflict: 'keep', lease: LEASE });
    await writer.commit('done', r.run.leaseToken!, { status: 'failed', output: '"o"', error: { name: 'E', message: 'secret' }, leaseMs: 1 });
    const rawBefore = JSON.stringify(await inner.listRuns({ workflow: 'w', limit: 10 }));

    const k2 = testKey();
    const reader = new CodecStore(inner, new AesGcmCodec({ keys: { k2 }, currentKeyId: 'k2' }));
    await reader.createRun({ runId: 'new', workflow: 'w', version: 1, input: '"fresh"', state: '{}' }, { onConflict: 'keep' });
    const listed = await reader.listRuns({ workflow: 'w', limit: 10 });
    expect(listed.map((x) => x.runId).sort()).toEqual(['done', 'new', 'old']);
    const fresh = listed.find((x) => x.runId === 'new')!;
    expect(fresh.corrupt).toBeUndefined();
    expect(fresh.input).toBe('"fresh"');

    const bad = (await reader.getRun('old'))!;
    const why = `key "k1" is not among the codec's keys ("k2")`;
    expect(bad.corrupt).toBe(
      [
        `input of run "old": ${why}`,
        `state of run "old": ${why}`,
        `the error of step 0 ("s") of run "old": ${why}`,
        `the heartbeat details of step 0 ("s") of run "old": ${why}`,
      ].join('; '),
    );
    expect(bad).toMatchObject({ input: '', state: '', status: 'pending' });
    expect(bad.steps[0]).toEqual({ name: 's', status: 'failed', attempts: 1, error: `(cannot be decoded: ${why})`, heartbeat: { at, details: '' } });
    const ended = (await reader.getRun('done'))!;
    expect(ended.corrupt).toContain(`output of run "done": ${why}`);
    expect(ended.corrupt).toContain(`the error message of run "done": ${why}`);
    expect(ended.output).toBe('');
    expect(ended.error).toEqual({ name: 'E', message: `(cannot be decoded: ${why})` });

    // claimed like any other run, with corrupt set, and failing it keeps the stored values
    const claimed = await reader.claimRuns(LEASE, 10);
    const poison = claimed.find((x) => x.runId === 'old')!;
    expect(poison.corrupt).toContain('key "k1"');
    expect(claimed.find((x) => x.runId === 'new')!.corrupt).toBeUndefined();
    await reader.commit('old', poison.leaseToken, { status: 'failed', error: { name: 'CorruptRunError', message: poison.corrupt! }, leaseMs: 1 });
    const rawOld = (await inner.getRun('old'))!;
    expect(JSON.parse(rawBefore).find((x: StoredRun) => x.runId === 'old').input).toBe(rawOld.input);
    expect(AesGcmCodec.keyIdOf(rawOld.input)).toBe('k1');
    expect(AesGcmCodec.keyIdOf(rawOld.error!.message)).toBe('k2');
    // with the key back, everything reads again
    const both = new CodecStore(inner, new AesGcmCodec({ keys: { k1, k2 }, currentKeyId: 'k2' }));
    const healed = (await both.getRun('old'))!;
    expect(healed.input).toBe('"in"');
    expect(healed.steps[0].heartbeat?.details).toBe('7');
    expect(healed.corrupt).toBeUndefined();
  });

  it('keeps what the inner store reported damaged before its own findings', async () => {
    const inner = new MemoryStore();
    const store = new CodecStore(inner, aesCodec());
    await store.createRun({ runId: 'x', workflow: 'w', version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
    const damagedInner = Object.create(inner) as WorkflowStore;
    damagedInner.getRun = async (id) => ({ ...(await inner.getRun(id))!, corrupt: 'step 0 of run "x": Unexpected token', input: '' });
    const run = (await new CodecStore(damagedInner, aesCodec()).getRun('x'))!;
    expect(run.corrupt!.startsWith('step 0 of run "x": Unexpected token; input of run "x": not a value of this codec')).toBe(true);
  });

  it('releases the lease and throws when a signal payload handed to the lease holder cannot be decoded; the next claim reports it', async () => {
    const { inner, store } = wrapped();
    const foreign = new AesGcmCodec({ keys: { gone: testKey() }, currentKeyId: 'gone' });
    const r = await store.createRun({ runId: 's1', workflow: 'w', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE });
    await inner.sendSignal('s1', 'go', foreign.encode('"payload"'));
    const error = await store.commit('s1', r.run.leaseToken!, { wait: { signals: ['go'] }, leaseMs: 30_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreError);
    expect((error as Error).message).toMatch(/Run "s1": the payload of the signal handed to it cannot be decoded \(key "gone" is not among the codec's keys \("k1"\)\)/);
    const next = (await store.claimRun('s1', OTHER))!;
    expect(next).toBeDefined();
    expect(next.corrupt).toBe(`nextInput of run "s1": key "gone" is not among the codec's keys ("k1")`);
    expect(AesGcmCodec.keyIdOf((await inner.getRun('s1'))!.nextInput!)).toBe('gone');

    // takeSignal likewise
    const t = await store.createRun({ runId: 's2', workflow: 'w', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE });
    await store.commit('s2', t.run.leaseToken!, { wait: { signals: ['go'] }, leaseMs: 30_000 });
    await inner.sendSignal('s2', 'go', 'plain "text"');
    const waiting = (await store.claimRun('s2', LEASE))!;
    await expect(store.takeSignal('s2', waiting.leaseToken, ['go'])).rejects.toThrow(/not a value of this codec/);
    expect((await store.claimRun('s2', OTHER))!.corrupt).toMatch(/^nextInput of run "s2": not a value of this codec/);
  });

  it('reads an undecodable history event as a CorruptRunError event, and an undecodable queued payload as empty', async () => {
    const { inner, store } = wrapped();
    await store.createRun({ runId: 'h', workflow: 'w', version: 1, input: '1', state: '{}', events: ['{"t":"run.started","at":1}'] }, { onConflict: 'keep' });
    const foreign = new AesGcmCodec({ keys: { gone: testKey() }, currentKeyId: 'gone' });
    await inner.sendSignal('h', 'go', foreign.encode('"x"'), `~${foreign.encode('{"t":"signal.received","at":2,"e":{"n":"E","m":"m"}}')}`);
    await store.sendSignal('h', 'go', '"y"');
    const events = await store.listEvents('h', { limit: 10 });
    expect(events[0]).toEqual({ seq: 1, body: '{"t":"run.started","at":1}' });
    const broken = decodeEvent(events[1]);
    expect(broken).toMatchObject({ seq: 2, type: 'operator.action', error: { name: 'CorruptRunError' } });
    expect(broken.error!.message).toBe(`History event 2 of run "h" cannot be decoded: key "gone" is not among the codec's keys ("k1")`);
    expect(await store.listSignals('h')).toEqual([
      { name: 'go', payload: '' },
      { name: 'go', payload: '"y"' },
    ]);
  });

  it('fails a write whose encoding fails, writing nothing, and checks what a codec returns', async () => {
    const inner = new MemoryStore();
    const aes = aesCodec();
    const picky: PayloadCodec = {
      encode: (data) => {
        if (data.includes('refuse')) throw new Error('KMS unavailable');
        return aes.encode(data);
      },
      decode: (data) => aes.decode(data),
    };
    const store = new CodecStore(inner, picky);
    const r = await store.createRun({ runId: 'e', workflow: 'w', version: 1, input: '1', state: '{"a":1}' }, { onConflict: 'keep', lease: LEASE });
    await expect(store.commit('e', r.run.leaseToken!, { state: '"refuse"', output: '2', status: 'completed', leaseMs: 1 })).rejects.toThrow('KMS unavailable');
    expect((await store.getRun('e'))!).toMatchObject({ status: 'running', state: '{"a":1}' });
    await expect(store.createRun({ runId: 'f', workflow: 'w', version: 1, input: '"refuse"', state: '{}' }, { onConflict: 'keep' })).rejects.toThrow('KMS unavailable');
    expect(await inner.getRun('f')).toBeUndefined();

    const numeric = new CodecStore(inner, { encode: () => 42 as unknown as string, decode: (d) => d });
    await expect(numeric.createRun({ runId: 'g', workflow: 'w', version: 1, input: '1', state: '{}' }, { onConflict: 'keep' })).rejects.toBeInstanceOf(ConfigurationError);
    const asyncNumeric = new CodecStore(inner, { encode: async () => null as unknown as string, decode: async () => 7 as unknown as string });
    await expect(asyncNumeric.createRun({ runId: 'g', workflow: 'w', version: 1, input: '1', state: '{}' }, { onConflict: 'keep' })).rejects.toThrow(/must return a string or a promise of one \(got null\)/);
    expect((await asyncNumeric.getRun('e'))!.corrupt).toMatch(/input of run "e": The payload codec's decode\(\) must return a string or a promise of one \(got number\)/);
    for (const bad of [undefined, {}, { encode: () => '' }, 'codec']) {
      expect(() => new CodecStore(inner, bad as never)).toThrow(ConfigurationError);
    }
  });

  it('works the same with an asynchronous codec', async () => {
    const { inner, store } = wrapped(asyncCodec(aesCodec()));
    const runs = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.createRun({ runId: `a${i}`, workflow: 'w', version: 1, input: text(`in ${i}`), state: text(`st ${i}`), events: [text(`e${i}a`), text(`e${i}b`)] }, { onConflict: 'keep', lease: LEASE }),
      ),
    );
    await Promise.all(
      runs.map((r, i) =>
        store.commit(r.run.runId, r.run.leaseToken!, {
          steps: [0, 1, 2].map((index) => ({ index, step: { name: `s${index}`, status: 'completed' as const, attempts: 1, output: text(`out ${i}.${index}`) } })),
          events: [text(`e${i}c`)],
          leaseMs: 30_000,
        }),
      ),
    );
    const listed = await store.listRuns({ workflow: 'w', limit: 50 });
    for (const run of listed) {
      const i = Number(run.runId.slice(1));
      expect(run.input).toBe(text(`in ${i}`));
      expect(run.steps.map((s) => s.output)).toEqual([0, 1, 2].map((index) => text(`out ${i}.${index}`)));
      expect((await store.listEvents(run.runId, { limit: 10 })).map((e) => e.body)).toEqual([text(`e${i}a`), text(`e${i}b`), text(`e${i}c`)]);
    }
    const raw = await inner.listRuns({ workflow: 'w', limit: 50 });
    for (const [path, value] of strings(raw)) expect([path, value.includes(MARKER)]).toEqual([path, false]);
  });

  describe('broadcasts', () => {
    async function listen(store: WorkflowStore): Promise<{ seen: StoreEvent[]; stop: () => Promise<void> }> {
      const seen: StoreEvent[] = [];
      const stop = await store.subscribe!((event) => seen.push(event));
      return { seen, stop };
    }
    const messages = (seen: StoreEvent[]) => seen.filter((e) => e.type === 'message').map((e) => (e as { body: string }).body);

    it('encodes published messages, splitting one whose encoded text would be over the limit, and reassembles them', async () => {
      const inner = new MemoryStore();
      const wire: string[] = [];
      const publish = inner.publish.bind(inner);
      inner.publish = async (body) => {
        wire.push(body);
        return publish(body);
      };
      const store = new CodecStore(inner, aesCodec());
      const { seen, stop } = await listen(store);
      const raw = await listen(inner);
      const small = text('small');
      const big = JSON.stringify({ marker: MARKER, pad: `ünï 🚀 ${'x'.repeat(PUBLISH_MAX_BYTES - 60)}` });
      expect(Buffer.byteLength(big)).toBeLessThanOrEqual(PUBLISH_MAX_BYTES);
      await store.publish!(small);
      await store.publish!(big);
      await sleep(20);
      expect(messages(seen)).toEqual([small, big]);
      expect(wire.length).toBeGreaterThanOrEqual(3);
      for (const body of wire) {
        expect(body.includes(MARKER)).toBe(false);
        expect(Buffer.byteLength(body)).toBeLessThanOrEqual(PUBLISH_MAX_BYTES);
      }
      expect(messages(raw.seen)).toEqual(wire);
      await expect(store.publish!('x'.repeat(PUBLISH_MAX_BYTES + 1))).rejects.toBeInstanceOf(InvalidArgumentError);

      // fragments in any order, duplicated, mixed with messages it cannot read (dropped), still give one message
      seen.length = 0;
      const fragments = wire.slice(1);
      await inner.publish('plain text from an instance without a codec');
      await inner.publish('m:cairn:gcm:v1:k9:AAAA');
      for (const body of [...fragments].reverse()) await inner.publish(body);
      await inner.publish(fragments[0]);
      await sleep(20);
      expect(messages(seen)).toEqual([big]);
      await stop();
      await raw.stop();
    });

    it('keeps the order of messages with an asynchronous codec, and passes other events through', async () => {
      const { store } = wrapped(asyncCodec(aesCodec()));
      const { seen, stop } = await listen(store);
      const sent = Array.from({ length: 12 }, (_, i) => text(`m${i}`));
      for (const body of sent) await store.publish!(body);
      await store.createRun({ runId: 'ev', workflow: 'w', version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
      await sleep(30);
      expect(messages(seen)).toEqual(sent);
      expect(seen).toContainEqual({ type: 'ready', runId: 'ev' });
      await stop();
    });
  });
});
