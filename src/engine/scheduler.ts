import type { DeclaredSchedule } from '../definition/schedule-declarations.js';
import {
  planTicks,
  scheduledRunId,
  timingOf,
  type StorableScheduleSpec,
  type ScheduleTiming,
} from '../definition/schedule-spec.js';
import type { WorkflowDefinition } from '../definition/workflow-definition.interface.js';
import type { WorkflowRegistry } from '../definition/workflow.registry.js';
import type { ScheduleStore, StoredSchedule } from '../store/schedule-store.interface.js';
import { isTerminal } from '../store/workflow-store.interface.js';
import type { TimerHandle } from './clock.js';
import { describeError } from './error-text.js';
import type { WorkflowEngine } from './workflow-engine.js';

/**
 * How often the scheduler reads the due schedules, and how far ahead (it sets a timer at the exact time of each tick
 * it finds, so a longer period costs no precision: it bounds only how late a schedule created or changed on another
 * instance, whose scheduler is off, is seen). One indexed read per worker instance per period.
 */
export const SCHEDULE_POLL_MS = 5_000;
/**
 * How long after a tick's time an instance that did not record the schedule's previous tick (a *follower*) looks at
 * it: the instance that did (the *leader*) fires it at its exact time, and a follower then finds it advanced (one read,
 * no write). When the leader is frozen, killed or slow, the followers fire it this much late, racing on the
 * compare-and-set. Well under a second, the promise of the README.
 */
export const SCHEDULE_FOLLOW_MS = 250;
/** Due schedules handled per pass; more are taken by the next pass, at once. */
const PASS_LIMIT = 100;
const FAR_FUTURE = 8.64e15;
/** The most schedules whose leadership an instance remembers (beyond, it forgets them all: one tick as a follower). */
const LED_LIMIT = 10_000;

const schedulers = new WeakMap<WorkflowEngine, Scheduler>();

/** The scheduler running with this engine, if any (the client wakes it when a schedule changes here). */
export function schedulerOf(engine: WorkflowEngine): Scheduler | undefined {
  return schedulers.get(engine);
}

/**
 * The input of a run of a schedule at `fireAt`: the decorator's function of the tick, the stored value, or the default
 * `{ scheduledAt: fireAt }`.
 * @throws Error when the input is a function this instance's code does not declare, or the function throws
 */
export function scheduledInput(engine: WorkflowEngine, scheduleId: string, spec: StorableScheduleSpec, declared: DeclaredSchedule | undefined, fireAt: Date): unknown {
  if (spec.inputFn) {
    const fn = declared?.resolved.inputFn;
    if (!fn) throw new Error(`its input is a function of the code, and this instance's code does not declare @Schedule "${scheduleId}" with one`);
    return fn(fireAt);
  }
  if (spec.input !== undefined) return engine.decode(spec.input);
  return { scheduledAt: fireAt };
}

/**
 * Fires due schedules: every {@link SCHEDULE_POLL_MS} it reads the schedules due within the next poll (one indexed
 * read), fires those due now and sets a timer at the exact time of the next one. With the testing module's manual
 * clock it reads the earliest schedule instead and sets a clock timer at its time (no polling).
 *
 * A tick starts its run through `engine.startRun` with the deterministic id `<schedule id>@<ISO time>` and
 * `conflictPolicy: 'use-existing'`, then advances the schedule with a compare-and-set: instances that fire the same
 * tick converge on one run, and the one whose compare-and-set loses changes nothing more. A crash between the start
 * and the advance fires the tick again, with the same id: still one run.
 *
 * Every instance arms a timer for the next tick of every schedule it reads, whether or not it won that schedule's
 * last compare-and-set (chaos soak defect 5: when only the winner did, a frozen or killed winner left the tick to the
 * others' next poll, up to {@link SCHEDULE_POLL_MS} late, or skipped with `catchUp`). The winner (leader) arms it at
 * the tick's time, the others (followers) {@link SCHEDULE_FOLLOW_MS} later, so that while the leader is up they only
 * read. Cost, per instance: one timer (the earliest of these times and of the poll), and one `due` read each time it
 * fires, i.e. per distinct tick time of the schedules due within a poll, plus one per poll; never a read per schedule.
 * The leader of a tick writes its run and the advance; a follower writes only when the leader has not advanced the
 * schedule within {@link SCHEDULE_FOLLOW_MS} (then they race, and the compare-and-set keeps one). With N instances and
 * a schedule every second, that is N reads a second, and one run and one advance.
 */
