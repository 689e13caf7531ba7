import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { ConcurrencySpec, LeaseRequest, NewRun, RunPatch, StoredRun, WorkflowRef, WorkflowStore } from '../../src/store/workflow-store.interface.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const LEASE: LeaseRequest = { owner: 'flow-a', leaseMs: 30_000 };
const OTHER: LeaseRequest = { owner: 'flow-b', leaseMs: 30_000 };

/**
 * Flow control rules of the port (rules F1–F4 of `claimRuns`, rule D of `createRun`, priorities and delays), run
 * unchanged against every store from `describeStoreConformance`.
 */
export function describeFlowControlConformance(getStore: () => WorkflowStore): void {
  describe('flow control', () => {
    let seq = 0;
    const fresh = () => {
      const workflow = `fc_${randomUUID().slice(0, 8)}`;
      return { workflow, refs: [{ workflow, version: 1 }] as WorkflowRef[] };
    };
    const newRun = (workflow: string, over: Partial<NewRun> = {}): NewRun => ({
      runId: `${workflow}-${++seq}`,
      workflow,
      version: 1,
      input: JSON.stringify({ n: seq }),
      state: '{}',
      ...over,
    });
    const patch = (over: Partial<RunPatch> = {}): RunPatch => ({ leaseMs: 30_000, ...over });
    const store = () => getStore();
    const limitOf = (key: string, limit: number, scope: ConcurrencySpec['scope'] = 'run'): Partial<NewRun> => ({ concurrency: { key, limit, scope } });
    async function create(workflow: string, over: Partial<NewRun> = {}): Promise<StoredRun> {
      const res = await store().createRun(newRun(workflow, over), { onConflict: 'keep' });
      expect(res.created).toBe(true);
      return res.run;
    }
    const ids = (runs: { runId: string }[]) => runs.map((r) => r.runId).sort();

    describe('priorities and delays', () => {
      it('claims higher priorities first, then earlier due times', async () => {
        const { workflow, refs } = fresh();
        const t = Date.now();
        const low = await create(workflow, { priority: -1, due: { at: new Date(t - 5000) } });
        const plain = await create(workflow, { due: { at: new Date(t - 4000) } });
        const highLate = await create(workflow, { priority: 5, due: { at: new Date(t - 1000) } });
        const highEarly = await create(workflow, { priority: 5, due: { at: new Date(t - 2000) } });
        expect((await store().getRun(highEarly.runId))!.priority).toBe(5);
        expect((await store().getRun(plain.runId))!.priority).toBe(0);
        const order: string[] = [];
        for (let i = 0; i < 4; i++) {
          const [claimed] = await store().claimRuns(LEASE, 1, refs);
          order.push(claimed.runId);
        }
        expect(order).toEqual([highEarly.runId, highLate.runId, plain.runId, low.runId]);
        expect(await store().claimRuns(LEASE, 1, refs)).toEqual([]);
      });

      it('keeps a delayed run pending, not due and not claimed at once, until its time', async () => {
        const { workflow, refs } = fresh();
        const before = Date.now();
        const res = await store().createRun(newRun(workflow, { due: { delayMs: 1000 } }), { onConflict: 'keep', lease: LEASE });
        expect(res.created).toBe(true);
        expect(res.run.status).toBe('pending');
        expect(res.run.leaseToken).toBeUndefined();
        const run = (await store().getRun(res.run.runId))!;
        expect(run.dueAt!.getTime()).toBeGreaterThanOrEqual(before + 900);
        expect(await store().claimRuns(LEASE, 5, refs)).toEqual([]);
        await sleep(1200);
        expect(ids(await store().claimRuns(LEASE, 5, refs))).toEqual([res.run.runId]);
      });
    });

    describe('concurrency (F2)', () => {
      it("gives at most `limit` slots per key; a passed-over run is blocked, others of the workflow are not", async () => {
        const { workflow, refs } = fresh();
        const key = `${workflow}:k`;
        const a = await create(workflow, limitOf(key, 2));
        const b = await create(workflow, limitOf(key, 2));
        const c = await create(workflow, limitOf(key, 2));
        const other = await create(workflow, limitOf(`${workflow}:other`, 2));
        const free = await create(workflow);
        const claimed = await store().claimRuns(LEASE, 10, refs);
        expect(ids(claimed)).toEqual(ids([a, b, other, free]));
        expect(claimed.find((r) => r.runId === a.runId)!.slotHeld).toBe(true);
        const blocked = (await store().getRun(c.runId))!;
        expect(blocked.status).toBe('pending');
        expect(blocked.blockedBy).toBe('concurrency');
        expect(blocked.slotHeld).toBeFalsy();
        expect(await store().claimRun(c.runId, OTHER)).toBeUndefined();
        expect((await store().listRuns({ workflow, statuses: ['pending'], limit: 10 })).map((r) => r.blockedBy)).toEqual(['concurrency']);
        // The end of a holder frees its slot.
        const tokenA = claimed.find((r) => r.runId === a.runId)!.leaseToken;
        expect((await store().commit(a.runId, tokenA, patch({ status: 'completed' }))).ok).toBe(true);
        expect((await store().getRun(a.runId))!.slotHeld).toBeFalsy();
        const next = await store().claimRun(c.runId, OTHER);
        expect(next?.slotHeld).toBe(true);
        expect((await store().getRun(c.runId))!.blockedBy).toBeUndefined();
      });

      it("with scope 'run', a sleeping, waiting or paused holder keeps its slot", async () => {
        const { workflow, refs } = fresh();
        const key = `${workflow}:k`;
        const a = await create(workflow, limitOf(key, 1));
        const b = await create(workflow, limitOf(key, 1));
        const [claimed] = await store().claimRuns(LEASE, 1, refs);
        expect(claimed.runId).toBe(a.runId);
        expect((await store().commit(a.runId, claimed.leaseToken, patch({ status: 'sleeping', due: { delayMs: 60_000 }, release: true }))).ok).toBe(true);
        expect(await store().claimRuns(OTHER, 5, refs)).toEqual([]);
        expect((await store().getRun(b.runId))!.blockedBy).toBe('concurrency');
        expect((await store().control(a.runId, { action: 'pause' })).outcome).toBe('ok');
        expect(await store().claimRun(b.runId, OTHER)).toBeUndefined();
      });

      it("with scope 'step', a released lease frees the slot, and the woken run waits for one again", async () => {
        const { workflow, refs } = fresh();
        const key = `${workflow}:k`;
        const a = await create(workflow, limitOf(key, 1, 'step'));
        const b = await create(workflow, limitOf(key, 1, 'step'));
        const [claimed] = await store().claimRuns(LEASE, 1, refs);
        expect(claimed.runId).toBe(a.runId);
        expect((await store().commit(a.runId, claimed.leaseToken, patch({ status: 'sleeping', due: { delayMs: 300 }, release: true }))).ok).toBe(true);
        const bClaim = await store().claimRun(b.runId, OTHER);
        expect(bClaim?.slotHeld).toBe(true);
        await sleep(400);
        expect(await store().claimRun(a.runId, LEASE)).toBeUndefined();
        expect((await store().getRun(a.runId))!.blockedBy).toBe('concurrency');
        expect((await store().getRun(a.runId))!.status).toBe('sleeping');
        await store().releaseLease(b.runId, bClaim!.leaseToken);
        const again = await store().claimRun(a.runId, LEASE);
        expect(again?.slotHeld).toBe(true);
        expect(await store().claimRun(b.runId, OTHER)).toBeUndefined();
      });

      it('creates a run that finds no slot as pending and due, without a lease (F4)', async () => {
        const { workflow } = fresh();
        const key = `${workflow}:k`;
        const first = await store().createRun(newRun(workflow, limitOf(key, 1)), { onConflict: 'keep', lease: LEASE });
        expect(first.run.leaseToken).toBeDefined();
        expect(first.run.slotHeld).toBe(true);
        const second = await store().createRun(newRun(workflow, limitOf(key, 1)), { onConflict: 'keep', lease: LEASE });
        expect(second.created).toBe(true);
        expect(second.run.leaseToken).toBeUndefined();
        const stored = (await store().getRun(second.run.runId))!;
        expect(stored.status).toBe('pending');
        expect(stored.steps).toEqual([]);
        expect(stored.blockedBy).toBe('concurrency');
        expect(stored.dueAt!.getTime()).toBeLessThanOrEqual(Date.now() + 50);
      });

      it('a recovery takes over the slot with the expired lease; a replacement frees it', async () => {
        const { workflow, refs } = fresh();
        const key = `${workflow}:k`;
        const a = await store().createRun(newRun(workflow, limitOf(key, 1)), { onConflict: 'keep', lease: { owner: 'dead', leaseMs: 300 } });
        const b = await create(workflow, limitOf(key, 1));
        await sleep(400);
        const claimed = await store().claimRuns(OTHER, 5, refs);
        expect(ids(claimed)).toEqual([a.run.runId]);
        expect(claimed[0].recovered).toBe(true);
        expect(claimed[0].slotHeld).toBe(true);
        expect(await store().claimRun(b.runId, LEASE)).toBeUndefined();
        await store().createRun(newRun(workflow, { ...limitOf(key, 1), runId: a.run.runId }), { onConflict: 'replace' });
        expect((await store().claimRun(b.runId, LEASE))?.slotHeld).toBe(true);
      });

      it('a run with a pending cancel is claimed without a slot (F1)', async () => {
        const { workflow, refs } = fresh();
        const key = `${workflow}:k`;
        await store().createRun(newRun(workflow, limitOf(key, 1)), { onConflict: 'keep', lease: LEASE });
        const b = await create(workflow, limitOf(key, 1));
        expect((await store().control(b.runId, { action: 'cancel', compensate: false })).outcome).toBe('ok');
        const [claimed] = await store().claimRuns(OTHER, 5, refs);
        expect(claimed.runId).toBe(b.runId);
        expect(claimed.slotHeld).toBeFalsy();
      });

      it('never gives more slots than the limit to concurrent claimers', async () => {
        const { workflow, refs } = fresh();
        const key = `${workflow}:k`;
        for (let i = 0; i < 12; i++) await create(workflow, limitOf(key, 3));
        const batches = await Promise.all(
          Array.from({ length: 6 }, (_, i) => store().claimRuns({ owner: `c${i}`, leaseMs: 30_000 }, 4, refs)),
        );
        expect(batches.flat()).toHaveLength(3);
        const singles = await Promise.all(
          (await store().listRuns({ workflow, statuses: ['pending'], limit: 20 })).map((r) => store().claimRun(r.runId, OTHER)),
        );
        expect(singles.filter(Boolean)).toHaveLength(0);
      });
    });

    describe('many blocked runs (F2, F4)', () => {
      it('a key with 1,500 blocked runs does not hide a run of another key', async () => {
        const { workflow, refs } = fresh();
        const key = `${workflow}:k`;
        // the runs of the key are all due before any of them is claimed (a burst), then one takes the key's slot
        const holder = await create(workflow, { ...limitOf(key, 1), due: { at: new Date(Date.now() - 10_000) } });
        for (let i = 0; i < 1500; i += 150) await Promise.all(Array.from({ length: 150 }, () => create(workflow, limitOf(key, 1))));
        const [claimed] = await store().claimRuns(LEASE, 1, refs);
        expect(claimed.runId).toBe(holder.runId);
        const other = await create(workflow, limitOf(`${workflow}:other`, 1));
        expect(ids(await store().claimRuns(OTHER, 10, refs))).toEqual([other.runId]);
        const free = await create(workflow);
        expect(ids(await store().claimRuns(OTHER, 10, refs))).toEqual([free.runId]);
        // the holder ends: one run of the key takes its slot
        expect((await store().commit(holder.runId, claimed.leaseToken, patch({ status: 'completed' }))).ok).toBe(true);
        const next = await store().claimRuns(OTHER, 10, refs);
        expect(next).toHaveLength(1);
        expect(next[0].slotHeld).toBe(true);
      }, 120_000);

      it('when the holder ends, the earliest blocked run of its key is claimed next, at once', async () => {
        const { workflow, refs } = fresh();
        const key = `${workflow}:k`;
        const t = Date.now();
        const holder = await create(workflow, { ...limitOf(key, 1), due: { at: new Date(t - 10_000) } });
        const [claimed] = await store().claimRuns(LEASE, 1, refs);
        expect(claimed.runId).toBe(holder.runId);
        const late = await create(workflow, { ...limitOf(key, 1), due: { at: new Date(t - 3000) } });
        const early = await create(workflow, { ...limitOf(key, 1), due: { at: new Date(t - 5000) } });
        const high = await create(workflow, { ...limitOf(key, 1), priority: 3, due: { at: new Date(t - 1000) } });
        const free = await create(workflow, { due: { at: new Date(t - 500) } });
        // claims pass the blocked runs over (a store may set them aside meanwhile)
        expect(ids(await store().claimRuns(OTHER, 10, refs))).toEqual([free.runId]);
        expect(await store().claimRuns(OTHER, 10, refs)).toEqual([]);
        expect((await store().getRun(early.runId))!.blockedBy).toBe('concurrency');
        // each end frees the slot for the first blocked run in claim order: priority, then due time
        let token = claimed.leaseToken;
        let ending = holder.runId;
        for (const expected of [high, early, late]) {
          expect((await store().commit(ending, token, patch({ status: 'completed' }))).ok).toBe(true);
          const next = await store().claimRuns(OTHER, 10, refs);
          expect(ids(next)).toEqual([expected.runId]);
          expect(next[0].slotHeld).toBe(true);
          expect(await store().claimRuns(OTHER, 10, refs)).toEqual([]);
          token = next[0].leaseToken;
          ending = expected.runId;
        }
      });

      it('keeps the place of a blocked run through pause and resume: its due time is kept', async () => {
        const { workflow, refs } = fresh();
        const key = `${workflow}:k`;
        const t = Date.now();
        const holder = await create(workflow, { ...limitOf(key, 1), due: { at: new Date(t - 10_000) } });
        const [claimed] = await store().claimRuns(LEASE, 1, refs);
        expect(claimed.runId).toBe(holder.runId);
        const early = await create(workflow, { ...limitOf(key, 1), due: { at: new Date(t - 5000) } });
        const late = await create(workflow, { ...limitOf(key, 1), due: { at: new Date(t - 3000) } });
        expect(await store().claimRuns(OTHER, 10, refs)).toEqual([]);
        expect((await store().control(early.runId, { action: 'pause' })).outcome).toBe('ok');
        expect((await store().getRun(early.runId))!.dueAt!.getTime()).toBe(t - 5000);
        expect((await store().control(early.runId, { action: 'resume' })).outcome).toBe('ok');
        expect((await store().getRun(early.runId))!).toMatchObject({ status: 'pending', dueAt: new Date(t - 5000), blockedBy: 'concurrency' });
        expect((await store().commit(holder.runId, claimed.leaseToken, patch({ status: 'completed' }))).ok).toBe(true);
        expect(ids(await store().claimRuns(OTHER, 10, refs))).toEqual([early.runId]);
        expect((await store().getRun(late.runId))!.blockedBy).toBe('concurrency');
      });
    });

    describe('rate limits (F3)', () => {
      it('lets at most `limit` runs begin in any window of `perMs`; the others are blocked until it slides', async () => {
        const { workflow, refs } = fresh();
        const rateLimit = { key: `${workflow}:r`, limit: 2, perMs: 1000 };
        for (let i = 0; i < 4; i++) await create(workflow, { rateLimit });
        const first = await store().claimRuns(LEASE, 10, refs);
        expect(first).toHaveLength(2);
        const blocked = await store().listRuns({ workflow, statuses: ['pending'], limit: 10 });
        expect(blocked.map((r) => r.blockedBy)).toEqual(['rate-limit', 'rate-limit']);
        // A run that has begun is not limited again: a released run of the key is claimed at once.
        await store().releaseLease(first[0].runId, first[0].leaseToken);
        expect((await store().claimRun(first[0].runId, OTHER))?.runId).toBe(first[0].runId);
        expect(await store().claimRuns(LEASE, 10, refs)).toEqual([]);
        await sleep(1150);
        expect(await store().claimRuns(LEASE, 10, refs)).toHaveLength(2);
      });
    });

    describe('rate limits at createRun with a lease (F3, F4)', () => {
      it('claims a new run at once only while its window has room, and counts that begin', async () => {
        const { workflow, refs } = fresh();
        const rateLimit = { key: `${workflow}:r`, limit: 1, perMs: 60_000 };
        const first = await store().createRun(newRun(workflow, { rateLimit }), { onConflict: 'keep', lease: LEASE });
        expect(first.run.leaseToken).toBeDefined();
        const second = await store().createRun(newRun(workflow, { rateLimit }), { onConflict: 'keep', lease: LEASE });
        expect(second.created).toBe(true);
        expect(second.run.leaseToken).toBeUndefined();
        expect((await store().getRun(second.run.runId))!.blockedBy).toBe('rate-limit');
        expect(await store().claimRuns(OTHER, 5, refs)).toEqual([]);
      });
    });

    describe('bounds: queued signals per run (SendSignalOptions.maxQueued)', () => {
      it("refuses a signal past maxQueued with outcome 'full', storing nothing; a repeated id stays a noop; room frees as signals are taken", async () => {
        const { workflow } = fresh();
        const run = await store().createRun(newRun(workflow), { onConflict: 'keep', lease: LEASE });
        const token = run.run.leaseToken!;
        for (let i = 0; i < 3; i++) expect((await store().sendSignal(run.run.runId, i === 1 ? 'b' : 'a', `"${i}"`, undefined, { id: `s${i}`, maxQueued: 3 })).outcome).toBe('ok');
        expect((await store().sendSignal(run.run.runId, 'c', '"x"', '{"e":1}', { maxQueued: 3 })).outcome).toBe('full');
        expect((await store().sendSignal(run.run.runId, 'a', '"0"', undefined, { id: 's0', maxQueued: 3 })).outcome).toBe('noop');
        expect(await store().listSignals(run.run.runId)).toHaveLength(3);
        expect(await store().listEvents(run.run.runId, { limit: 10 })).toEqual([]);
        const taken = await store().commit(run.run.runId, token, patch({ wait: { signals: ['b'] } }));
        expect(taken).toMatchObject({ ok: true, consumedSignal: { name: 'b', payload: '"1"' } });
        expect((await store().sendSignal(run.run.runId, 'c', '"y"', undefined, { maxQueued: 3 })).outcome).toBe('ok');
        expect((await store().sendSignal(run.run.runId, 'c', '"z"', undefined, { maxQueued: 3 })).outcome).toBe('full');
        const took = await store().takeSignal(run.run.runId, token, ['c']);
        expect(took).toMatchObject({ ok: true, payload: '"y"' });
        expect((await store().sendSignal(run.run.runId, 'c', '"z"', undefined, { maxQueued: 3 })).outcome).toBe('ok');
        expect((await store().sendSignal(run.run.runId, 'c', '"w"')).outcome).toBe('ok');
        expect(await store().listSignals(run.run.runId)).toHaveLength(4);
      });
    });

    describe('debounce (rule D)', () => {
      it('folds starts with one key into the pending run: newest input, start pushed back, capped by maxDelay', async () => {
        const { workflow, refs } = fresh();
        const debounce = { key: `${workflow}:d`, delayMs: 600, maxDelayMs: 900 };
        const t0 = Date.now();
        const first = await store().createRun(newRun(workflow), { onConflict: 'keep', debounce, lease: LEASE });
        expect(first.created).toBe(true);
        expect(first.run.leaseToken).toBeUndefined();
        expect((await store().getRun(first.run.runId))!.dueAt!.getTime()).toBeGreaterThanOrEqual(t0 + 500);
        await sleep(400);
        const second = await store().createRun(newRun(workflow, { input: '"last"' }), { onConflict: 'keep', debounce });
        expect(second).toMatchObject({ created: false, debounced: true });
        expect(second.run.runId).toBe(first.run.runId);
        const run = (await store().getRun(first.run.runId))!;
        expect(run.input).toBe('"last"');
        // pushed to now + 600, capped at the first start + 900
        expect(run.dueAt!.getTime()).toBeLessThanOrEqual(first.run.createdAt.getTime() + 900 + 5);
        expect(run.dueAt!.getTime()).toBeGreaterThan(first.run.createdAt.getTime() + 800);
        expect(await store().claimRuns(LEASE, 5, refs)).toEqual([]);
        await sleep(Math.max(0, run.dueAt!.getTime() - Date.now()) + 100);
        const claimed = await store().claimRuns(LEASE, 5, refs);
        expect(ids(claimed)).toEqual([first.run.runId]);
        // Once claimed, the key starts a new run.
        const third = await store().createRun(newRun(workflow), { onConflict: 'keep', debounce });
        expect(third.created).toBe(true);
        expect(third.run.runId).not.toBe(first.run.runId);
      });

      it('keeps the due time of a debounced run through pause and resume', async () => {
        const { workflow, refs } = fresh();
        const debounce = { key: `${workflow}:d`, delayMs: 60_000 };
        const first = await store().createRun(newRun(workflow), { onConflict: 'keep', debounce });
        const due = (await store().getRun(first.run.runId))!.dueAt!.getTime();
        expect((await store().control(first.run.runId, { action: 'pause' })).outcome).toBe('ok');
        expect((await store().getRun(first.run.runId))!.dueAt!.getTime()).toBe(due);
        expect((await store().control(first.run.runId, { action: 'resume' })).outcome).toBe('ok');
        expect((await store().getRun(first.run.runId))!).toMatchObject({ status: 'pending', dueAt: new Date(due) });
        expect(await store().claimRuns(LEASE, 5, refs)).toEqual([]);
      });

      it('gives one run to concurrent starts with one key', async () => {
        const { workflow } = fresh();
        const debounce = { key: `${workflow}:d`, delayMs: 5000 };
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store().createRun(newRun(workflow, { input: String(i) }), { onConflict: 'keep', debounce })),
        );
        expect(results.filter((r) => r.created)).toHaveLength(1);
        expect(new Set(results.map((r) => r.run.runId)).size).toBe(1);
        expect(await store().listRuns({ workflow, limit: 50 })).toHaveLength(1);
      });
    });
  });
}
