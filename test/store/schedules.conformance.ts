/**
 * One suite of the schedules port (`ScheduleStore`), run unchanged against every store (not a spec file).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { NewSchedule, ScheduleStore } from '../../src/store/schedule-store.interface.js';

export interface ScheduleConformanceTarget {
  /** A fresh, initialised store of schedules (empty), and how to dispose of it. */
  create(): Promise<{ schedules: ScheduleStore; close(): Promise<void> }>;
}

const at = (s: number) => new Date(Date.UTC(2030, 0, 1) + s * 1_000);

function schedule(id: string, fields: Partial<NewSchedule> = {}): NewSchedule {
  return { id, workflow: 'wf', spec: '{"every":"1m"}', paused: false, nextFireAt: at(60), source: 'api', ...fields };
}

export function describeScheduleStoreConformance(name: string, target: ScheduleConformanceTarget): void {
  describe(`ScheduleStore conformance: ${name}`, () => {
    let store: ScheduleStore;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ schedules: store, close } = await target.create());
      await store.init();
      await store.init();
    }, 60_000);
    afterAll(async () => {
      await close?.();
    });

    let n = 0;
    const fresh = (label: string) => `${label}-${++n}-${Math.random().toString(36).slice(2, 8)}`;

    it('creates once (never replaces), reads back every field verbatim', async () => {
      const id = fresh('créé ✓ {tag} "q"');
      const spec = JSON.stringify({ cron: '*/5 * * * *', timezone: 'Europe/Berlin', input: '{"a":"ü/\\\\"}' });
      const created = await store.create(schedule(id, { spec, nextFireAt: new Date(Date.UTC(2030, 0, 1, 0, 0, 0, 123)), source: 'decorator' }));
      expect(created).toMatchObject({ id, workflow: 'wf', spec, paused: false, source: 'decorator', version: 1 });
      expect(created?.nextFireAt?.toISOString()).toBe('2030-01-01T00:00:00.123Z');
      expect(created?.createdAt).toBeInstanceOf(Date);
      expect(created?.lastFireAt).toBeUndefined();
      expect(created?.lastRunId).toBeUndefined();
      expect(await store.create(schedule(id, { workflow: 'other' }))).toBeUndefined();
      const read = await store.get(id);
      expect(read).toEqual(created);
      expect(await store.get(fresh('missing'))).toBeUndefined();
    });

    it('advance is a compare-and-set on the version', async () => {
      const id = fresh('cas');
      await store.create(schedule(id));
      const next = await store.advance(id, 1, { nextFireAt: at(120), lastFireAt: at(60), lastRunId: `${id}@x` });
      expect(next).toMatchObject({ version: 2, nextFireAt: at(120), lastFireAt: at(60), lastRunId: `${id}@x`, workflow: 'wf' });
      expect(await store.advance(id, 1, { nextFireAt: at(999) })).toBeUndefined();
      expect((await store.get(id))?.nextFireAt).toEqual(at(120));
      expect(await store.advance(fresh('absent'), 1, {})).toBeUndefined();
      const changed = await store.advance(id, 2, { workflow: 'wf2', spec: '{"every":"2m"}', paused: true, nextFireAt: null });
      expect(changed).toMatchObject({ version: 3, workflow: 'wf2', spec: '{"every":"2m"}', paused: true, lastRunId: `${id}@x` });
      expect(changed?.nextFireAt).toBeUndefined();
      expect(await store.get(id)).toEqual(changed);
    });

    it('of concurrent advances with one expected version, exactly one succeeds', async () => {
      for (let round = 0; round < 5; round++) {
        const id = fresh('race');
        await store.create(schedule(id));
        const results = await Promise.all(Array.from({ length: 12 }, (_, i) => store.advance(id, 1, { lastRunId: `r${i}` })));
        const winners = results.filter((r) => r !== undefined);
        expect(winners).toHaveLength(1);
        const stored = await store.get(id);
        expect(stored?.version).toBe(2);
        expect(stored?.lastRunId).toBe(winners[0]!.lastRunId);
      }
    });

    it('chains of concurrent compare-and-set increments lose no update', async () => {
      const id = fresh('chain');
      await store.create(schedule(id));
      const bump = async () => {
        for (;;) {
          const current = (await store.get(id))!;
          if (await store.advance(id, current.version, { lastRunId: String(current.version) })) return;
        }
      };
      await Promise.all(Array.from({ length: 8 }, () => Promise.all([bump(), bump(), bump()])));
      expect((await store.get(id))?.version).toBe(1 + 24);
    });

    it('due: not paused, due by the time, earliest first then by id, limited, filtered by workflow', async () => {
      const wf = fresh('wf');
      const other = fresh('other');
      const ids = ['d-b', 'd-a', 'd-c', 'd-paused', 'd-later', 'd-none', 'd-other'].map((x) => `${wf}:${x}`);
      await store.create(schedule(ids[0], { workflow: wf, nextFireAt: at(10) }));
      await store.create(schedule(ids[1], { workflow: wf, nextFireAt: at(10) }));
      await store.create(schedule(ids[2], { workflow: wf, nextFireAt: at(5) }));
      await store.create(schedule(ids[3], { workflow: wf, nextFireAt: at(1), paused: true }));
      await store.create(schedule(ids[4], { workflow: wf, nextFireAt: at(100) }));
      await store.create(schedule(ids[5], { workflow: wf, nextFireAt: undefined }));
      await store.create(schedule(ids[6], { workflow: other, nextFireAt: at(1) }));
      expect((await store.due(at(10), 10, [wf])).map((s) => s.id)).toEqual([ids[2], ids[1], ids[0]]);
      expect((await store.due(at(10), 2, [wf])).map((s) => s.id)).toEqual([ids[2], ids[1]]);
      expect((await store.due(at(9), 10, [wf, other])).map((s) => s.id)).toEqual([ids[6], ids[2]]);
      expect((await store.due(at(10), 10, [])).map((s) => s.id)).toEqual([]);
      const all = (await store.due(at(10), 1_000)).map((s) => s.id);
      expect(all).toEqual(expect.arrayContaining([ids[6], ids[2], ids[1], ids[0]]));
      expect(all).not.toContain(ids[3]);
      // Paused and resumed through advance: the due index follows.
      const paused = (await store.get(ids[2]))!;
      await store.advance(ids[2], paused.version, { paused: true });
      expect((await store.due(at(10), 10, [wf])).map((s) => s.id)).toEqual([ids[1], ids[0]]);
      await store.advance(ids[2], paused.version + 1, { paused: false, nextFireAt: at(3) });
      expect((await store.due(at(10), 10, [wf])).map((s) => s.id)).toEqual([ids[2], ids[1], ids[0]]);
      await store.advance(ids[3], 1, { paused: false });
      expect((await store.due(at(1), 10, [wf])).map((s) => s.id)).toEqual([ids[3]]);
      await store.advance(ids[1], 1, { nextFireAt: null });
      expect((await store.due(at(10), 10, [wf])).map((s) => s.id)).toEqual([ids[3], ids[2], ids[0]]);
    });

    it('list by id; delete (with and without a version)', async () => {
      const base = fresh('list');
      for (const x of ['c', 'a', 'b']) await store.create(schedule(`${base}-${x}`, { workflow: base, nextFireAt: at(0) }));
      const mine = (await store.list()).filter((s) => s.workflow === base).map((s) => s.id);
      expect(mine).toEqual([`${base}-a`, `${base}-b`, `${base}-c`]);
      expect(await store.delete(`${base}-a`, 2)).toBe(false);
      expect(await store.delete(`${base}-a`, 1)).toBe(true);
      expect(await store.delete(`${base}-b`)).toBe(true);
      expect(await store.delete(`${base}-b`)).toBe(false);
      expect(await store.get(`${base}-a`)).toBeUndefined();
      expect((await store.due(at(0), 10, [base])).map((s) => s.id)).toEqual([`${base}-c`]);
    });
  });
}
