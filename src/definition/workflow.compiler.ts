import { WorkflowDefinitionError } from '../errors/errors.js';
import { parseDuration } from './duration.js';
import * as messages from './definition.messages.js';
import { resolveRetry } from './retry-policy.js';
import type { StepDefinition, WorkflowDefinition } from './workflow-definition.interface.js';
import { WorkflowMetadataAccessor } from './workflow-metadata.accessor.js';

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
  return { name, version, className: cls, type, instance, steps, stepsByName: byName };
}
