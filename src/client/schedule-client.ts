import type { Type } from '@nestjs/common';
import { InvalidArgumentError, ScheduleNotFoundError, UnknownWorkflowError } from '../errors/errors.js';
import {
  nextTickAfter,
  resolveScheduleSpec,
  scheduleIdProblem,
  scheduledRunId,
  timingOf,
  type ScheduleCatchUp,
  type ScheduleOverlap,
  type ScheduleSpec,
  type StorableScheduleSpec,
} from '../definition/schedule-spec.js';
import type { WorkflowRegistry } from '../definition/workflow.registry.js';
import { scheduledInput, schedulerOf } from '../engine/scheduler.js';
import { declaredScheduleOf } from '../definition/schedule-declarations.js';
import type { WorkflowEngine } from '../engine/workflow-engine.js';
import type { ScheduleSource, ScheduleStore, StoredSchedule } from '../store/schedule-store.interface.js';
import { requireScheduleStore } from '../store/schedules/schedule-store.factory.js';
import type { WorkflowHandle } from './run-info.interface.js';

/** A schedule as `client.schedules.describe()` and `list()` show it. */
export interface ScheduleInfo {
  id: string;
  workflow: string;
  cron?: string;
  every?: number | string;
  timezone: string;
  paused: boolean;
  overlap: ScheduleOverlap;
  catchUp: ScheduleCatchUp;
  /** The next tick (absent while paused, or when a cron never fires again). */
  nextFireAt?: Date;
  /** The tick of the last run started. */
  lastFireAt?: Date;
  lastRunId?: string;
  source: ScheduleSource;
}

/** What `client.schedules.create` takes: a spec (its `id` is the first argument) and the workflow. */
export type ScheduleCreateSpec = Omit<ScheduleSpec, 'id'> & { workflow: Type | string };
/** What `client.schedules.update` changes: the fields given; `cron` and `every` replace each other. */
export type ScheduleUpdate = Partial<ScheduleCreateSpec>;

/** Compare-and-set attempts of one client change before it gives up (only concurrent changes make one fail). */
const CAS_ATTEMPTS = 20;

const clients = new WeakMap<WorkflowEngine, ScheduleClient>();

/**
 * Durable schedules (`client.schedules`): create, change, pause, trigger and read them. Changes are stored at once
 * and picked up at once by this instance's scheduler, by the others at their next poll or tick (within 5 s).
 */
export class ScheduleClient {
  /** The one client of an engine (`WorkflowClient.schedules`). */
  static for(engine: WorkflowEngine, registry: WorkflowRegistry, handles: (runId: string) => WorkflowHandle): ScheduleClient {
    let client = clients.get(engine);
    if (!client) clients.set(engine, (client = new ScheduleClient(engine, registry, handles)));
    return client;
  }

  constructor(
    private readonly engine: WorkflowEngine,
    private readonly registry: WorkflowRegistry,
    /** Builds a run's handle (the WorkflowClient's `getHandle`). */
    private readonly handles: (runId: string) => WorkflowHandle,
  ) {}

  /**
   * Creates a schedule (source `api`: bootstrap reconciliation never touches it). Its input must be a value (a
   * function cannot be stored).
   * @throws InvalidArgumentError for a bad spec or an id that exists (nothing is stored); UnknownWorkflowError
   */
  async create(id: string, spec: ScheduleCreateSpec): Promise<ScheduleInfo> {
    this.checkId(id);
    if (!spec || typeof spec !== 'object') throw new InvalidArgumentError(`schedules.create("${id}"): the spec must be an object.`);
    const { workflow, ...rest } = spec;
    const name = this.workflowName(workflow, id);
    const storable = this.resolve(id, rest);
    const store = this.store();
    const created = await store.create({
      id,
      workflow: name,
      spec: JSON.stringify(storable),
      paused: storable.paused,
      nextFireAt: storable.paused ? undefined : this.firstTick(storable),
      source: 'api',
    });
    if (!created) {
      throw new InvalidArgumentError(`schedules.create: a schedule with id "${id}" already exists; change it with schedules.update("${id}", …) or delete it first.`);
    }
    this.wake();
    return this.toInfo(created);
  }

