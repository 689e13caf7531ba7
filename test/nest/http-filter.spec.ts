/**
 * DurableExecutionExceptionFilter: the library's errors as HTTP statuses, through a real HTTP server on each adapter.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { Body, Controller, Get, Module, Param, Post, type INestApplication } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import {
  DurableExecutionExceptionFilter,
  Flow,
  Step,
  Workflow,
  WorkflowClient,
  httpStatusOf,
  RunNotFoundError,
  ScheduleNotFoundError,
  ChildWorkflowFailedError,
  StoreError,
} from '../../src/index.js';
import { moduleFor, silentLogger } from './helpers.js';

@Workflow('http-wait')
class Waits {
  @Step() wait() {
    return Flow.waitForSignal('go');
  }
  @Step() done(payload: unknown) {
    return payload;
  }
}

@Controller('runs')
class RunsController {
  constructor(private readonly client: WorkflowClient) {}
  @Post(':id')
  async start(@Param('id') id: string, @Body() body: { conflict?: 'fail' }) {
    const handle = await this.client.start(Waits, body, { id, conflictPolicy: body.conflict });
    return { runId: handle.runId };
  }
  @Post(':id/signal')
  async signal(@Param('id') id: string, @Body() body: { payload?: unknown; name?: string }) {
    await this.client.signal(id, body.name ?? 'go', body.payload);
    return { ok: true };
  }
  @Post(':id/retry')
  async retry(@Param('id') id: string) {
    await this.client.retry(id);
    return { ok: true };
  }
  @Get('boom')
  boom() {
    throw new StoreError('the store is down');
  }
}

@Module({
  imports: [moduleFor({ maxPayloadBytes: 200 })],
  controllers: [RunsController],
  providers: [Waits, { provide: APP_FILTER, useClass: DurableExecutionExceptionFilter }],
})
class HttpModule {}

describe('httpStatusOf', () => {
  it('maps client errors and leaves server errors alone', () => {
    expect(httpStatusOf(new RunNotFoundError('x'))).toBe(404);
    expect(httpStatusOf(new ScheduleNotFoundError('nightly'))).toBe(404);
    expect(httpStatusOf(new ChildWorkflowFailedError('c', { name: 'E', message: 'm' }))).toBeUndefined();
    expect(httpStatusOf(new StoreError('down'))).toBeUndefined();
  });
});

const adapters: [string, () => Promise<INestApplication>][] = [
  [
    'Express',
    async () => {
      const module = await Test.createTestingModule({ imports: [HttpModule] }).setLogger(silentLogger).compile();
      const app = module.createNestApplication({ logger: false });
      await app.init();
      return app;
    },
  ],
  [
    'Fastify',
    async () => {
      const module = await Test.createTestingModule({ imports: [HttpModule] }).setLogger(silentLogger).compile();
      const app = module.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
      await app.init();
      await app.getHttpAdapter().getInstance().ready();
      return app;
    },
  ],
];

describe.each(adapters)('DurableExecutionExceptionFilter on %s', (_name, create) => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('answers 404, 409, 400 and 413 with a JSON body naming the error, and 500 for the rest', async () => {
    app = await create();
    const server = app.getHttpServer();

    expect((await request(server).post('/runs/a').send({})).status).toBe(201);
    const missing = await request(server).post('/runs/nope/signal').send({});
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ statusCode: 404, error: 'RunNotFoundError', code: 'CAIRN_RUN_NOT_FOUND', message: 'Run "nope" not found.' });
    expect((await request(server).post('/runs/a').send({ conflict: 'fail' })).body).toMatchObject({ statusCode: 409, code: 'CAIRN_RUN_ALREADY_EXISTS' });
    expect((await request(server).post('/runs/a/retry')).body).toMatchObject({ statusCode: 409, code: 'CAIRN_INVALID_RUN_STATE' });
    expect((await request(server).post('/runs/a/signal').send({ name: '' })).body).toMatchObject({ statusCode: 400, code: 'CAIRN_INVALID_ARGUMENT' });
    const big = await request(server).post('/runs/a/signal').send({ payload: 'x'.repeat(500) });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe('CAIRN_PAYLOAD_TOO_LARGE');
    expect((await request(server).post('/runs/a/signal').send({ payload: 'ok' })).status).toBe(201);
    await app.get(WorkflowClient).getHandle('a').result({ timeout: '5s' });
    expect((await request(server).post('/runs/a/signal').send({})).body).toMatchObject({ statusCode: 409, code: 'CAIRN_RUN_NOT_ACTIVE' });
    expect((await request(server).get('/runs/boom')).status).toBe(500);
  });
});
