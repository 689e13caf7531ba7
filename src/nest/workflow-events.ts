import { Inject, Injectable } from '@nestjs/common';
import { Observable } from 'rxjs';
import { InvalidArgumentError } from '../errors/errors.js';
import { RUN_EVENT_TYPES, type RunEventType, type WorkflowRunEvent } from '../engine/run-history.js';
import type { WorkflowEngine } from '../engine/workflow-engine.js';
import { WORKFLOW_ENGINE } from './durable-execution.constants.js';

/** Which events `WorkflowEvents.stream` emits. */
export interface WorkflowEventFilter {
  runId?: string;
  workflow?: string;
  types?: RunEventType[];
  /**
   * `local` (default): the events written on this instance. `cluster`: those of every instance sharing the store
   * (needs `events: { cluster: true }` in the module options on every instance).
   */
  scope?: 'local' | 'cluster';
}

const TYPES: ReadonlySet<string> = new Set(RUN_EVENT_TYPES);

/**
 * Live history events as an RxJS `Observable`. Inject it anywhere:
 *
 * ```ts
 * this.events.stream({ workflow: 'order', types: ['run.failed'] }).subscribe((e) => console.log(e.runId, e.error));
 * ```
 * Events are emitted after they are durably written. The stream is hot: subscribe before the events you want.
 */
@Injectable()
export class WorkflowEvents {
  constructor(@Inject(WORKFLOW_ENGINE) private readonly engine: WorkflowEngine) {}

  /** @throws InvalidArgumentError for an unknown event type, or `scope: 'cluster'` without `events.cluster` */
  stream(filter: WorkflowEventFilter = {}): Observable<WorkflowRunEvent> {
    const types = filter.types ? new Set<string>(filter.types) : undefined;
    for (const type of types ?? []) {
      if (!TYPES.has(type)) throw new InvalidArgumentError(`Unknown workflow event type ${JSON.stringify(type)}; known: ${RUN_EVENT_TYPES.join(', ')}.`);
    }
    const scope = filter.scope ?? 'local';
    if (scope !== 'local' && scope !== 'cluster') throw new InvalidArgumentError(`stream scope must be 'local' or 'cluster' (got ${JSON.stringify(scope)}).`);
    const publisher = this.engine.events;
    if (scope === 'cluster' && !publisher.publishes) {
      throw new InvalidArgumentError(
        "stream({ scope: 'cluster' }) needs every instance to broadcast its events: set events: { cluster: true } in DurableExecutionModule.forRoot() " +
          '(and use a store that can broadcast: postgres, pglite, redis or memory).',
      );
    }
    return new Observable<WorkflowRunEvent>((subscriber) => {
      const listener = (event: WorkflowRunEvent) => {
        if (filter.runId !== undefined && event.runId !== filter.runId) return;
        if (filter.workflow !== undefined && event.workflow !== filter.workflow) return;
        if (types && !types.has(event.type)) return;
        subscriber.next(event);
      };
      return scope === 'cluster' ? publisher.onCluster(listener) : publisher.onLocal(listener);
    });
  }
}
