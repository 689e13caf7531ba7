import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { WorkflowRegistry } from '../definition/workflow.registry.js';
import { WorkflowEngine } from '../engine/workflow-engine.js';
import type { WorkflowStore } from '../store/workflow-store.interface.js';
import { WORKFLOW_ENGINE, WORKFLOW_STORE } from './durable-execution.constants.js';
import { WorkflowExplorer, type EventHandlerBinding } from './workflow.explorer.js';
import { describeError, errorStack } from '../engine/error-text.js';
import type { WorkflowRunEvent } from '../engine/run-history.js';
import type { CompatibilityReport } from '../engine/compatibility.js';
import { ConfigurationError, WorkflowDefinitionError } from '../errors/errors.js';
import { DURABLE_EXECUTION_OPTIONS } from './durable-execution.module-definition.js';
import { declaredSchedules, rememberDeclaredSchedules, type DeclaredSchedule } from '../definition/schedule-declarations.js';
import { Scheduler } from '../engine/scheduler.js';
import { scheduleStoreOf } from '../store/schedules/schedule-store.factory.js';
import { reconcileSchedules } from './schedule.reconciler.js';
import type { DurableExecutionOptions } from './durable-execution-options.interface.js';

/**
 * Set by the `cairn-check` command: the app boots only to check compatibility (no worker, no bootstrap check of its
 * own: the command runs it and prints the report).
 */
export const CHECK_ONLY_ENV = 'CAIRN_CHECK_ONLY';

/**
 * Lifecycle: compiles workflows in `onModuleInit` (bad definitions fail bootstrap), starts the worker in
 * `onApplicationBootstrap`, drains and closes the store in `beforeApplicationShutdown`.
 */
@Injectable()
export class DurableExecutionOrchestrator implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('DurableExecution');
  private readonly unbind: (() => void)[] = [];
  private declared: DeclaredSchedule[] = [];
  private scheduler?: Scheduler;

  constructor(
    private readonly explorer: WorkflowExplorer,
    private readonly registry: WorkflowRegistry,
    @Inject(WORKFLOW_ENGINE) private readonly engine: WorkflowEngine,
    @Inject(WORKFLOW_STORE) private readonly store: WorkflowStore,
    @Inject(DURABLE_EXECUTION_OPTIONS) private readonly options: DurableExecutionOptions,
  ) {
    const mode = options?.versioning?.onIncompatible;
    if (mode !== undefined && mode !== 'warn' && mode !== 'fail') {
      throw new ConfigurationError(`DurableExecutionModule: versioning.onIncompatible must be 'warn' or 'fail' (got ${JSON.stringify(mode)}).`);
    }
  }

  onModuleInit(): void {
    for (const definition of this.explorer.explore()) this.registry.register(definition);
    this.registry.markReady();
    this.declared = declaredSchedules(this.registry.all(), (value, what) => this.engine.serializer.serialize(value, what));
    rememberDeclaredSchedules(this.registry, this.declared);
    for (const binding of this.explorer.exploreEventHandlers()) this.unbind.push(this.bind(binding));
  }

  /** Calls an `@OnWorkflowEvent` method with each matching local event; its errors are logged, never thrown. */
  private bind({ instance, methodName, className, metadata }: EventHandlerBinding): () => void {
    const types = new Set<string>(metadata.types);
    const method = (instance as Record<string, (event: WorkflowRunEvent) => unknown>)[methodName];
    const failed = (event: WorkflowRunEvent, error: unknown) =>
      this.logger.error(`@OnWorkflowEvent ${className}.${methodName} failed on ${event.type} of run "${event.runId}": ${describeError(error)}`, errorStack(error));
    return this.engine.events.onLocal((event) => {
      if (!types.has(event.type) || (metadata.workflow !== undefined && metadata.workflow !== event.workflow)) return;
      try {
        const result = method.call(instance, event);
        if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(undefined, (error: unknown) => failed(event, error));
      } catch (error) {
        failed(event, error);
      }
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    if (process.env[CHECK_ONLY_ENV] === '1') return;
    await this.checkCompatibility();
    await this.startSchedules();
    await this.engine.start();
    if (this.scheduler) this.scheduler.start();
    const names = this.registry.names();
    this.logger.log(
      `Store "${this.store.name}", ${names.length} workflow(s)${names.length ? `: ${names.join(', ')}` : ''}; worker ${this.engine.isWorker ? 'enabled' : 'disabled'} (instance ${this.engine.instanceId})`,
    );
  }

  /** The bootstrap check of the runs in flight: `versioning.onIncompatible` says whether a bad report stops bootstrap. */
  private async checkCompatibility(): Promise<void> {
    const fail = this.options?.versioning?.onIncompatible === 'fail';
    let report: CompatibilityReport;
    try {
      report = await this.engine.checkCompatibility();
    } catch (error) {
      if (fail) throw error;
      this.logger.warn(`Could not check the runs in flight against the workflow definitions: ${describeError(error)}`);
      return;
    }
    if (report.ok) return;
    const text = describeReport(report);
    if (fail) throw new WorkflowDefinitionError(`${text}\nFix the definitions (or set versioning.onIncompatible: 'warn') before deploying.`);
    this.logger.warn(text);
  }

  /**
   * Reconciles the stored decorator schedules with the code, and prepares this instance's scheduler (a worker fires
   * schedules; an instance with `worker.enabled: false` does not).
   */
  private async startSchedules(): Promise<void> {
    const store = scheduleStoreOf(this.engine.store);
    if (!store) {
      if (this.declared.length === 0) return;
      const first = this.declared[0];
      throw new WorkflowDefinitionError(
        `@Schedule "${first.id}" of ${first.className}: the "${this.store.name}" store does not keep schedules. Use the memory, pglite, ` +
          'postgres or redis store, or give the custom store a `schedules` property implementing ScheduleStore.',
      );
    }
    await reconcileSchedules(store, this.declared, this.registry.names(), this.engine.clock.now(), this.logger);
    if (this.engine.isWorker) {
      this.scheduler = new Scheduler(this.engine, this.registry, store, new Map(this.declared.map((d) => [d.id, d])));
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.scheduler?.stop();
    await this.engine.stop();
    for (const unbind of this.unbind.splice(0)) unbind();
    await this.store.close();
  }
}

/** A compatibility report as text, for logs and the `cairn-check` command. */
export function describeReport(report: CompatibilityReport): string {
  const lines = [`Compatibility of ${report.runsChecked} run(s) in flight with this app's workflows: ${report.ok ? 'ok' : 'NOT ok'}.`];
  for (const run of report.incompatible) lines.push(`  incompatible: run "${run.runId}" (${run.workflow} v${run.version}): ${run.reason}`);
  for (const v of report.unclaimable) {
    lines.push(`  unclaimable: ${v.runs} live run(s) of ${v.workflow} v${v.version}, a version this app does not register (keep that version's class registered until they drain)`);
  }
  return lines.join('\n');
}
