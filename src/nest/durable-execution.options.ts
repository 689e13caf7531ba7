import { ConfigurationError } from '../errors/errors.js';
import { parseDuration } from '../definition/duration.js';
import type { EngineOptions } from '../engine/workflow-engine.js';
import type { DurableExecutionOptions } from './durable-execution-options.interface.js';

function positiveInt(value: unknown, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ConfigurationError(`DurableExecutionModule: ${name} must be an integer >= ${min} (got ${JSON.stringify(value)}).`);
  }
  return value;
}

function age(value: number | string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) {
    throw new ConfigurationError(`DurableExecutionModule: ${name} must be a positive duration such as '30d' or ms (got ${JSON.stringify(value)}).`);
  }
  return ms;
}

/** Validates the module options and fills in defaults. @throws ConfigurationError */
export function resolveEngineOptions(options: DurableExecutionOptions = {}): EngineOptions {
  const worker = options.worker ?? {};
  if (worker.enabled !== undefined && typeof worker.enabled !== 'boolean') {
    throw new ConfigurationError('DurableExecutionModule: worker.enabled must be a boolean.');
  }
  const leaseMs = positiveInt(worker.leaseMs, 'worker.leaseMs', 30_000, 100);
  const events = options.events ?? {};
  if (options.history !== undefined && typeof options.history !== 'boolean') {
    throw new ConfigurationError('DurableExecutionModule: history must be a boolean.');
  }
  if (events.cluster !== undefined && typeof events.cluster !== 'boolean') {
    throw new ConfigurationError('DurableExecutionModule: events.cluster must be a boolean.');
  }
  const id = worker.instanceId;
  if (
    id !== undefined &&
    (typeof id !== 'string' || id.length === 0 || id.length > 200 || id.includes('\u0000') || !(id as string & { isWellFormed(): boolean }).isWellFormed())
  ) {
    throw new ConfigurationError(
      `DurableExecutionModule: worker.instanceId must be a non-empty string of at most 200 characters, without NUL or unpaired surrogates (got ${JSON.stringify(id)?.slice(0, 60)}).`,
    );
  }
  return {
    workerEnabled: worker.enabled ?? true,
    concurrency: positiveInt(worker.concurrency, 'worker.concurrency', 100),
    leaseMs,
    pollIntervalMs: positiveInt(worker.pollIntervalMs, 'worker.pollIntervalMs', 1_000, 10),
    shutdownGraceMs: positiveInt(worker.shutdownGraceMs, 'worker.shutdownGraceMs', 10_000, 0),
    maxPayloadBytes: positiveInt(options.maxPayloadBytes, 'maxPayloadBytes', 1024 * 1024, 64),
    maxQueuedSignals: positiveInt(options.maxQueuedSignals, 'maxQueuedSignals', 10_000),
    maxTransitions: positiveInt(options.maxTransitions, 'maxTransitions', 10_000),
    maxRecoveries: positiveInt(options.maxRecoveries, 'maxRecoveries', 10),
    retention: options.retention
      ? { completedMs: age(options.retention.completed, 'retention.completed'), failedMs: age(options.retention.failed, 'retention.failed') }
      : undefined,
    instanceId: worker.instanceId,
    publishEvents: events.cluster ?? false,
    history: options.history ?? true,
  };
}
