/**
 * Shared helpers of the behaviour tests in test/nest and test/engine (not a spec file).
 */
import { afterEach, expect } from '@jest/globals';
import type { INestApplicationContext, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  DurableExecutionModule,
  MemoryStore,
  WorkflowClient,
  type DurableExecutionOptions,
  type WorkflowStore,
} from '../../src/index.js';
import { bootApp, eventually, sleep } from '../support/workflows.js';

export { eventually, sleep };

export const silentLogger = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };

/** A MemoryStore that several apps can share: closing one app does not close it (nor drop the others' listeners). */
export class SharedMemoryStore extends MemoryStore {
  override async close(): Promise<void> {}
}

/**
 * Wraps a store so that the app using it can be "killed": every call then rejects as if the process were gone
 * (it renews nothing and writes nothing), while the underlying store keeps the state for the others.
 */
export function killableStore(store: WorkflowStore): { store: WorkflowStore; kill(): void; revive(): void } {
  let dead = false;
  const proxy = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      if (prop === 'close' || prop === 'subscribe' || prop === 'init') return (value as (...a: unknown[]) => unknown).bind(target);
      return (...args: unknown[]) =>
        dead ? Promise.reject(new Error('process is dead')) : (value as (...a: unknown[]) => unknown).apply(target, args);
    },
  });
  return {
    store: proxy,
    kill: () => {
      dead = true;
    },
    revive: () => {
      dead = false;
    },
  };
}

/** A promise the test opens. */
export interface Gate {
  promise: Promise<void>;
  open(): void;
  opened: boolean;
}
export function gate(): Gate {
  let open!: () => void;
  const g = { opened: false } as Gate;
  g.promise = new Promise<void>((resolve) => (open = resolve));
  g.open = () => {
    g.opened = true;
    open();
  };
  return g;
}

/** Resolves when the signal aborts, or after `ms`. */
export function untilAborted(signal: AbortSignal, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

type ErrorClass<E> = abstract new (...args: never[]) => E;

/** Awaits a rejection (or a throw), checks its class and code, and returns the error. */
export async function rejection<E extends Error>(
  action: Promise<unknown> | (() => unknown),
  cls: ErrorClass<E>,
  code?: string,
): Promise<E> {
  let error: unknown;
  let threw = false;
  try {
    await (typeof action === 'function' ? action() : action);
  } catch (e) {
    error = e;
    threw = true;
  }
  if (!threw) throw new Error(`expected a ${cls.name}, but nothing was thrown`);
  if (!(error instanceof cls)) {
    throw new Error(`expected a ${cls.name}, got ${(error as Error)?.name}: ${(error as Error)?.message}`);
  }
  if (code !== undefined) expect((error as unknown as { code: string }).code).toBe(code);
  return error as E;
}

/** Worker defaults that suit tests; `options.worker` is merged over them. */
export function testOptions(options: DurableExecutionOptions = {}): DurableExecutionOptions {
  return { ...options, worker: { pollIntervalMs: 50, shutdownGraceMs: 1_000, ...options.worker } };
}

/**
 * Boots apps and closes every one of them after each test (most recent first).
 * Call once at the top of a describe block.
 */
export function useApps() {
  const apps: INestApplicationContext[] = [];
  afterEach(async () => {
    while (apps.length > 0) {
      const app = apps.pop()!;
      await app.close().catch(() => undefined);
    }
  });
  return {
    async boot(providers: Type[], options: DurableExecutionOptions = {}, extra: { providers?: unknown[] } = {}) {
      const booted = await bootApp(providers, testOptions(options), extra);
      apps.push(booted.app);
      return booted;
    },
    /** Boots a module definition; returns the init promise's outcome (for bootstrap failures). */
    async bootModule(imports: unknown[], providers: unknown[] = []) {
      const module = await Test.createTestingModule({ imports: imports as Type[], providers: providers as Type[] })
        .setLogger(silentLogger)
        .compile();
      apps.push(module);
      const app = await module.init();
      return { app, client: app.get(WorkflowClient) };
    },
    track(app: INestApplicationContext) {
      apps.push(app);
    },
    /** Removes an app from the list (the test closed it itself). */
    forget(app: INestApplicationContext) {
      const i = apps.indexOf(app);
      if (i >= 0) apps.splice(i, 1);
    },
  };
}

/** Compiles and initialises a testing module with these providers; returns what bootstrap threw (closing what was created). */
export async function bootError(providers: unknown[], options: DurableExecutionOptions = {}): Promise<unknown> {
  try {
    const module = await Test.createTestingModule({
      imports: [DurableExecutionModule.forRoot(testOptions(options))],
      providers: providers as Type[],
    })
      .setLogger(silentLogger)
      .compile();
    try {
      await module.init();
    } finally {
      await module.close().catch(() => undefined);
    }
  } catch (error) {
    return error;
  }
  throw new Error('bootstrap did not fail');
}

/** The module's providers for a forRoot with test worker defaults. */
export function moduleFor(options: DurableExecutionOptions = {}) {
  return DurableExecutionModule.forRoot(testOptions(options));
}
