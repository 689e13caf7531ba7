import { WorkflowDefinitionError } from '../errors/errors.js';
import { parseDuration } from './duration.js';
import * as messages from './definition.messages.js';
import { resolveRetry } from './retry-policy.js';
import type { StepDefinition, WorkflowDefinition } from './workflow-definition.interface.js';
import { WorkflowMetadataAccessor } from './workflow-metadata.accessor.js';
import type { WorkflowOptions } from '../decorators/workflow.decorator.js';

const defaultAccessor = new WorkflowMetadataAccessor();

/**
 * Compiles a `@Workflow` class and its provider instance into a pipeline, validating every option.
 * @throws WorkflowDefinitionError naming the class, the method and the fix
 */
export function compileWorkflow(type: Function, instance: object, accessor = defaultAccessor): WorkflowDefinition {
  const cls = type.name || '(anonymous class)';
  const options = accessor.getWorkflowOptions(type) ?? {};
  const name = options.name ?? type.name;
  if (typeof name !== 'string' || name.trim() === '' || name.length > 255) {
    throw new WorkflowDefinitionError(messages.INVALID_WORKFLOW_OPTION(cls, 'name must be a non-empty string of at most 255 characters'));
  }
  const version = options.version ?? 1;
  if (!Number.isInteger(version) || version < 1) {
    throw new WorkflowDefinitionError(messages.INVALID_WORKFLOW_OPTION(cls, `version must be an integer >= 1 (got ${String(version)})`));
  }

  const methodNames = accessor.getStepMethodNames(type);
  if (methodNames.length === 0) throw new WorkflowDefinitionError(messages.NO_STEPS(cls));

  const steps: StepDefinition[] = [];
  const byName = new Map<string, StepDefinition>();
  const proto = type.prototype as Record<string, unknown>;
  for (const methodName of methodNames) {
    const stepOptions = accessor.getStepOptions(proto[methodName]) ?? {};
    const stepName = stepOptions.name ?? methodName;
    if (typeof stepName !== 'string' || stepName.trim() === '') {
      throw new WorkflowDefinitionError(messages.INVALID_STEP_OPTION(cls, methodName, 'name must be a non-empty string'));
    }
    const existing = byName.get(stepName);
    if (existing) throw new WorkflowDefinitionError(messages.DUPLICATE_STEP(cls, stepName, [existing.methodName, methodName]));

    const retry = resolveRetry(stepOptions.retry);
    if (typeof retry === 'string') throw new WorkflowDefinitionError(messages.INVALID_STEP_OPTION(cls, methodName, retry));

    const positiveDuration = (option: 'timeout' | 'heartbeatTimeout'): number | undefined => {
      const value = stepOptions[option];
      if (value === undefined) return undefined;
      const ms = parseDuration(value);
      if (ms === undefined || ms <= 0) {
        throw new WorkflowDefinitionError(
          messages.INVALID_STEP_OPTION(cls, methodName, `${option} must be a positive number of ms or a duration string such as '5s' (got ${JSON.stringify(value)})`),
        );
      }
      return ms;
    };
    const timeoutMs = positiveDuration('timeout');
    const heartbeatTimeoutMs = positiveDuration('heartbeatTimeout');
    const compensate = stepOptions.compensate;
    if (compensate !== undefined && (typeof compensate !== 'string' || typeof proto[compensate] !== 'function')) {
      throw new WorkflowDefinitionError(messages.MISSING_COMPENSATION(cls, methodName, String(compensate)));
    }
    const step: StepDefinition = { name: stepName, index: steps.length, methodName, retry, timeoutMs, heartbeatTimeoutMs, compensate };
    steps.push(step);
    byName.set(stepName, step);
  }
  return { name, version, className: cls, type, instance, steps, stepsByName: byName, ...compileFlowControl(cls, options) };
}

/** Whether a value is a priority: a safe integer. */
export function isPriority(value: unknown): value is number {
  return Number.isSafeInteger(value);
}

/** `concurrency`, `rateLimit` and `priority` of `@Workflow`, validated (DESIGN §3.2). */
function compileFlowControl(cls: string, options: WorkflowOptions): Pick<WorkflowDefinition, 'concurrency' | 'rateLimit' | 'priority'> {
  const fail = (what: string) => new WorkflowDefinitionError(messages.INVALID_WORKFLOW_OPTION(cls, what));
  const limitOf = (option: string, value: unknown): number => {
    if (!Number.isSafeInteger(value) || (value as number) < 1) throw fail(`${option} must be an integer >= 1 (got ${JSON.stringify(value)})`);
    return value as number;
  };
  const keyOf = (option: string, key: unknown): ((input: unknown) => string) | undefined => {
    if (key !== undefined && typeof key !== 'function') throw fail(`${option}.key must be a function of the run's input that returns a string (got ${typeof key})`);
    return key as ((input: unknown) => string) | undefined;
  };
  const result: Pick<WorkflowDefinition, 'concurrency' | 'rateLimit' | 'priority'> = { priority: 0 };
  const concurrency = options.concurrency;
  if (concurrency !== undefined) {
    if (typeof concurrency === 'number') result.concurrency = { limit: limitOf('concurrency', concurrency), scope: 'run' };
    else if (concurrency === null || typeof concurrency !== 'object') throw fail(`concurrency must be a number or { limit, key?, scope? } (got ${JSON.stringify(concurrency)})`);
    else {
      const scope = concurrency.scope ?? 'run';
      if (scope !== 'run' && scope !== 'step') throw fail(`concurrency.scope must be 'run' or 'step' (got ${JSON.stringify(scope)})`);
      result.concurrency = { limit: limitOf('concurrency.limit', concurrency.limit), key: keyOf('concurrency', concurrency.key), scope };
    }
  }
  const rate = options.rateLimit;
  if (rate !== undefined) {
    if (rate === null || typeof rate !== 'object') throw fail(`rateLimit must be { limit, per, key? } (got ${JSON.stringify(rate)})`);
    const perMs = parseDuration(rate.per as number | string);
    if (perMs === undefined || perMs < 1) throw fail(`rateLimit.per must be a positive number of ms or a duration string such as '1s' or '1m' (got ${JSON.stringify(rate.per)})`);
    result.rateLimit = { limit: limitOf('rateLimit.limit', rate.limit), perMs, key: keyOf('rateLimit', rate.key) };
  }
  if (options.priority !== undefined) {
    if (!isPriority(options.priority)) throw fail(`priority must be an integer (got ${JSON.stringify(options.priority)})`);
    result.priority = options.priority;
  }
  return result;
}