export class Scheduler {
  private timer?: TimerHandle;
  private passing = false;
  private again = false;
  private started = false;
  private stopped = false;
  private current?: Promise<void>;
  /** Schedules (id and version) whose problem was logged, so it is logged once. */
  private readonly reported = new Set<string>();
  /**
   * The version each schedule got from this instance's last successful advance: while the stored version is that one,
   * no one else changed it and this instance leads its next tick.
   */
  private readonly led = new Map<string, number>();

  constructor(
    private readonly engine: WorkflowEngine,
    private readonly registry: WorkflowRegistry,
    private readonly store: ScheduleStore,
    private readonly declared: ReadonlyMap<string, DeclaredSchedule>,
  ) {}

  /** This app's decorator schedule with this id, if the code declares it. */
  declaredSchedule(id: string): DeclaredSchedule | undefined {
    return this.declared.get(id);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    schedulers.set(this.engine, this);
    this.wake();
  }

  /** Stops the timers and waits for a pass in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.engine.clock.clearTimer(this.timer);
    if (schedulers.get(this.engine) === this) schedulers.delete(this.engine);
    await this.current;
  }

  /** Looks at the due schedules now (a schedule changed on this instance). */
  wake(): void {
    if (!this.started || this.stopped) return;
    this.engine.clock.clearTimer(this.timer);
    this.timer = undefined;
    void this.pass();
  }

