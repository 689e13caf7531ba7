/**
 * Schedules across instances when the instance that advanced the last tick stops acting (chaos soak defect 5): every
 * instance that knows the next tick arms a timer for it, so the others fire it, within a second, exactly once.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DurableExecutionModule, Schedule, Step, Workflow, WorkflowClient, type WorkflowStore } from '../../src/index.js';
import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import type { SchedulePatch, StoredSchedule } from '../../src/store/schedule-store.interface.js';
import { dropSchema, randomSchemaName } from '../setup/postgres-server.js';
import { testPostgres } from '../setup/test-servers.js';
import { SharedMemoryStore, silentLogger, sleep } from './helpers.js';

@Schedule({ id: 'failover', every: '1s' })
@Workflow('failover')
class Failover {
  @Step() run(input: { scheduledAt: Date }) {
    return input.scheduledAt.getTime();
  }
}

/** A successful compare-and-set of the schedule, by one instance. */
interface Advance {
  instance: number;
  lastFireAt?: number;
  nextFireAt?: number;
}

/**
 * One instance's view of the store: every call (schedules included) can be frozen, as by SIGSTOP (it hangs until
 * thawed), and the schedule calls can be slowed down (so that instances firing one tick overlap, as on a real store).
 */
function freezableStore(store: WorkflowStore, instance: number, latencyMs: number, onAdvance: (advance: Advance) => void) {
  let frozen = false;
  const held: (() => void)[] = [];
  const hold = <T>(call: () => Promise<T>): Promise<T> =>
    frozen ? new Promise<T>((resolve, reject) => held.push(() => void call().then(resolve, reject))) : call();
  const wrap = <T extends object>(target: T, extra?: (prop: string | symbol, call: () => Promise<unknown>, args: unknown[]) => Promise<unknown>): T =>
    new Proxy(target, {
      get(t, prop) {
        const value = Reflect.get(t, prop, t) as unknown;
        if (prop === 'schedules' && value && typeof value === 'object') return schedules;
        if (typeof value !== 'function') return value;
        if (prop === 'close' || prop === 'subscribe' || prop === 'init') return (value as (...a: unknown[]) => unknown).bind(t);
        return (...args: unknown[]) => {
          const call = () => (value as (...a: unknown[]) => Promise<unknown>).apply(t, args);
          return hold(extra ? () => extra(prop, call, args) : call);
        };
      },
    });
  const inner = (store as WorkflowStore & { schedules: object }).schedules;
  const schedules = wrap(inner, async (prop, call, args) => {
    if (latencyMs > 0) await sleep(latencyMs);
    const result = await call();
    if (prop === 'advance' && result) {
      const patch = args[2] as SchedulePatch;
      const stored = result as StoredSchedule;
      onAdvance({ instance, lastFireAt: patch.lastFireAt?.getTime(), nextFireAt: stored.nextFireAt?.getTime() });
    }
    return result;
  });
  return {
    store: wrap(store),
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
      for (const release of held.splice(0)) release();
    },
  };
}

interface Setup {
  /** The store of one instance (all on the same data). */
  storeFor(instance: number): Promise<WorkflowStore>;
  latencyMs: number;
  cleanup(): Promise<void>;
}

/**
 * How late a tick's run may start: a timer fires it within a second or so, the 5 s poll (what an instance waits when it
 * arms no timer) much later. 2.5 s leaves room for a loaded machine (a Postgres run of this test, with the whole suite
 * running beside it, once started a tick more than 1.5 s late) while a tick left to the poll still shows.
 */
const LATE_MS = 2_500;

