import { afterEach, describe, expect, it } from '@jest/globals';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import type { EngineHealth, EngineHealthSource } from '../../src/engine/engine-health.interface.js';
import type { WorkflowEngine } from '../../src/engine/workflow-engine.js';
import { WORKFLOW_ENGINE } from '../../src/nest/durable-execution.constants.js';
import { DurableExecutionHealthIndicator } from '../../src/nest/durable-execution.health.js';
import { MemoryStore, type WorkflowStore } from '../../src/index.js';
import { killableStore, moduleFor, silentLogger } from './helpers.js';

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly workflows: DurableExecutionHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.workflows.isHealthy('workflows')]);
  }
}


describe('DurableExecutionHealthIndicator in an app with @nestjs/terminus', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function boot() {
    const killable = killableStore(new MemoryStore());
    const module = await Test.createTestingModule({
      imports: [moduleFor({ store: killable.store }), TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController],
      providers: [DurableExecutionHealthIndicator],
    })
      .setLogger(silentLogger)
      .compile();
    app = module.createNestApplication({ logger: false });
    await app.init();
    return { killable, health: app.get(HealthCheckService), indicator: app.get(DurableExecutionHealthIndicator) };
  }

  it('is up while the store answers and the worker runs', async () => {
    const { health, indicator } = await boot();
    const result = await health.check([() => indicator.isHealthy('workflows')]);
    expect(result.status).toBe('ok');
    expect(result.info?.workflows).toMatchObject({ status: 'up', store: 'up', worker: 'up', inFlight: 0 });

    const res = await request(app!.getHttpServer()).get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', info: { workflows: { status: 'up' } } });
  });

  it('is down, and the endpoint answers 503, when the store fails', async () => {
    const { health, indicator, killable } = await boot();
    killable.kill();
    const error = await health.check([() => indicator.isHealthy('workflows')]).then(
      () => undefined,
      (e: unknown) => e as { getStatus(): number; getResponse(): unknown },
    );
    expect(error?.getStatus()).toBe(503);
    expect(error?.getResponse()).toMatchObject({
      status: 'error',
      error: { workflows: { status: 'down', store: 'down', message: 'store: Error: process is dead' } },
    });

    const res = await request(app!.getHttpServer()).get('/health');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'error', error: { workflows: { status: 'down', store: 'down' } } });
    killable.revive();
  });
});

describe('DurableExecutionHealthIndicator checks', () => {
  const healthy: EngineHealth = { workerEnabled: true, running: true, lastPollAt: new Date(), inFlight: 2, concurrency: 10 };

  function indicatorWith(health: Partial<EngineHealth>, store: Partial<WorkflowStore> = {}) {
    const fakeStore = { name: 'fake', getRun: async () => undefined, ...store } as unknown as WorkflowStore;
    const engine: EngineHealthSource = { health: () => ({ ...healthy, ...health }) };
    return new DurableExecutionHealthIndicator(fakeStore, engine);
  }

  it('reports the worker, its load and its claim lag under the given key', async () => {
    const result = await indicatorWith({ claimLagMs: 40 }).isHealthy('durable');
    expect(result).toEqual({
      durable: { status: 'up', store: 'up', worker: 'up', inFlight: 2, concurrency: 10, lastPollAgeMs: expect.any(Number), claimLagMs: 40 },
    });
  });

  it('is down when the store does not answer in time', async () => {
    const hanging = indicatorWith({}, { getRun: () => new Promise<undefined>(() => undefined) });
    const { workflows } = await hanging.isHealthy('workflows', { timeoutMs: 20 });
    expect(workflows).toMatchObject({ status: 'down', store: 'down', message: 'store: no answer from the fake store in 20 ms' });
  });

  it('is down when a store method throws synchronously', async () => {
    const throwing = indicatorWith({}, {
      getRun: () => {
        throw new Error('closed');
      },
    });
    expect((await throwing.isHealthy()).workflows).toMatchObject({ status: 'down', message: 'store: Error: closed' });
  });

  it('is down when the worker stopped polling, or is not running', async () => {
    const stale = await indicatorWith({ lastPollAt: new Date(Date.now() - 60_000) }).isHealthy('workflows', { maxPollAgeMs: 30_000 });
    expect(stale.workflows).toMatchObject({ status: 'down', store: 'up', worker: 'down' });
    expect(stale.workflows.message).toMatch(/^worker: last poll ended \d+ ms ago \(max 30000 ms\)$/);

    const stopped = await indicatorWith({ running: false }).isHealthy();
    expect(stopped.workflows).toMatchObject({ status: 'down', worker: 'down', message: 'worker: not running (not started yet, or shutting down)' });
  });

  it('is up without a worker (a client-only instance), and before the first poll', async () => {
    const clientOnly = await indicatorWith({ workerEnabled: false, running: false, lastPollAt: undefined }).isHealthy();
    expect(clientOnly.workflows).toMatchObject({ status: 'up', worker: 'disabled' });
    const starting = await indicatorWith({ lastPollAt: undefined }).isHealthy();
    expect(starting.workflows).toMatchObject({ status: 'up', worker: 'up' });
    expect(starting.workflows.lastPollAgeMs).toBeUndefined();
  });

  it('judges the claim lag only against maxClaimLagMs', async () => {
    const lagging = indicatorWith({ claimLagMs: 90_000 });
    expect((await lagging.isHealthy()).workflows.status).toBe('up');
    const judged = await lagging.isHealthy('workflows', { maxClaimLagMs: 60_000 });
    expect(judged.workflows).toMatchObject({ status: 'down', worker: 'up', message: 'claim lag: 90000 ms (max 60000 ms)' });
  });
});
