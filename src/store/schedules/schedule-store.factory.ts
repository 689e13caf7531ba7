import { CodecStore } from '../../codec/codec.store.js';
import type { PayloadCodec } from '../../codec/payload-codec.interface.js';
import { ConfigurationError, StoreError } from '../../errors/errors.js';
import type { WorkflowStore } from '../workflow-store.interface.js';
import type { NewSchedule, SchedulePatch, ScheduleStore, StoredSchedule } from '../schedule-store.interface.js';

const wrapped = new WeakMap<object, ScheduleStore>();

/** Whether `value` looks like a {@link ScheduleStore}. */
function isScheduleStore(value: unknown): value is ScheduleStore {
  const v = value as Partial<ScheduleStore> | null | undefined;
  return !!v && typeof v === 'object' && (['init', 'create', 'get', 'list', 'delete', 'due', 'advance'] as const).every((m) => typeof v[m] === 'function');
}

/**
 * The schedules of a workflow store: its `schedules` (the memory, PGlite, PostgreSQL and Redis stores have one), or
 * undefined when it keeps none (a custom store without `schedules`). Behind a `CodecStore`, the schedules of the store
 * it wraps, with each schedule's input encoded by the codec like every other stored value.
 */
export function scheduleStoreOf(store: WorkflowStore): ScheduleStore | undefined {
  const cached = wrapped.get(store);
  if (cached) return cached;
  let found: ScheduleStore | undefined;
  if (store instanceof CodecStore) {
    const inner = scheduleStoreOf(store.inner);
    found = inner && new CodecScheduleStore(inner, store.codec);
  } else {
    const own = (store as WorkflowStore & { schedules?: unknown }).schedules;
    found = isScheduleStore(own) ? own : undefined;
  }
  if (found) wrapped.set(store, found);
  return found;
}

/** Like {@link scheduleStoreOf}, for callers that need schedules. @throws ConfigurationError naming the fix */
export function requireScheduleStore(store: WorkflowStore, why: string): ScheduleStore {
  const found = scheduleStoreOf(store);
  if (found) return found;
  throw new ConfigurationError(
    `${why} needs a store that keeps schedules, and the "${store.name}" store does not. The memory, pglite, postgres and redis ` +
      'stores do; a custom store must expose a `schedules` property implementing ScheduleStore (see schedule-store.interface.ts).',
  );
}

/** Encodes the `input` of each stored spec with the codec on the way in, decodes it on the way out. */
class CodecScheduleStore implements ScheduleStore {
  constructor(
    private readonly inner: ScheduleStore,
    private readonly codec: PayloadCodec,
  ) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async create(schedule: NewSchedule): Promise<StoredSchedule | undefined> {
    return this.decode(await this.inner.create({ ...schedule, spec: await this.encodeSpec(schedule.spec) }));
  }

  async get(id: string): Promise<StoredSchedule | undefined> {
    return this.decode(await this.inner.get(id));
  }

  async list(): Promise<StoredSchedule[]> {
    return Promise.all((await this.inner.list()).map((s) => this.decode(s) as Promise<StoredSchedule>));
  }

  delete(id: string, expectedVersion?: number): Promise<boolean> {
    return this.inner.delete(id, expectedVersion);
  }

  async due(until: Date, limit: number, workflows?: readonly string[]): Promise<StoredSchedule[]> {
    return Promise.all((await this.inner.due(until, limit, workflows)).map((s) => this.decode(s) as Promise<StoredSchedule>));
  }

  async advance(id: string, expectedVersion: number, patch: SchedulePatch): Promise<StoredSchedule | undefined> {
    const encoded = patch.spec === undefined ? patch : { ...patch, spec: await this.encodeSpec(patch.spec) };
    return this.decode(await this.inner.advance(id, expectedVersion, encoded));
  }

  private async encodeSpec(spec: string): Promise<string> {
    const parsed = JSON.parse(spec) as { input?: string };
    if (parsed.input === undefined) return spec;
    return JSON.stringify({ ...parsed, input: await this.codec.encode(parsed.input) });
  }

  private async decode(schedule: StoredSchedule | undefined): Promise<StoredSchedule | undefined> {
    if (!schedule) return undefined;
    try {
      const parsed = JSON.parse(schedule.spec) as { input?: string };
      if (parsed.input === undefined) return schedule;
      return { ...schedule, spec: JSON.stringify({ ...parsed, input: await this.codec.decode(parsed.input) }) };
    } catch (error) {
      throw new StoreError(`Schedule "${schedule.id}": its stored input cannot be decoded: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}
