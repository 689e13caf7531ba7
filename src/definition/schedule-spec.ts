import { Cron } from 'croner';
import { parseDuration } from './duration.js';

/** What a tick does while the previous run of the same schedule is still live. */
export type ScheduleOverlap = 'skip' | 'allow' | 'cancel-previous';
/** What happens to the ticks that fell while no instance ran. */
export type ScheduleCatchUp = 'none' | 'latest' | 'all';

/** A schedule: when to start runs of a workflow, and with what input (`@Schedule`, `client.schedules.create`). */
export interface ScheduleSpec {
  /** Unique among the schedules of the store. @default the workflow name, then `<name>#2`, `#3` for repeats */
  id?: string;
  /** A cron expression of 5 fields (minute first) or 6 (seconds first). Exactly one of `cron` and `every`. */
  cron?: string;
  /**
   * A fixed period: ms or a duration such as '5m' (at least 1 s). Ticks fall on multiples of the period since the Unix
   * epoch (UTC): '5m' fires at :00, :05, :10 … Exactly one of `cron` and `every`.
   */
  every?: number | string;
  /** IANA time zone of `cron`, e.g. 'Europe/Berlin'. @default 'UTC' */
  timezone?: string;
  /**
   * The input of each run: a value, or (decorator schedules only: a function cannot be stored) a function of the
   * tick's time. @default `{ scheduledAt: fireAt }`
   */
  input?: unknown | ((fireAt: Date) => unknown);
  /** A tick while the previous run of this schedule is live. @default 'skip' */
  overlap?: ScheduleOverlap;
  /** Ticks missed while no instance ran. @default 'latest' */
  catchUp?: ScheduleCatchUp;
  /** Created paused (no tick fires until `resume`). @default false */
  paused?: boolean;
}

/** The most ticks `catchUp: 'all'` fires for one schedule in one pass of the scheduler (the next pass goes on). */
export const MAX_CATCH_UP_PER_PASS = 100;
/** `catchUp: 'none'`: a tick fired later than this after its time counts as missed, and is skipped. */
export const ON_TIME_MS = 10_000;
/** The shortest `every`. */
export const MIN_EVERY_MS = 1_000;
/** Longest schedule id (a run id is `<schedule id>@<ISO time>`, at most 255 characters). */
export const MAX_SCHEDULE_ID_LENGTH = 200;

const OVERLAPS: readonly ScheduleOverlap[] = ['skip', 'allow', 'cancel-previous'];
const CATCH_UPS: readonly ScheduleCatchUp[] = ['none', 'latest', 'all'];

/** When a schedule fires. */
export type ScheduleTiming = { kind: 'cron'; cron: Cron } | { kind: 'every'; ms: number };

/**
 * The stored form of a spec (`StoredSchedule.spec`, JSON): everything but the id and the workflow. `input` is the
 * serialized input; `inputFn` marks a decorator schedule whose input is a function in the code.
 */
export interface StorableScheduleSpec {
  cron?: string;
  every?: number | string;
  timezone: string;
  overlap: ScheduleOverlap;
  catchUp: ScheduleCatchUp;
  paused: boolean;
  input?: string;
  inputFn?: true;
}

/** A validated spec. */
export interface ResolvedScheduleSpec {
  storable: StorableScheduleSpec;
  timing: ScheduleTiming;
  /** The decorator's input function, if any. */
  inputFn?: (fireAt: Date) => unknown;
  /** The input value, when one was given (not a function). */
  input?: { value: unknown };
}

/** Checks a schedule id (1–200 characters, no NUL). Returns the message of what is wrong, or undefined. */
export function scheduleIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_SCHEDULE_ID_LENGTH || id.includes('\u0000')) {
    return `a schedule id must be a non-empty string of at most ${MAX_SCHEDULE_ID_LENGTH} characters without NUL (got ${JSON.stringify(id)?.slice(0, 80)})`;
  }
  if (!(id as string & { isWellFormed(): boolean }).isWellFormed()) return `a schedule id must not hold unpaired surrogates (got ${JSON.stringify(id)})`;
  return undefined;
}

