import { Injectable, SetMetadata, applyDecorators } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { WORKFLOW_METADATA } from './cairn.constants.js';

/** Options of `@Workflow`. */
export interface WorkflowOptions {
  /** Name used to start runs and stored with them. @default the class name */
  name?: string;
  /** Version stored with each run. @default 1 */
  version?: number;
  /**
   * At most this many runs of the workflow (per key, when `key` is given) hold a slot at once, across all instances.
   * `scope: 'run'` (default): from a run's first claim until it ends (sleeping and waiting included); `'step'`: only
   * while it executes (the slot is given back whenever the run releases its lease). A run waiting for a slot stays
   * `pending` with `blockedBy: 'concurrency'`.
   */
  concurrency?: number | { limit: number; key?: (input: any) => string; scope?: 'run' | 'step' };
  /** At most `limit` runs (per key) begin executing in any window of `per` (ms or a duration string such as '1m'). */
  rateLimit?: { limit: number; per: number | string; key?: (input: any) => string };
  /** Claim order among due runs: higher first. A start's `priority` overrides it. @default 0 */
  priority?: number;
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
