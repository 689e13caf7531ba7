import type * as OtelApi from '@opentelemetry/api';
import { errorMessage, errorName, errorStack } from '../engine/error-text.js';
import type { AttemptOutcome } from '../engine/step-invoker.js';
import type { AttemptScope, AttemptSpanInfo, ClientSpan, ClientSpanAttributes, Instrumentation, TraceCarrier } from './instrumentation.interface.js';
import { PACKAGE_NAME, PACKAGE_VERSION } from './package-version.js';
import { captureCarrier, restoreContext, type OtelApiModule } from './trace-carrier.js';

/** Names of the metrics this package records (units and attributes: README, "Traces and metrics"). */
export const CAIRN_METRICS = {
  runsStarted: 'cairn.runs.started',
  runsEnded: 'cairn.runs.ended',
  runsInFlight: 'cairn.runs.in_flight',
  stepDuration: 'cairn.step.duration',
  stepFailures: 'cairn.step.failures',
  checkpointDuration: 'cairn.checkpoint.duration',
  checkpointFailures: 'cairn.checkpoint.failures',
  claimLag: 'cairn.claim.lag',
  leaseTakeovers: 'cairn.lease.takeovers',
} as const;

const NOOP_CLIENT_SPAN: ClientSpan = Object.freeze({ setAttribute: () => undefined });

/** Metric attributes of one outcome, shared by every record (an SDK keeps them as the key of the series; never mutated). */
const OUTCOME_OK: OtelApi.Attributes = { 'cairn.outcome': 'ok' };
const OUTCOME_ERROR: OtelApi.Attributes = { 'cairn.outcome': 'error' };

/**
 * Runs executing on this process, for the `cairn.runs.in_flight` observable, and the meters it is registered with: one
 * series per process, whatever the number of apps (as an up-down counter's adds would be), and no record per run.
 */
let runsInFlightNow = 0;
const inFlightMeters = new WeakSet<OtelApi.Meter>();

/** One series of a {@link ProcessCounter}: its attributes and its count so far. */
interface CounterSeries {
  readonly attributes: OtelApi.Attributes;
  value: number;
}

/**
 * A counter counted in this process and read by the SDK at each collection (an observable counter): the same
 * monotonic sum a synchronous counter exports, without an SDK record per add (each record hashes its attributes:
 * about a microsecond, several times per run). One per meter and name, shared by every app of the process.
 */
class ProcessCounter {
  private readonly series = new Map<string, CounterSeries>();

  constructor(meter: OtelApi.Meter, name: string, options: OtelApi.MetricOptions) {
    meter.createObservableCounter(name, options).addCallback((result) => {
      for (const series of this.series.values()) result.observe(series.value, series.attributes);
    });
  }

  /** The series of `key` (`attributes` are taken for a new one), to add to. */
  seriesOf(key: string, attributes: () => OtelApi.Attributes): CounterSeries {
    let series = this.series.get(key);
    if (!series) this.series.set(key, (series = { attributes: attributes(), value: 0 }));
    return series;
  }
}

/** The process counters of one meter. */
interface ProcessCounters {
  runsStarted: ProcessCounter;
  runsEnded: ProcessCounter;
  stepFailures: ProcessCounter;
  checkpointFailures: ProcessCounter;
  leaseTakeovers: ProcessCounter;
}

const countersByMeter = new WeakMap<OtelApi.Meter, ProcessCounters>();

function processCounters(meter: OtelApi.Meter): ProcessCounters {
  let counters = countersByMeter.get(meter);
  if (!counters) {
    const m = CAIRN_METRICS;
    counters = {
      runsStarted: new ProcessCounter(meter, m.runsStarted, { description: 'Runs created', unit: '{run}' }),
      runsEnded: new ProcessCounter(meter, m.runsEnded, { description: 'Runs that reached a terminal status', unit: '{run}' }),
      stepFailures: new ProcessCounter(meter, m.stepFailures, { description: 'Step attempts that failed', unit: '{attempt}' }),
      checkpointFailures: new ProcessCounter(meter, m.checkpointFailures, { description: 'Checkpoint writes that failed', unit: '{checkpoint}' }),
      leaseTakeovers: new ProcessCounter(meter, m.leaseTakeovers, { description: 'Claims that took over the lease of another instance', unit: '{run}' }),
    };
    countersByMeter.set(meter, counters);
  }
  return counters;
}

/** Bucket boundaries (ms) for durations that range from a fast step to a run left waiting for minutes. */
const LONG_MS_BUCKETS = [0, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000];