/** Whether `zone` is an IANA time zone this runtime knows. */
function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * Validates a spec and resolves its timing. `serializeInput` turns an input value into stored text (it may throw).
 * @param where names the schedule in messages, e.g. `@Schedule "nightly" of ReportWorkflow`
 * @throws `makeError(message)` for anything wrong
 */
export function resolveScheduleSpec(
  spec: ScheduleSpec,
  where: string,
  options: { allowInputFunction: boolean; serializeInput: (value: unknown) => string },
  makeError: (message: string) => Error,
): ResolvedScheduleSpec {
  const fail = (problem: string): never => {
    throw makeError(`${where}: ${problem}.`);
  };
  if (!spec || typeof spec !== 'object') fail(`the spec must be an object (got ${JSON.stringify(spec)})`);
  const hasCron = spec.cron !== undefined;
  const hasEvery = spec.every !== undefined;
  if (hasCron === hasEvery) fail(`give exactly one of cron and every (got ${hasCron ? 'both' : 'neither'})`);
  const timezone = spec.timezone ?? 'UTC';
  if (typeof timezone !== 'string' || !isTimeZone(timezone)) fail(`timezone must be an IANA time zone such as 'Europe/Berlin' (got ${JSON.stringify(spec.timezone)})`);
  let timing: ScheduleTiming;
  if (hasCron) {
    const cron = spec.cron;
    if (typeof cron !== 'string') return fail(`cron must be a string (got ${JSON.stringify(cron)})`);
    const fields = cron.trim().split(/\s+/);
    if (fields.length !== 5 && fields.length !== 6) {
      fail(`cron must have 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first); got ${JSON.stringify(cron)}`);
    }
    try {
      timing = { kind: 'cron', cron: new Cron(cron.trim(), { timezone, paused: true }) };
    } catch (error) {
      return fail(`invalid cron ${JSON.stringify(cron)}: ${error instanceof Error ? error.message : String(error)}`);
    }
  } else {
    const every = spec.every as number | string;
    const ms = typeof every === 'number' || typeof every === 'string' ? parseDuration(every) : undefined;
    if (ms === undefined || ms < MIN_EVERY_MS || !Number.isInteger(ms)) {
      return fail(`every must be a whole number of ms of at least ${MIN_EVERY_MS}, or a duration such as '30s', '5m', '1h' (got ${JSON.stringify(every)})`);
    }
    timing = { kind: 'every', ms };
  }
  const overlap = spec.overlap ?? 'skip';
  if (!OVERLAPS.includes(overlap)) fail(`overlap must be 'skip', 'allow' or 'cancel-previous' (got ${JSON.stringify(spec.overlap)})`);
  const catchUp = spec.catchUp ?? 'latest';
  if (!CATCH_UPS.includes(catchUp)) fail(`catchUp must be 'none', 'latest' or 'all' (got ${JSON.stringify(spec.catchUp)})`);
  if (spec.paused !== undefined && typeof spec.paused !== 'boolean') fail(`paused must be a boolean (got ${JSON.stringify(spec.paused)})`);
  const storable: StorableScheduleSpec = { timezone, overlap, catchUp, paused: spec.paused ?? false };
  if (hasCron) storable.cron = (spec.cron as string).trim();
  else storable.every = spec.every;
  const resolved: ResolvedScheduleSpec = { storable, timing };
  if (typeof spec.input === 'function') {
    if (!options.allowInputFunction) {
      fail('input cannot be a function here: a function cannot be stored (only @Schedule accepts one); give a value');
    }
    resolved.inputFn = spec.input as (fireAt: Date) => unknown;
    storable.inputFn = true;
  } else if ('input' in spec && spec.input !== undefined) {
    try {
      storable.input = options.serializeInput(spec.input);
    } catch (error) {
      fail(`input cannot be stored: ${error instanceof Error ? error.message : String(error)}`);
    }
    resolved.input = { value: spec.input };
  }
  return resolved;
}