  /**
   * Changes the fields given (`cron` replaces `every` and the other way round). A change of timing, or `paused`,
   * computes the next tick from now. A decorator schedule changed here keeps the change until a bootstrap whose code
   * declares it differently.
   * @throws ScheduleNotFoundError; InvalidArgumentError (nothing is stored)
   */
  async update(id: string, patch: ScheduleUpdate): Promise<void> {
    this.checkId(id);
    if (!patch || typeof patch !== 'object') throw new InvalidArgumentError(`schedules.update("${id}"): the patch must be an object.`);
    await this.change(id, (current, spec) => {
      const { workflow, ...fields } = patch;
      const merged: ScheduleSpec = { ...spec, input: undefined, ...fields };
      if (fields.cron !== undefined && fields.every === undefined) delete merged.every;
      if (fields.every !== undefined && fields.cron === undefined) delete merged.cron;
      const keepInput = !('input' in patch) && spec.input !== undefined;
      const storable = this.resolve(id, merged);
      if (keepInput) storable.input = spec.input;
      if (spec.inputFn && !('input' in patch)) storable.inputFn = true;
      const name = workflow === undefined ? current.workflow : this.workflowName(workflow, id);
      const paused = fields.paused ?? current.paused;
      const retimed = storable.cron !== spec.cron || storable.every !== spec.every || storable.timezone !== spec.timezone || paused !== current.paused;
      return {
        workflow: name,
        spec: JSON.stringify(storable),
        paused,
        ...(retimed ? { nextFireAt: paused ? null : (this.firstTick(storable) ?? null) } : {}),
      };
    });
  }

  /** Stops firing (idempotent). Ticks that fall while paused are never fired. @throws ScheduleNotFoundError */
  async pause(id: string): Promise<void> {
    this.checkId(id);
    await this.change(id, (current) => (current.paused ? undefined : { paused: true, nextFireAt: null }));
  }

  /** Fires again from the next tick after now (idempotent). @throws ScheduleNotFoundError */
  async resume(id: string): Promise<void> {
    this.checkId(id);
    await this.change(id, (current, spec) => (current.paused ? { paused: false, nextFireAt: this.firstTick(spec) ?? null } : undefined));
  }

  /**
   * Deletes a schedule (runs it started go on). A decorator schedule comes back at the next bootstrap whose code still
   * declares it. @throws ScheduleNotFoundError
   */
  async delete(id: string): Promise<void> {
    this.checkId(id);
    if (!(await this.store().delete(id))) throw new ScheduleNotFoundError(id);
  }

  /**
   * Starts one run now, whatever `overlap` says and even while paused, with the id `<schedule id>@<ISO time now>`
   * and the schedule's input for that time. It becomes the schedule's last run.
   * @throws ScheduleNotFoundError
   */
  async trigger(id: string): Promise<WorkflowHandle> {
    this.checkId(id);
    const schedule = await this.store().get(id);
    if (!schedule) throw new ScheduleNotFoundError(id);
    const spec = this.parse(schedule);
    const def = this.registry.resolve(schedule.workflow);
    const fireAt = this.engine.clock.now();
    const declared = declaredScheduleOf(this.registry, id);
    let input: unknown;
    try {
      input = scheduledInput(this.engine, id, spec, schedule.source === 'decorator' ? declared : undefined, new Date(fireAt));
    } catch (error) {
      throw new InvalidArgumentError(`schedules.trigger("${id}"): ${error instanceof Error ? error.message : String(error)}.`);
    }
    const { runId } = await this.engine.startRun(def, input, { id: scheduledRunId(id, fireAt), conflictPolicy: 'use-existing' });
    await this.change(id, () => ({ lastFireAt: new Date(fireAt), lastRunId: runId }), { quiet: true });
    return this.handles(runId);
  }

