/**
 * Lifecycle mistakes a new user makes, and the errors that say how to fix them.
 */
import { describe, expect, it } from '@jest/globals';
import { Injectable, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ModuleNotReadyError, Step, Workflow, WorkflowClient } from '../../src/index.js';
import { moduleFor, rejection, silentLogger, useApps } from './helpers.js';

@Workflow('lifecycle-echo')
class Echo {
  @Step() echo(input: string) {
    return input;
  }
}

let seenAtInit: unknown;
let resultAtBootstrap: unknown;

@Injectable()
class AwaitsInInit implements OnModuleInit {
  constructor(private readonly client: WorkflowClient) {}
  async onModuleInit() {
    const handle = await this.client.start(Echo, 'early');
    try {
      await handle.result();
    } catch (error) {
      seenAtInit = error;
    }
  }
}

@Injectable()
class StartsInInitAwaitsLater implements OnModuleInit, OnApplicationBootstrap {
  private runId?: string;
  constructor(private readonly client: WorkflowClient) {}
  async onModuleInit() {
    this.runId = (await this.client.start(Echo, 'started at init')).runId;
  }
  async onApplicationBootstrap() {
    resultAtBootstrap = await this.client.getHandle(this.runId!).result({ timeout: '5s' });
  }
}

describe('lifecycle mistakes', () => {
  const apps = useApps();

  it('starting a run before the app is initialised says to call init()', async () => {
    const module = await Test.createTestingModule({ imports: [moduleFor()], providers: [Echo] }).setLogger(silentLogger).compile();
    apps.track(module);
    const client = module.get(WorkflowClient);
    const error = await rejection(client.start(Echo, 'x'), ModuleNotReadyError, 'CAIRN_NOT_READY');
    expect(error.message).toMatch(/moduleRef\.init\(\)/);
    await module.init();
    expect(await client.execute(Echo, 'after init')).toBe('after init');
  });

  it('awaiting a result during onModuleInit fails fast instead of hanging bootstrap', async () => {
    seenAtInit = undefined;
    await apps.bootModule([moduleFor()], [Echo, AwaitsInInit]);
    expect(seenAtInit).toBeInstanceOf(ModuleNotReadyError);
    expect((seenAtInit as Error).message).toMatch(/onApplicationBootstrap or later/);
  });

  it('starting a run during onModuleInit and awaiting it from onApplicationBootstrap works', async () => {
    resultAtBootstrap = undefined;
    await apps.bootModule([moduleFor()], [Echo, StartsInInitAwaitsLater]);
    expect(resultAtBootstrap).toBe('started at init');
  });
});