  private pass(): Promise<void> {
    if (this.passing) {
      this.again = true;
      return this.current ?? Promise.resolve();
    }
    this.passing = true;
    this.current = this.runPass().finally(() => {
      this.passing = false;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.pass();
      }
    });
    return this.current;
  }

  private async runPass(): Promise<void> {
    const clock = this.engine.clock;
    const now = clock.now();
    let earliest: number | undefined;
    let more = false;
    try {
      const names = this.registry.names();
      const until = clock.manual ? FAR_FUTURE : now + SCHEDULE_POLL_MS;
      const due = names.length === 0 ? [] : await this.store.due(new Date(until), PASS_LIMIT, names);
      for (const schedule of due) {
        if (this.stopped) return;
        // NOTE: a follower looks at a tick a little after its time (see SCHEDULE_FOLLOW_MS), the leader at its time
        const at = schedule.nextFireAt!.getTime() + this.followDelay(schedule);
        if (at > now) {
          earliest = earliest === undefined ? at : Math.min(earliest, at);
          continue;
        }
        try {
          const outcome = await this.fireDue(schedule, now);
          if (outcome === undefined) continue;
          if (outcome.won && outcome.next <= now) {
            more = true;
            continue;
          }
          // NOTE: a lost compare-and-set: another instance advanced it (most likely to the same next tick) or changed
          // it. This one follows: it looks again after that tick, or after a while when that tick is past (the winner
          // is catching up). That look is one `due` read, which sees what the winner stored.
          const look = outcome.won ? outcome.next : Math.max(outcome.next, now) + this.followMs();
          earliest = earliest === undefined ? look : Math.min(earliest, look);
        } catch (error) {
          this.engine.logger.error(
            `Schedule "${schedule.id}" (${schedule.workflow}): firing its tick of ${schedule.nextFireAt!.toISOString()} failed: ${describeError(error)}. ` +
              'The next pass tries again (the run id is the same, so it starts at most once).',
          );
        }
      }
      if (due.length === PASS_LIMIT && earliest === undefined) more = true;
    } catch (error) {
      this.engine.logger.error(`Reading the due schedules from the ${this.engine.store.name} store failed: ${describeError(error)}`);
    }
    if (this.stopped) return;
    const after = clock.now();
    const delay = more ? 0 : earliest !== undefined ? Math.max(0, earliest - after) : clock.manual ? undefined : SCHEDULE_POLL_MS;
    if (delay === undefined) return;
    this.engine.clock.clearTimer(this.timer);
    this.timer = clock.setTimer(() => {
      this.timer = undefined;
      void this.pass();
    }, clock.manual ? delay : Math.min(delay, SCHEDULE_POLL_MS));
    (this.timer as NodeJS.Timeout).unref?.();
  }

  /** How late after a schedule's next tick this instance looks at it: 0 when it leads it (or the clock is manual). */
  private followDelay(schedule: StoredSchedule): number {
    const version = this.led.get(schedule.id);
    if (version === schedule.version) return 0;
    if (version !== undefined) this.led.delete(schedule.id);
    return this.followMs();
  }

  private followMs(): number {
    return this.engine.clock.manual ? 0 : SCHEDULE_FOLLOW_MS;
  }

  /**
   * Fires the due ticks of one schedule (per its `catchUp` and `overlap`), then advances it.
   * @returns its next tick as planned here (at or before `now`: ticks are still due, `catchUp: 'all'`), and whether
   *   this pass's compare-and-set won; undefined when this instance does not fire it or it has no next tick
   */
  private async fireDue(schedule: StoredSchedule, now: number): Promise<{ next: number; won: boolean } | undefined> {
    let spec: StorableScheduleSpec;
    let timing: ScheduleTiming;
    try {
      spec = JSON.parse(schedule.spec) as StorableScheduleSpec;
      timing = timingOf(spec);
    } catch (error) {
      this.reportOnce(schedule, `its stored spec cannot be read (${describeError(error)}); update or delete it`);
      return undefined;
    }
    const def = this.registry.get(schedule.workflow);
    if (!def) return undefined;
    const declared = schedule.source === 'decorator' ? this.declared.get(schedule.id) : undefined;
    if (spec.inputFn && !declared?.resolved.inputFn) {
      // NOTE: an older or newer deployment declares it: left to an instance whose code has the function.
      this.reportOnce(schedule, 'its input is a function that this instance\'s code does not declare; instances that declare it fire it');
      return undefined;
    }
    const plan = planTicks(timing, spec.catchUp, schedule.nextFireAt!.getTime(), now);
    if (plan.skipped > 0) {
      this.engine.logger.log(
        `Schedule "${schedule.id}": ${plan.skipped} tick(s) missed while no instance ran were skipped (catchUp: '${spec.catchUp}')`,
      );
    }
    let lastRunId = schedule.lastRunId;
    let lastFireAt: number | undefined;
    for (const tick of plan.fire) {
      const runId = await this.fireTick(schedule, spec, def, declared, tick, lastRunId);
      if (runId !== undefined) {
        lastRunId = runId;
        lastFireAt = tick;
      }
    }
    const advanced = await this.store.advance(schedule.id, schedule.version, {
      nextFireAt: plan.next === undefined ? null : new Date(plan.next),
      ...(lastFireAt !== undefined ? { lastFireAt: new Date(lastFireAt), lastRunId } : {}),
    });
    // NOTE: a lost compare-and-set means another instance advanced it (or it was changed): nothing more to do here,
    // but this instance still looks at the next tick, in case that instance stops (see runPass).
    if (advanced) {
      if (this.led.size >= LED_LIMIT && !this.led.has(schedule.id)) this.led.clear();
      this.led.set(schedule.id, advanced.version);
    } else {
      this.led.delete(schedule.id);
    }
    return plan.next === undefined ? undefined : { next: plan.next, won: !!advanced };
  }

  /** One tick: applies `overlap`, then starts the run. Returns its id, or undefined when the tick starts nothing. */
  private async fireTick(
    schedule: StoredSchedule,
    spec: StorableScheduleSpec,
    def: WorkflowDefinition,
    declared: DeclaredSchedule | undefined,
    tick: number,
    previous: string | undefined,
  ): Promise<string | undefined> {
    const runId = scheduledRunId(schedule.id, tick);
    if (previous !== undefined && previous !== runId && spec.overlap !== 'allow') {
      const run = await this.engine.getRun(previous);
      if (run && !isTerminal(run.status)) {
        if (spec.overlap === 'skip') {
          this.engine.logger.log(`Schedule "${schedule.id}": tick ${new Date(tick).toISOString()} skipped, run "${previous}" is still ${run.status} (overlap: 'skip')`);
          return undefined;
        }
        await this.engine.control(previous, { action: 'cancel', compensate: true }, undefined, { reason: `schedule "${schedule.id}": overlap cancel-previous` });
      }
    }
    let input: unknown;
    try {
      input = scheduledInput(this.engine, schedule.id, spec, declared, new Date(tick));
    } catch (error) {
      this.engine.logger.error(`Schedule "${schedule.id}": tick ${new Date(tick).toISOString()} starts nothing: its input failed: ${describeError(error)}`);
      return undefined;
    }
    await this.engine.startRun(def, input, { id: runId, conflictPolicy: 'use-existing' });
    return runId;
  }

  private reportOnce(schedule: StoredSchedule, problem: string): void {
    const key = `${schedule.id}\u0000${schedule.version}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.engine.logger.warn(`Schedule "${schedule.id}" (${schedule.workflow}) is not fired by this instance: ${problem}.`);
  }
}