/** {@link Instrumentation} on `@opentelemetry/api`: spans through the global tracer, metrics through the global meter. */
export class OtelInstrumentation implements Instrumentation {
  readonly enabled = true;
  private readonly tracer: OtelApi.Tracer;
  private readonly counters: ProcessCounters;
  private readonly stepDuration: OtelApi.Histogram;
  private readonly checkpointDuration: OtelApi.Histogram;
  private readonly claimLagHistogram: OtelApi.Histogram;
  /** Metric attributes and counter series by workflow, then by step or status, built once (on the hot path). */
  private readonly workflowAttributes = new Map<string, OtelApi.Attributes>();
  private readonly startedSeries = new Map<string, CounterSeries>();
  private readonly stepAttributes = new Map<string, Map<string, StepAttributes>>();
  private readonly endedSeries = new Map<string, Map<string, CounterSeries>>();
  /** The parent context restored from each run's stored carrier, for its next attempts on this instance. */
  private readonly parents = new WeakMap<TraceCarrier, OtelApi.Context>();

  /**
   * @param api the loaded `@opentelemetry/api`. The meter is taken now: the app's SDK must be registered before the
   *   module is created (the API has no proxy meter; OpenTelemetry's own advice is to start the SDK first).
   */
  constructor(private readonly api: OtelApiModule) {
    this.tracer = api.trace.getTracer(PACKAGE_NAME, PACKAGE_VERSION);
    const meter = api.metrics.getMeter(PACKAGE_NAME, PACKAGE_VERSION);
    const m = CAIRN_METRICS;
    this.counters = processCounters(meter);
    if (!inFlightMeters.has(meter)) {
      inFlightMeters.add(meter);
      meter
        .createObservableUpDownCounter(m.runsInFlight, { description: 'Runs executing on this instance', unit: '{run}' })
        .addCallback((result) => result.observe(runsInFlightNow));
    }
    this.stepDuration = meter.createHistogram(m.stepDuration, {
      description: 'Duration of one step attempt',
      unit: 'ms',
      advice: { explicitBucketBoundaries: LONG_MS_BUCKETS },
    });
    this.checkpointDuration = meter.createHistogram(m.checkpointDuration, { description: 'Duration of one checkpoint write', unit: 'ms' });
    this.claimLagHistogram = meter.createHistogram(m.claimLag, {
      description: 'Time from when a run was due to when an instance claimed it',
      unit: 'ms',
      advice: { explicitBucketBoundaries: LONG_MS_BUCKETS },
    });
  }

  captureTrace(): TraceCarrier | undefined {
    try {
      return captureCarrier(this.api);
    } catch {
      // NOTE: an app's propagator that throws must not fail start(): the run is then traced as a root.
      return undefined;
    }
  }

  runAttempt(info: AttemptSpanInfo, body: () => Promise<AttemptOutcome>): Promise<AttemptOutcome> {
    const scope = this.startAttempt(info);
    if (!scope) return body();
    let running: Promise<AttemptOutcome>;
    try {
      running = scope.run(body);
    } catch (error) {
      scope.end({ ok: false, error });
      return Promise.reject(error);
    }
    return running.then(
      (outcome) => {
        scope.end(outcome);
        return outcome;
      },
      (error: unknown) => {
        scope.end({ ok: false, error });
        throw error;
      },
    );
  }

  startAttempt(info: AttemptSpanInfo): AttemptScope | undefined {
    try {
      const { span, active } = this.startAttemptSpan(info);
      return new OtelAttemptScope(this.api, span, active);
    } catch {
      // NOTE: telemetry never costs a step its run (an app's span processor may throw): run it untraced.
      return undefined;
    }
  }

  clientCall<T>(name: string, attributes: ClientSpanAttributes, body: (span: ClientSpan) => Promise<T>): Promise<T> {
    const api = this.api;
    let span: OtelApi.Span;
    let active: OtelApi.Context;
    try {
      const parent = api.context.active();
      const defined: OtelApi.Attributes = {};
      for (const key in attributes) if (attributes[key] !== undefined) defined[key] = attributes[key];
      span = this.tracer.startSpan(name, { kind: api.SpanKind.CLIENT, attributes: defined }, parent);
      active = api.trace.setSpan(parent, span);
    } catch {
      // NOTE: as in runAttempt: an app's span processor that throws must not fail the call.
      return body(NOOP_CLIENT_SPAN);
    }
    const handle: ClientSpan = {
      setAttribute: (key, value) => {
        try {
          span.setAttribute(key, value);
        } catch {
          // NOTE: telemetry never fails the call.
        }
      },
    };
    let running: Promise<T>;
    try {
      running = api.context.with(active, body, undefined, handle);
    } catch (error) {
      endSpan(this.api, span, { ok: false, error });
      return Promise.reject(error);
    }
    return running.then(
      (result) => {
        endSpan(this.api, span, { ok: true, value: undefined });
        return result;
      },
      (error: unknown) => {
        endSpan(this.api, span, { ok: false, error });
        throw error;
      },
    );
  }

  runStarted(workflow: string): void {
    let series = this.startedSeries.get(workflow);
    if (!series) this.startedSeries.set(workflow, (series = this.counters.runsStarted.seriesOf(workflow, () => this.ofWorkflow(workflow))));
    series.value += 1;
  }

