import { afterEach, describe, expect, it } from '@jest/globals';
import { Module, type DynamicModule, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  ConfigurationError,
  DurableExecutionModule,
  DurableExecutionTestingModule,
  Flow,
  InvalidArgumentError,
  MemoryStore,
  Schedule,
  ScheduleNotFoundError,
  Step,
  Workflow,
  WorkflowClient,
  WorkflowDefinitionError,
  WorkflowTestClock,
  WORKFLOW_ENGINE,
  type WorkflowStore,
} from '../../src/index.js';
import { ENGINE_CLOCK } from '../../src/nest/durable-execution.constants.js';
import type { WorkflowEngine } from '../../src/engine/workflow-engine.js';
import { scheduleStoreOf } from '../../src/store/schedules/schedule-store.factory.js';
import { nextTickAfter, planTicks, timingOf } from '../../src/definition/schedule-spec.js';
import { SharedMemoryStore, silentLogger, sleep } from './helpers.js';

const seen: { workflow: string; input: unknown }[] = [];

@Schedule({ every: '1m' })
@Workflow('tick')
class Tick {
  @Step() run(input: unknown) {
    seen.push({ workflow: 'tick', input });
    return input;
  }
}

@Schedule({ id: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Berlin', input: (at: Date) => ({ day: at.toISOString().slice(0, 10) }) })
@Schedule({ id: 'fast', cron: '*/20 * * * * *', input: { fixed: true }, paused: true })
@Workflow('report')
class Report {
  @Step() run(input: unknown) {
    seen.push({ workflow: 'report', input });
    return input;
  }
}

/** Live until it gets the signal `done`. */
@Workflow('waiter')
class Waiter {
  @Step() wait() {
    return Flow.waitForSignal('done');
  }
  @Step() end(value: unknown) {
    return value;
  }
}

/** Reconciliation: the same workflow names with other (or no) schedules. */
@Schedule({ id: 'a', every: '1m' })
@Workflow('recon-a')
class ReconA {
  @Step() run() {
    return 1;
  }
}
@Schedule({ id: 'a', every: '2m', overlap: 'allow' })
@Workflow('recon-a')
class ReconAChanged {
  @Step() run() {
    return 1;
  }
}
@Schedule({ id: 'b', every: '1m' })
@Workflow('recon-b')
class ReconB {
  @Step() run() {
    return 1;
  }
}
@Workflow('recon-b')
class ReconBWithout {
  @Step() run() {
    return 1;
  }
}

/** Provides a manual clock starting at a chosen time (like DurableExecutionTestingModule, with any store). */
@Module({})
class ClockModule {
  static forRoot(clock: WorkflowTestClock): DynamicModule {
    return { module: ClockModule, global: true, providers: [{ provide: ENGINE_CLOCK, useValue: clock.source }], exports: [ENGINE_CLOCK] };
  }
}

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);

describe('schedules', () => {
  const apps: INestApplicationContext[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    seen.length = 0;
  });

  async function boot(providers: unknown[]) {
    const moduleRef = await Test.createTestingModule({ imports: [DurableExecutionTestingModule.forRoot()], providers: providers as never[] })
      .setLogger(silentLogger)
      .compile();
    const app = await moduleRef.init();
    apps.push(app);
    return { app, client: app.get(WorkflowClient), clock: app.get(WorkflowTestClock) };
  }

  /** An app on `store` whose manual clock starts at `start`. */
  async function bootAt(start: number, store: WorkflowStore, providers: unknown[]) {
    const clock = new WorkflowTestClock(new Date(start));
    const moduleRef = await Test.createTestingModule({
      imports: [ClockModule.forRoot(clock), DurableExecutionModule.forRoot({ store, worker: { pollIntervalMs: 20, shutdownGraceMs: 0 } })],
      providers: providers as never[],
    })
      .setLogger(silentLogger)
      .compile();
    const app = await moduleRef.init();
    apps.push(app);
    clock.attach(app.get<WorkflowEngine>(WORKFLOW_ENGINE));
    await clock.runUntilIdle();
    return { app, client: app.get(WorkflowClient), clock };
  }

  async function runIds(client: WorkflowClient, workflow: string): Promise<string[]> {
    return (await client.list({ workflow, limit: 1000 })).runs.map((r) => r.runId).sort();
  }

  describe('firing', () => {
    it('every: one run per tick, aligned on the period, with the id <schedule>@<ISO> and { scheduledAt }', async () => {
      const { client, clock } = await bootAt(T0 + 5_000, new MemoryStore(), [Tick]);
      await clock.advance('3m');
      const ids = await runIds(client, 'tick');
      expect(ids).toEqual(['tick@2030-01-01T00:01:00.000Z', 'tick@2030-01-01T00:02:00.000Z', 'tick@2030-01-01T00:03:00.000Z']);
      expect(seen.map((s) => s.input)).toEqual([1, 2, 3].map((m) => ({ scheduledAt: new Date(T0 + m * 60_000) })));
      const info = await client.schedules.describe('tick');
      expect(info).toMatchObject({
        id: 'tick',
        workflow: 'tick',
        every: '1m',
        timezone: 'UTC',
        paused: false,
        overlap: 'skip',
        catchUp: 'latest',
        source: 'decorator',
        lastRunId: 'tick@2030-01-01T00:03:00.000Z',
        lastFireAt: new Date(T0 + 3 * 60_000),
        nextFireAt: new Date(T0 + 4 * 60_000),
      });
    });

    it('cron in a time zone with an input function; a 6-field cron fires on seconds once resumed', async () => {
      const { client, clock } = await bootAt(T0, new MemoryStore(), [Report]);
      await clock.advance('2d');
      // 03:00 in Berlin in January is 02:00 UTC.
      expect(await runIds(client, 'report')).toEqual(['nightly@2030-01-01T02:00:00.000Z', 'nightly@2030-01-02T02:00:00.000Z']);
      expect(seen.map((s) => s.input)).toEqual([{ day: '2030-01-01' }, { day: '2030-01-02' }]);
      expect(await client.schedules.describe('fast')).toMatchObject({ cron: '*/20 * * * * *', paused: true });
      expect((await client.schedules.describe('fast'))?.nextFireAt).toBeUndefined();
      seen.length = 0;
      await client.schedules.resume('fast');
      await clock.advance('1m');
      expect(seen.map((s) => s.input)).toEqual([{ fixed: true }, { fixed: true }, { fixed: true }]);
      const fast = (await runIds(client, 'report')).filter((id) => id.startsWith('fast@'));
      expect(fast).toEqual(['fast@2030-01-03T00:00:20.000Z', 'fast@2030-01-03T00:00:40.000Z', 'fast@2030-01-03T00:01:00.000Z']);
    });
  });

  describe('overlap', () => {
    async function waiters(overlap: 'skip' | 'allow' | 'cancel-previous') {
      const booted = await bootAt(T0 + 1, new MemoryStore(), [Waiter]);
      await booted.client.schedules.create('w', { workflow: 'waiter', every: '1m', overlap });
      await booted.clock.advance('3m');
      const { runs } = await booted.client.list({ workflow: 'waiter' });
      return { ...booted, runs: runs.sort((a, b) => (a.runId < b.runId ? -1 : 1)).map((r) => [r.runId.slice(2, 18), r.status]) };
    }

    it("skip (default): a tick while the previous run is live starts nothing; after it ends the next tick starts one", async () => {
      const { client, clock, runs } = await waiters('skip');
      expect(runs).toEqual([['2030-01-01T00:01', 'waiting']]);
      await client.signal('w@2030-01-01T00:01:00.000Z', 'done', 'ok');
      await clock.advance('1m');
      expect((await runIds(client, 'waiter')).map((id) => id.slice(2, 18))).toEqual(['2030-01-01T00:01', '2030-01-01T00:04']);
      expect((await client.schedules.describe('w'))?.lastRunId).toBe('w@2030-01-01T00:04:00.000Z');
    });

    it('allow: every tick starts a run', async () => {
      const { runs } = await waiters('allow');
      expect(runs).toEqual([
        ['2030-01-01T00:01', 'waiting'],
        ['2030-01-01T00:02', 'waiting'],
        ['2030-01-01T00:03', 'waiting'],
      ]);
    });

    it('cancel-previous: each tick cancels the live previous run and starts its own', async () => {
      const { runs } = await waiters('cancel-previous');
      expect(runs).toEqual([
        ['2030-01-01T00:01', 'cancelled'],
        ['2030-01-01T00:02', 'cancelled'],
        ['2030-01-01T00:03', 'waiting'],
      ]);
    });
  });

  describe('catchUp after time passes with no instance', () => {
    async function outage(catchUp: 'none' | 'latest' | 'all', downFor: number, overlap: 'skip' | 'allow' = 'skip') {
      const store = new SharedMemoryStore();
      const first = await bootAt(T0 + 1, store, [Tick]);
      await first.client.schedules.create('c', { workflow: 'tick', every: '1m', catchUp, overlap });
      await first.client.schedules.delete('tick');
      await first.app.close();
      apps.splice(apps.indexOf(first.app), 1);
      seen.length = 0;
      // NOTE: the decorator schedule 'tick' comes back at this bootstrap, with its first tick after now.
      const second = await bootAt(T0 + downFor, store, [Tick]);
      await second.clock.runUntilIdle();
      return { ...second, ids: (await runIds(second.client, 'tick')).filter((id) => id.startsWith('c@')) };
    }

    it("'latest' (default) fires the latest missed tick once", async () => {
      const { ids, client } = await outage('latest', 10 * 60_000 + 30_000);
      expect(ids).toEqual(['c@2030-01-01T00:10:00.000Z']);
      expect((await client.schedules.describe('c'))?.nextFireAt).toEqual(new Date(T0 + 11 * 60_000));
    });

    it("'all' fires every missed tick, oldest first (with overlap 'allow')", async () => {
      const { ids } = await outage('all', 10 * 60_000 + 30_000, 'allow');
      expect(ids).toEqual(Array.from({ length: 10 }, (_, i) => `c@2030-01-01T00:${String(i + 1).padStart(2, '0')}:00.000Z`));
      expect(seen.map((s) => (s.input as { scheduledAt: Date }).scheduledAt.getTime())).toEqual(Array.from({ length: 10 }, (_, i) => T0 + (i + 1) * 60_000));
    });

    it("'all' is bounded per pass (100) and catches up over several passes", async () => {
      const { ids } = await outage('all', 150 * 60_000 + 30_000, 'allow');
      expect(ids).toHaveLength(150);
    });

    it("'none' skips missed ticks and fires the next one on time", async () => {
      const { ids, client, clock } = await outage('none', 10 * 60_000 + 30_000);
      expect(ids).toEqual([]);
      await clock.advance('30s');
      expect((await runIds(client, 'tick')).filter((id) => id.startsWith('c@'))).toEqual(['c@2030-01-01T00:11:00.000Z']);
    });
  });

  describe('client.schedules', () => {
    it('create, describe, list, update, pause, resume, trigger, delete', async () => {
      const { client, clock } = await bootAt(T0 + 1, new MemoryStore(), [Tick, Waiter]);
      const created = await client.schedules.create('api-1', { workflow: Tick, cron: '*/5 * * * *', timezone: 'America/New_York', input: { n: 1 }, catchUp: 'all' });
      expect(created).toEqual({
        id: 'api-1',
        workflow: 'tick',
        cron: '*/5 * * * *',
        timezone: 'America/New_York',
        paused: false,
        overlap: 'skip',
        catchUp: 'all',
        nextFireAt: new Date(T0 + 5 * 60_000),
        source: 'api',
      });
      expect((await client.schedules.list()).map((s) => [s.id, s.source])).toEqual([
        ['api-1', 'api'],
        ['tick', 'decorator'],
      ]);
      await client.schedules.update('api-1', { every: '2m', overlap: 'allow' });
      const updated = await client.schedules.describe('api-1');
      expect(updated).toMatchObject({ every: '2m', overlap: 'allow', catchUp: 'all', nextFireAt: new Date(T0 + 2 * 60_000) });
      expect(updated?.cron).toBeUndefined();
      await client.schedules.pause('tick');
      await client.schedules.pause('tick');
      await clock.advance('2m');
      expect(seen.map((s) => s.input)).toEqual([{ n: 1 }]);
      expect(await runIds(client, 'tick')).toEqual(['api-1@2030-01-01T00:02:00.000Z']);
      await client.schedules.resume('tick');
      expect((await client.schedules.describe('tick'))?.nextFireAt).toEqual(new Date(T0 + 3 * 60_000));
      await client.schedules.pause('api-1');
      const handle = await client.schedules.trigger('api-1');
      expect(handle.runId).toBe(`api-1@${clock.now().toISOString()}`);
      await clock.runUntilIdle();
      expect(await handle.result({ timeout: 1_000 })).toEqual({ n: 1 });
      expect(await client.schedules.describe('api-1')).toMatchObject({ paused: true, lastRunId: handle.runId });
      await client.schedules.update('api-1', { input: { n: 2 }, workflow: 'waiter' });
      expect(await client.schedules.describe('api-1')).toMatchObject({ workflow: 'waiter', paused: true });
      await client.schedules.delete('api-1');
      expect(await client.schedules.describe('api-1')).toBeUndefined();
      expect((await client.schedules.list()).map((s) => s.id)).toEqual(['tick']);
    });

    it('an unknown id: ScheduleNotFoundError (describe: undefined)', async () => {
      const { client } = await boot([Tick]);
      for (const call of [
        () => client.schedules.update('nope', { every: '1m' }),
        () => client.schedules.pause('nope'),
        () => client.schedules.resume('nope'),
        () => client.schedules.delete('nope'),
        () => client.schedules.trigger('nope'),
      ]) {
        await expect(call()).rejects.toThrow(ScheduleNotFoundError);
      }
      await expect(client.schedules.pause('nope')).rejects.toMatchObject({ code: 'CAIRN_SCHEDULE_NOT_FOUND', message: expect.stringContaining('"nope"') });
      expect(await client.schedules.describe('nope')).toBeUndefined();
    });

    it('bad input: InvalidArgumentError, and nothing is stored', async () => {
      const { client } = await boot([Tick]);
      const bad: [unknown, RegExp][] = [
        [{ workflow: 'tick', cron: '* * *' }, /5 fields/],
        [{ workflow: 'tick', cron: '61 * * * *' }, /invalid cron/],
        [{ workflow: 'tick', cron: '* * * * *', every: '1m' }, /exactly one of cron and every \(got both\)/],
        [{ workflow: 'tick' }, /exactly one of cron and every \(got neither\)/],
        [{ workflow: 'tick', cron: '* * * * *', timezone: 'Mars/Olympus' }, /timezone/],
        [{ workflow: 'tick', every: 'soon' }, /every/],
        [{ workflow: 'tick', every: 10 }, /at least 1000/],
        [{ workflow: 'tick', every: '1m', overlap: 'queue' }, /overlap/],
        [{ workflow: 'tick', every: '1m', catchUp: 'some' }, /catchUp/],
        [{ workflow: 'tick', every: '1m', input: () => 1 }, /function/],
        [{ workflow: 'nope', every: '1m' }, /Unknown workflow "nope"/],
      ];
      for (const [spec, message] of bad) {
        await expect(client.schedules.create('x', spec as never)).rejects.toThrow(InvalidArgumentError);
        await expect(client.schedules.create('x', spec as never)).rejects.toThrow(message);
      }
      await expect(client.schedules.create('', { workflow: 'tick', every: '1m' })).rejects.toThrow(InvalidArgumentError);
      await expect(client.schedules.create('tick', { workflow: 'tick', every: '1m' })).rejects.toThrow(/already exists/);
      await expect(client.schedules.update('tick', { cron: 'nope' })).rejects.toThrow(InvalidArgumentError);
      expect((await client.schedules.list()).map((s) => [s.id, s.every])).toEqual([['tick', '1m']]);
    });
  });

  describe('bootstrap', () => {
    it('reconciles: creates and updates what the code declares, deletes decorator schedules it no longer declares, keeps API ones', async () => {
      const store = new SharedMemoryStore();
      const first = await bootAt(T0 + 1, store, [ReconA, ReconB]);
      await first.client.schedules.create('api', { workflow: 'recon-b', every: '1h' });
      await first.client.schedules.pause('b');
      expect((await first.client.schedules.list()).map((s) => s.id)).toEqual(['a', 'api', 'b']);
      await first.app.close();
      apps.splice(0);
      const second = await bootAt(T0 + 30_000, store, [ReconAChanged, ReconBWithout]);
      const list = await second.client.schedules.list();
      expect(list.map((s) => [s.id, s.source])).toEqual([
        ['a', 'decorator'],
        ['api', 'api'],
      ]);
      expect(list[0]).toMatchObject({ every: '2m', overlap: 'allow', nextFireAt: new Date(T0 + 2 * 60_000) });
    });

    it('keeps a pause made through the client while the code is unchanged', async () => {
      const store = new SharedMemoryStore();
      const first = await bootAt(T0 + 1, store, [ReconA]);
      await first.client.schedules.pause('a');
      await first.app.close();
      apps.splice(0);
      const second = await bootAt(T0 + 1, store, [ReconA]);
      expect(await second.client.schedules.describe('a')).toMatchObject({ paused: true });
    });

    it('a declared id held by an API schedule fails bootstrap', async () => {
      const store = new SharedMemoryStore();
      const first = await bootAt(T0 + 1, store, [ReconB]);
      await first.client.schedules.delete('b');
      await first.client.schedules.create('b', { workflow: 'recon-b', every: '1h' });
      await first.app.close();
      apps.splice(0);
      await expect(bootAt(T0 + 1, store, [ReconB])).rejects.toThrow(/created through client.schedules/);
    });

    const invalid: [string, () => Function, RegExp][] = [
      ['a bad cron', () => Schedule({ cron: '99 * * * *' }), /invalid cron/],
      ['cron and every', () => Schedule({ cron: '* * * * *', every: '1m' }), /got both/],
      ['neither', () => Schedule({}), /got neither/],
      ['a bad time zone', () => Schedule({ cron: '* * * * *', timezone: 'Nowhere/City' }), /timezone/],
      ['a bad every', () => Schedule({ every: '-5m' }), /every/],
      ['a bad overlap', () => Schedule({ every: '1m', overlap: 'x' as never }), /overlap/],
      ['a bad catchUp', () => Schedule({ every: '1m', catchUp: 'x' as never }), /catchUp/],
    ].map(([what, make, message]) => [what as string, () => decorated(make as () => ClassDecorator), message as RegExp]);

    function decorated(make: () => ClassDecorator): Function {
      @Workflow('bad')
      class Bad {
        @Step() run() {
          return 1;
        }
      }
      make()(Bad);
      return Bad;
    }

    it.each(invalid)('%s fails bootstrap with WorkflowDefinitionError, nothing stored', async (_what, make, message) => {
      const store = new SharedMemoryStore();
      const type = make();
      const attempt = bootAt(T0, store, [type]);
      await expect(attempt).rejects.toThrow(WorkflowDefinitionError);
      await expect(bootAt(T0, store, [type])).rejects.toThrow(message);
      await expect(bootAt(T0, store, [type])).rejects.toThrow(/@Schedule "bad" of Bad/);
      expect(await scheduleStoreOf(store)!.list()).toEqual([]);
    });

    it('duplicate ids fail bootstrap; repeated decorators get <name>#2', async () => {
      @Schedule({ every: '1m' })
      @Schedule({ every: '2m' })
      @Workflow('twice')
      class Twice {
        @Step() run() {
          return 1;
        }
      }
      const { client } = await boot([Twice]);
      expect((await client.schedules.list()).map((s) => [s.id, s.every])).toEqual([
        ['twice', '1m'],
        ['twice#2', '2m'],
      ]);
      @Schedule({ id: 'same', every: '1m' })
      @Schedule({ id: 'same', every: '2m' })
      @Workflow('dup')
      class Dup {
        @Step() run() {
          return 1;
        }
      }
      await expect(boot([Dup])).rejects.toThrow(/the id is used by another @Schedule/);
    });

    it('a custom store without schedules: decorator schedules fail bootstrap, client.schedules throws ConfigurationError', async () => {
      const plain = new Proxy(new MemoryStore(), {
        get: (target, prop) => (prop === 'schedules' ? undefined : (Reflect.get(target, prop, target) as unknown)),
      }) as WorkflowStore;
      await expect(bootAt(T0, plain, [Tick])).rejects.toThrow(/does not keep schedules/);
      const { client } = await bootAt(T0, plain, [Waiter]);
      await expect(client.schedules.list()).rejects.toThrow(ConfigurationError);
    });
  });

  it('three instances sharing a store fire each tick exactly once (every 1s, real clock)', async () => {
    const store = new SharedMemoryStore();
    const instances: WorkflowClient[] = [];
    @Schedule({ id: 'multi', every: '1s' })
    @Workflow('multi')
    class Multi {
      @Step() run(input: { scheduledAt: Date }) {
        seen.push({ workflow: 'multi', input: input.scheduledAt.getTime() });
        return null;
      }
    }
    for (let i = 0; i < 3; i++) {
      const moduleRef = await Test.createTestingModule({
        imports: [DurableExecutionModule.forRoot({ store, worker: { pollIntervalMs: 50, shutdownGraceMs: 0 } })],
        providers: [Multi],
      })
        .setLogger(silentLogger)
        .compile();
      const app = await moduleRef.init();
      apps.push(app);
      instances.push(app.get(WorkflowClient));
    }
    const began = Date.now();
    await sleep(3_600);
    for (const app of apps.splice(0)) await app.close();
    const ticks = seen.map((s) => s.input as number).sort((a, b) => a - b);
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(ticks.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i] - ticks[i - 1]).toBe(1_000);
    expect(ticks[0]).toBeGreaterThanOrEqual(Math.floor(began / 1_000) * 1_000);
    expect(ticks.every((t) => t % 1_000 === 0)).toBe(true);
  }, 20_000);
});