/** The timing of a stored spec (already validated when it was stored). @throws Error when it no longer parses */
export function timingOf(spec: StorableScheduleSpec): ScheduleTiming {
  if (spec.cron !== undefined) return { kind: 'cron', cron: new Cron(spec.cron, { timezone: spec.timezone, paused: true }) };
  const ms = parseDuration(spec.every as number | string);
  if (ms === undefined || ms < MIN_EVERY_MS) throw new Error(`invalid every ${JSON.stringify(spec.every)}`);
  return { kind: 'every', ms };
}

/** The first tick strictly after `after` (epoch ms), or undefined when there is none (a cron that never fires again). */
export function nextTickAfter(timing: ScheduleTiming, after: number): number | undefined {
  if (timing.kind === 'every') return (Math.floor(after / timing.ms) + 1) * timing.ms;
  const next = timing.cron.nextRun(new Date(after));
  return next ? next.getTime() : undefined;
}

/** The latest tick in [from, now], or undefined. `from` must be a tick. */
export function latestTickUpTo(timing: ScheduleTiming, from: number, now: number): number | undefined {
  if (from > now) return undefined;
  if (timing.kind === 'every') return from + Math.floor((now - from) / timing.ms) * timing.ms;
  // NOTE: search back from now in growing windows, so a long outage costs a few cron lookups, not one per missed tick.
  for (let window = 60_000; ; window *= 4) {
    const start = Math.max(from, now - window);
    let tick = start === from ? from : nextTickAfter(timing, start - 1);
    if (tick !== undefined && tick <= now) {
      for (let next = nextTickAfter(timing, tick); next !== undefined && next <= now; next = nextTickAfter(timing, tick)) tick = next;
      return tick;
    }
    if (start === from) return undefined;
  }
}

/** What one pass of the scheduler does with a due schedule. */
export interface TickPlan {
  /** Ticks to fire, oldest first. */
  fire: number[];
  /** Missed ticks left out (`catchUp`). */
  skipped: number;
  /** The schedule's next tick after this pass (undefined: none). */
  next?: number;
}

/**
 * The ticks to fire for a schedule whose next tick was `nextFireAt`, at `now`, per `catchUp`:
 * - `all`: every tick up to now, oldest first, at most {@link MAX_CATCH_UP_PER_PASS} (`next` is then still due);
 * - `latest`: the latest tick only;
 * - `none`: the latest tick only if it is at most {@link ON_TIME_MS} old, else nothing.
 */
export function planTicks(timing: ScheduleTiming, catchUp: ScheduleCatchUp, nextFireAt: number, now: number): TickPlan {
  if (nextFireAt > now) return { fire: [], skipped: 0, next: nextFireAt };
  if (catchUp === 'all') {
    const fire: number[] = [];
    let tick: number | undefined = nextFireAt;
    while (tick !== undefined && tick <= now && fire.length < MAX_CATCH_UP_PER_PASS) {
      fire.push(tick);
      tick = nextTickAfter(timing, tick);
    }
    return { fire, skipped: 0, next: tick };
  }
  const latest = latestTickUpTo(timing, nextFireAt, now) as number;
  const next = nextTickAfter(timing, latest);
  const missed = countTicksBefore(timing, nextFireAt, latest);
  if (catchUp === 'none' && now - latest > ON_TIME_MS) return { fire: [], skipped: missed + 1, next };
  return { fire: [latest], skipped: missed, next };
}

/** How many ticks lie in [from, until) (counted up to 1,000; beyond, 1,000). For log lines only. */
function countTicksBefore(timing: ScheduleTiming, from: number, until: number): number {
  if (timing.kind === 'every') return Math.round((until - from) / timing.ms);
  let count = 0;
  for (let tick: number | undefined = from; tick !== undefined && tick < until && count < 1_000; tick = nextTickAfter(timing, tick)) count++;
  return count;
}

/** The run id of a tick: `<schedule id>@<ISO time>`. The same on every instance, so concurrent instances converge. */
export function scheduledRunId(scheduleId: string, fireAt: number): string {
  return `${scheduleId}@${new Date(fireAt).toISOString()}`;
}
