import 'reflect-metadata';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Flow, MemoryStore, RetryPolicy, Step, Workflow, type StepContext } from '../../src/index.js';
import { compileWorkflow } from '../../src/definition/workflow.compiler.js';
import { WorkflowRegistry } from '../../src/definition/workflow.registry.js';
import { WorkflowEngine } from '../../src/engine/workflow-engine.js';

const quiet = { log() {}, warn() {}, error() {} };

function makeEngine(store: MemoryStore, types: Function[], instances: object[]) {
  const registry = new WorkflowRegistry();
  types.forEach((t, i) => registry.register(compileWorkflow(t, instances[i])));
  registry.markReady();
  const engine = new WorkflowEngine(store, registry, {
    workerEnabled: true,
    concurrency: 10,
    leaseMs: 30_000,
    pollIntervalMs: 60_000,
    shutdownGraceMs: 100,
    maxPayloadBytes: 1 << 20,
    maxTransitions: 100,
    maxRecoveries: 3,
    maxQueuedSignals: 10_000,
  }, quiet);
  return { engine, registry };
}

describe('engine on a fake clock', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: new Date("2026-01-01T00:00:00Z") });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('stores long retry delays as wake-up times and retries when they pass', async () => {
    const attempts: { attempt: number; at: number; key: string }[] = [];
    @Workflow('flaky')
    class Flaky {
      @Step({ retry: RetryPolicy.fixed(3, '10m') })
      call(_: unknown, ctx: StepContext) {
        attempts.push({ attempt: ctx.attempt, at: Date.now(), key: ctx.idempotencyKey });
        if (ctx.attempt < 3) throw new Error(`transient ${ctx.attempt}`);
        return 'ok';
      }
    }
    const store = new MemoryStore();
    const { engine, registry } = makeEngine(store, [Flaky], [new Flaky()]);
    await engine.start();
    const { runId } = await engine.startRun(registry.resolve('flaky'), null, { id: 'r1' });
    await jest.advanceTimersByTimeAsync(0);

    const afterFirst = (await store.getRun(runId))!;
    expect(afterFirst.status).toBe('running');
    expect(afterFirst.leaseToken).toBeUndefined(); // released: the wait is in the store, not in a timer alone
    expect(afterFirst.dueAt!.getTime()).toBe(Date.parse('2026-01-01T00:10:00Z'));
    expect(afterFirst.steps[0]).toMatchObject({ status: 'running', attempts: 1, error: 'Error: transient 1' });

    await jest.advanceTimersByTimeAsync(10 * 60_000);
    await jest.advanceTimersByTimeAsync(10 * 60_000);
    const done = (await store.getRun(runId))!;
    expect(done.status).toBe('completed');
    expect(done.steps[0]).toMatchObject({ status: 'completed', attempts: 3 });
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    expect(attempts[1].at - attempts[0].at).toBeGreaterThanOrEqual(10 * 60_000);
    expect(new Set(attempts.map((a) => a.key))).toEqual(new Set(['r1:call']));
    await engine.stop();
  });

  it('sleeps durably and resumes from the store after a restart', async () => {
    @Workflow('sleepy')
    class Sleepy {
      @Step() nap() {
        return Flow.sleep('2h', { napped: true });
      }
      @Step() wake(prev: { napped: boolean }) {
        return { ...prev, woke: Date.now() };
      }
    }
    const store = new MemoryStore();
    const first = makeEngine(store, [Sleepy], [new Sleepy()]);
    await first.engine.start();
    const { runId } = await first.engine.startRun(first.registry.resolve('sleepy'), null);
    await jest.advanceTimersByTimeAsync(0);
    const sleeping = (await store.getRun(runId))!;
    expect(sleeping.status).toBe('sleeping');
    expect(sleeping.currentStep).toBe('nap');
    await first.engine.stop(); // the process goes away; its timer with it

    const second = makeEngine(store, [Sleepy], [new Sleepy()]);
    await second.engine.start();
    await jest.advanceTimersByTimeAsync(60 * 60_000);
    expect((await store.getRun(runId))!.status).toBe('sleeping');
    await jest.advanceTimersByTimeAsync(60 * 60_000 + 60_000); // past the wake-up; the poll finds it
    const done = (await store.getRun(runId))!;
    expect(done.status).toBe('completed');
    const output = second.engine.serializer.deserialize<{ napped: boolean; woke: number }>(done.output);
    expect(output.napped).toBe(true);
    expect(output.woke).toBeGreaterThanOrEqual(Date.parse('2026-01-01T02:00:00Z'));
    await second.engine.stop();
  });

  it('times a signal wait out durably and compensates the waiting step', async () => {
    const undone: string[] = [];
    @Workflow('approval')
    class Approval {
      @Step({ compensate: 'undo' }) ask() {
        return Flow.waitForSignal('approve', { timeout: '1d', value: 'asked' });
      }
      undo(output: string) {
        undone.push(output);
      }
      @Step() after(payload: unknown) {
        return payload;
      }
    }
    const store = new MemoryStore();
    const { engine, registry } = makeEngine(store, [Approval], [new Approval()]);
    await engine.start();
    const { runId } = await engine.startRun(registry.resolve('approval'), null);
    await jest.advanceTimersByTimeAsync(0);
    expect((await store.getRun(runId))!.status).toBe('waiting');
    await jest.advanceTimersByTimeAsync(24 * 60 * 60_000 + 1_000);
    const run = (await store.getRun(runId))!;
    expect(run.status).toBe('compensated');
    expect(run.error).toMatchObject({ name: 'SignalTimeoutError', step: 'ask', phase: 'step' });
    expect(undone).toEqual(['asked']);
    await engine.stop();
  });
});