describe('schedule timing (croner, pure)', () => {
  const at = (iso: string) => Date.parse(iso);
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

  it('DST in Europe/Berlin: a skipped local time fires an hour later, a repeated one once (its second occurrence)', () => {
    const daily = timingOf({ cron: '30 2 * * *', timezone: 'Europe/Berlin', overlap: 'skip', catchUp: 'latest', paused: false });
    // 2030-03-31: clocks jump 02:00 → 03:00 CEST; 02:30 does not exist: it fires at 03:30 CEST (01:30 UTC).
    expect(iso(nextTickAfter(daily, at('2030-03-30T12:00:00Z')))).toBe('2030-03-31T01:30:00.000Z');
    // 2030-10-27: clocks go back 03:00 → 02:00; 02:30 happens twice: it fires once, at 02:30 CET (01:30 UTC).
    expect(iso(nextTickAfter(daily, at('2030-10-26T12:00:00Z')))).toBe('2030-10-27T01:30:00.000Z');
    expect(iso(nextTickAfter(daily, at('2030-10-27T01:30:00Z')))).toBe('2030-10-28T01:30:00.000Z');
  });

  it('plans catch-up ticks without iterating a long outage', () => {
    const minutely = timingOf({ cron: '* * * * *', timezone: 'UTC', overlap: 'skip', catchUp: 'latest', paused: false });
    const plan = planTicks(minutely, 'latest', T0, T0 + 365 * 24 * 3600_000 + 1_000);
    expect(plan.fire).toEqual([T0 + 365 * 24 * 3600_000]);
    // NOTE: no timing assertion: a year of a cron firing every second is 31.5 million ticks, which a plan that walked
    // them would take minutes over (the test's timeout fails it); the plan looks back from now in growing windows.
    const everySecond = timingOf({ cron: '* * * * * *', timezone: 'UTC', overlap: 'skip', catchUp: 'latest', paused: false });
    expect(planTicks(everySecond, 'latest', T0, T0 + 365 * 24 * 3600_000 + 500)).toMatchObject({
      fire: [T0 + 365 * 24 * 3600_000],
      next: T0 + 365 * 24 * 3600_000 + 1_000,
    });
    expect(plan.next).toBe(T0 + 365 * 24 * 3600_000 + 60_000);
    expect(planTicks(minutely, 'all', T0, T0 + 365 * 24 * 3600_000).fire).toHaveLength(100);
    expect(planTicks(minutely, 'none', T0, T0 + 5_000)).toMatchObject({ fire: [T0], next: T0 + 60_000 });
    expect(planTicks(minutely, 'none', T0, T0 + 61_000 + 10_001)).toMatchObject({ fire: [], next: T0 + 120_000 });
  });
});
