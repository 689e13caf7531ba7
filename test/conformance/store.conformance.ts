import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { LIVE_GROUP_SAMPLE, PUBLISH_MAX_BYTES, RUN_HISTORY_LIMIT } from '../../src/store/workflow-store.interface.js';
import type {
  ChildrenPatch,
  ClaimedRun,
  LeaseRequest,
  NewChildRun,
  NewRun,
  RunPatch,
  StoreEvent,
  StoredRun,
  WorkflowRef,
  WorkflowStore,
} from '../../src/store/workflow-store.interface.js';
import { describeFlowControlConformance } from './flow-control.conformance.js';

/** How a store under test is made and torn down. Each call must give an empty store. */
export interface ConformanceTarget {
  create(): Promise<WorkflowStore>;
  destroy?(store: WorkflowStore): Promise<void>;
  /**
   * Ways to damage a field the store itself encodes, by writing the database directly (a store that keeps no encoded
   * fields, like memory, has none). Each damages one pending run; the suite checks that the run is still read, listed
   * and claimed (with `corrupt` set) or parked, that it can be failed, and that other runs are not held back.
   */
  corruptions?: Record<string, (store: WorkflowStore, runId: string) => Promise<void>>;
  /**
   * The store wakes a parent after a child's end in a second write (Redis, see rule 8d of `RunPatch`): a parent that
   * waits for its children then keeps a `dueAt` in the future (its recheck) instead of none. The suite then accepts
   * either; it checks "not claimable now" for every store.
   */
  wakesParentsInSecondWrite?: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The claim filter entry of a workflow's version 1. */
const v1 = (workflow: string): WorkflowRef => ({ workflow, version: 1 });
const LEASE: LeaseRequest = { owner: 'conformance-a', leaseMs: 30_000 };
const OTHER: LeaseRequest = { owner: 'conformance-b', leaseMs: 30_000 };

/**
 * The store contract, run unchanged against every store. See `WorkflowStore` for the rules it checks.
 */
export function describeStoreConformance(storeName: string, target: ConformanceTarget): void {
  describe(`WorkflowStore conformance: ${storeName}`, () => {
    let store: WorkflowStore;
    let prefix: string;

    beforeAll(async () => {
      store = await target.create();
      await store.init();
    });
    afterAll(async () => {
      await store.close();
      await target.destroy?.(store);
    });

    // Every test uses its own workflow name and run ids, so tests never see each other's runs.
    let seq = 0;
    const wf = () => `wf_${(prefix = randomUUID().slice(0, 8))}`;
    const newRun = (workflow: string, over: Partial<NewRun> = {}): NewRun => ({
      runId: `${workflow}-${++seq}-${randomUUID().slice(0, 6)}`,
      workflow,
      version: 1,
      input: JSON.stringify({ n: seq }),
      state: JSON.stringify({ s: 1 }),
      ...over,
    });
    const patch = (over: Partial<RunPatch> = {}): RunPatch => ({ leaseMs: 30_000, ...over });
    async function createClaimed(workflow: string, over: Partial<NewRun> = {}): Promise<StoredRun & { leaseToken: string }> {
      const res = await store.createRun(newRun(workflow, over), { onConflict: 'keep', lease: LEASE });
      expect(res.created).toBe(true);
      expect(res.run.leaseToken).toBeDefined();
      return res.run as StoredRun & { leaseToken: string };
    }
    async function finish(runId: string, token: string, status: 'completed' | 'failed' | 'cancelled' | 'compensated') {
      const res = await store.commit(runId, token, patch({ status }));
      expect(res.ok).toBe(true);
    }
    const child = (workflow: string, over: Partial<NewChildRun> = {}): NewChildRun => {
      const { runId, input, state } = newRun(workflow);
      return { runId: `${runId}-child`, workflow, version: 1, input, state, ...over };
    };
    /** A `children` patch: by default it waits for no end (`endedAtLeast: 0`), so the parent goes on. */
    const children = (over: Partial<ChildrenPatch> = {}): ChildrenPatch => ({ endedAtLeast: 0, failFast: false, ...over });
    /**
     * A parent waiting for its children: not claimable now, and no `dueAt` (or, in a store that wakes parents in a
     * second write, one in the future: its recheck, rule 8d).
     */
    async function expectParked(runId: string) {
      const run = (await store.getRun(runId))!;
      if (target.wakesParentsInSecondWrite && run.dueAt !== undefined) expect(run.dueAt.getTime()).toBeGreaterThan(Date.now());
      else expect(run.dueAt).toBeUndefined();
      expect(await store.claimRun(runId, OTHER)).toBeUndefined();
    }

    describeFlowControlConformance(() => store);

    describe('createRun', () => {
      it('creates a pending run that is due now, storing every value verbatim', async () => {
        const workflow = wf();
        const hostile = `'; DROP TABLE runs;-- "quoted" {tag} \\ ünï©ødé 🚀 ${prefix}`;
        const input = JSON.stringify({ text: hostile, nested: { a: [1, 2, null] } });
        const res = await store.createRun(newRun(workflow, { runId: hostile, input, state: '{"x":"ÿ"}' }), { onConflict: 'keep' });
        expect(res.created).toBe(true);
        const run = (await store.getRun(hostile))!;
        expect(run).toBeDefined();
        expect(run.runId).toBe(hostile);
        expect(run.workflow).toBe(workflow);
        expect(run.version).toBe(1);
        expect(run.status).toBe('pending');
        expect(run.input).toBe(input);
        expect(run.state).toBe('{"x":"ÿ"}');
        expect(run.steps).toEqual([]);
        expect(run.leaseToken).toBeUndefined();
        expect(run.createdAt).toBeInstanceOf(Date);
        expect(run.updatedAt).toBeInstanceOf(Date);
        expect(run.finishedAt).toBeUndefined();
        expect(run.pauseRequested).toBe(false);
        expect(run.dueAt).toBeInstanceOf(Date);
        const claimed = await store.claimRun(hostile, LEASE);
        expect(claimed?.runId).toBe(hostile);
      });

      it('accepts a 255-character id', async () => {
        const runId = 'x'.repeat(250) + randomUUID().slice(0, 5);
        const res = await store.createRun(newRun(wf(), { runId }), { onConflict: 'keep' });
        expect(res.created).toBe(true);
        expect((await store.getRun(runId))?.runId).toBe(runId);
      });

      it('claims the new run at once when asked: running, leased, with its first step entry', async () => {
        const startedAt = new Date();
        const run = await createClaimed(wf(), {
          steps: [{ name: 'first', status: 'running', attempts: 0, startedAt }],
          currentStep: 'first',
        });
        expect(run.status).toBe('running');
        expect(run.leaseOwner).toBe(LEASE.owner);
        expect(run.leaseExpiresAt!.getTime()).toBeGreaterThan(Date.now() + 20_000);
        const stored = (await store.getRun(run.runId))!;
        expect(stored.steps).toHaveLength(1);
        expect(stored.steps[0]).toMatchObject({ name: 'first', status: 'running', attempts: 0 });
        expect(stored.steps[0].startedAt?.getTime()).toBe(startedAt.getTime());
        expect(stored.currentStep).toBe('first');
        expect(await store.claimRun(run.runId, OTHER)).toBeUndefined();
      });

      it('keeps the existing run on conflict "keep"', async () => {
        const workflow = wf();
        const first = newRun(workflow);
        await store.createRun(first, { onConflict: 'keep' });
        const res = await store.createRun({ ...first, input: '"other"' }, { onConflict: 'keep', lease: LEASE });
        expect(res.created).toBe(false);
        expect(res.run.input).toBe(first.input);
        expect(res.run.leaseToken).toBeUndefined();
      });

      it('is idempotent under concurrent creates of one id', async () => {
        const run = newRun(wf());
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.createRun({ ...run, input: `"${i}"` }, { onConflict: 'keep' })),
        );
        expect(results.filter((r) => r.created)).toHaveLength(1);
        const winner = results.find((r) => r.created)!.run.input;
        for (const r of results) expect(r.run.input).toBe(winner);
      });

      it('replaces a run on conflict "replace": new state, old lease fenced, old signals gone', async () => {
        const workflow = wf();
        const old = await createClaimed(workflow);
        await store.sendSignal(old.runId, 'go', '"old"');
        const res = await store.createRun({ ...newRun(workflow), runId: old.runId, input: '"new"' }, { onConflict: 'replace' });
        expect(res.created).toBe(true);
        const stored = (await store.getRun(old.runId))!;
        expect(stored.input).toBe('"new"');
        expect(stored.status).toBe('pending');
        expect(stored.steps).toEqual([]);
        expect((await store.commit(old.runId, old.leaseToken, patch({ status: 'completed' }))).ok).toBe(false);
        const claimed = (await store.claimRun(old.runId, LEASE))!;
        expect(claimed.recovered).toBe(false);
        const take = await store.commit(old.runId, claimed.leaseToken, patch({ wait: { signals: ['go'] } }));
        expect(take).toMatchObject({ ok: true });
        expect(take.ok && take.consumedSignal).toBeFalsy();
      });
    });

    describe('generations and concurrent replacement', () => {
      it('numbers the incarnations of a run id: 1 when new, one more on each replace, kept by keep', async () => {
        const workflow = wf();
        const first = await store.createRun(newRun(workflow), { onConflict: 'keep' });
        expect(first.run.generation).toBe(1);
        const runId = first.run.runId;
        const kept = await store.createRun({ ...newRun(workflow), runId }, { onConflict: 'keep' });
        expect(kept).toMatchObject({ created: false, run: { generation: 1 } });
        const second = await store.createRun({ ...newRun(workflow), runId }, { onConflict: 'replace', lease: LEASE });
        expect(second.run.generation).toBe(2);
        const third = await store.createRun({ ...newRun(workflow), runId }, { onConflict: 'replace' });
        expect(third.run.generation).toBe(3);
        expect((await store.getRun(runId))!.generation).toBe(3);
        const claimed = (await store.claimRun(runId, OTHER))!;
        expect(claimed.generation).toBe(3);
        const [listed] = await store.listRuns({ workflow, limit: 1 });
        expect(listed.generation).toBe(3);
      });

      it('serialises concurrent replacements of one id: none errors, the last wins, generations are distinct', async () => {
        const workflow = wf();
        const base = newRun(workflow);
        await store.createRun(base, { onConflict: 'keep', lease: LEASE });
        const n = 30;
        const results = await Promise.all(
          Array.from({ length: n }, (_, i) =>
            store.createRun({ ...base, input: `"${i}"` }, { onConflict: 'replace', lease: i % 2 === 0 ? LEASE : undefined }),
          ),
        );
        expect(results.every((r) => r.created)).toBe(true);
        const generations = results.map((r) => r.run.generation).sort((a, b) => a - b);
        expect(generations).toEqual(Array.from({ length: n }, (_, i) => i + 2));
        const last = results.find((r) => r.run.generation === n + 1)!;
        const stored = (await store.getRun(base.runId))!;
        expect(stored.generation).toBe(n + 1);
        expect(stored.input).toBe(last.run.input);
        // only the survivor's lease (if it was claimed) can write
        for (const r of results) {
          if (!r.run.leaseToken || r === last) continue;
          expect((await store.commit(base.runId, r.run.leaseToken, patch({ state: '"stale"' }))).ok).toBe(false);
        }
        if (last.run.leaseToken) expect((await store.commit(base.runId, last.run.leaseToken, patch({ status: 'completed' }))).ok).toBe(true);
      });
    });

    describe('durable time from the store', () => {
      it('stores an absolute wake-up time as is', async () => {
        const run = await createClaimed(wf());
        const at = new Date(Date.now() + 250);
        await store.commit(run.runId, run.leaseToken, patch({ status: 'sleeping', due: { at }, release: true }));
        const stored = (await store.getRun(run.runId))!;
        expect(stored.dueAt!.getTime()).toBe(at.getTime());
        expect(await store.claimRun(run.runId, LEASE)).toBeUndefined();
        await sleep(350);
        expect(await store.claimRun(run.runId, LEASE)).toMatchObject({ runId: run.runId, status: 'running' });
      });

      it('makes a run with a past absolute wake-up time due at once', async () => {
        const run = await createClaimed(wf());
        const at = new Date(Date.now() - 60_000);
        await store.commit(run.runId, run.leaseToken, patch({ status: 'sleeping', due: { at }, release: true }));
        expect(await store.claimRun(run.runId, LEASE)).toMatchObject({ runId: run.runId });
      });
    });

    describe('signals of ended runs', () => {
      it('deletes the queued signals of a run when it ends', async () => {
        const run = await createClaimed(wf());
        await store.sendSignal(run.runId, 'x', '"left over"');
        await store.commit(run.runId, run.leaseToken, patch({ status: 'failed', error: { name: 'E', message: 'm' } }));
        expect((await store.control(run.runId, { action: 'retry' })).outcome).toBe('ok');
        const again = (await store.claimRun(run.runId, LEASE))!;
        const res = await store.commit(run.runId, again.leaseToken, patch({ wait: { signals: ['x'] } }));
        expect(res.ok && res.consumedSignal).toBeFalsy();
        expect((await store.getRun(run.runId))!.status).toBe('waiting');
      });
    });

    for (const [what, corrupt] of Object.entries(target.corruptions ?? {})) {
      describe(`a run with a damaged field (${what})`, () => {
        it('is read, listed and claimed or parked without holding back other runs, and can be failed', async () => {
          const workflow = wf();
          const poison = newRun(workflow, { runId: `${workflow}-POISON`, steps: [{ name: 'a', status: 'running', attempts: 0 }], currentStep: 'a' });
          await store.createRun(poison, { onConflict: 'keep' });
          const healthy: string[] = [];
          for (let i = 0; i < 6; i++) {
            const r = newRun(workflow, { steps: [{ name: 'a', status: 'running', attempts: 0 }], currentStep: 'a' });
            await store.createRun(r, { onConflict: 'keep' });
            healthy.push(r.runId);
          }
          await corrupt(store, poison.runId);

          const read = (await store.getRun(poison.runId))!;
          expect(read).toBeDefined();
          expect(read.corrupt).toEqual(expect.any(String));
          expect(read.corrupt!.length).toBeGreaterThan(0);
          const listed = await store.listRuns({ workflow, limit: 50 });
          expect(listed.map((r) => r.runId).sort()).toEqual([...healthy, poison.runId].sort());
          expect(listed.find((r) => r.runId === poison.runId)!.corrupt).toEqual(expect.any(String));

          const claimed = await store.claimRuns(LEASE, 50, [v1(workflow)]);
          const claimedIds = claimed.map((r) => r.runId);
          for (const id of healthy) expect(claimedIds).toContain(id);
          const bad = claimed.find((r) => r.runId === poison.runId);
          if (bad) {
            expect(bad.corrupt).toEqual(expect.any(String));
            const res = await store.commit(poison.runId, bad.leaseToken, patch({
              status: 'failed',
              error: { name: 'CorruptRunError', message: bad.corrupt! },
            }));
            expect(res.ok).toBe(true);
            const failed = (await store.getRun(poison.runId))!;
            expect(failed.status).toBe('failed');
            expect(failed.error).toMatchObject({ name: 'CorruptRunError' });
          }
          for (const run of claimed.filter((r) => r.runId !== poison.runId)) {
            const res = await store.commit(run.runId, run.leaseToken, patch({
              status: 'completed',
              output: '"ok"',
              steps: [{ index: 0, step: { name: 'a', status: 'completed', attempts: 1, output: '"ok"' } }],
            }));
            expect(res.ok).toBe(true);
          }
          const completed = await store.listRuns({ workflow, statuses: ['completed'], limit: 50 });
          expect(completed.map((r) => r.runId).sort()).toEqual([...healthy].sort());
          const pending = await store.listRuns({ workflow, statuses: ['pending', 'running'], limit: 50 });
          expect(pending.map((r) => r.runId).filter((id) => id !== poison.runId)).toEqual([]);
          // nothing of the batch is left leased and unclaimed
          expect(await store.claimRuns(OTHER, 50, [v1(workflow)])).toEqual([]);
        });
      });
    }

    describe('claims and leases', () => {
      it('hands each due run to exactly one of many concurrent claimers', async () => {
        const workflow = wf();
        const ids = new Set<string>();
        for (let i = 0; i < 30; i++) {
          const r = newRun(workflow);
          ids.add(r.runId);
          await store.createRun(r, { onConflict: 'keep' });
        }
        const batches = await Promise.all(
          Array.from({ length: 6 }, (_, i) => store.claimRuns({ owner: `w${i}`, leaseMs: 30_000 }, 10, [v1(workflow)])),
        );
        const claimed = batches.flat().map((r) => r.runId);
        expect(claimed.length).toBe(30);
        expect(new Set(claimed).size).toBe(30);
        for (const id of claimed) expect(ids.has(id)).toBe(true);
        const tokens = batches.flat().map((r) => r.leaseToken);
        expect(new Set(tokens).size).toBe(30);
        for (const r of batches.flat()) {
          expect(r.status).toBe('running');
          expect(r.recovered).toBe(false);
        }
        expect(await store.claimRuns(OTHER, 10, [v1(workflow)])).toEqual([]);
      });

      it('gives one run to exactly one of many concurrent claimRun calls', async () => {
        const r = newRun(wf());
        await store.createRun(r, { onConflict: 'keep' });
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.claimRun(r.runId, { owner: `w${i}`, leaseMs: 30_000 })));
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      it('claims earliest due first, honours limit and the workflow filter', async () => {
        const workflow = wf();
        const other = wf();
        const late = await createClaimed(workflow);
        const early = await createClaimed(workflow);
        const none = await createClaimed(workflow);
        // NOTE: delays long enough for the four calls before the first claim on a loaded machine (100 ms was not, once).
        await store.commit(late.runId, late.leaseToken, patch({ status: 'sleeping', due: { delayMs: 900 }, release: true }));
        await store.commit(early.runId, early.leaseToken, patch({ status: 'sleeping', due: { delayMs: 600 }, release: true }));
        await store.commit(none.runId, none.leaseToken, patch({ status: 'waiting', due: null, release: true }));
        await store.createRun(newRun(other), { onConflict: 'keep' });
        expect(await store.claimRuns(OTHER, 10, [v1(workflow)])).toEqual([]);
        await sleep(1_000);
        const first = await store.claimRuns(OTHER, 1, [v1(workflow)]);
        expect(first.map((r) => r.runId)).toEqual([early.runId]);
        expect(first[0].status).toBe('running');
        const second = await store.claimRuns(OTHER, 10, [v1(workflow)]);
        expect(second.map((r) => r.runId)).toEqual([late.runId]);
        const others = await store.claimRuns(OTHER, 10, [v1(other)]);
        expect(others).toHaveLength(1);
        const single = newRun(other);
        await store.createRun(single, { onConflict: 'keep' });
        expect(await store.claimRun(single.runId, OTHER, [v1(workflow)])).toBeUndefined();
        expect((await store.claimRun(single.runId, OTHER, [v1(other)]))?.runId).toBe(single.runId);
      });

      it('lets another claimer take over an expired lease and fences the old token', async () => {
        const workflow = wf();
        await store.createRun(newRun(workflow), { onConflict: 'keep' });
        const [first] = await store.claimRuns({ owner: 'a', leaseMs: 150 }, 1, [v1(workflow)]);
        expect(await store.claimRuns(OTHER, 1, [v1(workflow)])).toEqual([]);
        await sleep(300);
        const [second] = await store.claimRuns(OTHER, 1, [v1(workflow)]);
        expect(second.runId).toBe(first.runId);
        expect(second.recovered).toBe(true);
        expect(second.leaseToken).not.toBe(first.leaseToken);

        const before = (await store.getRun(first.runId))!;
        const stale = await store.commit(first.runId, first.leaseToken, patch({
          status: 'completed', state: '"stale"', output: '"stale"',
          steps: [{ index: 0, step: { name: 's', status: 'completed', attempts: 1, output: '"stale"' } }],
        }));
        expect(stale.ok).toBe(false);
        expect((await store.renewLease(first.runId, first.leaseToken, 30_000)).ok).toBe(false);
        expect((await store.takeSignal(first.runId, first.leaseToken, ['x'])).ok).toBe(false);
        await store.releaseLease(first.runId, first.leaseToken);
        const after = (await store.getRun(first.runId))!;
        expect(after.state).toBe(before.state);
        expect(after.output).toBeUndefined();
        expect(after.steps).toEqual([]);
        expect(after.status).toBe('running');
        expect(after.leaseToken).toBe(second.leaseToken);
        expect((await store.commit(second.runId, second.leaseToken, patch({ status: 'completed' }))).ok).toBe(true);
      });

      it('reports the previous owner and how long the run was orphaned when it takes over an expired lease', async () => {
        const workflow = wf();
        await store.createRun(newRun(workflow), { onConflict: 'keep' });
        const [first] = await store.claimRuns({ owner: 'dead-owner', leaseMs: 100 }, 1, [v1(workflow)]);
        expect(first.recovered).toBe(false);
        expect(first.previousOwner).toBeUndefined();
        expect(first.orphanedMs).toBeUndefined();
        await sleep(350);
        const [second] = await store.claimRuns(OTHER, 1, [v1(workflow)]);
        expect(second.runId).toBe(first.runId);
        expect(second.recovered).toBe(true);
        expect(second.previousOwner).toBe('dead-owner');
        // NOTE: the store's clock, so allow for skew between it and this process (the lease expired ~250 ms ago).
        expect(second.orphanedMs).toBeGreaterThanOrEqual(100);
        expect(second.orphanedMs).toBeLessThan(10_000);

        const other = await createClaimed(workflow);
        await sleep(50);
        const stolen = await store.claimOwnedRuns!({ owner: LEASE.owner, leaseMs: 30_000 }, 10, [v1(workflow)]);
        expect(stolen.map((r) => r.runId)).toEqual([other.runId]);
        expect(stolen[0].previousOwner).toBe(LEASE.owner);
        expect(stolen[0].orphanedMs).toBe(0);
      });

      describe('claimOwnedRuns', () => {
        const owned = (): LeaseRequest => ({ owner: `pod-${randomUUID().slice(0, 8)}`, leaseMs: 30_000 });

        it('claims the live runs leased to the owner at once, even before their leases expire, and fences the old tokens', async () => {
          const workflow = wf();
          const mine = owned();
          const a = await store.createRun(newRun(workflow), { onConflict: 'keep', lease: mine });
          const b = (await store.createRun(newRun(workflow), { onConflict: 'keep', lease: mine })).run as StoredRun & { leaseToken: string };
          const leasedToOther = await store.createRun(newRun(workflow), { onConflict: 'keep', lease: OTHER });
          await store.createRun(newRun(workflow), { onConflict: 'keep' }); // pending, unleased
          const released = (await store.createRun(newRun(workflow), { onConflict: 'keep', lease: mine })).run;
          await store.releaseLease(released.runId, released.leaseToken!);
          const ended = (await store.createRun(newRun(workflow), { onConflict: 'keep', lease: mine })).run;
          await finish(ended.runId, ended.leaseToken!, 'completed');
          const waiting = (await store.createRun(newRun(workflow), { onConflict: 'keep', lease: mine })).run;
          expect((await store.commit(waiting.runId, waiting.leaseToken!, patch({ wait: { signals: ['go'] } }))).ok).toBe(true);
          // Leased to the owner, due later (a retry delay waited holding the lease): still its own.
          expect((await store.commit(b.runId, b.leaseToken, patch({ due: { delayMs: 60_000 } }))).ok).toBe(true);

          expect(await store.claimOwnedRuns!(mine, 10, [v1(wf())])).toEqual([]);
          const claimed = await store.claimOwnedRuns!({ ...mine, leaseMs: 45_000 }, 10, [v1(workflow)]);
          expect(claimed.map((r) => r.runId).sort()).toEqual([a.run.runId, b.runId].sort());
          for (const run of claimed) {
            expect(run.recovered).toBe(true);
            expect(run.previousOwner).toBe(mine.owner);
            expect(run.orphanedMs).toBe(0);
            expect(run.leaseOwner).toBe(mine.owner);
            expect(run.status).toBe('running');
            expect(run.leaseExpiresAt!.getTime() - Date.now()).toBeGreaterThan(35_000);
          }
          const aNow = claimed.find((r) => r.runId === a.run.runId)!;
          expect(aNow.leaseToken).not.toBe(a.run.leaseToken);
          expect((await store.commit(a.run.runId, a.run.leaseToken!, patch({ status: 'completed' }))).ok).toBe(false);
          expect((await store.renewLease(b.runId, b.leaseToken, 30_000)).ok).toBe(false);
          expect((await store.commit(aNow.runId, aNow.leaseToken, patch({ state: '"next"' }))).ok).toBe(true);

          const other = (await store.getRun(leasedToOther.run.runId))!;
          expect(other.leaseToken).toBe(leasedToOther.run.leaseToken);
          expect((await store.getRun(released.runId))!.leaseToken).toBeUndefined();
          expect((await store.getRun(waiting.runId))!.status).toBe('waiting');
          expect((await store.getRun(waiting.runId))!.leaseToken).toBeUndefined();
          expect((await store.getRun(ended.runId))!.status).toBe('completed');
        });

        it('claims expired leases of the owner too, honours limit, and skips paused runs and runs without a due time', async () => {
          const workflow = wf();
          const mine = owned();
          const short = { ...mine, leaseMs: 100 };
          const expired = (await store.createRun(newRun(workflow), { onConflict: 'keep', lease: short })).run;
          const undue = (await store.createRun(newRun(workflow), { onConflict: 'keep', lease: mine })).run;
          expect((await store.commit(undue.runId, undue.leaseToken!, patch({ due: null }))).ok).toBe(true);
          const paused = (await store.createRun(newRun(workflow), { onConflict: 'keep', lease: mine })).run;
          expect((await store.control(paused.runId, { action: 'pause' })).outcome).toBe('ok');
          expect(await store.commit(paused.runId, paused.leaseToken!, patch({ state: '"p"' }))).toMatchObject({ ok: true, paused: true });
          const live = (await store.createRun(newRun(workflow), { onConflict: 'keep', lease: mine })).run;
          await sleep(300);

          expect(await store.claimOwnedRuns!(mine, 0, [v1(workflow)])).toEqual([]);
          const one = await store.claimOwnedRuns!(mine, 1, [v1(workflow)]);
          expect(one).toHaveLength(1);
          expect([expired.runId, live.runId]).toContain(one[0].runId);
          const rest = await store.claimOwnedRuns!(mine, 10, [v1(workflow)]);
          expect(rest.map((r) => r.runId).sort()).toEqual([expired.runId, live.runId].sort());
          const wasExpired = rest.find((r) => r.runId === expired.runId)!;
          expect(wasExpired.recovered).toBe(true);
          expect(wasExpired.previousOwner).toBe(mine.owner);
          expect(wasExpired.orphanedMs).toBeGreaterThanOrEqual(0);
          expect((await store.getRun(undue.runId))!.leaseToken).toBe(undue.leaseToken);
          expect((await store.getRun(paused.runId))!.status).toBe('paused');
        });

        it('claims nothing for an owner that holds no lease', async () => {
          const workflow = wf();
          await createClaimed(workflow);
          expect(await store.claimOwnedRuns!(owned(), 10, [v1(workflow)])).toEqual([]);
          expect(await store.claimOwnedRuns!(owned(), 10)).toEqual([]);
        });
      });

      it('renews a lease so it does not expire', async () => {
        const workflow = wf();
        await store.createRun(newRun(workflow), { onConflict: 'keep' });
        const [run] = await store.claimRuns({ owner: 'a', leaseMs: 200 }, 1, [v1(workflow)]);
        await sleep(120);
        expect(await store.renewLease(run.runId, run.leaseToken, 1_000)).toEqual({ ok: true, pauseRequested: false });
        await sleep(150);
        expect(await store.claimRuns(OTHER, 1, [v1(workflow)])).toEqual([]);
      });

      it('never shortens a lease on renewal', async () => {
        const workflow = wf();
        const run = await createClaimed(workflow);
        const before = (await store.getRun(run.runId))!.leaseExpiresAt!.getTime();
        expect((await store.renewLease(run.runId, run.leaseToken, 1)).ok).toBe(true);
        await sleep(20);
        expect((await store.getRun(run.runId))!.leaseExpiresAt!.getTime()).toBe(before);
        expect(await store.claimRuns(OTHER, 10, [v1(workflow)])).toEqual([]);
        expect(await store.claimRun(run.runId, OTHER)).toBeUndefined();
      });

      it('makes a released run due at once for anyone, not as a recovery', async () => {
        const run = await createClaimed(wf());
        await store.releaseLease(run.runId, run.leaseToken);
        const stored = (await store.getRun(run.runId))!;
        expect(stored.leaseToken).toBeUndefined();
        const again = (await store.claimRun(run.runId, OTHER))!;
        expect(again).toBeDefined();
        expect(again.recovered).toBe(false);
      });

      it('extends the lease on every commit that does not release', async () => {
        const workflow = wf();
        await store.createRun(newRun(workflow), { onConflict: 'keep' });
        const [run] = await store.claimRuns({ owner: 'a', leaseMs: 200 }, 1, [v1(workflow)]);
        await sleep(120);
        expect((await store.commit(run.runId, run.leaseToken, patch({ state: '"s2"', leaseMs: 1_000 }))).ok).toBe(true);
        await sleep(150);
        expect(await store.claimRuns(OTHER, 1, [v1(workflow)])).toEqual([]);
      });
    });

    describe('commit', () => {
      it('writes a step completion and the advance to the next step in one call', async () => {
        const t0 = new Date(Date.now() - 5);
        const run = await createClaimed(wf(), { steps: [{ name: 'a', status: 'running', attempts: 0, startedAt: t0 }] });
        const t1 = new Date();
        const res = await store.commit(run.runId, run.leaseToken, patch({
          state: '{"cursor":"b"}',
          currentStep: 'b',
          steps: [
            { index: 0, step: { name: 'a', status: 'completed', attempts: 1, output: '{"a":1}', startedAt: t0, finishedAt: t1 } },
            { index: 1, step: { name: 'b', status: 'running', attempts: 0, startedAt: t1 } },
          ],
        }));
        expect(res).toEqual({ ok: true });
        const stored = (await store.getRun(run.runId))!;
        expect(stored.state).toBe('{"cursor":"b"}');
        expect(stored.currentStep).toBe('b');
        expect(stored.status).toBe('running');
        expect(stored.steps).toHaveLength(2);
        expect(stored.steps[0]).toEqual({ name: 'a', status: 'completed', attempts: 1, output: '{"a":1}', startedAt: t0, finishedAt: t1 });
        expect(stored.steps[1]).toEqual({ name: 'b', status: 'running', attempts: 0, startedAt: t1 });
        expect(stored.leaseToken).toBe(run.leaseToken);
      });

      it('updates a step entry in place and records errors', async () => {
        const run = await createClaimed(wf(), { steps: [{ name: 'a', status: 'running', attempts: 0 }] });
        await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: 0, step: { name: 'a', status: 'running', attempts: 1, error: 'boom' } }] }));
        await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: 0, step: { name: 'a', status: 'failed', attempts: 2, error: 'boom again' } }] }));
        const stored = (await store.getRun(run.runId))!;
        expect(stored.steps).toEqual([{ name: 'a', status: 'failed', attempts: 2, error: 'boom again' }]);
      });

      it('keeps a running entry that a later patch does not write, and puts a rewritten entry over it', async () => {
        const a = { name: 'a', status: 'running' as const, attempts: 0, startedAt: new Date(1_000) };
        const b = { name: 'b', status: 'running' as const, attempts: 0, startedAt: new Date(2_000) };
        const c = { name: 'c', status: 'running' as const, attempts: 0, startedAt: new Date(3_000) };
        const run = await createClaimed(wf(), { steps: [a] });
        await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: 1, step: b }] }));
        expect((await store.getRun(run.runId))!.steps).toEqual([a, b]);
        await store.commit(run.runId, run.leaseToken, patch({ state: '{"n":1}' }));
        await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: 2, step: c }] }));
        expect((await store.getRun(run.runId))!.steps).toEqual([a, b, c]);
        const bDone = { ...b, status: 'completed' as const, attempts: 1, output: '"b"', finishedAt: new Date(2_500) };
        await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: 1, step: bDone }] }));
        expect((await store.getRun(run.runId))!.steps).toEqual([a, bDone, c]);
        const cRetried = { ...c, attempts: 1, error: 'boom' };
        await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: 2, step: cRetried }] }));
        const cFailed = { ...c, status: 'failed' as const, attempts: 2, error: 'boom again', finishedAt: new Date(3_500) };
        await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: 2, step: cFailed }] }));
        expect((await store.getRun(run.runId))!.steps).toEqual([a, bDone, cFailed]);
        // A failed entry run again (retry): running over the failed one, then completed, then the next one appended.
        await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: 2, step: { ...cFailed, status: 'running', attempts: 3 } }] }));
        expect((await store.getRun(run.runId))!.steps[2]).toEqual({ ...cFailed, status: 'running', attempts: 3 });
        const cDone = { ...c, status: 'completed' as const, attempts: 3, output: '"c"', finishedAt: new Date(4_000) };
        const d = { name: 'd', status: 'running' as const, attempts: 0, startedAt: new Date(4_000) };
        await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: 2, step: cDone }, { index: 3, step: d }] }));
        const stored = (await store.getRun(run.runId))!;
        expect(stored.steps).toEqual([a, bDone, cDone, d]);
        const [listed] = await store.listRuns({ workflow: stored.workflow, limit: 1 });
        expect(listed.steps).toEqual(stored.steps);
      });

      it('keeps steps in index order past ten entries', async () => {
        const run = await createClaimed(wf());
        for (let i = 0; i < 12; i++) {
          await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: i, step: { name: `s${i}`, status: 'completed', attempts: 1 } }] }));
        }
        const stored = (await store.getRun(run.runId))!;
        expect(stored.steps.map((s) => s.name)).toEqual(Array.from({ length: 12 }, (_, i) => `s${i}`));
      });

      it('ends a run: terminal status, output, error, finishedAt; no lease, not due', async () => {
        const run = await createClaimed(wf());
        const res = await store.commit(run.runId, run.leaseToken, patch({
          status: 'failed', output: '"out"', error: { name: 'Boom', message: 'it broke', step: 'a', phase: 'step' },
        }));
        expect(res).toEqual({ ok: true });
        const stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('failed');
        expect(stored.output).toBe('"out"');
        expect(stored.error).toEqual({ name: 'Boom', message: 'it broke', step: 'a', phase: 'step' });
        expect(stored.finishedAt).toBeInstanceOf(Date);
        expect(stored.leaseToken).toBeUndefined();
        expect(stored.dueAt).toBeUndefined();
        expect(await store.claimRun(run.runId, OTHER)).toBeUndefined();
        expect((await store.commit(run.runId, run.leaseToken, patch({ status: 'running' }))).ok).toBe(false);
      });

      it('clears output and error when asked', async () => {
        const run = await createClaimed(wf());
        await store.commit(run.runId, run.leaseToken, patch({ output: '"x"', error: { name: 'E', message: 'm' } }));
        await store.commit(run.runId, run.leaseToken, patch({ output: null, error: null, currentStep: null }));
        const stored = (await store.getRun(run.runId))!;
        expect(stored.output).toBeUndefined();
        expect(stored.error).toBeUndefined();
        expect(stored.currentStep).toBeUndefined();
      });

      it('releases with a wake-up time: durable sleep', async () => {
        const run = await createClaimed(wf());
        await store.commit(run.runId, run.leaseToken, patch({ status: 'sleeping', due: { delayMs: 200 }, release: true }));
        const stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('sleeping');
        expect(stored.leaseToken).toBeUndefined();
        expect(await store.claimRun(run.runId, OTHER)).toBeUndefined();
        await sleep(300);
        const woke = (await store.claimRun(run.runId, OTHER))!;
        expect(woke.status).toBe('running');
        expect(woke.recovered).toBe(false);
      });
    });

    describe('signals', () => {
      it('rejects signals to unknown and ended runs, storing nothing', async () => {
        expect((await store.sendSignal(`missing-${randomUUID()}`, 'go', '1')).outcome).toBe('not-found');
        const run = await createClaimed(wf());
        await finish(run.runId, run.leaseToken, 'completed');
        expect(await store.sendSignal(run.runId, 'go', '1')).toEqual({ outcome: 'not-active', status: 'completed' });
      });

      it('buffers signals sent before the wait and hands them over first in, first out', async () => {
        const run = await createClaimed(wf());
        expect((await store.sendSignal(run.runId, 'go', '"p1"')).outcome).toBe('ok');
        await store.sendSignal(run.runId, 'other', '"o1"');
        await store.sendSignal(run.runId, 'go', '"p2"');
        const first = await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['go'], timeoutMs: 60_000 } }));
        expect(first).toMatchObject({ ok: true, consumedSignal: { payload: '"p1"' } });
        let stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('running');
        expect(stored.nextInput).toBe('"p1"');
        expect(stored.leaseToken).toBe(run.leaseToken);
        const second = await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['go'] } }));
        expect(second).toMatchObject({ ok: true, consumedSignal: { payload: '"p2"' } });
        const third = await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['go'] } }));
        expect(third.ok && third.consumedSignal).toBeFalsy();
        stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('waiting');
        expect(stored.waitSignals).toEqual(['go']);
        expect(stored.nextInput).toBeUndefined();
        expect(stored.leaseToken).toBeUndefined();
        expect(await store.claimRun(run.runId, OTHER)).toBeUndefined();

        await store.sendSignal(run.runId, 'go', '"p3"');
        const woke = (await store.claimRun(run.runId, OTHER))!;
        expect(woke).toBeDefined();
        expect(woke.status).toBe('waiting');
        expect(woke.waitSignals).toEqual(['go']);
        const take = await store.takeSignal(run.runId, woke.leaseToken, ['go']);
        expect(take).toEqual({ ok: true, payload: '"p3"', signal: 'go', timedOut: false });
        stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('running');
        expect(stored.nextInput).toBe('"p3"');
        expect(stored.waitSignals).toBeUndefined();
        expect(await store.takeSignal(run.runId, woke.leaseToken, ['go'])).toEqual({ ok: true, timedOut: false });
        const other = await store.commit(run.runId, woke.leaseToken, patch({ wait: { signals: ['other'] } }));
        expect(other).toMatchObject({ ok: true, consumedSignal: { payload: '"o1"' } });
        // any later commit clears nextInput
        await store.commit(run.runId, woke.leaseToken, patch({}));
        expect((await store.getRun(run.runId))!.nextInput).toBeUndefined();
      });

      it('keeps many signals in order', async () => {
        const run = await createClaimed(wf());
        await Promise.all(Array.from({ length: 5 }, (_, i) => store.sendSignal(run.runId, 'n', `${i}`)));
        for (let i = 5; i < 15; i++) await store.sendSignal(run.runId, 'n', `${i}`);
        const got: string[] = [];
        for (let i = 0; i < 15; i++) {
          const res = await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['n'] } }));
          if (res.ok && res.consumedSignal) got.push(res.consumedSignal.payload);
        }
        expect(got.slice(5)).toEqual(Array.from({ length: 10 }, (_, i) => `${i + 5}`));
        expect(new Set(got.slice(0, 5))).toEqual(new Set(['0', '1', '2', '3', '4']));
      });

      it('times a wait out durably', async () => {
        const run = await createClaimed(wf());
        await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['go'], timeoutMs: 150 } }));
        const waiting = (await store.getRun(run.runId))!;
        expect(waiting.waitUntil).toBeInstanceOf(Date);
        expect(await store.claimRun(run.runId, OTHER)).toBeUndefined();
        await sleep(250);
        const woke = (await store.claimRun(run.runId, OTHER))!;
        expect(woke.status).toBe('waiting');
        expect(await store.takeSignal(run.runId, woke.leaseToken, ['go'])).toEqual({ ok: true, timedOut: true });
      });
    });

    describe('signal waits on several names', () => {
      it('consumes the earliest sent signal of the names waited for, across names, and names it', async () => {
        const run = await createClaimed(wf());
        await store.sendSignal(run.runId, 'b', '"b1"');
        await store.sendSignal(run.runId, 'c', '"c1"');
        await store.sendSignal(run.runId, 'a', '"a1"');
        await store.sendSignal(run.runId, 'b', '"b2"');
        const waitAB = patch({ wait: { signals: ['a', 'b'] } });
        expect(await store.commit(run.runId, run.leaseToken, waitAB)).toMatchObject({ ok: true, consumedSignal: { name: 'b', payload: '"b1"' } });
        let stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('running');
        expect(stored.nextInput).toBe('"b1"');
        expect(stored.nextInputSignal).toBe('b');
        expect(stored.leaseToken).toBe(run.leaseToken);
        expect(stored.waitSignals).toBeUndefined();
        // kept with nextInput (keepInput), and read back by a claim
        await store.commit(run.runId, run.leaseToken, patch({ keepInput: true }));
        expect((await store.getRun(run.runId))!).toMatchObject({ nextInput: '"b1"', nextInputSignal: 'b' });
        expect(await store.commit(run.runId, run.leaseToken, waitAB)).toMatchObject({ ok: true, consumedSignal: { name: 'a', payload: '"a1"' } });
        expect(await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['b', 'a'] } }))).toMatchObject({
          ok: true,
          consumedSignal: { name: 'b', payload: '"b2"' },
        });
        const none = await store.commit(run.runId, run.leaseToken, waitAB);
        expect(none.ok && none.consumedSignal).toBeFalsy();
        stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('waiting');
        expect(stored.waitSignals).toEqual(['a', 'b']);
        expect(stored.leaseToken).toBeUndefined();
        expect(stored.nextInput).toBeUndefined();
        expect(stored.nextInputSignal).toBeUndefined();
        expect(await store.listSignals(run.runId)).toEqual([{ name: 'c', payload: '"c1"' }]);
      });

      it('takes the earliest sent of several names with takeSignal, and returns its name', async () => {
        const run = await createClaimed(wf());
        await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['x', 'y'], timeoutMs: 60_000 } }));
        expect(await store.sendSignal(run.runId, 'y', '"y1"')).toMatchObject({ outcome: 'ok', status: 'waiting' });
        await store.sendSignal(run.runId, 'x', '"x1"');
        const woke = (await store.claimRun(run.runId, OTHER))!;
        expect(woke.status).toBe('waiting');
        expect(woke.waitSignals).toEqual(['x', 'y']);
        expect(await store.takeSignal(run.runId, woke.leaseToken, ['x', 'y'])).toEqual({ ok: true, payload: '"y1"', signal: 'y', timedOut: false });
        const stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('running');
        expect(stored.nextInput).toBe('"y1"');
        expect(stored.nextInputSignal).toBe('y');
        const reclaimed = (await store.claimRun(run.runId, OTHER)) ?? stored;
        expect(reclaimed.nextInputSignal).toBe('y');
        expect(stored.waitSignals).toBeUndefined();
        expect(stored.waitUntil).toBeUndefined();
        expect(await store.takeSignal(run.runId, woke.leaseToken, ['z', 'x'])).toEqual({ ok: true, payload: '"x1"', signal: 'x', timedOut: false });
        expect(await store.takeSignal(run.runId, woke.leaseToken, ['x', 'y'])).toEqual({ ok: true, timedOut: false });
      });

      it('wakes a run waiting for any of its names, and only for those', async () => {
        const workflow = wf();
        const run = await createClaimed(workflow);
        await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['a', 'b'] } }));
        await store.sendSignal(run.runId, 'c', '"c"');
        expect(await store.claimRun(run.runId, OTHER)).toBeUndefined();
        await store.sendSignal(run.runId, 'b', '"b"');
        const woke = (await store.claimRun(run.runId, OTHER))!;
        expect(woke).toBeDefined();
        expect(await store.takeSignal(run.runId, woke.leaseToken, ['a', 'b'])).toMatchObject({ payload: '"b"', signal: 'b' });

        // paused from waiting: due, claimable once resumed
        const paused = await createClaimed(workflow);
        await store.commit(paused.runId, paused.leaseToken, patch({ wait: { signals: ['a', 'b'] } }));
        expect((await store.control(paused.runId, { action: 'pause' })).outcome).toBe('ok');
        expect((await store.getRun(paused.runId))!.waitSignals).toEqual(['a', 'b']);
        await store.sendSignal(paused.runId, 'a', '"a"');
        expect(await store.claimRun(paused.runId, OTHER)).toBeUndefined();
        await store.control(paused.runId, { action: 'resume' });
        const resumed = (await store.claimRun(paused.runId, OTHER))!;
        expect(resumed.status).toBe('waiting');
        expect(await store.takeSignal(paused.runId, resumed.leaseToken, ['b', 'a'])).toMatchObject({ payload: '"a"', signal: 'a' });
      });
    });

    describe('signal ids', () => {
      it('stores a signal once per id: a repeat is a noop that stores nothing and writes no event', async () => {
        const run = await createClaimed(wf());
        expect(await store.sendSignal(run.runId, 'go', '"1"', '{"t":"s1"}', { id: 'k1' })).toEqual({ outcome: 'ok', status: 'running', eventSeq: 1 });
        const repeat = await store.sendSignal(run.runId, 'go', '"2"', '{"t":"s2"}', { id: 'k1' });
        expect(repeat).toMatchObject({ outcome: 'noop', status: 'running' });
        expect(repeat.eventSeq).toBeUndefined();
        // the id is the run's, whatever the name
        expect((await store.sendSignal(run.runId, 'other', '"3"', undefined, { id: 'k1' })).outcome).toBe('noop');
        expect((await store.sendSignal(run.runId, 'go', '"4"', undefined, { id: 'k2' })).outcome).toBe('ok');
        expect((await store.sendSignal(run.runId, 'go', '"5"')).outcome).toBe('ok');
        expect((await store.sendSignal(run.runId, 'go', '"5"')).outcome).toBe('ok');
        expect(await store.listSignals(run.runId)).toEqual([
          { name: 'go', payload: '"1"' },
          { name: 'go', payload: '"4"' },
          { name: 'go', payload: '"5"' },
          { name: 'go', payload: '"5"' },
        ]);
        expect((await store.listEvents(run.runId, { limit: 10 })).map((e) => e.body)).toEqual(['{"t":"s1"}']);
      });

      it('remembers an id after its signal was consumed, and a repeat does not wake the run', async () => {
        const run = await createClaimed(wf());
        await store.sendSignal(run.runId, 'go', '"first"', undefined, { id: 'once' });
        expect(await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['go'] } }))).toMatchObject({ consumedSignal: { payload: '"first"' } });
        const waiting = await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['go'] } }));
        expect(waiting.ok && waiting.consumedSignal).toBeFalsy();
        expect((await store.sendSignal(run.runId, 'go', '"again"', undefined, { id: 'once' })).outcome).toBe('noop');
        expect(await store.listSignals(run.runId)).toEqual([]);
        expect(await store.claimRun(run.runId, OTHER)).toBeUndefined();
        expect((await store.sendSignal(run.runId, 'go', '"new"', undefined, { id: 'twice' })).outcome).toBe('ok');
        expect(await store.claimRun(run.runId, OTHER)).toBeDefined();
      });

      it('keeps ids per run', async () => {
        const workflow = wf();
        const a = await createClaimed(workflow);
        const b = await createClaimed(workflow);
        expect((await store.sendSignal(a.runId, 'go', '"a"', undefined, { id: 'same' })).outcome).toBe('ok');
        expect((await store.sendSignal(b.runId, 'go', '"b"', undefined, { id: 'same' })).outcome).toBe('ok');
        expect(await store.listSignals(b.runId)).toEqual([{ name: 'go', payload: '"b"' }]);
      });

      it('answers noop to a repeated id of an ended run, not-active to a new one, and not-found to an unknown run', async () => {
        const run = await createClaimed(wf());
        await store.sendSignal(run.runId, 'go', '"1"', undefined, { id: 'k' });
        await finish(run.runId, run.leaseToken, 'completed');
        expect(await store.sendSignal(run.runId, 'go', '"1"', '{"t":"late"}', { id: 'k' })).toEqual({ outcome: 'noop', status: 'completed' });
        expect(await store.sendSignal(run.runId, 'go', '"1"', undefined, { id: 'new' })).toEqual({ outcome: 'not-active', status: 'completed' });
        expect((await store.sendSignal(`missing-${randomUUID()}`, 'go', '1', undefined, { id: 'k' })).outcome).toBe('not-found');
        expect(await store.listEvents(run.runId, { limit: 10 })).toEqual([]);
      });

      it('deletes the ids with the run: a replaced or purged run accepts them again', async () => {
        const workflow = wf();
        const run = await createClaimed(workflow);
        await store.sendSignal(run.runId, 'go', '"1"', undefined, { id: 'k' });
        await store.createRun(newRun(workflow, { runId: run.runId }), { onConflict: 'replace' });
        expect((await store.sendSignal(run.runId, 'go', '"2"', undefined, { id: 'k' })).outcome).toBe('ok');
        const claimed = (await store.claimRun(run.runId, LEASE))!;
        await finish(run.runId, claimed.leaseToken, 'compensated');
        await sleep(20);
        await store.purge(['compensated'], 0);
        expect(await store.getRun(run.runId)).toBeUndefined();
        await createClaimed(workflow, { runId: run.runId });
        expect((await store.sendSignal(run.runId, 'go', '"3"', undefined, { id: 'k' })).outcome).toBe('ok');
        expect(await store.listSignals(run.runId)).toEqual([{ name: 'go', payload: '"3"' }]);
      });

      it('keeps the ids of a failed run through a retry', async () => {
        const run = await createClaimed(wf());
        await store.sendSignal(run.runId, 'go', '"1"', undefined, { id: 'k' });
        await finish(run.runId, run.leaseToken, 'failed');
        expect((await store.control(run.runId, { action: 'retry' })).outcome).toBe('ok');
        expect((await store.sendSignal(run.runId, 'go', '"2"', undefined, { id: 'k' })).outcome).toBe('noop');
        expect(await store.listSignals(run.runId)).toEqual([]);
      });
    });

    describe('child runs: spawn', () => {
      it('creates each new child pending and due now, linked to its parent, with generation 1 and its events', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const c1 = child(workflow, { events: ['{"t":"child start"}'], pipeline: 'fp-c' });
        const c2 = child(workflow);
        const res = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [c1, c2], endedAtLeast: 1 }) }));
        expect(res.ok).toBe(true);
        expect(res.ok && res.childrenReady).toBeFalsy();
        const stored = (await store.getRun(c1.runId))!;
        expect(stored).toMatchObject({ runId: c1.runId, workflow, version: 1, status: 'pending', input: c1.input, state: c1.state, generation: 1 });
        expect(stored.parentRunId).toBe(parent.runId);
        expect(stored.pipeline).toBe('fp-c');
        expect(stored.steps).toEqual([]);
        expect(stored.dueAt).toBeInstanceOf(Date);
        expect(stored.leaseToken).toBeUndefined();
        expect(await store.listEvents(c1.runId, { limit: 10 })).toEqual([{ seq: 1, body: '{"t":"child start"}' }]);
        expect(await store.listEvents(c2.runId, { limit: 10 })).toEqual([]);
        expect((await store.getRun(c2.runId))!.parentRunId).toBe(parent.runId);
        const claimed = await store.claimRuns(OTHER, 10, [v1(workflow)]);
        expect(claimed.map((r) => r.runId).sort()).toEqual([c1.runId, c2.runId].sort());
        expect(claimed.every((r) => r.status === 'running')).toBe(true);
      });

      it('makes the parent wait for more ends than it has seen: waiting, lease released, not claimable, new children not counted', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const res = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [child(workflow), child(workflow)], endedAtLeast: 1 }) }));
        expect(res.ok && res.childrenReady).toBeFalsy();
        const stored = (await store.getRun(parent.runId))!;
        expect(stored.status).toBe('waiting');
        expect(stored.leaseToken).toBeUndefined();
        expect(stored.children).toEqual({ ended: 0, failed: false, wait: { endedAtLeast: 1, failFast: false } });
        await expectParked(parent.runId);
        expect((await store.commit(parent.runId, parent.leaseToken, patch({ state: '{}' }))).ok).toBe(false);
      });

      it('lets the parent go on once its counter has reached endedAtLeast: running, lease kept, childrenReady', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const a = child(workflow);
        const res = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a], endedAtLeast: 0 }) }));
        expect(res).toMatchObject({ ok: true, childrenReady: true });
        let stored = (await store.getRun(parent.runId))!;
        expect(stored.status).toBe('running');
        expect(stored.leaseToken).toBe(parent.leaseToken);
        expect(stored.children).toEqual({ ended: 0, failed: false });
        expect(await store.claimRun(parent.runId, OTHER)).toBeUndefined();
        await finish(a.runId, (await store.claimRun(a.runId, OTHER))!.leaseToken, 'completed');
        // equal is enough
        const again = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ endedAtLeast: 1 }) }));
        expect(again).toMatchObject({ ok: true, childrenReady: true });
        stored = (await store.getRun(parent.runId))!;
        expect(stored.children).toEqual({ ended: 1, failed: false });
        expect(stored.leaseToken).toBe(parent.leaseToken);
        // one more than it has: it waits
        const waits = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ endedAtLeast: 2 }) }));
        expect(waits.ok && waits.childrenReady).toBeFalsy();
        stored = (await store.getRun(parent.runId))!;
        expect(stored.status).toBe('waiting');
        expect(stored.children).toEqual({ ended: 1, failed: false, wait: { endedAtLeast: 2, failFast: false } });
        await expectParked(parent.runId);
      });

      it('creates a held child not due until its parent releases it', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const other = await createClaimed(workflow);
        const held = child(workflow, { held: true });
        const foreign = child(workflow, { held: true });
        await store.commit(other.runId, other.leaseToken, patch({ children: children({ spawn: [foreign] }) }));
        const res = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [held] }) }));
        expect(res).toMatchObject({ ok: true, childrenReady: true });
        let stored = (await store.getRun(held.runId))!;
        expect(stored.status).toBe('pending');
        expect(stored.dueAt).toBeUndefined();
        expect(stored.parentRunId).toBe(parent.runId);
        expect(await store.claimRun(held.runId, OTHER)).toBeUndefined();
        expect((await store.getRunOutcomes([held.runId]))[0]).toMatchObject({ runId: held.runId, status: 'pending', held: true });
        // another parent's held child is not released by this one
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ release: [held.runId, foreign.runId] }) }));
        stored = (await store.getRun(held.runId))!;
        expect(stored.dueAt).toBeInstanceOf(Date);
        expect((await store.getRunOutcomes([held.runId]))[0].held).toBe(false);
        expect((await store.getRun(foreign.runId))!.dueAt).toBeUndefined();
        expect(await store.claimRun(foreign.runId, OTHER)).toBeUndefined();
        expect((await store.claimRun(held.runId, OTHER))?.status).toBe('running');
        // releasing a child that is not held changes nothing
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ release: [held.runId] }) }));
        expect((await store.getRun(held.runId))!.status).toBe('running');
      });

      it('releases a child spawned held in the same commit', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const held = child(workflow, { held: true });
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [held], release: [held.runId], endedAtLeast: 1 }) }));
        expect((await store.claimRun(held.runId, OTHER))?.runId).toBe(held.runId);
      });

      it('never replaces an existing id: links a run without a parent, leaves the others as they are', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const stranger = await createClaimed(workflow);
        const live = newRun(workflow, { events: ['{"t":"own"}'] });
        await store.createRun(live, { onConflict: 'keep' });
        const ended = await createClaimed(workflow);
        await finish(ended.runId, ended.leaseToken, 'completed');
        const foreign = child(workflow);
        await store.commit(stranger.runId, stranger.leaseToken, patch({ children: children({ spawn: [foreign] }) }));

        const spawn = [live, ended, foreign, { ...foreign, runId: parent.runId }].map((r) => child(workflow, { runId: r.runId, input: '"replaced?"', events: ['{"t":"x"}'] }));
        // the ended run counts at once: the commit goes on
        const res = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn, endedAtLeast: 1 }) }));
        expect(res).toMatchObject({ ok: true, childrenReady: true });
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 1, failed: false });
        const linked = (await store.getRun(live.runId))!;
        expect(linked).toMatchObject({ parentRunId: parent.runId, input: live.input, status: 'pending', generation: 1 });
        expect((await store.listEvents(live.runId, { limit: 10 })).map((e) => e.body)).toEqual(['{"t":"own"}']);
        const endedNow = (await store.getRun(ended.runId))!;
        expect(endedNow).toMatchObject({ status: 'completed', parentRunId: parent.runId, input: ended.input });
        expect((await store.getRun(foreign.runId))!.parentRunId).toBe(stranger.runId);
        const self = (await store.getRun(parent.runId))!;
        expect(self.parentRunId).toBeUndefined();
        expect(self.input).not.toBe('"replaced?"');
        expect(await store.listEvents(foreign.runId, { limit: 10 })).toEqual([]);

        // linked to this run already, and live: not counted
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [child(workflow, { runId: live.runId })] }) }));
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 1, failed: false });
        const listed = await store.listRuns({ parentRunId: parent.runId, limit: 10 });
        expect(listed.map((r) => r.runId).sort()).toEqual([live.runId, ended.runId].sort());
        // the linked run's end counts in its new parent
        await finish(live.runId, (await store.claimRun(live.runId, OTHER))!.leaseToken, 'failed');
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 2, failed: true });
      });

      it('counts every spawned run that has ended at once, its own or not; a live run of another parent never counts', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const stranger = await createClaimed(workflow);
        const endedOwnless = await createClaimed(workflow);
        await finish(endedOwnless.runId, endedOwnless.leaseToken, 'failed');
        const [endedForeign, liveForeign] = [child(workflow), child(workflow)];
        await store.commit(stranger.runId, stranger.leaseToken, patch({ children: children({ spawn: [endedForeign, liveForeign] }) }));
        await finish(endedForeign.runId, (await store.claimRun(endedForeign.runId, OTHER))!.leaseToken, 'completed');
        expect((await store.getRun(stranger.runId))!.children).toEqual({ ended: 1, failed: false });

        const spawn = [endedOwnless.runId, endedForeign.runId, liveForeign.runId].map((runId) => child(workflow, { runId }));
        const res = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn, endedAtLeast: 3 }) }));
        expect(res.ok && res.childrenReady).toBeFalsy();
        let stored = (await store.getRun(parent.runId))!;
        expect(stored.status).toBe('waiting');
        // an ended run counts whatever its end (failed is about ends the parent saw happen)
        expect(stored.children).toEqual({ ended: 2, failed: false, wait: { endedAtLeast: 3, failFast: false } });
        await expectParked(parent.runId);
        expect((await store.getRun(endedOwnless.runId))!.parentRunId).toBe(parent.runId);
        expect((await store.getRun(endedForeign.runId))!.parentRunId).toBe(stranger.runId);
        expect((await store.getRun(liveForeign.runId))!.parentRunId).toBe(stranger.runId);
        // the other parent's child ends: it counts for its own parent only
        await finish(liveForeign.runId, (await store.claimRun(liveForeign.runId, OTHER))!.leaseToken, 'failed');
        expect((await store.getRun(stranger.runId))!.children).toEqual({ ended: 2, failed: true });
        stored = (await store.getRun(parent.runId))!;
        expect(stored.children).toEqual({ ended: 2, failed: false, wait: { endedAtLeast: 3, failFast: false } });
        expect(stored.status).toBe('waiting');
        await expectParked(parent.runId);
      });

      it('goes on at once when a child failed and failFast is set, then resets the failed flag', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const c = child(workflow);
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [c, child(workflow)] }) }));
        const claimed = (await store.claimRun(c.runId, OTHER))!;
        await finish(c.runId, claimed.leaseToken, 'failed');
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 1, failed: true });
        // failFast off: the failure alone does not let the parent go on
        const notFast = await createClaimed(workflow);
        const d = child(workflow);
        await store.commit(notFast.runId, notFast.leaseToken, patch({ children: children({ spawn: [d, child(workflow)] }) }));
        await finish(d.runId, (await store.claimRun(d.runId, OTHER))!.leaseToken, 'failed');
        const waits = await store.commit(notFast.runId, notFast.leaseToken, patch({ children: children({ endedAtLeast: 2, failFast: false }) }));
        expect(waits.ok && waits.childrenReady).toBeFalsy();
        expect((await store.getRun(notFast.runId))!).toMatchObject({ status: 'waiting', children: { ended: 1, failed: false, wait: { endedAtLeast: 2, failFast: false } } });

        const res = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ endedAtLeast: 2, failFast: true }) }));
        expect(res).toMatchObject({ ok: true, childrenReady: true });
        let stored = (await store.getRun(parent.runId))!;
        expect(stored.status).toBe('running');
        expect(stored.children).toEqual({ ended: 1, failed: false });
        // the flag was reset (the counter was not): the same wait now waits
        const second = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ endedAtLeast: 2, failFast: true }) }));
        expect(second.ok && second.childrenReady).toBeFalsy();
        stored = (await store.getRun(parent.runId))!;
        expect(stored.status).toBe('waiting');
        expect(stored.children).toEqual({ ended: 1, failed: false, wait: { endedAtLeast: 2, failFast: true } });
      });

      it('publishes a ready event for each due child created or released, when it supports events', async () => {
        if (!store.subscribe) return;
        const events: StoreEvent[] = [];
        const unsubscribe = await store.subscribe((e) => events.push(e));
        try {
          const workflow = wf();
          const parent = await createClaimed(workflow);
          const due = child(workflow);
          const held = child(workflow, { held: true });
          await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [due, held] }) }));
          await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ release: [held.runId] }) }));
          const deadline = Date.now() + 3_000;
          const seen = (id: string) => events.some((e) => e.type === 'ready' && e.runId === id);
          while (Date.now() < deadline && !(seen(due.runId) && seen(held.runId))) await sleep(10);
          expect(events).toContainEqual({ type: 'ready', runId: due.runId });
          expect(events).toContainEqual({ type: 'ready', runId: held.runId });
        } finally {
          await unsubscribe();
        }
      });

      it('lists the children of a run newest first, in pages, with the other filters', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const ids: string[] = [];
        for (let round = 0; round < 3; round++) {
          const batch = Array.from({ length: 3 }, () => child(workflow));
          ids.push(...batch.map((c) => c.runId));
          await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: batch }) }));
          await store.createRun(newRun(workflow), { onConflict: 'keep' }); // not a child
          await sleep(3);
        }
        const seen: StoredRun[] = [];
        let after: { createdAt: Date; runId: string } | undefined;
        for (let page = 0; page < 10; page++) {
          const runs = await store.listRuns({ parentRunId: parent.runId, limit: 4, after });
          seen.push(...runs);
          if (runs.length < 4) break;
          const last = runs[runs.length - 1];
          after = { createdAt: last.createdAt, runId: last.runId };
        }
        expect(seen.map((r) => r.runId).sort()).toEqual([...ids].sort());
        expect(new Set(seen.map((r) => r.runId)).size).toBe(ids.length);
        const all = await store.listRuns({ parentRunId: parent.runId, limit: 50 });
        expect(seen.map((r) => r.runId)).toEqual(all.map((r) => r.runId));
        for (let i = 1; i < all.length; i++) expect(all[i - 1].createdAt.getTime()).toBeGreaterThanOrEqual(all[i].createdAt.getTime());
        expect(all.every((r) => r.parentRunId === parent.runId)).toBe(true);
        const done = (await store.claimRun(ids[0], OTHER))!;
        await finish(ids[0], done.leaseToken, 'completed');
        expect((await store.listRuns({ parentRunId: parent.runId, statuses: ['completed'], limit: 50 })).map((r) => r.runId)).toEqual([ids[0]]);
        expect(await store.listRuns({ parentRunId: parent.runId, workflow: wf(), limit: 50 })).toEqual([]);
        expect(await store.listRuns({ parentRunId: `missing-${randomUUID()}`, limit: 50 })).toEqual([]);
      });
    });

    describe('child runs: end', () => {
      it('counts each child end once in its parent, never down, and sets failed when it did not complete', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const [a, b, c] = [child(workflow), child(workflow), child(workflow)];
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a, b, c] }) }));
        const ca = (await store.claimRun(a.runId, OTHER))!;
        await finish(a.runId, ca.leaseToken, 'completed');
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 1, failed: false });
        // a fenced-out end changes nothing
        expect((await store.commit(a.runId, ca.leaseToken, patch({ status: 'failed' }))).ok).toBe(false);
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 1, failed: false });
        const cb = (await store.claimRun(b.runId, OTHER))!;
        await finish(b.runId, cb.leaseToken, 'cancelled');
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 2, failed: true });
        // the parent was not waiting: it keeps its lease and status
        const stored = (await store.getRun(parent.runId))!;
        expect(stored.status).toBe('running');
        expect(stored.leaseToken).toBe(parent.leaseToken);
        // a children commit resets the flag, never the counter
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ endedAtLeast: 0 }) }));
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 2, failed: false });
        const cc = (await store.claimRun(c.runId, OTHER))!;
        await finish(c.runId, cc.leaseToken, 'completed');
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 3, failed: false });
      });

      it('counts a retried child that ends again once more, and that end can wake its parent', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const a = child(workflow);
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a] }) }));
        await finish(a.runId, (await store.claimRun(a.runId, OTHER))!.leaseToken, 'failed');
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 1, failed: true });
        // a retry takes nothing back
        expect((await store.control(a.runId, { action: 'retry' })).outcome).toBe('ok');
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 1, failed: true });
        const res = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ endedAtLeast: 2 }) }));
        expect(res.ok && res.childrenReady).toBeFalsy();
        await expectParked(parent.runId);
        expect((await store.getRunOutcomes([parent.runId]))[0].childrenEnded).toBe(1);
        await finish(a.runId, (await store.claimRun(a.runId, OTHER))!.leaseToken, 'completed');
        const stored = (await store.getRun(parent.runId))!;
        expect(stored.children).toEqual({ ended: 2, failed: false, wait: { endedAtLeast: 2, failFast: false } });
        expect(stored.dueAt).toBeInstanceOf(Date);
        expect(stored.dueAt!.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
        expect((await store.claimRun(parent.runId, OTHER))?.status).toBe('waiting');
        expect((await store.getRunOutcomes([parent.runId]))[0].childrenEnded).toBe(2);
      });

      it('wakes a waiting parent only when its condition holds', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const [a, b, c] = [child(workflow), child(workflow), child(workflow)];
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a, b, c], endedAtLeast: 2 }) }));
        // a failure does not wake it without failFast
        await finish(a.runId, (await store.claimRun(a.runId, OTHER))!.leaseToken, 'failed');
        let stored = (await store.getRun(parent.runId))!;
        expect(stored.children).toEqual({ ended: 1, failed: true, wait: { endedAtLeast: 2, failFast: false } });
        expect(stored.status).toBe('waiting');
        await expectParked(parent.runId);
        // the second end brings the counter up to endedAtLeast
        await finish(b.runId, (await store.claimRun(b.runId, OTHER))!.leaseToken, 'completed');
        stored = (await store.getRun(parent.runId))!;
        expect(stored.children).toMatchObject({ ended: 2, failed: true });
        expect(stored.dueAt).toBeInstanceOf(Date);
        expect(stored.dueAt!.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
        const woke = (await store.claimRun(parent.runId, OTHER))!;
        expect(woke).toBeDefined();
        expect(woke.status).toBe('waiting');
        expect(woke.recovered).toBe(false);
      });

      it('wakes a failFast parent at the first failure, not at a success', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const [a, b, c] = [child(workflow), child(workflow), child(workflow)];
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a, b, c], endedAtLeast: 3, failFast: true }) }));
        await finish(a.runId, (await store.claimRun(a.runId, OTHER))!.leaseToken, 'completed');
        expect((await store.getRun(parent.runId))!.children).toMatchObject({ ended: 1, failed: false });
        await expectParked(parent.runId);
        await finish(b.runId, (await store.claimRun(b.runId, OTHER))!.leaseToken, 'compensated');
        expect((await store.getRun(parent.runId))!.children).toMatchObject({ ended: 2, failed: true });
        expect((await store.claimRun(parent.runId, OTHER))?.status).toBe('waiting');
      });

      it('goes on at the commit when a child ended after the parent read its counter (endedAtLeast is not reached by its own read)', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const [a, b] = [child(workflow), child(workflow)];
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a, b] }) }));
        // the parent reads itself first, then its children: none has ended yet
        let read = await store.getRunOutcomes([parent.runId, a.runId, b.runId]);
        let mine = read.find((o) => o.runId === parent.runId)!;
        expect(mine.childrenEnded).toBe(0);
        expect(read.filter((o) => o.runId !== parent.runId).map((o) => o.status)).toEqual(['pending', 'pending']);
        // a child ends between that read and the parent's commit
        await finish(a.runId, (await store.claimRun(a.runId, OTHER))!.leaseToken, 'completed');
        // the parent asks for one end more than it read: it is already there, so it does not wait (and miss it)
        const res = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ endedAtLeast: mine.childrenEnded! + 1 }) }));
        expect(res).toMatchObject({ ok: true, childrenReady: true });
        let stored = (await store.getRun(parent.runId))!;
        expect(stored).toMatchObject({ status: 'running', leaseToken: parent.leaseToken, children: { ended: 1, failed: false } });
        expect(stored.children?.wait).toBeUndefined();
        // read again: the counter shows that end; waiting for one more is woken by the other child
        read = await store.getRunOutcomes([parent.runId, a.runId, b.runId]);
        mine = read.find((o) => o.runId === parent.runId)!;
        expect(mine.childrenEnded).toBe(1);
        expect(read.find((o) => o.runId === a.runId)!.status).toBe('completed');
        const waits = await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ endedAtLeast: mine.childrenEnded! + 1 }) }));
        expect(waits.ok && waits.childrenReady).toBeFalsy();
        await expectParked(parent.runId);
        await finish(b.runId, (await store.claimRun(b.runId, OTHER))!.leaseToken, 'completed');
        stored = (await store.getRun(parent.runId))!;
        expect(stored.children).toMatchObject({ ended: 2 });
        expect((await store.claimRun(parent.runId, OTHER))?.status).toBe('waiting');
      });

      it('makes a parent paused while waiting due, claimable once resumed', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const quiet = await createClaimed(workflow);
        const a = child(workflow);
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a], endedAtLeast: 1 }) }));
        await store.commit(quiet.runId, quiet.leaseToken, patch({ children: children({ spawn: [child(workflow)], endedAtLeast: 1 }) }));
        for (const id of [parent.runId, quiet.runId]) {
          expect((await store.control(id, { action: 'pause' })).outcome).toBe('ok');
          expect((await store.getRun(id))!).toMatchObject({ status: 'paused', resumeStatus: 'waiting' });
        }
        await finish(a.runId, (await store.claimRun(a.runId, OTHER))!.leaseToken, 'completed');
        const stored = (await store.getRun(parent.runId))!;
        expect(stored.status).toBe('paused');
        expect(stored.children).toMatchObject({ ended: 1 });
        expect(await store.claimRun(parent.runId, OTHER)).toBeUndefined();
        for (const id of [parent.runId, quiet.runId]) await store.control(id, { action: 'resume' });
        expect((await store.claimRun(parent.runId, OTHER))?.status).toBe('waiting');
        // without a child's end, the other one still waits
        expect(await store.claimRun(quiet.runId, OTHER)).toBeUndefined();
      });

      it('ends the children wait at the parent\'s next commit: a later child end does not wake a run waiting for a signal', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const [a, b] = [child(workflow), child(workflow)];
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a, b], endedAtLeast: 1 }) }));
        await finish(a.runId, (await store.claimRun(a.runId, OTHER))!.leaseToken, 'completed');
        const woke = (await store.claimRun(parent.runId, OTHER))!;
        expect(woke.children).toEqual({ ended: 1, failed: false, wait: { endedAtLeast: 1, failFast: false } });
        await store.commit(parent.runId, woke.leaseToken, patch({ wait: { signals: ['go'] } }));
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 1, failed: false });
        await finish(b.runId, (await store.claimRun(b.runId, OTHER))!.leaseToken, 'failed');
        const stored = (await store.getRun(parent.runId))!;
        expect(stored.children).toEqual({ ended: 2, failed: true });
        expect(stored.status).toBe('waiting');
        expect(await store.claimRun(parent.runId, OTHER)).toBeUndefined();
      });

      it('publishes a ready event for a woken parent, when it supports events', async () => {
        if (!store.subscribe) return;
        const events: StoreEvent[] = [];
        const unsubscribe = await store.subscribe((e) => events.push(e));
        try {
          const workflow = wf();
          const parent = await createClaimed(workflow);
          const a = child(workflow);
          await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a], endedAtLeast: 1 }) }));
          await finish(a.runId, (await store.claimRun(a.runId, OTHER))!.leaseToken, 'completed');
          const deadline = Date.now() + 3_000;
          while (Date.now() < deadline && !events.some((e) => e.type === 'ready' && e.runId === parent.runId)) await sleep(10);
          expect(events).toContainEqual({ type: 'ready', runId: parent.runId });
        } finally {
          await unsubscribe();
        }
      });

      it('ends a child whose parent is gone', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const a = child(workflow);
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a] }) }));
        await finish(parent.runId, parent.leaseToken, 'compensated');
        await sleep(20);
        await store.purge(['compensated'], 0);
        expect(await store.getRun(parent.runId)).toBeUndefined();
        const ca = (await store.claimRun(a.runId, OTHER))!;
        expect((await store.commit(a.runId, ca.leaseToken, patch({ status: 'failed', error: { name: 'E', message: 'm' } }))).ok).toBe(true);
        expect((await store.getRun(a.runId))!).toMatchObject({ status: 'failed', parentRunId: parent.runId });
        expect(await store.getRun(parent.runId)).toBeUndefined();
      });

      it('ends a parent like any run: its own wait cleared, its children left running', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const a = child(workflow);
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a], endedAtLeast: 1 }) }));
        await store.control(parent.runId, { action: 'cancel', compensate: false });
        const claimed = (await store.claimRun(parent.runId, OTHER))!;
        await store.commit(parent.runId, claimed.leaseToken, patch({ status: 'cancelled', clearCancel: true }));
        const stored = (await store.getRun(parent.runId))!;
        expect(stored.status).toBe('cancelled');
        expect(stored.children?.wait).toBeUndefined();
        expect((await store.getRun(a.runId))!.status).toBe('pending');
      });
    });

    describe('getRunOutcomes', () => {
      it('returns the outcome of each run that exists, leaving unknown ids out', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const [a, b, held, d] = [child(workflow), child(workflow), child(workflow, { held: true }), child(workflow)];
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a, b, held, d] }) }));
        const ca = (await store.claimRun(a.runId, OTHER))!;
        await store.commit(a.runId, ca.leaseToken, patch({ status: 'completed', output: '{"ok":"ünï 🚀"}' }));
        const cb = (await store.claimRun(b.runId, OTHER))!;
        await store.commit(b.runId, cb.leaseToken, patch({ status: 'failed', error: { name: 'Boom', message: 'it broke', step: 's', phase: 'step' } }));
        await store.claimRun(d.runId, OTHER);
        const plain = newRun(workflow);
        await store.createRun(plain, { onConflict: 'keep' });
        const missing = `missing-${randomUUID()}`;
        const outcomes = await store.getRunOutcomes([parent.runId, a.runId, missing, b.runId, held.runId, d.runId, plain.runId]);
        const byId = [...outcomes].sort((x, y) => (x.runId < y.runId ? -1 : x.runId > y.runId ? 1 : 0));
        const expected = [
          { runId: parent.runId, status: 'running', held: false, childrenEnded: 2 },
          { runId: a.runId, status: 'completed', output: '{"ok":"ünï 🚀"}', parentRunId: parent.runId, held: false },
          { runId: b.runId, status: 'failed', error: { name: 'Boom', message: 'it broke', step: 's', phase: 'step' }, parentRunId: parent.runId, held: false },
          { runId: held.runId, status: 'pending', parentRunId: parent.runId, held: true },
          { runId: d.runId, status: 'running', parentRunId: parent.runId, held: false },
          { runId: plain.runId, status: 'pending', held: false },
        ].sort((x, y) => (x.runId < y.runId ? -1 : x.runId > y.runId ? 1 : 0));
        expect(byId).toEqual(expected);
        expect(byId.find((o) => o.runId === plain.runId)!.parentRunId).toBeUndefined();
        // childrenEnded only for a run that has children state
        for (const id of [a.runId, b.runId, held.runId, d.runId, plain.runId]) expect(byId.find((o) => o.runId === id)!.childrenEnded).toBeUndefined();
        expect(await store.getRunOutcomes([])).toEqual([]);
        expect(await store.getRunOutcomes([missing])).toEqual([]);
      });

      it('reports a parent\'s counter of child ends as childrenEnded, 0 before any end, read alone or among others', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const a = child(workflow);
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a], endedAtLeast: 1 }) }));
        expect(await store.getRunOutcomes([parent.runId])).toEqual([{ runId: parent.runId, status: 'waiting', held: false, childrenEnded: 0 }]);
        await finish(a.runId, (await store.claimRun(a.runId, OTHER))!.leaseToken, 'completed');
        const outcomes = await store.getRunOutcomes([parent.runId, a.runId]);
        expect(outcomes.find((o) => o.runId === parent.runId)).toEqual({ runId: parent.runId, status: 'waiting', held: false, childrenEnded: 1 });
        expect(outcomes.find((o) => o.runId === a.runId)).toMatchObject({ status: 'completed', parentRunId: parent.runId });
      });

      it('reads many runs in one call', async () => {
        const workflow = wf();
        const ids: string[] = [];
        for (let i = 0; i < 40; i++) {
          const r = newRun(workflow, { runId: `${workflow}-${i}-{slot${i}}` });
          await store.createRun(r, { onConflict: 'keep' });
          ids.push(r.runId);
        }
        const outcomes = await store.getRunOutcomes(ids);
        expect(outcomes.map((o) => o.runId).sort()).toEqual([...ids].sort());
        expect(outcomes.every((o) => o.status === 'pending' && o.held === false)).toBe(true);
      });
    });

    describe('restart (continue-as-new)', () => {
      it('deletes the steps, replaces the input, raises the generation, then applies the rest of the patch', async () => {
        const workflow = wf();
        const run = await createClaimed(workflow, { steps: [{ name: 'a', status: 'running', attempts: 0 }], currentStep: 'a', events: ['{"t":"start"}'] });
        await store.commit(run.runId, run.leaseToken, patch({
          steps: [
            { index: 0, step: { name: 'a', status: 'completed', attempts: 1, output: '1' } },
            { index: 1, step: { name: 'b', status: 'running', attempts: 0 } },
          ],
        }));
        await store.sendSignal(run.runId, 'go', '"handed"', undefined, { id: 'used' });
        expect(await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['go'] } }))).toMatchObject({ consumedSignal: { payload: '"handed"' } });
        await store.sendSignal(run.runId, 'later', '"queued"', undefined, { id: 'queued' });
        const first = { name: 'a', status: 'running' as const, attempts: 0 };
        const res = await store.commit(run.runId, run.leaseToken, patch({
          restart: { input: '"next round"' },
          keepInput: true,
          state: '{"round":2}',
          currentStep: 'a',
          steps: [{ index: 0, step: first }],
          events: ['{"t":"continued"}'],
        }));
        expect(res).toMatchObject({ ok: true, lastEventSeq: 2 });
        const stored = (await store.getRun(run.runId))!;
        expect(stored.steps).toEqual([first]);
        expect(stored.input).toBe('"next round"');
        expect(stored.generation).toBe(2);
        expect(stored.state).toBe('{"round":2}');
        expect(stored.currentStep).toBe('a');
        expect(stored.nextInput).toBeUndefined();
        expect(stored.status).toBe('running');
        expect(stored.leaseToken).toBe(run.leaseToken);
        expect(stored.createdAt.getTime()).toBe(run.createdAt.getTime());
        // history, queued signals and signal ids are kept
        expect((await store.listEvents(run.runId, { limit: 10 })).map((e) => e.body)).toEqual(['{"t":"start"}', '{"t":"continued"}']);
        expect(await store.listSignals(run.runId)).toEqual([{ name: 'later', payload: '"queued"' }]);
        expect((await store.sendSignal(run.runId, 'go', '"x"', undefined, { id: 'used' })).outcome).toBe('noop');
        expect((await store.sendSignal(run.runId, 'later', '"x"', undefined, { id: 'queued' })).outcome).toBe('noop');
        // and again
        await store.commit(run.runId, run.leaseToken, patch({ restart: { input: '"third"' } }));
        const third = (await store.getRun(run.runId))!;
        expect(third).toMatchObject({ generation: 3, input: '"third"', steps: [] });
        expect((await store.getRunOutcomes([run.runId]))[0]).toMatchObject({ status: 'running' });
      });

      it('clears the children state (the counter too); the old children stay linked', async () => {
        const workflow = wf();
        const parent = await createClaimed(workflow);
        const [a, b] = [child(workflow), child(workflow)];
        await store.commit(parent.runId, parent.leaseToken, patch({ children: children({ spawn: [a, b] }) }));
        await finish(b.runId, (await store.claimRun(b.runId, OTHER))!.leaseToken, 'failed');
        expect((await store.getRun(parent.runId))!.children).toEqual({ ended: 1, failed: true });
        await store.commit(parent.runId, parent.leaseToken, patch({ restart: { input: '"again"' } }));
        expect((await store.getRun(parent.runId))!.children).toBeUndefined();
        expect((await store.getRunOutcomes([parent.runId]))[0].childrenEnded).toBeUndefined();
        expect((await store.getRun(a.runId))!.parentRunId).toBe(parent.runId);
        await finish(a.runId, (await store.claimRun(a.runId, OTHER))!.leaseToken, 'completed');
        const after = (await store.getRun(parent.runId))!;
        expect(after.children?.ended ?? 0).toBe(0);
        expect(after.children?.wait).toBeUndefined();
        expect(after.leaseToken).toBe(parent.leaseToken);
      });

      it('is fenced like any commit', async () => {
        const run = await createClaimed(wf());
        expect((await store.commit(run.runId, 'stale-token', patch({ restart: { input: '"x"' } }))).ok).toBe(false);
        expect((await store.getRun(run.runId))!).toMatchObject({ generation: 1, input: run.input });
      });
    });

    describe('control requests', () => {
      it('pauses a run that is not leased at once, and resumes it where it was', async () => {
        const r = newRun(wf());
        await store.createRun(r, { onConflict: 'keep' });
        expect(await store.control(r.runId, { action: 'pause' })).toEqual({ outcome: 'ok', status: 'pending' });
        let stored = (await store.getRun(r.runId))!;
        expect(stored.status).toBe('paused');
        expect(stored.resumeStatus).toBe('pending');
        expect(await store.claimRun(r.runId, OTHER)).toBeUndefined();
        expect((await store.control(r.runId, { action: 'pause' })).outcome).toBe('noop');
        expect(await store.control(r.runId, { action: 'resume' })).toEqual({ outcome: 'ok', status: 'paused' });
        stored = (await store.getRun(r.runId))!;
        expect(stored.status).toBe('pending');
        expect(stored.resumeStatus).toBeUndefined();
        expect((await store.control(r.runId, { action: 'resume' })).outcome).toBe('noop');
        expect(await store.claimRun(r.runId, OTHER)).toBeDefined();
      });

      it('keeps the due time of a delayed run through pause and resume: claimed no earlier, at once when resumed later', async () => {
        const workflow = wf();
        // `early` is resumed before its due time, `late` after it.
        const early = newRun(workflow, { due: { delayMs: 1_500 } });
        const late = newRun(workflow, { due: { delayMs: 1_500 } });
        for (const r of [early, late]) await store.createRun(r, { onConflict: 'keep' });
        const dueOf = async (runId: string) => (await store.getRun(runId))!.dueAt?.getTime();
        const earlyDue = (await dueOf(early.runId))!;
        const lateDue = (await dueOf(late.runId))!;
        expect(earlyDue).toBeGreaterThan(Date.now() + 500);
        for (const r of [early, late]) expect(await store.control(r.runId, { action: 'pause' })).toEqual({ outcome: 'ok', status: 'pending' });
        expect(await dueOf(early.runId)).toBe(earlyDue);
        expect(await dueOf(late.runId)).toBe(lateDue);
        expect((await store.control(early.runId, { action: 'resume' })).outcome).toBe('ok');
        expect((await store.getRun(early.runId))!).toMatchObject({ status: 'pending', dueAt: new Date(earlyDue) });
        expect(await store.claimRuns(OTHER, 10, [v1(workflow)])).toEqual([]);
        expect(await store.claimRun(early.runId, OTHER)).toBeUndefined();
        await sleep(Math.max(earlyDue, lateDue) - Date.now() + 150);
        const first = await store.claimRuns(OTHER, 10, [v1(workflow)]);
        expect(first.map((r) => r.runId)).toEqual([early.runId]);
        expect(first[0].status).toBe('running');
        expect((await store.control(late.runId, { action: 'resume' })).outcome).toBe('ok');
        expect(await dueOf(late.runId)).toBe(lateDue);
        expect((await store.claimRuns(OTHER, 10, [v1(workflow)])).map((r) => r.runId)).toEqual([late.runId]);
      });

      it('keeps the due time of an unleased sleeping run and of a run released for a retry through pause and resume', async () => {
        const workflow = wf();
        const sleeping = await createClaimed(workflow);
        await store.commit(sleeping.runId, sleeping.leaseToken, patch({ status: 'sleeping', due: { delayMs: 60_000 }, release: true }));
        const backoff = await createClaimed(workflow);
        await store.commit(backoff.runId, backoff.leaseToken, patch({ keepInput: true, due: { delayMs: 60_000 }, release: true }));
        for (const r of [sleeping, backoff]) {
          const due = (await store.getRun(r.runId))!.dueAt!.getTime();
          expect(due).toBeGreaterThan(Date.now() + 50_000);
          expect((await store.control(r.runId, { action: 'pause' })).outcome).toBe('ok');
          expect((await store.getRun(r.runId))!).toMatchObject({ status: 'paused', dueAt: new Date(due) });
          expect((await store.control(r.runId, { action: 'resume' })).outcome).toBe('ok');
          expect((await store.getRun(r.runId))!.dueAt!.getTime()).toBe(due);
        }
        expect((await store.getRun(sleeping.runId))!.status).toBe('sleeping');
        expect((await store.getRun(backoff.runId))!.status).toBe('running');
        expect(await store.claimRuns(OTHER, 10, [v1(workflow)])).toEqual([]);
      });

      it('keeps a signal sent to a paused waiting run and wakes it on resume', async () => {
        const run = await createClaimed(wf());
        await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['go'] } }));
        await store.control(run.runId, { action: 'pause' });
        expect((await store.getRun(run.runId))!.status).toBe('paused');
        expect((await store.sendSignal(run.runId, 'go', '"late"')).outcome).toBe('ok');
        expect(await store.claimRun(run.runId, OTHER)).toBeUndefined();
        await store.control(run.runId, { action: 'resume' });
        const woke = (await store.claimRun(run.runId, OTHER))!;
        expect(woke.status).toBe('waiting');
        expect((await store.takeSignal(run.runId, woke.leaseToken, ['go']))).toMatchObject({ payload: '"late"' });
      });

      it('pauses a leased run at its next commit', async () => {
        const run = await createClaimed(wf());
        expect((await store.control(run.runId, { action: 'pause' })).outcome).toBe('ok');
        let stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('running');
        expect(stored.pauseRequested).toBe(true);
        expect(await store.renewLease(run.runId, run.leaseToken, 30_000)).toEqual({ ok: true, pauseRequested: true });
        const res = await store.commit(run.runId, run.leaseToken, patch({ state: '"after-step"' }));
        expect(res).toEqual({ ok: true, paused: true });
        stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('paused');
        expect(stored.resumeStatus).toBe('running');
        expect(stored.state).toBe('"after-step"');
        expect(stored.leaseToken).toBeUndefined();
        expect(stored.pauseRequested).toBe(false);
        await store.control(run.runId, { action: 'resume' });
        const again = (await store.claimRun(run.runId, OTHER))!;
        expect(again.status).toBe('running');
      });

      it('pauses a leased run going to sleep, keeping its wake-up time', async () => {
        const run = await createClaimed(wf());
        await store.control(run.runId, { action: 'pause' });
        const res = await store.commit(run.runId, run.leaseToken, patch({ status: 'sleeping', due: { delayMs: 60_000 }, release: true }));
        expect(res).toMatchObject({ ok: true, paused: true });
        await store.control(run.runId, { action: 'resume' });
        const stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('sleeping');
        expect(await store.claimRun(run.runId, OTHER)).toBeUndefined();
      });

      it('withdraws a pending pause request on resume', async () => {
        const run = await createClaimed(wf());
        await store.control(run.runId, { action: 'pause' });
        expect((await store.control(run.runId, { action: 'resume' })).outcome).toBe('ok');
        const res = await store.commit(run.runId, run.leaseToken, patch({}));
        expect(res).toEqual({ ok: true });
        expect((await store.getRun(run.runId))!.status).toBe('running');
      });

      it('records a cancel on a leased run and reports it to the lease holder', async () => {
        const run = await createClaimed(wf());
        expect(await store.control(run.runId, { action: 'cancel', compensate: true })).toEqual({ outcome: 'ok', status: 'running' });
        expect((await store.control(run.runId, { action: 'cancel', compensate: false })).outcome).toBe('noop');
        expect(await store.renewLease(run.runId, run.leaseToken, 30_000)).toEqual({ ok: true, cancel: { compensate: true }, pauseRequested: false });
        const res = await store.commit(run.runId, run.leaseToken, patch({ status: 'compensating' }));
        expect(res).toEqual({ ok: true, cancel: { compensate: true } });
        expect((await store.control(run.runId, { action: 'cancel', compensate: true })).outcome).toBe('noop');
        await store.commit(run.runId, run.leaseToken, patch({ status: 'cancelled', clearCancel: true }));
        const stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('cancelled');
        expect(stored.cancelRequested).toBeUndefined();
        expect((await store.control(run.runId, { action: 'cancel', compensate: true })).outcome).toBe('noop');
        expect((await store.control(run.runId, { action: 'pause' })).outcome).toBe('not-active');
        expect((await store.control(run.runId, { action: 'resume' })).outcome).toBe('not-active');
      });

      it('makes a sleeping, waiting or paused run due at once when cancelled', async () => {
        const workflow = wf();
        const sleeping = await createClaimed(workflow);
        await store.commit(sleeping.runId, sleeping.leaseToken, patch({ status: 'sleeping', due: { delayMs: 60_000 }, release: true }));
        const waiting = await createClaimed(workflow);
        await store.commit(waiting.runId, waiting.leaseToken, patch({ wait: { signals: ['never'] } }));
        const paused = newRun(workflow);
        await store.createRun(paused, { onConflict: 'keep' });
        await store.control(paused.runId, { action: 'pause' });
        for (const id of [sleeping.runId, waiting.runId, paused.runId]) {
          expect((await store.control(id, { action: 'cancel', compensate: false })).outcome).toBe('ok');
        }
        expect((await store.getRun(paused.runId))!.status).toBe('pending');
        const claimed = await store.claimRuns(OTHER, 10, [v1(workflow)]);
        expect(claimed.map((r) => r.runId).sort()).toEqual([sleeping.runId, waiting.runId, paused.runId].sort());
        for (const r of claimed) expect(r.cancelRequested).toEqual({ compensate: false });
      });

      it('keeps a cancelled run due when the lease holder commits without handling it', async () => {
        const run = await createClaimed(wf());
        await store.control(run.runId, { action: 'cancel', compensate: false });
        const res = await store.commit(run.runId, run.leaseToken, patch({ status: 'sleeping', due: { delayMs: 60_000 }, release: true }));
        expect(res).toEqual({ ok: true, cancel: { compensate: false } });
        expect(await store.claimRun(run.runId, OTHER)).toBeDefined();
      });

      it('answers not-found and not-active', async () => {
        const missing = `missing-${randomUUID()}`;
        for (const request of [{ action: 'pause' }, { action: 'resume' }, { action: 'cancel', compensate: true }, { action: 'retry' }] as const) {
          expect((await store.control(missing, request)).outcome).toBe('not-found');
        }
        const run = await createClaimed(wf());
        await finish(run.runId, run.leaseToken, 'completed');
        expect(await store.control(run.runId, { action: 'cancel', compensate: true })).toEqual({ outcome: 'not-active', status: 'completed' });
        expect((await store.control(run.runId, { action: 'pause' })).outcome).toBe('not-active');
      });

      it('retries only a failed run: back to pending, error cleared, due now', async () => {
        const run = await createClaimed(wf());
        expect((await store.control(run.runId, { action: 'retry' })).outcome).toBe('invalid-state');
        await store.commit(run.runId, run.leaseToken, patch({ status: 'failed', error: { name: 'E', message: 'm', step: 's', phase: 'step' } }));
        expect(await store.control(run.runId, { action: 'retry' })).toEqual({ outcome: 'ok', status: 'failed' });
        const stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('pending');
        expect(stored.error).toBeUndefined();
        expect(stored.finishedAt).toBeUndefined();
        const again = (await store.claimRun(run.runId, OTHER))!;
        expect(again.status).toBe('running');
        await finish(run.runId, again.leaseToken, 'completed');
        expect((await store.control(run.runId, { action: 'retry' })).outcome).toBe('invalid-state');
      });
    });

    describe('listRuns', () => {
      it('pages newest first without duplicates or gaps, with filters', async () => {
        const workflow = wf();
        const other = wf();
        const ids: string[] = [];
        for (let i = 0; i < 23; i++) {
          const r = newRun(i % 5 === 0 ? other : workflow);
          await store.createRun(r, { onConflict: 'keep' });
          if (i % 5 !== 0) ids.push(r.runId);
          if (i % 4 === 0) await sleep(2);
        }
        const seen: StoredRun[] = [];
        let after: { createdAt: Date; runId: string } | undefined;
        for (let page = 0; page < 10; page++) {
          const runs = await store.listRuns({ workflow, limit: 5, after });
          seen.push(...runs);
          if (runs.length < 5) break;
          const last = runs[runs.length - 1];
          after = { createdAt: last.createdAt, runId: last.runId };
        }
        expect(seen.map((r) => r.runId).sort()).toEqual([...ids].sort());
        expect(new Set(seen.map((r) => r.runId)).size).toBe(ids.length);
        for (let i = 1; i < seen.length; i++) {
          const a = seen[i - 1];
          const b = seen[i];
          const ordered = a.createdAt.getTime() > b.createdAt.getTime() || (a.createdAt.getTime() === b.createdAt.getTime() && a.runId > b.runId);
          expect(ordered).toBe(true);
        }
        const claimed = (await store.claimRun(ids[0], LEASE))!;
        await finish(ids[0], claimed.leaseToken, 'completed');
        const completed = await store.listRuns({ workflow, statuses: ['completed'], limit: 50 });
        expect(completed.map((r) => r.runId)).toEqual([ids[0]]);
        const mixed = await store.listRuns({ workflow, statuses: ['completed', 'pending'], limit: 50 });
        expect(mixed).toHaveLength(ids.length);
        expect(await store.listRuns({ workflow: `none-${randomUUID()}`, limit: 50 })).toEqual([]);
      });

      it('orders runs created in the same millisecond by run id code point, descending', async () => {
        const workflow = wf();
        // U+1F600 sorts after U+E000 by code point (and UTF-8 bytes), before it by UTF-16 units.
        const ids = ['\uE000', '\u{1F600}', 'a', 'Z', '\u00e9'].map((id) => `${prefix}-${id}`);
        // created at once, so that several share a millisecond
        await Promise.all(ids.map((runId) => store.createRun({ ...newRun(workflow), runId }, { onConflict: 'keep' })));
        const runs = await store.listRuns({ workflow, limit: 50 });
        expect(runs).toHaveLength(ids.length);
        const byTime = new Map<number, string[]>();
        for (const r of runs) byTime.set(r.createdAt.getTime(), [...(byTime.get(r.createdAt.getTime()) ?? []), r.runId]);
        for (const group of byTime.values()) {
          const expected = [...group].sort((x, y) => Buffer.compare(Buffer.from(y), Buffer.from(x)));
          expect(group).toEqual(expected);
        }
        // paging through ties one at a time gives the same order
        const paged: string[] = [];
        let after: { createdAt: Date; runId: string } | undefined;
        for (let i = 0; i < ids.length + 1; i++) {
          const [next] = await store.listRuns({ workflow, limit: 1, after });
          if (!next) break;
          paged.push(next.runId);
          after = { createdAt: next.createdAt, runId: next.runId };
        }
        expect(paged).toEqual(runs.map((r) => r.runId));
      });

      it('includes each run\'s steps', async () => {
        const workflow = wf();
        const run = await createClaimed(workflow, { steps: [{ name: 'a', status: 'running', attempts: 0 }] });
        const [listed] = await store.listRuns({ workflow, limit: 1 });
        expect(listed.runId).toBe(run.runId);
        expect(listed.steps).toEqual([{ name: 'a', status: 'running', attempts: 0 }]);
      });
    });

    describe('purge', () => {
      it('deletes only terminal runs of the given statuses finished long enough ago', async () => {
        const workflow = wf();
        const done = await createClaimed(workflow);
        await store.sendSignal(done.runId, 'x', '1');
        await finish(done.runId, done.leaseToken, 'completed');
        const failed = await createClaimed(workflow);
        await finish(failed.runId, failed.leaseToken, 'failed');
        const live = await createClaimed(workflow);
        const pending = newRun(workflow);
        await store.createRun(pending, { onConflict: 'keep' });
        // NOTE: margins wide enough for a loaded machine (a Redis Cluster call can take 100 ms there)
        await sleep(1_200);
        const fresh = await createClaimed(workflow);
        await finish(fresh.runId, fresh.leaseToken, 'completed');

        expect(await store.purge(['completed'], 800)).toBeGreaterThanOrEqual(1);
        expect(await store.getRun(done.runId)).toBeUndefined();
        expect(await store.getRun(fresh.runId)).toBeDefined();
        expect(await store.getRun(failed.runId)).toBeDefined();
        expect(await store.getRun(live.runId)).toBeDefined();
        expect(await store.getRun(pending.runId)).toBeDefined();
        await store.purge(['failed', 'compensated', 'cancelled'], 100);
        expect(await store.getRun(failed.runId)).toBeUndefined();
        expect(await store.getRun(live.runId)).toBeDefined();
        // a purged id can be used again, with no leftover signals
        const reused = await store.createRun({ ...newRun(workflow), runId: done.runId }, { onConflict: 'keep', lease: LEASE });
        expect(reused.created).toBe(true);
        const res = await store.commit(done.runId, reused.run.leaseToken!, patch({ wait: { signals: ['x'] } }));
        expect(res.ok && res.consumedSignal).toBeFalsy();
      });
    });


    describe('history', () => {
      const bodies = async (runId: string, afterSeq?: number, limit = 10_000) =>
        (await store.listEvents(runId, { afterSeq, limit })).map((e) => [e.seq, e.body]);

      it('writes the events of createRun and of fenced commits, in order, numbered from 1', async () => {
        const created = await store.createRun(newRun(wf(), { events: ['{"t":"start"}', '{"t":"s1"}'] }), { onConflict: 'keep', lease: LEASE });
        expect(created.lastEventSeq).toBe(2);
        const run = created.run as StoredRun & { leaseToken: string };
        expect(await bodies(run.runId)).toEqual([
          [1, '{"t":"start"}'],
          [2, '{"t":"s1"}'],
        ]);
        const hostile = `{"e":"'; DROP TABLE x;-- \\u0000 ünï 🚀 {tag}"}`;
        expect(await store.commit(run.runId, run.leaseToken, patch({ events: ['{"t":"c1"}', hostile] }))).toMatchObject({ ok: true, lastEventSeq: 4 });
        // a commit without events writes none
        const plain = await store.commit(run.runId, run.leaseToken, patch({ state: '{"s":2}' }));
        expect(plain.ok && plain.lastEventSeq).toBeFalsy();
        // a fenced-out commit writes none
        expect((await store.commit(run.runId, 'stale-token', patch({ events: ['{"t":"stale"}'] }))).ok).toBe(false);
        await finish(run.runId, run.leaseToken, 'completed');
        expect((await store.commit(run.runId, run.leaseToken, patch({ events: ['{"t":"after end"}'] }))).ok).toBe(false);
        expect(await bodies(run.runId)).toEqual([
          [1, '{"t":"start"}'],
          [2, '{"t":"s1"}'],
          [3, '{"t":"c1"}'],
          [4, hostile],
        ]);
      });

      it('pages by seq', async () => {
        const run = await createClaimed(wf());
        await store.commit(run.runId, run.leaseToken, patch({ events: Array.from({ length: 7 }, (_, i) => `{"i":${i}}`) }));
        const first = await store.listEvents(run.runId, { limit: 3 });
        expect(first.map((e) => e.seq)).toEqual([1, 2, 3]);
        const next = await store.listEvents(run.runId, { afterSeq: 3, limit: 3 });
        expect(next.map((e) => e.body)).toEqual(['{"i":3}', '{"i":4}', '{"i":5}']);
        expect((await store.listEvents(run.runId, { afterSeq: 6, limit: 3 })).map((e) => e.seq)).toEqual([7]);
        expect(await store.listEvents(run.runId, { afterSeq: 7, limit: 3 })).toEqual([]);
        expect(await store.listEvents(`missing-${randomUUID()}`, { limit: 3 })).toEqual([]);
      });

      it('appends the event of a signal or control request only when it is recorded', async () => {
        const run = await createClaimed(wf());
        expect(await store.sendSignal(run.runId, 'go', '1', '{"t":"signal"}')).toMatchObject({ outcome: 'ok', eventSeq: 1 });
        expect(await store.control(run.runId, { action: 'pause' }, '{"t":"pause"}')).toMatchObject({ outcome: 'ok', eventSeq: 2 });
        const noop = await store.control(run.runId, { action: 'pause' }, '{"t":"pause again"}');
        expect(noop.outcome).toBe('noop');
        expect(noop.eventSeq).toBeUndefined();
        expect((await store.sendSignal(run.runId, 'go', '1')).eventSeq).toBeUndefined();
        expect((await store.control(run.runId, { action: 'retry' }, '{"t":"retry"}')).outcome).toBe('invalid-state');
        expect((await store.control(run.runId, { action: 'resume' }, '{"t":"resume"}')).outcome).toBe('ok');
        await finish(run.runId, run.leaseToken, 'failed');
        expect((await store.sendSignal(run.runId, 'go', '1', '{"t":"late signal"}')).outcome).toBe('not-active');
        expect((await store.control(run.runId, { action: 'cancel', compensate: true }, '{"t":"late cancel"}')).outcome).toBe('not-active');
        expect((await store.control(run.runId, { action: 'retry' }, '{"t":"retry"}')).outcome).toBe('ok');
        expect((await store.sendSignal(`missing-${randomUUID()}`, 'go', '1', '{"t":"x"}')).outcome).toBe('not-found');
        expect((await bodies(run.runId)).map(([, b]) => b)).toEqual(['{"t":"signal"}', '{"t":"pause"}', '{"t":"resume"}', '{"t":"retry"}']);
        expect((await store.listEvents(run.runId, { limit: 10 })).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
      });

      it(`keeps the newest ${RUN_HISTORY_LIMIT} events of a run, numbering on`, async () => {
        const run = await createClaimed(wf(), { events: ['{"first":true}'] });
        const many = Array.from({ length: RUN_HISTORY_LIMIT + 4 }, (_, i) => `{"i":${i}}`);
        expect((await store.commit(run.runId, run.leaseToken, patch({ events: many }))).ok).toBe(true);
        await store.commit(run.runId, run.leaseToken, patch({ events: ['{"last":true}'] }));
        const all = await store.listEvents(run.runId, { limit: 5_000 });
        expect(all).toHaveLength(RUN_HISTORY_LIMIT);
        const total = RUN_HISTORY_LIMIT + 6;
        expect(all[0].seq).toBe(total - RUN_HISTORY_LIMIT + 1);
        expect(all.at(-1)).toEqual({ seq: total, body: '{"last":true}' });
        expect(all.every((e, i) => i === 0 || e.seq === all[i - 1].seq + 1)).toBe(true);
        expect((await store.listEvents(run.runId, { afterSeq: 3, limit: 2 })).map((e) => e.seq)).toEqual([all[0].seq, all[0].seq + 1]);
      });

      it('deletes the history with the run: purge, and a replace that starts again at 1', async () => {
        const workflow = wf();
        const run = await createClaimed(workflow, { events: ['{"g":1}'] });
        await store.commit(run.runId, run.leaseToken, patch({ events: ['{"g":1,"n":2}'] }));
        const replaced = await store.createRun(newRun(workflow, { runId: run.runId, events: ['{"g":2}'] }), { onConflict: 'replace' });
        expect(replaced.created).toBe(true);
        expect(await bodies(run.runId)).toEqual([[1, '{"g":2}']]);
        // a kept run's history is left alone
        expect((await store.createRun(newRun(workflow, { runId: run.runId, events: ['{"g":3}'] }), { onConflict: 'keep' })).created).toBe(false);
        expect(await bodies(run.runId)).toEqual([[1, '{"g":2}']]);
        const claimed = (await store.claimRun(run.runId, LEASE))!;
        await finish(run.runId, claimed.leaseToken, 'completed');
        await sleep(20);
        await store.purge(['completed'], 0);
        expect(await store.getRun(run.runId)).toBeUndefined();
        expect(await store.listEvents(run.runId, { limit: 10 })).toEqual([]);
        await createClaimed(workflow, { runId: run.runId, events: ['{"fresh":true}'] });
        expect(await bodies(run.runId)).toEqual([[1, '{"fresh":true}']]);
      });
    });

    describe('heartbeats and the handed-over input', () => {
      it('stores a step heartbeat and its details with the step', async () => {
        const run = await createClaimed(wf(), { steps: [{ name: 'batch', status: 'running', attempts: 0, startedAt: new Date() }] });
        const at = new Date(Date.now() - 1234);
        const details = JSON.stringify({ done: 41, note: "ünï 🚀 '\" {tag}" });
        const step = { name: 'batch', status: 'running' as const, attempts: 1, error: 'boom', heartbeat: { at, details } };
        expect((await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: 0, step }] }))).ok).toBe(true);
        let stored = (await store.getRun(run.runId))!;
        expect(stored.steps[0].heartbeat?.at.getTime()).toBe(at.getTime());
        expect(stored.steps[0].heartbeat?.details).toBe(details);
        // a heartbeat without details; then the completed step keeps it
        const bare = { ...step, heartbeat: { at } };
        await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: 0, step: bare }] }));
        stored = (await store.getRun(run.runId))!;
        expect(stored.steps[0].heartbeat).toEqual({ at });
        const done = { ...bare, status: 'completed' as const, output: '1', finishedAt: new Date() };
        await store.commit(run.runId, run.leaseToken, patch({ steps: [{ index: 0, step: done }, { index: 1, step: { name: 'next', status: 'running', attempts: 0 } }] }));
        stored = (await store.getRun(run.runId))!;
        expect(stored.steps[0].heartbeat).toEqual({ at });
        expect(stored.steps[1].heartbeat).toBeUndefined();
      });

      it('keeps the input handed over by a signal through commits with keepInput, and clears it otherwise', async () => {
        const run = await createClaimed(wf());
        await store.sendSignal(run.runId, 'go', '"payload"');
        const res = await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['go'] } }));
        expect(res).toMatchObject({ ok: true, consumedSignal: { payload: '"payload"' } });
        await store.commit(run.runId, run.leaseToken, patch({ keepInput: true, due: { delayMs: 60_000 }, release: true }));
        expect((await store.getRun(run.runId))!.nextInput).toBe('"payload"');
        await store.control(run.runId, { action: 'pause' });
        await store.control(run.runId, { action: 'resume' });
        expect((await store.getRun(run.runId))!.nextInput).toBe('"payload"');
        const again = await store.createRun(newRun('x', { runId: run.runId }), { onConflict: 'keep' });
        expect(again.run.nextInput).toBe('"payload"');
        await store.commit(run.runId, run.leaseToken, patch({ state: '{}' }));
      });

      it('leaves a pending pause for the step boundary on a midStep commit', async () => {
        const run = await createClaimed(wf());
        expect((await store.control(run.runId, { action: 'pause' })).outcome).toBe('ok');
        const beat = await store.commit(run.runId, run.leaseToken, patch({ midStep: true, keepInput: true }));
        expect(beat.ok && beat.paused).toBeFalsy();
        let stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('running');
        expect(stored.pauseRequested).toBe(true);
        expect(stored.leaseToken).toBe(run.leaseToken);
        expect(await store.commit(run.runId, run.leaseToken, patch({ state: '{}' }))).toMatchObject({ ok: true, paused: true });
        stored = (await store.getRun(run.runId))!;
        expect(stored.status).toBe('paused');
      });

      it('keeps nextInput for the next claimer after a released commit with keepInput', async () => {
        const run = await createClaimed(wf());
        await store.sendSignal(run.runId, 'go', '"p"');
        await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['go'] } }));
        await store.commit(run.runId, run.leaseToken, patch({ keepInput: true, due: { delayMs: 0 }, release: true }));
        const claimed = (await store.claimRun(run.runId, OTHER))!;
        expect(claimed.nextInput).toBe('"p"');
        await store.commit(run.runId, claimed.leaseToken, patch({ steps: [{ index: 0, step: { name: 'a', status: 'completed', attempts: 1, output: '1' } }] }));
        expect((await store.getRun(run.runId))!.nextInput).toBeUndefined();
      });
    });



    describe('versions side by side', () => {
      it('claims only the (workflow, version) pairs asked for, without head-of-line blocking', async () => {
        const workflow = wf();
        // many due runs of version 1 ahead of one of version 2: a version-2 claimer still gets its run
        const olds = Array.from({ length: 12 }, () => newRun(workflow, { version: 1 }));
        for (const r of olds) await store.createRun(r, { onConflict: 'keep' });
        await sleep(5);
        const v2 = newRun(workflow, { version: 2 });
        await store.createRun(v2, { onConflict: 'keep' });
        const got = await store.claimRuns(OTHER, 3, [{ workflow, version: 2 }]);
        expect(got.map((r) => [r.runId, r.version])).toEqual([[v2.runId, 2]]);
        expect(await store.claimRuns(OTHER, 3, [{ workflow, version: 3 }])).toEqual([]);
        expect(await store.claimRun(olds[0].runId, OTHER, [{ workflow, version: 2 }])).toBeUndefined();
        expect((await store.claimRun(olds[0].runId, OTHER, [{ workflow, version: 1 }]))?.version).toBe(1);
        const both = await store.claimRuns(OTHER, 50, [
          { workflow, version: 2 },
          { workflow, version: 1 },
        ]);
        expect(both.map((r) => r.runId).sort()).toEqual(olds.slice(1).map((r) => r.runId).sort());
      });

      it('groups the live runs by workflow, version, pipeline and current step, for the compatibility check', async () => {
        const workflow = wf();
        const a = await createClaimed(workflow, { pipeline: 'fp-a', currentStep: 'charge' });
        await createClaimed(workflow, { pipeline: 'fp-a', currentStep: 'charge' });
        const onShip = newRun(workflow, { pipeline: 'fp-a', currentStep: 'ship' });
        await store.createRun(onShip, { onConflict: 'keep' });
        await store.createRun(newRun(workflow, { version: 2, pipeline: 'fp-b', currentStep: 'charge' }), { onConflict: 'keep' });
        await store.createRun(newRun(workflow, { currentStep: 'charge' }), { onConflict: 'keep' });
        const ended = await createClaimed(workflow, { pipeline: 'fp-a', currentStep: 'charge' });
        await finish(ended.runId, ended.leaseToken, 'completed');
        // a paused run is live too; its current step may move with commits
        await store.commit(a.runId, a.leaseToken, patch({ currentStep: 'ship' }));
        const mine = (await store.summarizeLiveRuns()).filter((g) => g.workflow === workflow);
        const view = mine
          .map((g) => [g.version, g.pipeline ?? null, g.currentStep ?? null, g.count, g.runIds.length])
          .sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
        expect(view).toEqual(
          [
            [1, 'fp-a', 'charge', 1, 1],
            [1, 'fp-a', 'ship', 2, 2],
            [1, null, 'charge', 1, 1],
            [2, 'fp-b', 'charge', 1, 1],
          ].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))),
        );
        expect(mine.find((g) => g.currentStep === 'ship')!.runIds.sort()).toEqual([a.runId, onShip.runId].sort());
        expect((await store.getRun(a.runId))!.pipeline).toBe('fp-a');
        expect(mine.flatMap((g) => g.runIds)).not.toContain(ended.runId);
      });

      it(`names at most ${LIVE_GROUP_SAMPLE} runs of a group`, async () => {
        const workflow = wf();
        for (let i = 0; i < LIVE_GROUP_SAMPLE + 3; i++) await store.createRun(newRun(workflow, { pipeline: 'fp', currentStep: 's' }), { onConflict: 'keep' });
        const [group] = (await store.summarizeLiveRuns()).filter((g) => g.workflow === workflow);
        expect(group.count).toBe(LIVE_GROUP_SAMPLE + 3);
        expect(group.runIds).toHaveLength(LIVE_GROUP_SAMPLE);
      });

      it('saves pipelines once under their fingerprint', async () => {
        const fp = `fp-${randomUUID()}`;
        await store.savePipeline(fp, '["a","b"]');
        await store.savePipeline(fp, '["a","b"]');
        expect(await store.getPipelines([fp, `missing-${randomUUID()}`])).toEqual({ [fp]: '["a","b"]' });
        expect(await store.getPipelines([])).toEqual({});
      });

      it('reclaims own runs only of the versions asked for', async () => {
        if (!store.claimOwnedRuns) return;
        const workflow = wf();
        const owner = { owner: `pod-${randomUUID().slice(0, 6)}`, leaseMs: 30_000 };
        const one = await store.createRun(newRun(workflow, { version: 1 }), { onConflict: 'keep', lease: owner });
        const two = await store.createRun(newRun(workflow, { version: 2 }), { onConflict: 'keep', lease: owner });
        const got = await store.claimOwnedRuns(owner, 10, [{ workflow, version: 2 }]);
        expect(got.map((r) => r.runId)).toEqual([two.run.runId]);
        expect((await store.getRun(one.run.runId))!.leaseToken).toBe(one.run.leaseToken);
      });

      it('keeps a run at its version through a replace of another version', async () => {
        const workflow = wf();
        const r = newRun(workflow, { version: 1 });
        await store.createRun(r, { onConflict: 'keep' });
        const replaced = await store.createRun({ ...r, version: 3 }, { onConflict: 'replace' });
        expect(replaced.run.version).toBe(3);
        expect(await store.claimRun(r.runId, OTHER, [v1(workflow)])).toBeUndefined();
        expect((await store.claimRun(r.runId, OTHER, [{ workflow, version: 3 }]))?.version).toBe(3);
      });
    });

    describe('dashboard queries', () => {
      it('counts runs per status, of one workflow or of all', async () => {
        const workflow = wf();
        const other = wf();
        await store.createRun(newRun(workflow), { onConflict: 'keep' });
        await store.createRun(newRun(workflow), { onConflict: 'keep' });
        const done = await createClaimed(workflow);
        await finish(done.runId, done.leaseToken, 'completed');
        const failed = await createClaimed(workflow);
        await finish(failed.runId, failed.leaseToken, 'failed');
        await createClaimed(workflow);
        await store.createRun(newRun(other), { onConflict: 'keep' });
        const counts = await store.countRuns({ workflow });
        const nonZero = Object.fromEntries(Object.entries(counts).filter(([, n]) => n! > 0));
        expect(nonZero).toEqual({ pending: 2, completed: 1, failed: 1, running: 1 });
        expect((await store.countRuns({ workflow: `missing-${randomUUID()}` })).pending ?? 0).toBe(0);
        const all = await store.countRuns({});
        expect(all.pending).toBeGreaterThanOrEqual(3);
        expect(all.completed).toBeGreaterThanOrEqual(1);
      });

      it('filters listRuns by creation time: from inclusive, to exclusive', async () => {
        const workflow = wf();
        const first = newRun(workflow);
        await store.createRun(first, { onConflict: 'keep' });
        await sleep(30);
        const second = newRun(workflow);
        await store.createRun(second, { onConflict: 'keep' });
        await sleep(30);
        const third = newRun(workflow);
        await store.createRun(third, { onConflict: 'keep' });
        const created = await Promise.all([first, second, third].map(async (r) => (await store.getRun(r.runId))!.createdAt));
        const ids = async (q: { createdFrom?: Date; createdTo?: Date; statuses?: ('pending' | 'completed')[] }) =>
          (await store.listRuns({ workflow, limit: 10, ...q })).map((r) => r.runId);
        expect(await ids({ createdFrom: created[1] })).toEqual([third.runId, second.runId]);
        expect(await ids({ createdTo: created[1] })).toEqual([first.runId]);
        expect(await ids({ createdFrom: created[0], createdTo: created[2] })).toEqual([second.runId, first.runId]);
        expect(await ids({ createdFrom: created[1], createdTo: created[2], statuses: ['pending'] })).toEqual([second.runId]);
        expect(await ids({ createdFrom: created[1], statuses: ['completed'] })).toEqual([]);
        // with a cursor
        const page = await store.listRuns({ workflow, limit: 1, createdTo: new Date(created[2].getTime() + 1) });
        expect(page.map((r) => r.runId)).toEqual([third.runId]);
        const next = await store.listRuns({ workflow, limit: 5, createdFrom: created[1], after: { createdAt: page[0].createdAt, runId: page[0].runId } });
        expect(next.map((r) => r.runId)).toEqual([second.runId]);
      });

      it('lists the signals queued for a run, each name first in first out', async () => {
        const run = await createClaimed(wf());
        expect(await store.listSignals(run.runId)).toEqual([]);
        await store.sendSignal(run.runId, 'go', '"g1"');
        await store.sendSignal(run.runId, 'stop', '"s1"');
        await store.sendSignal(run.runId, 'go', `"g2 ünï 🚀 '"`);
        const queued = await store.listSignals(run.runId);
        expect(queued).toHaveLength(3);
        expect(queued.filter((q) => q.name === 'go').map((q) => q.payload)).toEqual(['"g1"', `"g2 ünï 🚀 '"`]);
        expect(queued.filter((q) => q.name === 'stop').map((q) => q.payload)).toEqual(['"s1"']);
        await store.commit(run.runId, run.leaseToken, patch({ wait: { signals: ['go'] } }));
        expect((await store.listSignals(run.runId)).filter((q) => q.name === 'go').map((q) => q.payload)).toEqual([`"g2 ünï 🚀 '"`]);
        await finish(run.runId, run.leaseToken, 'completed');
        expect(await store.listSignals(run.runId)).toEqual([]);
        expect(await store.listSignals(`missing-${randomUUID()}`)).toEqual([]);
      });

      it('sets nextInput on a retry that asks for it (a skip), and only on a failed run', async () => {
        const run = await createClaimed(wf());
        await finish(run.runId, run.leaseToken, 'failed');
        expect((await store.control(run.runId, { action: 'retry', nextInput: '{"skipped":true}' })).outcome).toBe('ok');
        const retried = (await store.getRun(run.runId))!;
        expect(retried.status).toBe('pending');
        expect(retried.nextInput).toBe('{"skipped":true}');
        const claimed = (await store.claimRun(run.runId, OTHER))!;
        expect(claimed.nextInput).toBe('{"skipped":true}');
        expect((await store.control(run.runId, { action: 'retry', nextInput: '1' })).outcome).toBe('invalid-state');
        await store.commit(run.runId, claimed.leaseToken, patch({ state: '{}' }));
        expect((await store.getRun(run.runId))!.nextInput).toBeUndefined();
      });
    });

    describe('events', () => {
      it('broadcasts published messages to every subscriber, when it supports them', async () => {
        if (!store.subscribe || !store.publish) return;
        const seen: StoreEvent[] = [];
        const unsubscribe = await store.subscribe((e) => seen.push(e));
        try {
          const body = JSON.stringify({ hello: `ünï 🚀 '" ${randomUUID()}` });
          await store.publish(body);
          const deadline = Date.now() + 3_000;
          while (Date.now() < deadline && !seen.some((e) => e.type === 'message' && e.body === body)) await sleep(10);
          expect(seen).toContainEqual({ type: 'message', body });
          await expect(store.publish('x'.repeat(PUBLISH_MAX_BYTES + 1))).rejects.toMatchObject({ code: 'CAIRN_INVALID_ARGUMENT' });
        } finally {
          await unsubscribe();
        }
      });

      it('publishes ready and finished events to subscribers, when it supports them', async () => {
        if (!store.subscribe) return;
        const events: StoreEvent[] = [];
        const unsubscribe = await store.subscribe((e) => events.push(e));
        try {
          const r = newRun(wf());
          await store.createRun(r, { onConflict: 'keep' });
          const claimed = (await store.claimRun(r.runId, LEASE)) as ClaimedRun;
          await store.commit(r.runId, claimed.leaseToken, patch({ status: 'completed' }));
          const deadline = Date.now() + 3_000;
          while (Date.now() < deadline && !events.some((e) => e.type === 'finished' && e.runId === r.runId)) await sleep(10);
          expect(events).toContainEqual({ type: 'ready', runId: r.runId });
          expect(events).toContainEqual({ type: 'finished', runId: r.runId });
        } finally {
          await unsubscribe();
        }
      });
    });
  });
}
