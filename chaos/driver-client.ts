/**
 * What the soak's driver asks of the store: the calls it makes on a `WorkflowClient`, either on one of its own (the
 * PostgreSQL and Redis soaks: a worker-less app in the soak process) or, on PGlite, through the worker process, the only
 * process that can open the data folder: a request/response channel over the Node IPC pipe of that child process
 * (`worker.ts` answers it). See docs/chaos.md, "PGlite".
 */
import type { ChildProcess } from 'node:child_process';
import { InvalidRunStateError, RunNotActiveError, RunNotFoundError, type ListRunsFilter, type RunInfo, type StartOptions, type WorkflowClient } from '../src/index.js';

export interface DriverClient {
  start(workflow: string, input: unknown, options: StartOptions): Promise<{ runId: string }>;
  describe(runId: string): Promise<RunInfo | undefined>;
  cancel(runId: string): Promise<void>;
  pause(runId: string): Promise<void>;
  resume(runId: string): Promise<void>;
  signal(runId: string, name: string, payload: unknown, options: { id: string }): Promise<void>;
  retry(runId: string): Promise<void>;
  list(filter: ListRunsFilter): Promise<{ runs: RunInfo[]; cursor?: string }>;
  pauseSchedule(id: string): Promise<void>;
  resumeSchedule(id: string): Promise<void>;
  /** Damages a sleeping, unleased run's engine state in the store (poison.ts); resolves whether it did. */
  poison(runId: string): Promise<boolean>;
}

/** The operations the worker answers on its IPC channel, on its own app's client. */
export function clientOps(client: WorkflowClient, poison: (runId: string) => Promise<boolean>): Record<string, (...args: never[]) => Promise<unknown>> {
  return {
    start: async (workflow: string, input: unknown, options: StartOptions) => ({ runId: (await client.start(workflow, input, options)).runId }),
    describe: (runId: string) => client.describe(runId),
    cancel: (runId: string) => client.cancel(runId),
    pause: (runId: string) => client.pause(runId),
    resume: (runId: string) => client.resume(runId),
    signal: (runId: string, name: string, payload: unknown, options: { id: string }) => client.signal(runId, name, payload, options),
    retry: (runId: string) => client.retry(runId).then(() => undefined),
    list: (filter: ListRunsFilter) => client.list(filter),
    pauseSchedule: (id: string) => client.schedules.pause(id).then(() => undefined),
    resumeSchedule: (id: string) => client.schedules.resume(id).then(() => undefined),
    poison,
  };
}

/** The driver on its own worker-less client (PostgreSQL, Redis). */
export function localDriver(client: WorkflowClient, poison: (runId: string) => Promise<boolean>): DriverClient {
  return clientOps(client, poison) as unknown as DriverClient;
}

export interface IpcRequest {
  id: number;
  op: string;
  args: unknown[];
}
export interface IpcResponse {
  id: number;
  ok: boolean;
  value?: unknown;
  name?: string;
  message?: string;
}

const KNOWN_ERRORS: Record<string, { prototype: Error }> = { RunNotActiveError, RunNotFoundError, InvalidRunStateError };

/**
 * The driver through the worker's IPC channel (PGlite). A call waits for a live worker (one is restarted after a
 * SIGKILL); a worker that is SIGSTOPped answers after its SIGCONT; one that dies with calls in flight fails them with a
 * plain `Error`, which the driver treats like a store error: retried, its outcome uncertain.
 */
export class IpcDriver implements DriverClient {
  private next = 1;
  private readonly pending = new Map<number, { child: ChildProcess; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly attached = new WeakSet<ChildProcess>();

  /** `current()`: the worker's process once it is ready (has printed READY), else undefined. */
  constructor(private readonly current: () => ChildProcess | undefined) {}

  private async child(): Promise<ChildProcess> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const c = this.current();
      if (c && c.connected && c.exitCode === null && c.signalCode === null) {
        if (!this.attached.has(c)) {
          this.attached.add(c);
          c.on('message', (m: IpcResponse) => {
            const p = this.pending.get(m.id);
            if (!p) return;
            this.pending.delete(m.id);
            if (m.ok) return p.resolve(m.value);
            const Known = KNOWN_ERRORS[m.name ?? ''];
            const error: Error = Known ? (Object.create(Known.prototype) as Error) : new Error();
            error.name = m.name ?? 'Error';
            error.message = m.message ?? '';
            p.reject(error);
          });
          c.once('exit', () => {
            for (const [id, p] of this.pending) {
              if (p.child !== c) continue;
              this.pending.delete(id);
              p.reject(new Error(`the worker (pid ${c.pid}) exited with the call in flight`));
            }
          });
        }
        return c;
      }
      if (Date.now() > deadline) throw new Error('no worker to reach the PGlite store through for 120 s');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async call<T>(op: string, ...args: unknown[]): Promise<T> {
    const c = await this.child();
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { child: c, resolve: resolve as (v: unknown) => void, reject });
      const req: IpcRequest = { id, op, args };
      try {
        c.send(req, (error) => {
          if (!error) return;
          this.pending.delete(id);
          reject(error);
        });
      } catch (error) {
        this.pending.delete(id);
        reject(error as Error);
      }
    });
  }

  start(workflow: string, input: unknown, options: StartOptions) {
    return this.call<{ runId: string }>('start', workflow, input, options);
  }
  describe(runId: string) {
    return this.call<RunInfo | undefined>('describe', runId);
  }
  cancel(runId: string) {
    return this.call<void>('cancel', runId);
  }
  pause(runId: string) {
    return this.call<void>('pause', runId);
  }
  resume(runId: string) {
    return this.call<void>('resume', runId);
  }
  signal(runId: string, name: string, payload: unknown, options: { id: string }) {
    return this.call<void>('signal', runId, name, payload, options);
  }
  retry(runId: string) {
    return this.call<void>('retry', runId);
  }
  list(filter: ListRunsFilter) {
    return this.call<{ runs: RunInfo[]; cursor?: string }>('list', filter);
  }
  pauseSchedule(id: string) {
    return this.call<void>('pauseSchedule', id);
  }
  resumeSchedule(id: string) {
    return this.call<void>('resumeSchedule', id);
  }
  poison(runId: string) {
    return this.call<boolean>('poison', runId);
  }
}
