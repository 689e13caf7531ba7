import type { ResolvedRetry } from './retry-policy.js';

/** One compiled step of a pipeline. */
export interface StepDefinition {
  name: string;
  /** Position in the pipeline (declaration order). */
  index: number;
  methodName: string;
  retry: ResolvedRetry;
  timeoutMs?: number;
  /** Longest silence between heartbeats of an attempt (see `StepOptions.heartbeatTimeout`). */
  heartbeatTimeoutMs?: number;
  /** Method of the same class that undoes this step. */
  compensate?: string;
}

/** A compiled workflow: its pipeline and the provider instance whose methods run. */
export interface WorkflowDefinition {
  name: string;
  version: number;
  className: string;
  /** The class (for `client.start(MyWorkflow, …)`). */
  type: Function;
  /** The singleton provider instance. */
  instance: object;
  steps: StepDefinition[];
  stepsByName: ReadonlyMap<string, StepDefinition>;
  /** `@Workflow({ concurrency })`, validated. */
  concurrency?: { limit: number; key?: (input: unknown) => string; scope: 'run' | 'step' };
  /** `@Workflow({ rateLimit })`, validated (`perMs` parsed). */
  rateLimit?: { limit: number; perMs: number; key?: (input: unknown) => string };
  /** `@Workflow({ priority })`, default 0. */
  priority: number;
}