function describeFailover(name: string, setup: () => Promise<Setup>) {
  describe(`schedules when the instance that advanced the last tick stops (${name})`, () => {
    const apps: INestApplicationContext[] = [];
    let cleanup: (() => Promise<void>) | undefined;
    let instances: ReturnType<typeof freezableStore>[] = [];
    afterEach(async () => {
      for (const view of instances.splice(0)) view.thaw();
      for (const app of apps.splice(0)) await app.close().catch(() => undefined);
      await cleanup?.();
      cleanup = undefined;
    });

    it('the other instances fire the next ticks, each within a second or so of its time, exactly once', async () => {
      const s = await setup();
      cleanup = s.cleanup;
      const advances: Advance[] = [];
      let freezeNext = false;
      let frozenAt: Advance | undefined;
      instances = [];
      const clients: WorkflowClient[] = [];
      for (let i = 0; i < 3; i++) {
        const view = freezableStore(await s.storeFor(i), i, s.latencyMs, (advance) => {
          advances.push(advance);
          if (freezeNext && advance.lastFireAt !== undefined && frozenAt === undefined) {
            // NOTE: the winner of this tick stops acting right after its compare-and-set, as a SIGSTOP there would
            frozenAt = advance;
            instances[advance.instance].freeze();
          }
        });
        instances.push(view);
        const moduleRef = await Test.createTestingModule({
          imports: [DurableExecutionModule.forRoot({ store: view.store, worker: { pollIntervalMs: 50, shutdownGraceMs: 0 } })],
          providers: [Failover],
        })
          .setLogger(silentLogger)
          .compile();
        const app = await moduleRef.init();
        apps.push(app);
        clients.push(app.get(WorkflowClient));
      }

      // Two ticks fired by the three instances, then the winner of the next one freezes.
      const deadline = Date.now() + 10_000;
      while (advances.filter((a) => a.lastFireAt !== undefined).length < 2 && Date.now() < deadline) await sleep(50);
      freezeNext = true;
      while (frozenAt === undefined && Date.now() < deadline) await sleep(20);
      expect(frozenAt).toBeDefined();
      const first = frozenAt!.nextFireAt!;
      const ticks = [first, first + 1_000, first + 2_000];
      // The last tick, plus the margin (see LATE_MS).
      await sleep(Math.max(0, ticks[2] + LATE_MS - Date.now()));

      const live = clients.find((_, i) => i !== frozenAt!.instance)!;
      const runs = (await live.list({ workflow: 'failover', limit: 1000 })).runs;
      const byId = new Map(runs.map((r) => [r.runId, r]));
      const late: string[] = [];
      for (const tick of ticks) {
        const id = `failover@${new Date(tick).toISOString()}`;
        const run = byId.get(id);
        expect({ id, found: !!run }).toEqual({ id, found: true });
        const lateness = run!.createdAt.getTime() - tick;
        expect(lateness).toBeGreaterThanOrEqual(0);
        if (lateness > LATE_MS) late.push(`${id} started ${lateness} ms late`);
      }
      expect(late).toEqual([]);
      // Every run is a whole-second tick, and each tick was recorded by exactly one compare-and-set.
      expect(runs.every((r) => /^failover@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/.test(r.runId))).toBe(true);
      const fired = advances.filter((a) => a.lastFireAt !== undefined).map((a) => a.lastFireAt!);
      expect(new Set(fired).size).toBe(fired.length);
      for (const tick of ticks) expect(fired.filter((t) => t === tick)).toHaveLength(1);
      // The frozen instance took no part after its freeze.
      const afterFreeze = advances.slice(advances.indexOf(frozenAt!) + 1);
      expect(afterFreeze.filter((a) => a.instance === frozenAt!.instance)).toEqual([]);
    }, 30_000);
  });
}

describeFailover('memory', async () => {
  const shared = new SharedMemoryStore();
  return { storeFor: async () => shared, latencyMs: 10, cleanup: async () => undefined };
});

const { url, describe: describePg } = testPostgres();
describePg('postgres', () => {
  describeFailover('postgres', async () => {
    const schema = randomSchemaName();
    return {
      storeFor: async () => new PostgresStore({ url, schema }),
      latencyMs: 0,
      cleanup: () => dropSchema(url, schema),
    };
  });
});
