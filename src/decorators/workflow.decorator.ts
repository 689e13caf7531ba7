import { Injectable, SetMetadata, applyDecorators } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { WORKFLOW_METADATA } from './cairn.constants.js';

/** Options of `@Workflow`. */
export interface WorkflowOptions {
  /** Name used to start runs and stored with them. @default the class name */
  name?: string;
  /** Version stored with each run. @default 1 */
  version?: number;
}

const WorkflowDiscoverable = DiscoveryService.createDecorator<WorkflowOptions>();

/**
 * Marks an injectable class as a workflow whose `@Step` methods form a durable pipeline, run in declaration order.
 * The class is made injectable: list it in a module's `providers`. It must be a singleton.
 */
export function Workflow(nameOrOptions?: string | WorkflowOptions): ClassDecorator {
  const options: WorkflowOptions = typeof nameOrOptions === 'string' ? { name: nameOrOptions } : { ...(nameOrOptions ?? {}) };
  const record = applyDecorators(SetMetadata(WORKFLOW_METADATA, options), WorkflowDiscoverable(options));
  return (target) => {
    // NOTE: keep an @Injectable() applied below this decorator (its scope must reach bootstrap validation).
    if (!Reflect.hasOwnMetadata(INJECTABLE_WATERMARK, target)) Injectable()(target);
    record(target);
  };
}

/** Set by Nest's `@Injectable()` (its `INJECTABLE_WATERMARK`). */
const INJECTABLE_WATERMARK = '__injectable__';

/** Discovery key of `@Workflow` classes (`discovery.getProviders({ metadataKey: Workflow.KEY })`). */
Workflow.KEY = WorkflowDiscoverable.KEY;