  /** A schedule, or undefined when no schedule has this id. */
  async describe(id: string): Promise<ScheduleInfo | undefined> {
    this.checkId(id);
    const schedule = await this.store().get(id);
    return schedule && this.toInfo(schedule);
  }

  /** Every schedule, by id. */
  async list(): Promise<ScheduleInfo[]> {
    return (await this.store().list()).map((s) => this.toInfo(s));
  }

  // ---------------------------------------------------------------------------------------------------------------

  private store(): ScheduleStore {
    return requireScheduleStore(this.engine.store, 'client.schedules');
  }

  private wake(): void {
    schedulerOf(this.engine)?.wake();
  }

  private checkId(id: unknown): asserts id is string {
    const problem = scheduleIdProblem(id);
    if (problem) throw new InvalidArgumentError(`schedules: ${problem}.`);
  }

  private workflowName(workflow: unknown, id: string): string {
    if (typeof workflow !== 'string' && typeof workflow !== 'function') {
      throw new InvalidArgumentError(`schedules "${id}": workflow must be a @Workflow class or a workflow name (got ${JSON.stringify(workflow)}).`);
    }
    try {
      return this.registry.resolve(workflow).name;
    } catch (error) {
      if (error instanceof UnknownWorkflowError) throw new InvalidArgumentError(`schedules "${id}": ${error.message}`, { cause: error });
      throw error;
    }
  }

  private resolve(id: string, spec: ScheduleSpec): StorableScheduleSpec {
    return resolveScheduleSpec(
      spec,
      `schedule "${id}"`,
      { allowInputFunction: false, serializeInput: (value) => this.engine.serializer.serialize(value, `input of schedule "${id}"`) },
      (message) => new InvalidArgumentError(message),
    ).storable;
  }

  private firstTick(spec: StorableScheduleSpec): Date | undefined {
    const next = nextTickAfter(timingOf(spec), this.engine.clock.now());
    return next === undefined ? undefined : new Date(next);
  }

  private parse(schedule: StoredSchedule): StorableScheduleSpec {
    return JSON.parse(schedule.spec) as StorableScheduleSpec;
  }

  /** Read, compute the patch, compare-and-set; again on a concurrent change. Wakes the scheduler when one was written. */
  private async change(
    id: string,
    compute: (current: StoredSchedule, spec: StorableScheduleSpec) => Parameters<ScheduleStore['advance']>[2] | undefined,
    options: { quiet?: boolean } = {},
  ): Promise<void> {
    const store = this.store();
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await store.get(id);
      if (!current) throw new ScheduleNotFoundError(id);
      const patch = compute(current, this.parse(current));
      if (!patch) return;
      if (await store.advance(id, current.version, patch)) {
        if (!options.quiet) this.wake();
        return;
      }
    }
    throw new InvalidArgumentError(`schedules: schedule "${id}" kept changing concurrently (${CAS_ATTEMPTS} attempts); try again.`);
  }

  private toInfo(schedule: StoredSchedule): ScheduleInfo {
    let spec: Partial<StorableScheduleSpec> = {};
    try {
      spec = this.parse(schedule);
    } catch {
      spec = {};
    }
    const info: ScheduleInfo = {
      id: schedule.id,
      workflow: schedule.workflow,
      timezone: spec.timezone ?? 'UTC',
      paused: schedule.paused,
      overlap: spec.overlap ?? 'skip',
      catchUp: spec.catchUp ?? 'latest',
      source: schedule.source,
    };
    if (spec.cron !== undefined) info.cron = spec.cron;
    if (spec.every !== undefined) info.every = spec.every;
    if (schedule.nextFireAt) info.nextFireAt = schedule.nextFireAt;
    if (schedule.lastFireAt) info.lastFireAt = schedule.lastFireAt;
    if (schedule.lastRunId !== undefined) info.lastRunId = schedule.lastRunId;
    return info;
  }
}
