import { StoreError } from '../../errors/errors.js';
import type { NewSchedule, SchedulePatch, ScheduleSource, ScheduleStore, StoredSchedule } from '../schedule-store.interface.js';
import type { RedisClient } from './redis.connection.js';
import { encodeName } from './redis.keys.js';
import { SCHEDULE_ADVANCE_LUA, SCHEDULE_CREATE_LUA, SCHEDULE_DELETE_LUA, SCHEDULE_DUE_LUA } from './redis.schedules.lua.js';

/** A record as the scripts keep it (times as decimal ms text, so Lua never rounds them). */
interface RedisScheduleRecord {
  workflow: string;
  spec: string;
  paused: boolean;
  next?: string;
  last?: string;
  lastRunId?: string;
  source: ScheduleSource;
  version: number;
  created: string;
  updated: string;
}

const SCRIPTS = { create: SCHEDULE_CREATE_LUA, advance: SCHEDULE_ADVANCE_LUA, delete: SCHEDULE_DELETE_LUA, due: SCHEDULE_DUE_LUA } as const;

function ms(date: Date): string {
  return String(date.getTime());
}

function toSchedule(id: string, body: string): StoredSchedule {
  const rec = JSON.parse(body) as RedisScheduleRecord;
  const schedule: StoredSchedule = {
    id,
    workflow: rec.workflow,
    spec: rec.spec,
    paused: rec.paused === true,
    source: rec.source,
    version: Number(rec.version),
    createdAt: new Date(Number(rec.created)),
    updatedAt: new Date(Number(rec.updated)),
  };
  if (rec.next !== undefined) schedule.nextFireAt = new Date(Number(rec.next));
  if (rec.last !== undefined) schedule.lastFireAt = new Date(Number(rec.last));
  if (rec.lastRunId !== undefined) schedule.lastRunId = rec.lastRunId;
  return schedule;
}

/**
 * The schedules port on Redis (single, Sentinel or Cluster): a hash id → record JSON and a sorted set of the
 * schedules that can fire, by next fire time. Both keys carry one hash tag derived from the store's key prefix
 * (`<prefix>{~s~<base64url of the prefix>}:…`), so every operation is one script on one Cluster slot; `advance` is a
 * compare-and-set on the record's version inside its script.
 */
export class RedisScheduleStore implements ScheduleStore {
  private readonly hash: string;
  private readonly zset: string;

  /**
   * @param client the store's client (read on every call: the store connects in its own `init()`)
   * @param prefix the store's key prefix
   */
  constructor(
    private readonly client: () => RedisClient,
    prefix: string,
  ) {
    const base = `${prefix}{~s~${encodeName(prefix)}}`;
    this.hash = `${base}:schedules`;
    this.zset = `${base}:schedules-due`;
  }

  async init(): Promise<void> {}

  async create(schedule: NewSchedule): Promise<StoredSchedule | undefined> {
    const rec: Partial<RedisScheduleRecord> = { workflow: schedule.workflow, spec: schedule.spec, paused: schedule.paused, source: schedule.source };
    if (schedule.nextFireAt) rec.next = ms(schedule.nextFireAt);
    const body = await this.run<string | null>('create', [schedule.id, JSON.stringify(rec)]);
    return body ? toSchedule(schedule.id, body) : undefined;
  }

  async get(id: string): Promise<StoredSchedule | undefined> {
    const body = await this.guard('get', () => this.client().hget(this.hash, id));
    return body ? toSchedule(id, body) : undefined;
  }

  async list(): Promise<StoredSchedule[]> {
    const all = await this.guard('list', () => this.client().hgetall(this.hash));
    return Object.keys(all)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      .map((id) => toSchedule(id, all[id]));
  }

  async delete(id: string, expectedVersion?: number): Promise<boolean> {
    return (await this.run<number>('delete', [id, expectedVersion === undefined ? '' : String(expectedVersion)])) === 1;
  }

  async due(until: Date, limit: number, workflows?: readonly string[]): Promise<StoredSchedule[]> {
    const n = Math.max(0, Math.floor(limit));
    if (n === 0 || workflows?.length === 0) return [];
    const flat = await this.run<string[]>('due', [ms(until), String(n), ...(workflows ?? [])]);
    const out: StoredSchedule[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push(toSchedule(flat[i], flat[i + 1]));
    return out;
  }

  async advance(id: string, expectedVersion: number, patch: SchedulePatch): Promise<StoredSchedule | undefined> {
    const fields: Record<string, unknown> = {};
    if (patch.workflow !== undefined) fields.workflow = patch.workflow;
    if (patch.spec !== undefined) fields.spec = patch.spec;
    if (patch.paused !== undefined) fields.paused = patch.paused;
    if (patch.nextFireAt !== undefined) fields.next = patch.nextFireAt === null ? null : ms(patch.nextFireAt);
    if (patch.lastFireAt !== undefined) fields.last = ms(patch.lastFireAt);
    if (patch.lastRunId !== undefined) fields.lastRunId = patch.lastRunId;
    // NOTE: an empty JSON object would reach Lua as an empty table, which cjson encodes back as `{}` too: fine.
    const body = await this.run<string | null>('advance', [id, String(expectedVersion), JSON.stringify(fields)]);
    return body ? toSchedule(id, body) : undefined;
  }

  private run<T>(name: keyof typeof SCRIPTS, args: string[]): Promise<T> {
    const lua = SCRIPTS[name];
    return this.guard(name, () => this.client().eval(lua, 2, this.hash, this.zset, ...args) as Promise<T>);
  }

  private async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw new StoreError(`Redis schedules: ${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}
