/**
 * A worker process of the chaos soak: `node --import @swc-node/register/esm-register chaos/worker.ts`.
 *
 * Environment: `CHAOS_STORE` (postgres | redis | pglite), `CHAOS_URL` (the store as this worker reaches it: through the
 * fault proxy), `CHAOS_NAMESPACE` (Postgres schema, Redis key prefix or PGlite folder), `CHAOS_LEDGER`,
 * `CHAOS_MARKERS`, `CHAOS_INSTANCE`, `CHAOS_LEASE_MS`, `CHAOS_POLL_MS`, `CHAOS_CONCURRENCY`.
 * Prints `READY <pid>` once bootstrapped. SIGTERM closes the app.
 *
 * Spawned with an IPC channel (the PGlite soak: only this process can open the data folder), it answers the driver's
 * calls on it (driver-client.ts): `{ id, op, args }` → `{ id, ok, value }` or `{ id, ok: false, name, message }`.
 */
import 'reflect-metadata';
import { Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DurableExecutionModule, WORKFLOW_STORE, WorkflowClient } from '../src/index.js';
import { clientOps, type IpcRequest, type IpcResponse } from './driver-client.js';
import { poisonInProcess } from './poison.js';
import { chaosStoreOptions } from './store-options.js';
import { CHAOS_WORKFLOWS } from './workflows.js';

const int = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const logger = new Logger(`ChaosWorker ${process.pid}`);

async function main(): Promise<void> {
  @Module({
    imports: [
      DurableExecutionModule.forRoot({
        store: chaosStoreOptions(process.env.CHAOS_STORE ?? '', process.env.CHAOS_URL ?? '', process.env.CHAOS_NAMESPACE ?? ''),
        worker: {
          leaseMs: int('CHAOS_LEASE_MS', 2_000),
          pollIntervalMs: int('CHAOS_POLL_MS', 200),
          concurrency: int('CHAOS_CONCURRENCY', 50),
          shutdownGraceMs: 1_000,
          ...(process.env.CHAOS_INSTANCE ? { instanceId: process.env.CHAOS_INSTANCE } : {}),
        },
        // NOTE: the soak injects more crashes per run than production would see; keep the crash-loop guard out of it.
        maxRecoveries: 1_000,
      }),
    ],
    providers: CHAOS_WORKFLOWS,
  })
  class ChaosWorkerModule {}

  const app = await NestFactory.createApplicationContext(ChaosWorkerModule, { logger: ['warn', 'error'], abortOnError: false });
  process.once('SIGTERM', () => {
    app
      .close()
      .then(() => process.exit(0))
      .catch(() => process.exit(1));
  });
  if (process.send) {
    const store: unknown = app.get(WORKFLOW_STORE);
    const ops = clientOps(app.get(WorkflowClient), (runId) => poisonInProcess(store, runId));
    process.on('message', (m: IpcRequest) => {
      const op = ops[m.op] as ((...args: unknown[]) => Promise<unknown>) | undefined;
      const reply = (r: IpcResponse) => process.send?.(r, undefined, undefined, () => undefined);
      if (!op) return reply({ id: m.id, ok: false, name: 'Error', message: `unknown op ${m.op}` });
      op(...m.args).then(
        (value) => reply({ id: m.id, ok: true, value }),
        (error: unknown) => reply({ id: m.id, ok: false, name: (error as Error)?.name ?? 'Error', message: (error as Error)?.message ?? String(error) }),
      );
    });
  }
  // NOTE: the engine's timers are unref()'d; this keeps the process up while the store's sockets are all gone.
  setInterval(() => undefined, 60_000);
  process.stdout.write(`READY ${process.pid}\n`);
}

main().catch((error: unknown) => {
  logger.error(`worker failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
