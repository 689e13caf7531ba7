import { SetMetadata } from '@nestjs/common';
import type { RunEventType } from '../engine/run-history.js';

/** Metadata key of `@OnWorkflowEvent` on a method. */
export const ON_WORKFLOW_EVENT_METADATA = 'cairn:on-workflow-event';

/** What `@OnWorkflowEvent` records on a method. */
export interface OnWorkflowEventMetadata {
  types: RunEventType[];
  workflow?: string;
}

/**
 * Calls the decorated method of a provider (a singleton) with each history event of these types written on this
 * instance: `(event: WorkflowRunEvent) => void | Promise<void>`. Each event is handled once, by the instance that
 * recorded it (the run's executor, or the instance that received the client call). A handler that throws or rejects
 * is logged and changes nothing; it is not retried. `workflow` restricts it to one workflow's runs.
 *
 * ```ts
 * @OnWorkflowEvent('run.failed')
 * alert(event: WorkflowRunEvent) { this.pager.page(`${event.workflow} ${event.runId}: ${event.error?.message}`); }
 * ```
 */
export function OnWorkflowEvent(type: RunEventType | RunEventType[], options: { workflow?: string } = {}): MethodDecorator {
  const metadata: OnWorkflowEventMetadata = { types: Array.isArray(type) ? [...type] : [type], workflow: options.workflow };
  return SetMetadata(ON_WORKFLOW_EVENT_METADATA, metadata);
}