  runEnded(workflow: string, status: string): void {
    let byStatus = this.endedSeries.get(workflow);
    if (!byStatus) this.endedSeries.set(workflow, (byStatus = new Map()));
    let series = byStatus.get(status);
    if (!series) {
      series = this.counters.runsEnded.seriesOf(JSON.stringify([workflow, status]), () => ({ 'cairn.workflow': workflow, 'cairn.status': status }));
      byStatus.set(status, series);
    }
    series.value += 1;
  }

  stepEnded(workflow: string, step: string, durationMs: number, ok: boolean): void {
    const attributes = this.ofStep(workflow, step);
    this.stepDuration.record(durationMs, ok ? attributes.ok : attributes.error);
    if (!ok) this.counters.stepFailures.seriesOf(JSON.stringify([workflow, step]), () => attributes.step).value += 1;
  }

  checkpoint(durationMs: number, ok: boolean): void {
    this.checkpointDuration.record(durationMs, ok ? OUTCOME_OK : OUTCOME_ERROR);
    if (!ok) this.counters.checkpointFailures.seriesOf('', () => ({})).value += 1;
  }

  claimLag(workflow: string, ms: number): void {
    this.claimLagHistogram.record(Math.max(0, ms), this.ofWorkflow(workflow));
  }

  leaseTakeover(workflow: string): void {
    this.counters.leaseTakeovers.seriesOf(workflow, () => this.ofWorkflow(workflow)).value += 1;
  }

  inFlight(delta: number): void {
    runsInFlightNow += delta;
  }

  private ofWorkflow(workflow: string): OtelApi.Attributes {
    let attributes = this.workflowAttributes.get(workflow);
    if (!attributes) this.workflowAttributes.set(workflow, (attributes = { 'cairn.workflow': workflow }));
    return attributes;
  }

  private ofStep(workflow: string, step: string): StepAttributes {
    let bySteps = this.stepAttributes.get(workflow);
    if (!bySteps) this.stepAttributes.set(workflow, (bySteps = new Map()));
    let attributes = bySteps.get(step);
    if (!attributes) {
      const base = { 'cairn.workflow': workflow, 'cairn.step': step };
      attributes = { step: base, ok: { ...base, 'cairn.outcome': 'ok' }, error: { ...base, 'cairn.outcome': 'error' } };
      bySteps.set(step, attributes);
    }
    return attributes;
  }

  /** The attempt's span, a child of the run's stored trace context, and the context that makes it active. */
  private startAttemptSpan(info: AttemptSpanInfo): { span: OtelApi.Span; active: OtelApi.Context } {
    const api = this.api;
    let parent = api.ROOT_CONTEXT;
    if (info.trace) {
      // NOTE: a run's carrier is one object for as long as it runs here: restored once, not at every attempt.
      parent = this.parents.get(info.trace) ?? restoreContext(api, info.trace);
      this.parents.set(info.trace, parent);
    }
    const verb = info.kind === 'compensation' ? 'cairn.compensate' : 'cairn.step';
    const attributes: OtelApi.Attributes = {
      'cairn.run_id': info.runId,
      'cairn.workflow': info.workflow,
      'cairn.workflow_version': info.version,
      'cairn.step': info.step,
      'cairn.attempt': info.attempt,
      'cairn.kind': info.kind,
      'cairn.instance_id': info.instanceId,
    };
    const span = this.tracer.startSpan(`${verb} ${info.workflow}.${info.step}`, { attributes }, parent);
    return { span, active: api.trace.setSpan(parent, span) };
  }

}

/** Ends a span, with status ERROR and the exception recorded for a failed outcome. Never throws. */
function endSpan(api: OtelApiModule, span: OtelApi.Span, outcome: AttemptOutcome): void {
  try {
    if (!outcome.ok) {
      // NOTE: a copy read with the never-throwing readers: the SDK would read the error's getters, which may throw.
      const name = errorName(outcome.error);
      const message = errorMessage(outcome.error);
      span.recordException({ name, message, stack: errorStack(outcome.error) });
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: `${name}: ${message}` });
    }
    span.end();
  } catch {
    // NOTE: as in runAttempt: the attempt's outcome matters more than its span.
  }
}

/** An attempt's span (see `Instrumentation.startAttempt`): a class, not closures, as there is one per attempt. */
class OtelAttemptScope implements AttemptScope {
  private ended = false;

  constructor(
    private readonly api: OtelApiModule,
    private readonly span: OtelApi.Span,
    private readonly active: OtelApi.Context,
  ) {}

  run<T>(body: () => T): T {
    return this.api.context.with(this.active, body);
  }

  end(outcome: AttemptOutcome): void {
    if (this.ended) return;
    this.ended = true;
    endSpan(this.api, this.span, outcome);
  }
}

/** The metric attributes of one step: for its failures, and for its durations by outcome. */
interface StepAttributes {
  step: OtelApi.Attributes;
  ok: OtelApi.Attributes;
  error: OtelApi.Attributes;
}
