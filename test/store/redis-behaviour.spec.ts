import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { Redis, type Command } from 'ioredis';
import { InvalidArgumentError, StoreError } from '../../src/errors/errors.js';
import { RedisKeys } from '../../src/store/redis/redis.keys.js';
import { LIVE_STATUSES } from '../../src/store/run-state-machine.js';
import { compareRunIds } from '../../src/store/run-id-order.js';
import { ALL_SCRIPTS, APPLY_INDEX, COMMIT, CREATE_RUN } from '../../src/store/redis/redis.scripts.js';
import { RedisStore, type RedisStoreLogger } from '../../src/store/redis/redis.store.js';
import { isTerminal, type ClaimedRun, type StoreEvent } from '../../src/store/workflow-store.interface.js';
import { startRedis, type RedisServer } from '../setup/redis-server.js';
import { testRedis } from '../setup/test-servers.js';

const redis = testRedis();
const url = () => redis.url;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const LEASE = { owner: 'behaviour', leaseMs: 30_000 };
const OTHER = { owner: 'behaviour-b', leaseMs: 30_000 };

class CapturingLogger implements RedisStoreLogger {
  readonly logs: string[] = [];
  readonly warnings: string[] = [];
  readonly errors: string[] = [];
  log(message: string) {
    this.logs.push(message);
  }
  warn(message: string) {
    this.warnings.push(message);
  }
  error(message: string) {
    this.errors.push(message);
  }
}

/** Records every command a client sends (pipelines included); `fail` makes matching commands fail. */
function recordCommands(client: Redis, fail?: (name: string) => Error | undefined) {
  const commands: { name: string; args: string[] }[] = [];
  const original = client.sendCommand.bind(client) as (command: Command, stream?: unknown) => unknown;
  client.sendCommand = ((command: Command, stream?: unknown) => {
    commands.push({ name: command.name, args: command.args.map(String) });
    const error = fail?.(command.name);
    if (error) {
      command.reject(error);
      return command.promise;
    }
    return original(command, stream);
  }) as typeof client.sendCommand;
  return commands;
}

const scriptName = new Map(ALL_SCRIPTS.map((s) => [s.sha, s.name]));
function scriptCalls(commands: { name: string; args: string[] }[]): string[] {
  return commands
    .filter((c) => c.name === 'evalsha' || c.name === 'eval')
    .map((c) => (c.name === 'evalsha' ? scriptName.get(c.args[0]) ?? c.args[0] : ALL_SCRIPTS.find((s) => s.lua === c.args[0])?.name ?? 'eval'));
}

async function deletePrefix(client: Redis, prefix: string) {
  const keys = await client.keys(`${prefix}*`);
  if (keys.length) await client.del(...keys);
}

