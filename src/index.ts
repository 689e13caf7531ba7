export { DurableExecutionModule } from './nest/durable-execution.module.js';
export type { DurableExecutionOptions, StoreOptions, CustomStore } from './nest/durable-execution-options.interface.js';
export { WORKFLOW_STORE, WORKFLOW_ENGINE } from './nest/durable-execution.constants.js';
export { DurableExecutionExceptionFilter, httpStatusOf } from './nest/durable-execution.exception-filter.js';
export { Workflow, type WorkflowOptions } from './decorators/workflow.decorator.js';
export { Step, type StepOptions } from './decorators/step.decorator.js';
export { RetryPolicy, type RetryOptions } from './definition/retry-policy.js';
export { Flow, type FlowDirective, type ChildDirective, type ChildResult, type OnParentEnd, type WorkflowRefLike } from './engine/flow.js';
export { RUN_EVENT_TYPES, type RunEvent, type RunEventType, type WorkflowRunEvent } from './engine/run-history.js';
export { WorkflowEvents, type WorkflowEventFilter } from './nest/workflow-events.js';
export { OnWorkflowEvent } from './decorators/on-workflow-event.decorator.js';
export {
  DurableExecutionHealthIndicator,
  type DurableExecutionHealthOptions,
  type DurableExecutionHealthDetails,
  type DurableExecutionHealthResult,
} from './nest/durable-execution.health.js';
export type { TelemetryOptions } from './observability/instrumentation.interface.js';
export type { StepContext, CompensationContext, StepLogger } from './engine/step-context.interface.js';
export { WorkflowClient } from './client/workflow-client.js';
export type { RunInfo, StepInfo, StartOptions, ListRunsFilter, WorkflowHandle } from './client/run-info.interface.js';
export {
  WorkflowTypes,
  type WorkflowTypesMarker,
  type WorkflowInput,
  type WorkflowOutput,
  type WorkflowIO,
  type StepOutput,
  type DataSourceLike,
  type EntityManagerLike,
  type RedisClientLike,
} from './client/workflow-types.js';
export * from './errors/index.js';
export type {
  WorkflowStore,
  RunStatus,
  StepStatus,
  StoredRun,
  StoredStep,
  ClaimedRun,
  NewRun,
  RunPatch,
  CommitResult,
  RenewResult,
  TakeSignalResult,
  ControlRequest,
  ControlResult,
  ControlOutcome,
  CreateRunOptions,
  CreateRunResult,
  LeaseRequest,
  ListRunsQuery,
  StoreEvent,
  DueSpec,
  StoredRunEvent,
  ListEventsQuery,
  WorkflowRef,
  CountRunsQuery,
  QueuedSignal,
  ChildrenState,
  ChildrenPatch,
  NewChildRun,
  RunOutcome,
  SendSignalOptions,
  LiveRunGroup,
} from './store/workflow-store.interface.js';
export { RUN_HISTORY_LIMIT, PUBLISH_MAX_BYTES } from './store/workflow-store.interface.js';
export { MemoryStore } from './store/memory/memory.store.js';
// Stores: the classes only reference their drivers' types; a driver is loaded when a store of that kind is created.
export { PostgresStore, type PostgresGroupCommitOptions, type PostgresStoreOptions } from './store/postgres/postgres.store.js';
export { createCairnSchemaMigration, CairnSchemaMigration, type CairnMigrationOptions } from './store/postgres/postgres.migration.js';
export { RedisStore, type RedisStoreOptions } from './store/redis/redis.store.js';
export { DurableExecutionTestingModule } from './testing/durable-execution-testing.module.js';
export { WorkflowTestClock } from './testing/workflow-test-clock.js';
export type { PayloadCodec } from './codec/payload-codec.interface.js';
export { AesGcmCodec, type AesGcmCodecOptions } from './codec/aes-gcm.codec.js';
export { CodecStore } from './codec/codec.store.js';
export {
  DurableExecutionDashboardModule,
  type DurableExecutionDashboardOptions,
  type RedactionContext,
  type RedactedField,
  type ValueNode,
} from './dashboard/index.js';
export type { CompatibilityReport } from './engine/compatibility.js';
// Schedules (DESIGN §3.3)
export { Schedule } from './decorators/schedule.decorator.js';
export type { ScheduleSpec, ScheduleOverlap, ScheduleCatchUp } from './definition/schedule-spec.js';
export { MAX_CATCH_UP_PER_PASS } from './definition/schedule-spec.js';
export { ScheduleClient, type ScheduleInfo, type ScheduleCreateSpec, type ScheduleUpdate } from './client/schedule-client.js';
export type { ScheduleStore, StoredSchedule, NewSchedule, SchedulePatch, ScheduleSource } from './store/schedule-store.interface.js';
