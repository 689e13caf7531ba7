import { Test, type TestingModule } from '@nestjs/testing';
import type { INestApplicationContext, Type } from '@nestjs/common';
import { DurableExecutionModule, WorkflowClient, type DurableExecutionOptions } from '../../src/index.js';

/** Boots a Nest app context with the module and the given workflow providers. */
export async function bootApp(
  providers: Type[],
  options: DurableExecutionOptions = {},
  extra: { providers?: unknown[] } = {},
): Promise<{ app: INestApplicationContext; client: WorkflowClient; module: TestingModule }> {
  const module = await Test.createTestingModule({
    imports: [DurableExecutionModule.forRoot({ worker: { pollIntervalMs: 50, shutdownGraceMs: 1_000 }, ...options })],
    providers: [...providers, ...((extra.providers as Type[]) ?? [])],
  })
    .setLogger({ log() {}, warn() {}, error() {}, debug() {}, verbose() {} })
    .compile();
  const app = await module.init();
  app.enableShutdownHooks();
  return { app, client: app.get(WorkflowClient), module };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` returns a truthy value or the time is up. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await sleep(10);
  }
}
