/**
 * A worker process of the crash tests, run as a real child process:
 *
 *   node --import @swc-node/register/esm-register test/crash/worker-app.ts
 *
 * Environment:
 * - `CRASH_STORE`: `postgres` (with `DATABASE_URL`, `CRASH_SCHEMA`) or `redis` (with `REDIS_URL`, `CRASH_KEY_PREFIX`);
 * - `CRASH_LEASE_MS`, `CRASH_POLL_MS`, `CRASH_CONCURRENCY`: the worker options; `CRASH_WORKER=0` disables the worker;
 * - `CRASH_START=N` (+ `CRASH_RUN_PREFIX`): start N runs with ids `${prefix}${i}` once bootstrapped;
 * - `CRASH_LEDGER` and the step settings: see crash-workflow.ts;
 * - `CRASH_KEEPALIVE=0`: do not keep the process alive by a timer of its own (see below);
 * - `CRASH_OTEL_SPANS=<file>`: register OpenTelemetry with spans written to that file (otel-file-exporter.ts);
 * - `CRASH_VERSIONS=1,2`: also register those versions of the versioned workflow (versioned-workflow.ts);
 * - `CRASH_CHILDREN=1`: also register the fan-out workflows (children-workflow.ts); `CRASH_CHILD_RECHECK_MS`: the
 *   Redis store's `childRecheckMs`; `CRASH_KILL_AT`: a point of a store write where the process SIGKILLs itself
 *   (children-kill-points.ts).
 *
 * - `CRASH_FLOW=1`: also register the flow-control workflows (flow-workflow.ts); `CRASH_FLOW_HANG=<run id>`: that
 *   run's `flow-slot` step hangs in this process; `CRASH_FLOW_TICK=1`: register the every-second schedule `flow-tick`.
 *
 * It registers the crash workflow and the heartbeat workflow (heartbeat-workflow.ts).
 *
 * Prints `READY <pid>` once bootstrapped, then `STARTED <n>` after starting its runs. SIGTERM closes the app.
 */
import 'reflect-metadata';
import { Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DurableExecutionModule, WORKFLOW_STORE, WorkflowClient, type StoreOptions, type WorkflowStore } from '../../src/index.js';
import { CRASH_WORKFLOW, CrashWorkflow } from './crash-workflow.js';
import { HeartbeatWorkflow } from './heartbeat-workflow.js';
import { versionedFromEnv } from './versioned-workflow.js';
import { FanoutChild, FanoutParent } from './children-workflow.js';
import { installKillPoint } from './children-kill-points.js';
import { FLOW_WORKFLOWS, FlowTick } from './flow-workflow.js';

function int(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer (got ${raw})`);
  return n;
}

function storeFromEnv(): StoreOptions {
  switch (process.env.CRASH_STORE) {
    case 'postgres':
      if (!process.env.DATABASE_URL || !process.env.CRASH_SCHEMA) throw new Error('CRASH_STORE=postgres needs DATABASE_URL and CRASH_SCHEMA');
      return { type: 'postgres', url: process.env.DATABASE_URL, schema: process.env.CRASH_SCHEMA };
    case 'redis':
      if (!process.env.REDIS_URL || !process.env.CRASH_KEY_PREFIX) throw new Error('CRASH_STORE=redis needs REDIS_URL and CRASH_KEY_PREFIX');
      return {
        type: 'redis',
        url: process.env.REDIS_URL,
        keyPrefix: process.env.CRASH_KEY_PREFIX,
        // NOTE: a RedisStore option the module's StoreOptions type does not list; createStore passes it through.
        ...(process.env.CRASH_CHILD_RECHECK_MS ? ({ childRecheckMs: int('CRASH_CHILD_RECHECK_MS', 30_000) } as object) : {}),
      };
    default:
      throw new Error(`CRASH_STORE must be postgres or redis (got ${process.env.CRASH_STORE})`);
  }
}

const logger = new Logger(`CrashWorker ${process.pid}`);

async function main(): Promise<void> {
  // NOTE: before the module is created: the engine takes the global meter and tracer provider when it is built.
  if (process.env.CRASH_OTEL_SPANS) (await import('./otel-file-exporter.js')).registerFileTracing(process.env.CRASH_OTEL_SPANS);
  @Module({
    imports: [
      DurableExecutionModule.forRoot({
        store: storeFromEnv(),
        worker: {
          enabled: process.env.CRASH_WORKER !== '0',
          leaseMs: int('CRASH_LEASE_MS', 1_500),
          pollIntervalMs: int('CRASH_POLL_MS', 100),
          concurrency: int('CRASH_CONCURRENCY', 10),
          shutdownGraceMs: int('CRASH_SHUTDOWN_GRACE_MS', 1_000),
        },
      }),
    ],
    providers: [CrashWorkflow, HeartbeatWorkflow, ...(versionedFromEnv() as never[]), ...(process.env.CRASH_CHILDREN === '1' ? [FanoutParent, FanoutChild] : []), ...(process.env.CRASH_FLOW === '1' ? FLOW_WORKFLOWS : []), ...(process.env.CRASH_FLOW_TICK === '1' ? [FlowTick] : [])],
  })
  class CrashWorkerModule {}

  const app = await NestFactory.createApplicationContext(CrashWorkerModule, {
    logger: ['log', 'warn', 'error'],
    abortOnError: false,
  });
  let closing = false;
  process.once('SIGTERM', () => {
    if (closing) return;
    closing = true;
    logger.log('SIGTERM: closing the app');
    app
      .close()
      .then(() => {
        process.stdout.write(`CLOSED ${process.pid}\n`);
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error(`app.close() failed: ${String(error)}`);
        process.exit(1);
      });
  });
  // NOTE: the engine's timers are unref()'d, so a worker-only application context stays up only while the store holds
  // a socket open: with Postgres, a server restart closes them all and the process exits with code 0 (reported as a
  // library bug; see the report of the crash tests). A real app usually has an HTTP server that keeps it alive; this
  // interval plays that part. CRASH_KEEPALIVE=0 leaves it out.
  const keepAlive = process.env.CRASH_KEEPALIVE === '0' ? undefined : setInterval(() => undefined, 60_000);
  process.once('exit', () => clearInterval(keepAlive));
  if (process.env.CRASH_KILL_AT) installKillPoint(app.get<WorkflowStore>(WORKFLOW_STORE), process.env.CRASH_KILL_AT);
  process.stdout.write(`READY ${process.pid}\n`);

  const count = int('CRASH_START', 0);
  if (count > 0) {
    const client = app.get(WorkflowClient);
    const prefix = process.env.CRASH_RUN_PREFIX ?? `run-${process.pid}-`;
    for (let i = 0; i < count; i++) await client.start(CRASH_WORKFLOW, { i }, { id: `${prefix}${i}` });
    process.stdout.write(`STARTED ${count}\n`);
  }
}

main().catch((error: unknown) => {
  logger.error(`worker failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
