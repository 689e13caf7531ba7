import { STEP_METADATA, STEPS_METADATA, WORKFLOW_METADATA } from '../decorators/cairn.constants.js';
import type { StepOptions } from '../decorators/step.decorator.js';
import type { WorkflowOptions } from '../decorators/workflow.decorator.js';

/** The only reader of `@Workflow` / `@Step` metadata. */
export class WorkflowMetadataAccessor {
  getWorkflowOptions(type: Function): WorkflowOptions | undefined {
    return Reflect.getMetadata(WORKFLOW_METADATA, type) as WorkflowOptions | undefined;
  }

  /** Step method names in declaration order, base classes first. */
  getStepMethodNames(type: Function): string[] {
    const chain: Function[] = [];
    for (let t: unknown = type; typeof t === 'function' && t !== Function.prototype; t = Object.getPrototypeOf(t)) {
      chain.unshift(t as Function);
    }
    const names: string[] = [];
    for (const t of chain) {
      const own = Reflect.getOwnMetadata(STEPS_METADATA, t) as string[] | undefined;
      for (const name of own ?? []) if (!names.includes(name)) names.push(name);
    }
    return names;
  }

  getStepOptions(method: unknown): StepOptions | undefined {
    if (typeof method !== 'function') return undefined;
    return Reflect.getMetadata(STEP_METADATA, method) as StepOptions | undefined;
  }
}
