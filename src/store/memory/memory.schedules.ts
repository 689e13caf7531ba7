import type { NewSchedule, SchedulePatch, ScheduleStore, StoredSchedule } from '../schedule-store.interface.js';

function copy(schedule: StoredSchedule): StoredSchedule {
  return {
    ...schedule,
    nextFireAt: schedule.nextFireAt && new Date(schedule.nextFireAt),
    lastFireAt: schedule.lastFireAt && new Date(schedule.lastFireAt),
    createdAt: new Date(schedule.createdAt),
    updatedAt: new Date(schedule.updatedAt),
  };
}

function strip(schedule: StoredSchedule): StoredSchedule {
  for (const key of ['nextFireAt', 'lastFireAt', 'lastRunId'] as const) if (schedule[key] === undefined) delete schedule[key];
  return schedule;
}

/** The reference implementation of the schedules port (see `ScheduleStore`), in process. `due` scans (no index). */
export class MemoryScheduleStore implements ScheduleStore {
  private readonly schedules = new Map<string, StoredSchedule>();

  /** @param clock the time of `createdAt` / `updatedAt` */
  constructor(private readonly clock: { now(): number } = Date) {}

  async init(): Promise<void> {}

  async create(schedule: NewSchedule): Promise<StoredSchedule | undefined> {
    if (this.schedules.has(schedule.id)) return undefined;
    const now = new Date(this.clock.now());
    const stored = strip({
      id: schedule.id,
      workflow: schedule.workflow,
      spec: schedule.spec,
      paused: schedule.paused,
      nextFireAt: schedule.nextFireAt && new Date(schedule.nextFireAt),
      source: schedule.source,
      version: 1,
      createdAt: now,
      updatedAt: now,
    });
    this.schedules.set(schedule.id, stored);
    return copy(stored);
  }

  async get(id: string): Promise<StoredSchedule | undefined> {
    const stored = this.schedules.get(id);
    return stored && copy(stored);
  }

  async list(): Promise<StoredSchedule[]> {
    return [...this.schedules.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(copy);
  }

  async delete(id: string, expectedVersion?: number): Promise<boolean> {
    const stored = this.schedules.get(id);
    if (!stored || (expectedVersion !== undefined && stored.version !== expectedVersion)) return false;
    return this.schedules.delete(id);
  }

  async due(until: Date, limit: number, workflows?: readonly string[]): Promise<StoredSchedule[]> {
    const wanted = workflows && new Set(workflows);
    return [...this.schedules.values()]
      .filter((s) => !s.paused && s.nextFireAt !== undefined && s.nextFireAt.getTime() <= until.getTime() && (!wanted || wanted.has(s.workflow)))
      .sort((a, b) => a.nextFireAt!.getTime() - b.nextFireAt!.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, Math.max(0, limit))
      .map(copy);
  }

  async advance(id: string, expectedVersion: number, patch: SchedulePatch): Promise<StoredSchedule | undefined> {
    const stored = this.schedules.get(id);
    if (!stored || stored.version !== expectedVersion) return undefined;
    const next: StoredSchedule = { ...stored, version: stored.version + 1, updatedAt: new Date(this.clock.now()) };
    if (patch.workflow !== undefined) next.workflow = patch.workflow;
    if (patch.spec !== undefined) next.spec = patch.spec;
    if (patch.paused !== undefined) next.paused = patch.paused;
    if (patch.nextFireAt !== undefined) next.nextFireAt = patch.nextFireAt === null ? undefined : new Date(patch.nextFireAt);
    if (patch.lastFireAt !== undefined) next.lastFireAt = new Date(patch.lastFireAt);
    if (patch.lastRunId !== undefined) next.lastRunId = patch.lastRunId;
    this.schedules.set(id, strip(next));
    return copy(next);
  }
}
