import { InvalidArgumentError } from '../errors/errors.js';
import { parseDuration } from '../definition/duration.js';
import type { EngineClock, TimerHandle } from '../engine/clock.js';
import type { WorkflowEngine } from '../engine/workflow-engine.js';

interface ManualTimer {
  readonly __timer: true;
  id: number;
  at: number;
  fn: () => void;
}

/** Turns of the event loop without progress after which `runUntilIdle` considers the runs blocked (on time or I/O). */
const QUIET_TURNS = 50;
/** Guards `runUntilIdle` against a run that never stops (e.g. an endless goto loop). */
const MAX_TURNS = 100_000;

/**
 * The manual clock of `DurableExecutionTestingModule`: time moves only when a test calls `advance`. Sleeps, retry
 * delays, signal timeouts, step timeouts and heartbeat timeouts are all measured on it, so a 24-hour timeout is tested
 * in milliseconds. Inject it in tests: `moduleRef.get(WorkflowTestClock)`.
 */
export class WorkflowTestClock {
  private time: number;
  private timers: ManualTimer[] = [];
  private nextId = 1;
  private engine?: WorkflowEngine;

  /** The clock as the engine and the memory store read it. */
  readonly source: EngineClock;

  constructor(start: Date = new Date()) {
    this.time = start.getTime();
    this.source = {
      manual: true,
      now: () => this.time,
      setTimer: (fn, ms) => {
        const timer: ManualTimer = { __timer: true, id: this.nextId++, at: this.time + Math.max(0, ms), fn };
        this.timers.push(timer);
        return timer;
      },
      clearTimer: (handle: TimerHandle | undefined) => {
        if (!handle || !('__timer' in handle)) return;
        const id = (handle as ManualTimer).id;
        this.timers = this.timers.filter((t) => t.id !== id);
      },
    };
  }

  /** @internal set by the testing module */
  attach(engine: WorkflowEngine): this {
    this.engine = engine;
    return this;
  }

  /** The current (virtual) time. */
  now(): Date {
    return new Date(this.time);
  }

  /**
   * Moves time forward by `duration` (ms or a string such as '24h'), firing what falls due on the way, in time order:
   * wake-ups, retry delays, signal and step timeouts, heartbeat timeouts; and runs until idle after each.
   */
  async advance(duration: number | string): Promise<void> {
    const ms = parseDuration(duration);
    if (ms === undefined) throw new InvalidArgumentError(`advance() takes ms or a duration such as '5m' (got ${JSON.stringify(duration)}).`);
    const target = this.time + ms;
    for (;;) {
      const next = this.earliest(target);
      if (!next) break;
      await this.moveTo(next.at);
    }
    await this.moveTo(target);
  }

  /**
   * Runs everything due now until nothing is: claims due runs, fires due timers, and waits while runs make progress.
   * Returns when every run has ended or is blocked on time (a sleep, a wait, a delay) or on something outside.
   */
  async runUntilIdle(): Promise<void> {
    const engine = this.engine;
    if (!engine) throw new InvalidArgumentError('WorkflowTestClock is not attached to an engine: get it from DurableExecutionTestingModule.');
    let quiet = 0;
    for (let turn = 0; turn < MAX_TURNS; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      const before = engine.progress();
      const fired = this.fireDue();
      const claimed = await engine.claimDueNow();
      const after = engine.progress();
      const moved = fired > 0 || claimed > 0 || after.commits !== before.commits || after.ended !== before.ended;
      if (!moved && after.active === 0) return;
      quiet = moved ? 0 : quiet + 1;
      if (quiet >= QUIET_TURNS) return;
    }
    throw new InvalidArgumentError(`runUntilIdle(): runs kept working for ${MAX_TURNS} turns; a run may loop forever.`);
  }

  /** Moves time to `at` (keeping the leases of runs executing now, as renewals would), then runs until idle. */
  private async moveTo(at: number): Promise<void> {
    if (at > this.time) await this.engine?.extendLeases(at - this.time);
    this.time = Math.max(this.time, at);
    await this.runUntilIdle();
  }

  /** The earliest timer due at or before `limit`. */
  private earliest(limit: number): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const timer of this.timers) if (timer.at <= limit && (!best || timer.at < best.at || (timer.at === best.at && timer.id < best.id))) best = timer;
    return best;
  }

  /** Fires the timers due now, in order. */
  private fireDue(): number {
    let fired = 0;
    for (;;) {
      const next = this.earliest(this.time);
      if (!next) return fired;
      this.timers = this.timers.filter((t) => t !== next);
      fired++;
      next.fn();
    }
  }
}