redis.describe('RedisStore on a shared server', () => {
  let admin: Redis;
  const prefixes: string[] = [];
  const stores: RedisStore[] = [];
  const newPrefix = () => {
    const prefix = `cairn-test-b-${randomUUID().slice(0, 8)}:`;
    prefixes.push(prefix);
    return prefix;
  };
  const open = async (options: ConstructorParameters<typeof RedisStore>[0] = {}) => {
    const store = new RedisStore({ url: url(), keyPrefix: newPrefix(), logger: new CapturingLogger(), ...options });
    stores.push(store);
    await store.init();
    return store;
  };

  beforeAll(() => {
    admin = new Redis(url());
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    for (const prefix of prefixes) await deletePrefix(admin, prefix);
    await admin.quit();
  });

  it('commits a step checkpoint with exactly one script call (one round trip)', async () => {
    const client = new Redis(url());
    try {
      const commands = recordCommands(client);
      const store = await open({ client });
      const run = (await store.createRun({ runId: randomUUID(), workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
      await sleep(20); // let the create's index update go out
      commands.length = 0;
      const res = await store.commit(run.runId, run.leaseToken!, {
        leaseMs: 30_000,
        state: '{"at":"b"}',
        currentStep: 'b',
        steps: [
          { index: 0, step: { name: 'a', status: 'completed', attempts: 1, output: '1' } },
          { index: 1, step: { name: 'b', status: 'running', attempts: 0 } },
        ],
      });
      expect(res).toEqual({ ok: true });
      await sleep(20);
      expect(commands.map((c) => c.name)).toEqual(['evalsha']);
      expect(scriptCalls(commands)).toEqual(['commit']);

      // a commit that changes the status is still one script call for the run; the global indexes follow with one
      // (batched) index update
      commands.length = 0;
      await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'sleeping', due: { delayMs: 60_000 }, release: true });
      await sleep(20);
      expect(scriptCalls(commands)).toEqual(['commit', 'applyIndex']);
    } finally {
      await client.quit();
    }
  });

  it('leaves a borrowed client open on close, but closes the subscriber it duplicated', async () => {
    const name = `borrowed-${randomUUID().slice(0, 8)}`;
    const client = new Redis(url(), { connectionName: name });
    try {
      const store = await open({ client });
      const unsubscribe = await store.subscribe(() => {});
      const count = async () => ((await admin.client('LIST')) as string).split('\n').filter((line) => line.includes(` name=${name} `)).length;
      expect(await count()).toBe(2);
      void unsubscribe;
      await store.close();
      await sleep(50);
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
      expect(await count()).toBe(1);
    } finally {
      await client.quit();
    }
  });

  it('closes the client it created itself', async () => {
    const store = await open();
    const client = store.client;
    await store.subscribe(() => {});
    await store.close();
    await sleep(50);
    expect(['end', 'close']).toContain(client.status);
  });

  it('recovers from NOSCRIPT (SCRIPT FLUSH) on single and pipelined script calls', async () => {
    const store = await open();
    const workflow = `wf-${randomUUID().slice(0, 6)}`;
    const run = (await store.createRun({ runId: randomUUID(), workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    for (let i = 0; i < 3; i++) await store.createRun({ runId: randomUUID(), workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
    await admin.script('FLUSH');
    expect((await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, state: '"after-flush"' })).ok).toBe(true);
    expect((await store.getRun(run.runId))!.state).toBe('"after-flush"');
    await admin.script('FLUSH');
    expect(await store.claimRuns(LEASE, 10, [{ workflow, version: 1 }])).toHaveLength(3);
    await admin.script('FLUSH');
    expect(await store.listRuns({ workflow, limit: 10 })).toHaveLength(4);
  });

  it('rejects a caller transaction and ill-formed ids with InvalidArgumentError', async () => {
    const store = await open();
    await expect(
      store.createRun({ runId: 'x', workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', transaction: {} }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.getRun('')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.getRun('\uDC00')).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('pages runs created in the same millisecond in exact (createdAt desc, runId desc) order, code-point order for ties', async () => {
    const store = await open();
    const workflow = `wf-${randomUUID().slice(0, 6)}`;
    // ids whose UTF-8 byte order differs from JS (UTF-16) order: U+FFFD sorts after an emoji in bytes, before it in JS
    const ids = ['\uFFFD', '😀', 'a', 'b', 'B', '', 'é', 'e\u0301', 'z{', '{z', ...Array.from({ length: 40 }, (_, i) => `r${i}`)].filter(Boolean);
    await Promise.all(ids.map((runId) => store.createRun({ runId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' })));
    const stored = await Promise.all(ids.map(async (id) => (await store.getRun(id))!));
    const expected = stored
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || Buffer.compare(Buffer.from(b.runId), Buffer.from(a.runId)))
      .map((r) => r.runId);
    expect(new Set(stored.map((r) => r.createdAt.getTime())).size).toBeLessThan(ids.length); // ties exist
    const seen: string[] = [];
    let after: { createdAt: Date; runId: string } | undefined;
    for (let page = 0; page < 20; page++) {
      const runs = await store.listRuns({ workflow, limit: 7, after });
      seen.push(...runs.map((r) => r.runId));
      if (runs.length < 7) break;
      after = { createdAt: runs[6].createdAt, runId: runs[6].runId };
    }
    expect(seen).toEqual(expected);
    expect(await store.listRuns({ workflow, statuses: ['pending', 'running'], limit: 1000 })).toHaveLength(ids.length);
  });

  describe('live run summary', () => {
    it('reads only the live status indexes and the live runs, and skips runs that are gone or no longer live', async () => {
      const client = new Redis(url());
      try {
        const commands = recordCommands(client);
        const store = await open({ client });
        const workflow = `wf-${randomUUID().slice(0, 6)}`;
        const create = (runId: string, lease = false) =>
          store.createRun({ runId, workflow, version: 3, input: '1', state: '{}', pipeline: 'fp', currentStep: 'a' }, { onConflict: 'keep', lease: lease ? LEASE : undefined });
        for (const id of ['l1', 'l2', 'gone', 'lagging']) await create(id);
        const ended = (await create('ended', true)).run;
        expect((await store.commit('ended', ended.leaseToken!, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
        await store.listRuns({ limit: 1 }); // let the index updates go out
        // a run deleted by hand (as if expired) and one whose index entry lags its status
        await admin.del(store.keys.run('gone').run);
        await admin.hset(store.keys.run('lagging').run, 'st', 'completed');
        commands.length = 0;
        const groups = await store.summarizeLiveRuns();
        expect(groups).toEqual([{ workflow, version: 3, pipeline: 'fp', currentStep: 'a', count: 2, runIds: expect.any(Array) }]);
        expect(groups[0].runIds.sort()).toEqual(['l1', 'l2']);
        const scanned = commands.filter((c) => c.name === 'zscan').map((c) => c.args[0]);
        expect(scanned.sort()).toEqual(LIVE_STATUSES.map((s) => store.keys.byStatus(s)).sort());
        const read = commands.filter((c) => c.name === 'hmget').map((c) => c.args[0]);
        expect(read.sort()).toEqual(['gone', 'l1', 'l2', 'lagging'].map((id) => store.keys.run(id).run).sort());
        expect(commands.filter((c) => !['zscan', 'hmget'].includes(c.name))).toEqual([]);
      } finally {
        client.disconnect();
      }
    });
  });

  describe('dashboard queries', () => {
    it('filters by creation time with index score ranges: pages in order and never reads a run outside the bounds', async () => {
      const client = new Redis(url());
      try {
        const commands = recordCommands(client);
        const store = await open({ client });
        const workflow = `wf-${randomUUID().slice(0, 6)}`;
        // batches created at once (ties within a batch), a few ms apart; ids whose byte order differs from UTF-16 order
        const ids: string[] = [];
        for (let batch = 0; batch < 6; batch++) {
          const names = ['\uFFFD', '😀', 'a', 'B', 'é', 'z{', `r${batch}`].map((id) => `${batch}-${id}`);
          await Promise.all(names.map((runId) => store.createRun({ runId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' })));
          ids.push(...names);
          await sleep(4);
        }
        await store.createRun({ runId: `other-${randomUUID()}`, workflow: `${workflow}-x`, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
        const stored = await Promise.all(ids.map(async (id) => (await store.getRun(id))!));
        const times = [...new Set(stored.map((r) => r.createdAt.getTime()))].sort((a, b) => a - b);
        expect(times.length).toBeGreaterThan(3);
        const expected = (from?: number, to?: number, after?: { t: number; id: string }) =>
          stored
            .filter((r) => (from === undefined || r.createdAt.getTime() >= from) && (to === undefined || r.createdAt.getTime() < to))
            .filter((r) => !after || r.createdAt.getTime() < after.t || (r.createdAt.getTime() === after.t && compareRunIds(r.runId, after.id) < 0))
            .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || compareRunIds(b.runId, a.runId))
            .map((r) => r.runId);
        const bounds: [number | undefined, number | undefined][] = [
          [times[1], times[times.length - 2]],
          [times[2], undefined],
          [undefined, times[3]],
          [times[1], times[1] + 1],
          [times[0] - 1000, times[times.length - 1] + 1000],
          [times[3], times[3]], // empty: from >= to
          [times[times.length - 1] + 1, undefined], // empty
        ];
        for (const [from, to] of bounds) {
          const want = expected(from, to);
          for (const limit of [1, 3, 5, 100]) {
            await sleep(10);
            commands.length = 0;
            const seen: string[] = [];
            let after: { createdAt: Date; runId: string } | undefined;
            for (let page = 0; page < 100; page++) {
              const runs = await store.listRuns({
                workflow,
                limit,
                after,
                ...(from !== undefined ? { createdFrom: new Date(from) } : {}),
                ...(to !== undefined ? { createdTo: new Date(to) } : {}),
              });
              seen.push(...runs.map((r) => r.runId));
              if (runs.length < limit) break;
              after = { createdAt: runs[runs.length - 1].createdAt, runId: runs[runs.length - 1].runId };
            }
            expect({ from, to, limit, seen }).toEqual({ from, to, limit, seen: want });
            // each run inside the bounds is read once; none outside
            expect({ from, to, limit, reads: scriptCalls(commands).filter((n) => n === 'readRun').length }).toEqual({ from, to, limit, reads: want.length });
          }
        }
        // a cursor outside the bounds: every run below it (and inside them), or none
        const [from, to] = [times[1], times[4]];
        const high = { createdAt: new Date(times[5]), runId: '\u{10FFFF}' };
        expect((await store.listRuns({ workflow, limit: 100, createdFrom: new Date(from), createdTo: new Date(to), after: high })).map((r) => r.runId)).toEqual(
          expected(from, to),
        );
        const low = { createdAt: new Date(times[0]), runId: '\u{10FFFF}' };
        expect(await store.listRuns({ workflow, limit: 100, createdFrom: new Date(from), createdTo: new Date(to), after: low })).toEqual([]);
        // a cursor inside a tie group at the lower bound (the largest group of runs created in one millisecond: a batch
        // of 7 concurrent creates shares its millisecond, though a batch may straddle two)
        const sizes = times.map((t) => stored.filter((r) => r.createdAt.getTime() === t).length);
        const tie = times[sizes.indexOf(Math.max(...sizes))];
        const atFrom = expected(tie).filter((id) => stored.find((r) => r.runId === id)!.createdAt.getTime() === tie);
        expect(atFrom.length).toBeGreaterThan(1);
        const cursor = { createdAt: new Date(tie), runId: atFrom[0] };
        expect((await store.listRuns({ workflow, limit: 100, createdFrom: new Date(tie), after: cursor })).map((r) => r.runId)).toEqual(atFrom.slice(1));
        // with statuses (several index keys at once)
        expect((await store.listRuns({ workflow, statuses: ['pending', 'completed'], limit: 4, createdFrom: new Date(from), createdTo: new Date(to) })).map((r) => r.runId)).toEqual(
          expected(from, to).slice(0, 4),
        );
        // an invalid date filters nothing (as in the memory store)
        expect(await store.listRuns({ workflow, limit: 100, createdFrom: new Date(NaN) })).toHaveLength(ids.length);
      } finally {
        await client.quit();
      }
    });

    it('counts runs from the status index cardinalities in one round trip', async () => {
      const client = new Redis(url());
      try {
        const commands = recordCommands(client);
        const store = await open({ client });
        const workflow = `wf-${randomUUID().slice(0, 6)}`;
        const ids = Array.from({ length: 5 }, () => randomUUID());
        const runs = await Promise.all(ids.map((runId) => store.createRun({ runId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })));
        await store.commit(ids[0], runs[0].run.leaseToken!, { leaseMs: 30_000, status: 'completed' });
        await store.commit(ids[1], runs[1].run.leaseToken!, { leaseMs: 30_000, status: 'failed', error: { name: 'E', message: 'm' } });
        await store.control(ids[2], { action: 'pause' }); // leased: a pause request, still running
        await store.createRun({ runId: randomUUID(), workflow: `${workflow}-x`, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
        // counted at once: the index records of this instance's writes are applied first
        expect(await store.countRuns({ workflow })).toEqual({ running: 3, completed: 1, failed: 1 });
        await sleep(20);
        commands.length = 0;
        expect(await store.countRuns({ workflow })).toEqual({ running: 3, completed: 1, failed: 1 });
        expect(commands.map((c) => c.name)).toEqual(Array(10).fill('zcard'));
        expect(await store.countRuns({})).toEqual({ running: 3, completed: 1, failed: 1, pending: 1 });
        expect(await store.countRuns({ workflow: `missing-{${randomUUID()}}` })).toEqual({});
        // a run whose status is damaged is counted where it is listed (parked: as paused)
        await admin.hset(store.keys.run(ids[3]).run, 'st', 'bogus');
        await store.reindex();
        expect(await store.countRuns({ workflow })).toEqual({ running: 2, paused: 1, completed: 1, failed: 1 });
      } finally {
        await client.quit();
      }
    });

    it('lists signals from damaged or foreign queue keys without failing', async () => {
      const store = await open();
      const run = (await store.createRun({ runId: randomUUID(), workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
      const q = store.keys.run(run.runId).signals;
      await admin.hset(q, 'h:go', 'x', 't:go', 'y', 'v:7:go', '"never"');
      expect((await store.sendSignal(run.runId, 'go', '"p"')).outcome).toBe('ok');
      expect((await store.sendSignal(run.runId, 'a:b', '"c"')).outcome).toBe('ok');
      expect(await store.listSignals(run.runId)).toEqual([
        { name: 'a:b', payload: '"c"' },
        { name: 'go', payload: '"p"' },
      ]);
      const res = await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, wait: { signals: ['go'] } });
      expect(res).toEqual({ ok: true, consumedSignal: { name: 'go', payload: '"p"' } });
      expect(await store.listSignals(run.runId)).toEqual([{ name: 'a:b', payload: '"c"' }]);
      await admin.del(q);
      await admin.set(q, 'not a hash');
      expect(await store.listSignals(run.runId)).toEqual([]);
    });

    it('sets nextInput on retry in the control script, verbatim', async () => {
      const store = await open();
      const run = (await store.createRun({ runId: randomUUID(), workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
      await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'failed', error: { name: 'E', message: 'm' } });
      const payload = "]] redis.call('FLUSHALL') --[[ \"{p}\" ünï 🚀";
      expect(await store.control(run.runId, { action: 'retry', nextInput: payload }, '{"t":"retry"}')).toMatchObject({ outcome: 'ok', eventSeq: 1 });
      expect((await store.getRun(run.runId))!.nextInput).toBe(payload);
      expect((await store.listEvents(run.runId, { limit: 10 })).map((e) => e.body)).toEqual(['{"t":"retry"}']);
      // an empty next input is one too
      const other = (await store.createRun({ runId: randomUUID(), workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
      await store.commit(other.runId, other.leaseToken!, { leaseMs: 30_000, status: 'failed', error: { name: 'E', message: 'm' } });
      expect((await store.control(other.runId, { action: 'retry', nextInput: '' })).outcome).toBe('ok');
      expect((await store.getRun(other.runId))!.nextInput).toBe('');
    });

    it('keeps the name of the signal handed to the run in `nis`, with `ni`, and deletes it with `ni`', async () => {
      const store = await open();
      const workflow = `wf-${randomUUID().slice(0, 6)}`;
      const run = (await store.createRun({ runId: randomUUID(), workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
      const r = store.keys.run(run.runId).run;
      const token = run.leaseToken!;
      await store.sendSignal(run.runId, 'go', '"g"');
      expect(await store.commit(run.runId, token, { leaseMs: 30_000, wait: { signals: ['x', 'go'] } })).toMatchObject({ ok: true, consumedSignal: { name: 'go' } });
      expect(await admin.hmget(r, 'ni', 'nis')).toEqual(['"g"', 'go']);
      expect((await store.listRuns({ workflow, limit: 10 }))[0]).toMatchObject({ nextInput: '"g"', nextInputSignal: 'go' });
      // a restart deletes both
      await store.commit(run.runId, token, { leaseMs: 30_000, keepInput: true, restart: { input: '2' } });
      expect(await admin.hmget(r, 'ni', 'nis')).toEqual([null, null]);
      // takeSignal sets both; a commit without keepInput deletes both
      await store.sendSignal(run.runId, 'later', '"l"');
      expect(await store.takeSignal(run.runId, token, ['later'])).toMatchObject({ ok: true, signal: 'later' });
      expect(await admin.hmget(r, 'ni', 'nis')).toEqual(['"l"', 'later']);
      await store.commit(run.runId, token, { leaseMs: 30_000, keepInput: true });
      expect(await store.getRun(run.runId)).toMatchObject({ nextInput: '"l"', nextInputSignal: 'later' });
      await store.commit(run.runId, token, { leaseMs: 30_000 });
      expect(await admin.hmget(r, 'ni', 'nis')).toEqual([null, null]);
      // a retry with a next input sets `ni` and deletes `nis`; one without leaves both
      await store.sendSignal(run.runId, 'go', '"g2"');
      await store.commit(run.runId, token, { leaseMs: 30_000, wait: { signals: ['go'] }, keepInput: true });
      await store.commit(run.runId, token, { leaseMs: 30_000, keepInput: true, status: 'failed', error: { name: 'E', message: 'm' } });
      expect(await admin.hmget(r, 'ni', 'nis')).toEqual(['"g2"', 'go']);
      expect((await store.control(run.runId, { action: 'retry' })).outcome).toBe('ok');
      expect(await admin.hmget(r, 'ni', 'nis')).toEqual(['"g2"', 'go']);
      const claimed = (await store.claimRun(run.runId, OTHER))!;
      expect(claimed).toMatchObject({ nextInput: '"g2"', nextInputSignal: 'go' });
      await store.commit(run.runId, claimed.leaseToken, { leaseMs: 30_000, keepInput: true, status: 'failed', error: { name: 'E', message: 'm' } });
      expect((await store.control(run.runId, { action: 'retry', nextInput: '"s"' })).outcome).toBe('ok');
      expect(await admin.hmget(r, 'ni', 'nis')).toEqual(['"s"', null]);
      const stored = (await store.getRun(run.runId))!;
      expect(stored.nextInput).toBe('"s"');
      expect(stored.nextInputSignal).toBeUndefined();
    });
  });

  it('publishes control and ready events where the memory store does', async () => {
    const store = await open();
    const events: StoreEvent[] = [];
    const unsubscribe = await store.subscribe((e) => events.push(e));
    const run = (await store.createRun({ runId: randomUUID(), workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    await store.control(run.runId, { action: 'pause' });
    await store.control(run.runId, { action: 'resume' });
    await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, wait: { signals: ['go'] } });
    await store.sendSignal(run.runId, 'go', '1');
    await store.createRun({ runId: run.runId, workflow: 'wf', version: 1, input: '2', state: '{}' }, { onConflict: 'replace', lease: LEASE });
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline && events.length < 3) await sleep(10);
    await unsubscribe();
    expect(events).toEqual([
      { type: 'control', runId: run.runId }, // pause of a leased run
      { type: 'ready', runId: run.runId }, // the signal the run waits for
      { type: 'control', runId: run.runId }, // replaced
    ]);
  });

  describe('damaged data', () => {
    const stepRun = (workflow: string, runId: string = randomUUID()) => ({
      runId,
      workflow,
      version: 1,
      input: '1',
      state: '{}',
      steps: [{ name: 'a', status: 'running' as const, attempts: 0 }],
      currentStep: 'a',
    });
    const finishAll = (store: RedisStore, runs: ClaimedRun[]) =>
      Promise.all(
        runs.map((run) =>
          store.commit(run.runId, run.leaseToken, run.corrupt
            ? { leaseMs: 30_000, status: 'failed', error: { name: 'CorruptRunError', message: run.corrupt } }
            : { leaseMs: 30_000, status: 'completed', output: '"ok"', steps: [{ index: 0, step: { name: 'a', status: 'completed', attempts: 1 } }] }),
        ),
      );

    it('names the run and the field, uses placeholders, and keeps opaque values verbatim', async () => {
      const store = await open();
      const workflow = `wf-${randomUUID().slice(0, 6)}`;
      await store.createRun({ ...stepRun(workflow, 'POISON'), input: 'not json {', state: 'not json either' }, { onConflict: 'keep' });
      const keys = store.keys.run('POISON');
      await admin.hset(keys.run, 'err', '{"name":"E","message":', 'ca', 'abc');
      await admin.hset(keys.steps, '0', 'garbage', '1', '{"name":"b","status":"completed","attempts":"1"}');
      const run = (await store.getRun('POISON'))!;
      expect(run.corrupt).toContain('field err of run "POISON": ');
      expect(run.corrupt).toContain('field ca of run "POISON": ');
      expect(run.corrupt).toContain('step 0 of run "POISON": ');
      expect(run.corrupt).toContain('step 1 of run "POISON": unreadable attempts');
      expect(run.error).toBeUndefined();
      expect(run.steps).toEqual([
        { name: '?', status: 'failed', attempts: 0 },
        { name: 'b', status: 'completed', attempts: 0 },
      ]);
      expect(run.input).toBe('not json {');
      expect(run.state).toBe('not json either');
      expect(run.createdAt).toEqual(run.updatedAt); // the placeholder of a damaged creation time
      // listed with its index score as creation time, so that pages stay in order
      const [listed] = await store.listRuns({ workflow, limit: 10 });
      expect(listed.runId).toBe('POISON');
      expect(listed.createdAt.getTime()).toBe(Number(await admin.zscore(store.keys.created, 'POISON')));
    });

    it('keeps the index of 200 healthy runs claimed and committed in the same batches as damaged ones', async () => {
      const logger = new CapturingLogger();
      const store = await open({ logger });
      const workflow = `wf-${randomUUID().slice(0, 6)}`;
      const ids = Array.from({ length: 200 }, (_, i) => `ok-${i}-${randomUUID().slice(0, 8)}`);
      await Promise.all(ids.map((id) => store.createRun(stepRun(workflow, id), { onConflict: 'keep' })));
      const damage: Record<string, [string, string]> = { 'bad-st': ['st', 'bogus'], 'bad-ca': ['ca', 'abc'], 'bad-due': ['due', 'abc'], 'bad-err': ['err', '{'] };
      for (const [runId, [field, value]] of Object.entries(damage)) {
        await store.createRun(stepRun(workflow, runId), { onConflict: 'keep' });
        await admin.hset(store.keys.run(runId).run, field, value);
      }
      await admin.hset(store.keys.run(ids[7]).steps, '0', '{not json');

      const claimed = await store.claimRuns(LEASE, 500, [{ workflow, version: 1 }]);
      const claimedIds = claimed.map((r) => r.runId);
      expect(claimedIds.filter((id) => ids.includes(id))).toHaveLength(200);
      expect(claimedIds).not.toContain('bad-st'); // parked
      expect(claimed.filter((r) => r.corrupt).map((r) => r.runId).sort()).toEqual(['bad-ca', 'bad-due', 'bad-err', ids[7]].sort());
      // nothing is left leased that the claim did not return
      for (const id of [...ids, ...Object.keys(damage)]) {
        const leased = (await admin.hget(store.keys.run(id).run, 'lt')) !== null;
        expect({ id, leased }).toEqual({ id, leased: claimedIds.includes(id) });
      }
      expect((await finishAll(store, claimed)).every((r) => r.ok)).toBe(true);

      const healthy = ids.filter((id) => id !== ids[7]);
      const completed = await store.listRuns({ statuses: ['completed'], limit: 1000 });
      expect(completed.map((r) => r.runId).sort()).toEqual([...healthy].sort());
      expect(await store.listRuns({ workflow, statuses: ['pending', 'running'], limit: 1000 })).toEqual([]);
      const failed = await store.listRuns({ workflow, statuses: ['failed'], limit: 1000 });
      expect(failed.map((r) => r.runId).sort()).toEqual(['bad-ca', 'bad-due', 'bad-err', ids[7]].sort());
      const parked = await store.listRuns({ workflow, statuses: ['paused'], limit: 10 });
      expect(parked.map((r) => [r.runId, r.status, typeof r.corrupt])).toEqual([['bad-st', 'paused', 'string']]);
      expect(await store.claimRuns(OTHER, 10, [{ workflow, version: 1 }])).toEqual([]);
      expect(logger.warnings).toEqual([]);
    });

    it('applies every sound record of an index batch and skips (or repairs) the damaged ones', async () => {
      const store = await open();
      const keys = store.keys;
      const workflow = `wf-${randomUUID().slice(0, 6)}`;
      const ids = Array.from({ length: 5 }, (_, i) => `sound-${i}`);
      for (const runId of [...ids, 'st', 'ca', 'iv', 'meta', 'claim']) {
        await store.createRun({ runId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
      }
      await store.listRuns({ workflow, limit: 1 }); // the creations' index records are applied
      const created = Number(await admin.zscore(keys.created, 'ca'));
      await admin.hset(keys.meta, 'meta', 'garbage without separators');
      const iv = String(Date.now() * 1000 + 10_000_000);
      const rec = (id: string, over: Partial<Record<'st' | 'ca' | 'iv' | 'claim' | 'fa', string>> = {}) => [
        id, '1', over.iv ?? iv, workflow, over.st ?? 'completed', over.ca ?? '1000', over.claim ?? '-1', over.fa ?? '2000', '1', '', '', '0', '0',
      ];
      const records = [
        ...rec(ids[0]), ...rec('st', { st: 'bogus', claim: '5' }), ...rec(ids[1]), ...rec('ca', { ca: 'abc' }), ...rec(ids[2]),
        ...rec('iv', { iv: 'x' }), ...rec(ids[3]), ...rec('meta'), ...rec('claim', { st: 'running', claim: 'nan', fa: 'zz' }), ...rec(ids[4]),
      ];
      const scriptKeys = [...keys.applyBase(), ...keys.workflowGroup(workflow), keys.dueByVersion(workflow, 1)];
      const result = (await admin.eval(APPLY_INDEX.lua, scriptKeys.length, ...scriptKeys, '1', workflow, '1', workflow, '1', ...records)) as [number, number, string];
      expect(result).toEqual([9, 1, expect.stringContaining('run iv: ')]);
      for (const id of [...ids, 'meta']) expect(await admin.zscore(keys.byStatus('completed'), id)).toBe('1000');
      for (const id of [...ids, 'meta']) expect(await admin.zscore(keys.finished('completed'), id)).toBe('2000');
      expect(await admin.zscore(keys.byStatus('paused'), 'st')).not.toBeNull(); // parked: listed, never claimed
      expect(await admin.zscore(keys.due, 'st')).toBeNull();
      expect(Number(await admin.zscore(keys.created, 'ca'))).toBe(created); // keeps its score
      expect(await admin.zscore(keys.byStatus('pending'), 'iv')).not.toBeNull(); // skipped: as it was
      expect(await admin.zscore(keys.due, 'claim')).toBeNull();
      expect(await admin.zscore(keys.byStatus('running'), 'claim')).not.toBeNull();
    });

    it('claims, commits and re-indexes runs whose update time, lease expiry, index version or index entry is damaged', async () => {
      const store = await open();
      const workflow = `wf-${randomUUID().slice(0, 6)}`;
      const ids = ['ua', 'le', 'iv', 'meta', 'fine'];
      for (const runId of ids) await store.createRun(stepRun(workflow, runId), { onConflict: 'keep' });
      await admin.hset(store.keys.run('ua').run, 'ua', 'abc');
      await admin.hset(store.keys.run('le').run, 'le', 'abc');
      await admin.hset(store.keys.run('iv').run, 'iv', 'x');
      await admin.hset(store.keys.meta, 'meta', '|||');
      expect((await store.getRun('ua'))!.corrupt).toContain('field ua of run "ua"');
      expect((await store.getRun('le'))!.corrupt).toContain('field le of run "le"');
      const claimed = await store.claimRuns(LEASE, 10, [{ workflow, version: 1 }]);
      expect(claimed.map((r) => r.runId).sort()).toEqual([...ids].sort());
      expect(claimed.filter((r) => r.corrupt)).toEqual([]); // the claim rewrote what was damaged
      expect((await finishAll(store, claimed)).every((r) => r.ok)).toBe(true);
      const completed = await store.listRuns({ workflow, statuses: ['completed'], limit: 10 });
      expect(completed.map((r) => r.runId).sort()).toEqual([...ids].sort());
    });

    it('reads damaged signal queues without failing the run', async () => {
      const store = await open();
      const run = (await store.createRun({ runId: randomUUID(), workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
      const q = store.keys.run(run.runId).signals;
      await admin.hset(q, 'h:go', 'x', 't:go', 'y');
      expect((await store.sendSignal(run.runId, 'go', '"p"')).outcome).toBe('ok');
      const res = await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, wait: { signals: ['go'] } });
      expect(res).toEqual({ ok: true, consumedSignal: { name: 'go', payload: '"p"' } });
    });

    it('round-trips NUL and other control characters in errors and step records', async () => {
      const store = await open();
      const run = (await store.createRun({ runId: randomUUID(), workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
      const text = 'a\u0000b\u0001c\u001f\u007f\u2028 "q" \\ \uFFFD';
      const error = { name: `E${text}`, message: text, step: `s${text}`, phase: 'step' as const };
      const step = { name: `s${text}`, status: 'failed' as const, attempts: 1, error: text, output: text };
      expect((await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'failed', error, currentStep: step.name, steps: [{ index: 0, step }] })).ok).toBe(true);
      const stored = (await store.getRun(run.runId))!;
      expect(stored.corrupt).toBeUndefined();
      expect(stored.error).toEqual(error);
      expect(stored.steps).toEqual([step]);
      expect(stored.currentStep).toBe(step.name);
    });
  });

  describe('signals of ended runs', () => {
    it('leaves no signal key or field behind once runs end, however they end, under a flood of signals', async () => {
      const store = await open();
      const workflow = `wf-${randomUUID().slice(0, 6)}`;
      const runs = await Promise.all(
        Array.from({ length: 60 }, async (_, i) =>
          (await store.createRun({ runId: `sig-${i}-${randomUUID().slice(0, 6)}`, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run,
        ),
      );
      const endings = ['completed', 'failed', 'compensated', 'cancelled'] as const;
      const flood = runs.flatMap((run) => Array.from({ length: 12 }, (_, j) => store.sendSignal(run.runId, `s${j % 3}`, `"${j}"`)));
      const ends = runs.map(async (run, i) => {
        await sleep(i % 5);
        if (i % 10 === 9) {
          // replaced, then ended
          const next = (await store.createRun({ runId: run.runId, workflow, version: 1, input: '2', state: '{}' }, { onConflict: 'replace', lease: LEASE })).run;
          await store.sendSignal(run.runId, 's0', '"after"');
          return store.commit(run.runId, next.leaseToken!, { leaseMs: 30_000, status: 'completed' });
        }
        if (i % 10 === 8) {
          // consumes one signal, then ends
          await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, wait: { signals: ['s1'] } });
          const again = await store.claimRun(run.runId, LEASE);
          if (again) return store.commit(run.runId, again.leaseToken, { leaseMs: 30_000, status: 'completed' });
          return store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'completed' });
        }
        return store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: endings[i % 4] });
      });
      const results = await Promise.all([...flood, ...ends]);
      expect(results.slice(flood.length).every((r) => (r as { ok: boolean }).ok)).toBe(true);
      for (const run of runs) expect(isTerminal((await store.getRun(run.runId))!.status)).toBe(true);
      expect(await admin.keys(`${store.keys.prefix}{*}:q`)).toEqual([]);
      // a retried run starts with no signal, and an ended run takes none
      const failed = runs.filter((_, i) => i % 10 !== 9 && i % 10 !== 8 && i % 4 === 1);
      expect((await store.sendSignal(failed[0].runId, 's0', '1')).outcome).toBe('not-active');
      expect((await store.control(failed[0].runId, { action: 'retry' })).outcome).toBe('ok');
      expect(await admin.exists(store.keys.run(failed[0].runId).signals)).toBe(0);
      // purge deletes whatever is left of a run
      await sleep(5);
      expect(await store.purge(['completed', 'compensated', 'cancelled', 'failed'], 0)).toBe(runs.length - 1);
      const runKeys = (await admin.keys(`${store.keys.prefix}{*}:*`)).filter((key) => !key.startsWith(store.keys.index));
      expect(runKeys).toEqual([store.keys.run(failed[0].runId).run]);
    });
  });

  describe('generations', () => {
    it('reads a run written without a generation as generation 1, and replaces it with generation 2', async () => {
      const store = await open();
      const runId = randomUUID();
      await store.createRun({ runId, workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
      await admin.hdel(store.keys.run(runId).run, 'gen');
      const old = (await store.getRun(runId))!;
      expect(old.generation).toBe(1);
      expect(old.corrupt).toBeUndefined();
      const next = await store.createRun({ runId, workflow: 'wf', version: 1, input: '2', state: '{}' }, { onConflict: 'replace' });
      expect(next.run.generation).toBe(2);
    });

    it('leaves exactly the last of 300 concurrent leased replacements, indexed and executable', async () => {
      const store = await open();
      const workflow = `wf-${randomUUID().slice(0, 6)}`;
      const runId = `flood-${randomUUID()}`;
      const finished: StoreEvent[] = [];
      const unsubscribe = await store.subscribe((e) => {
        if (e.type === 'finished') finished.push(e);
      });
      await store.createRun({ runId, workflow, version: 1, input: '0', state: '{}' }, { onConflict: 'keep', lease: LEASE });
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          store.createRun({ runId, workflow, version: 1, input: `${i + 1}`, state: '{}' }, { onConflict: 'replace', lease: i % 3 ? LEASE : undefined }),
        ),
      );
      expect(results.every((r) => r.created)).toBe(true);
      expect(results.map((r) => r.run.generation).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i + 2));
      const last = results.find((r) => r.run.generation === 301)!.run;
      const stored = (await store.getRun(runId))!;
      expect(stored).toMatchObject({ generation: 301, input: last.input, status: last.status });
      expect(stored.leaseToken).toBe(last.leaseToken);
      const listed = await store.listRuns({ workflow, limit: 10 });
      expect(listed.map((r) => [r.runId, r.generation, r.status])).toEqual([[runId, 301, last.status]]);
      expect(await store.listRuns({ workflow, statuses: [last.status], limit: 10 })).toHaveLength(1);
      const due = Number(await admin.zscore(store.keys.due, runId));
      expect(due).toBe((last.leaseExpiresAt ?? last.dueAt)!.getTime());
      // every replaced lease is fenced; the survivor's (if leased) commits
      const stale = results.filter((r) => r.run.leaseToken && r.run.generation !== 301);
      for (const r of stale.slice(0, 20)) expect((await store.commit(runId, r.run.leaseToken!, { leaseMs: 30_000, status: 'completed' })).ok).toBe(false);
      const token = last.leaseToken ?? (await store.claimRun(runId, LEASE))!.leaseToken;
      expect((await store.commit(runId, token, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
      const deadline = Date.now() + 2_000;
      while (Date.now() < deadline && finished.length === 0) await sleep(10);
      await unsubscribe();
      expect(finished).toEqual([{ type: 'finished', runId }]); // only the survivor finished
      expect((await store.listRuns({ workflow, statuses: ['completed'], limit: 10 })).map((r) => r.generation)).toEqual([301]);
    });
  });

  describe('absolute wake-up times and arguments', () => {
    it('stores an absolute wake-up time as is, and indexes it', async () => {
      const store = await open();
      const run = (await store.createRun({ runId: randomUUID(), workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
      const at = new Date('2099-12-31T23:59:59.123Z');
      await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'sleeping', due: { at }, release: true });
      expect((await store.getRun(run.runId))!.dueAt).toEqual(at);
      await store.listRuns({ workflow: 'wf', limit: 1 });
      expect(Number(await admin.zscore(store.keys.due, run.runId))).toBe(at.getTime());
    });

    it('rejects invalid times and durations before writing anything', async () => {
      const store = await open();
      const run = (await store.createRun({ runId: randomUUID(), workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
      const token = run.leaseToken!;
      await expect(store.commit(run.runId, token, { leaseMs: 30_000, status: 'sleeping', due: { at: new Date(NaN) } })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.commit(run.runId, token, { leaseMs: 30_000, status: 'sleeping', due: { delayMs: Infinity } })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.commit(run.runId, token, { leaseMs: NaN, status: 'completed' })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.renewLease(run.runId, token, NaN)).rejects.toBeInstanceOf(InvalidArgumentError);
      // the script checks its ops too, before its first write
      const keys = store.keys.run(run.runId);
      await expect(admin.eval(COMMIT.lua, 6, keys.run, keys.steps, keys.signals, keys.events, keys.signalIds, keys.children, run.runId, token, '30000', store.keys.channel,
        'st', 'completed', 'state', '"changed"', 'due', 'abc')).rejects.toThrow(/due needs an integer/);
      await expect(admin.eval(COMMIT.lua, 6, keys.run, keys.steps, keys.signals, keys.events, keys.signalIds, keys.children, run.runId, token, '30000', store.keys.channel,
        'st', 'completed', 'step')).rejects.toThrow(/without its arguments/);
      const stored = (await store.getRun(run.runId))!;
      expect(stored).toMatchObject({ status: 'running', state: '{}', leaseToken: token });
    });
  });

  describe('index repair', () => {
    it('repairs the index of a run whose writer died between the run script and the index update (kick)', async () => {
      const store = await open({ indexRepairGraceMs: 100 });
      const keys = new RedisKeys(store.keys.prefix);
      const workflow = `wf-${randomUUID().slice(0, 6)}`;
      const runId = `orphan-${randomUUID()}`;
      const runKeys = keys.run(runId);
      // what createRun sends, without the index update that follows it
      await admin.zadd(keys.kicks, 0, `0123456789abcdef${runId}`);
      await admin.eval(CREATE_RUN.lua, 5, runKeys.run, runKeys.steps, runKeys.signals, runKeys.events, runKeys.signalIds,
        runId, workflow, '1', '1', '{}', '0', '', 'keep', '', '0', '0', '', keys.channel, '0', '0', '');
      expect(await store.listRuns({ workflow, limit: 10 })).toEqual([]);
      expect(await store.claimRuns(LEASE, 10, [{ workflow, version: 1 }])).toEqual([]); // first sight of the kick
      await sleep(150);
      const claimed = await store.claimRuns(LEASE, 10, [{ workflow, version: 1 }]);
      const again = claimed.length ? claimed : await store.claimRuns(LEASE, 10, [{ workflow, version: 1 }]);
      expect(again.map((r) => r.runId)).toEqual([runId]);
      expect(await admin.zcard(keys.kicks)).toBe(0);
      expect((await store.listRuns({ workflow, limit: 10 })).map((r) => r.runId)).toEqual([runId]);
    });

    it('finds a released run at the old lease expiry when the lease holder died before updating the index', async () => {
      const store = await open();
      const keys = new RedisKeys(store.keys.prefix);
      const workflow = `wf-${randomUUID().slice(0, 6)}`;
      await store.createRun({ runId: randomUUID(), workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
      const [run] = await store.claimRuns({ owner: 'a', leaseMs: 300 }, 1, [{ workflow, version: 1 }]);
      const runKeys = keys.run(run.runId);
      // the holder's commit (sleep 0 ms, release) without its index update
      await admin.eval(COMMIT.lua, 6, runKeys.run, runKeys.steps, runKeys.signals, runKeys.events, runKeys.signalIds, runKeys.children,
        run.runId, run.leaseToken, '30000', keys.channel, 'st', 'sleeping', 'due', '0', 'rel');
      expect(await store.claimRuns(LEASE, 1, [{ workflow, version: 1 }])).toEqual([]); // the index still says: leased until expiry
      await sleep(350);
      const [again] = await store.claimRuns(LEASE, 1, [{ workflow, version: 1 }]);
      expect(again.runId).toBe(run.runId);
      expect(again.recovered).toBe(false);
    });

    it('drops index entries of runs deleted behind its back', async () => {
      const store = await open();
      const keys = new RedisKeys(store.keys.prefix);
      const workflow = `wf-${randomUUID().slice(0, 6)}`;
      const ids = [randomUUID(), randomUUID(), randomUUID()];
      for (const runId of ids) await store.createRun({ runId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
      const gone = keys.run(ids[1]);
      await admin.del(gone.run, gone.steps, gone.signals);
      expect((await store.listRuns({ workflow, limit: 3 })).map((r) => r.runId).sort()).toEqual([ids[0], ids[2]].sort());
      await sleep(20);
      expect(await admin.zscore(keys.byWorkflow(workflow), ids[1])).toBeNull();
      expect(await admin.zscore(keys.created, ids[1])).toBeNull();
      expect(await store.claimRuns(LEASE, 10, [{ workflow, version: 1 }])).toHaveLength(2);
    });

    it('rebuilds lost indexes from the runs with reindex()', async () => {
      const store = await open();
      const keys = new RedisKeys(store.keys.prefix);
      const workflow = `wf-${randomUUID().slice(0, 6)}`;
      const ids = Array.from({ length: 5 }, (_, i) => `re-${i}-{${randomUUID()}}`);
      for (const runId of ids) await store.createRun({ runId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
      const done = (await store.claimRun(ids[0], LEASE))!;
      await store.commit(ids[0], done.leaseToken, { leaseMs: 30_000, status: 'completed' });
      await sleep(20);
      const indexKeys = await admin.keys(`${keys.index}*`);
      expect(indexKeys.length).toBeGreaterThan(0);
      await admin.del(...indexKeys);
      await admin.zadd(keys.created, 1, 'ghost-run');
      expect(await store.listRuns({ workflow, limit: 10 })).toEqual([]);
      expect(await store.reindex()).toBe(5);
      expect(await admin.zscore(keys.created, 'ghost-run')).toBeNull();
      expect((await store.listRuns({ workflow, limit: 10 })).map((r) => r.runId).sort()).toEqual([...ids].sort());
      expect((await store.listRuns({ workflow, statuses: ['completed'], limit: 10 })).map((r) => r.runId)).toEqual([ids[0]]);
      expect(await store.claimRuns(LEASE, 10, [{ workflow, version: 1 }])).toHaveLength(4);
    });
  });
});

describe('RedisStore on its own server', () => {
  let server: RedisServer;
  let admin: Redis;

  beforeAll(async () => {
    server = await startRedis({ appendfsync: 'always' });
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  it('warns when AOF is off or keys may be evicted, and says nothing on a safe configuration', async () => {
    const safe = new CapturingLogger();
    const store = new RedisStore({ url: server.url, logger: safe });
    await store.init();
    await store.close();
    expect(safe.warnings).toEqual([]);

    await admin.config('SET', 'appendonly', 'no');
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const logger = new CapturingLogger();
      const unsafe = new RedisStore({ url: server.url, logger });
      await unsafe.init();
      await unsafe.close();
      expect(logger.warnings).toHaveLength(2);
      expect(logger.warnings[0]).toMatch(/appendonly is "no".*loses every run/);
      expect(logger.warnings[1]).toMatch(/maxmemory-policy is "allkeys-lru".*evict/);
    } finally {
      await admin.config('SET', 'appendonly', 'yes');
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      // AOF switched on at runtime protects writes only once its first rewrite has finished
      for (let i = 0; i < 200; i++) {
        const info = await admin.info('persistence');
        if (/aof_enabled:1/.test(info) && /aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)) break;
        await sleep(25);
      }
    }
  });

  it('tolerates a server where CONFIG is disabled', async () => {
    const client = new Redis(server.url);
    recordCommands(client, (name) => (name.toLowerCase() === 'config' ? new Error("ERR unknown command 'CONFIG'") : undefined));
    const logger = new CapturingLogger();
    const store = new RedisStore({ client, logger });
    try {
      await store.init();
      expect(logger.logs.join('\n')).toMatch(/could not read the server configuration.*skipping/);
      expect(logger.warnings).toEqual([]);
      await store.createRun({ runId: 'config-disabled', workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
    } finally {
      await store.close();
      await client.quit();
    }
  });

  it('keeps runs through a kill -9 of Redis (appendfsync always) and re-loads its scripts after the restart', async () => {
    const store = new RedisStore({ url: server.url, keyPrefix: 'crash:', logger: new CapturingLogger() });
    await store.init();
    try {
      const run = (await store.createRun({ runId: 'survivor', workflow: 'wf', version: 1, input: '"in"', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
      await store.commit(run.runId, run.leaseToken!, {
        leaseMs: 30_000,
        steps: [{ index: 0, step: { name: 'a', status: 'completed', attempts: 1, output: '"out-a"' } }],
      });
      await server.kill9AndRestart();
      expect(await admin.call('SCRIPT', 'EXISTS', COMMIT.sha)).toEqual([0]);
      // the store's client reconnects by itself; the first script call meets NOSCRIPT and re-sends the script
      const res = await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'completed', output: '"done"' });
      expect(res).toEqual({ ok: true });
      const stored = (await store.getRun('survivor'))!;
      expect(stored.status).toBe('completed');
      expect(stored.steps).toEqual([{ name: 'a', status: 'completed', attempts: 1, output: '"out-a"' }]);
      expect((await store.listRuns({ workflow: 'wf', statuses: ['completed'], limit: 5 })).map((r) => r.runId)).toEqual(['survivor']);
    } finally {
      await store.close();
    }
  });
});

describe('RedisStore connection failures', () => {
  it('fails init with StoreError naming host:port when the URL refuses connections (bounded retry)', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, '127.0.0.1', () => {
        const address = probe.address();
        probe.close(() => resolve(typeof address === 'object' && address ? address.port : 1));
      });
    });
    const store = new RedisStore({ url: `redis://user:secret@127.0.0.1:${port}/0`, logger: new CapturingLogger() });
    const started = Date.now();
    const error = await store.init().then(
      () => undefined,
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(StoreError);
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
    expect((error as Error).message).not.toContain('secret');
    expect(elapsed).toBeGreaterThanOrEqual(4_500);
    expect(elapsed).toBeLessThan(9_000);
    await store.close();
  }, 15_000);
});
