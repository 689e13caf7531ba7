import { afterEach, describe, expect, it } from '@jest/globals';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Flow, Step, Workflow, WorkflowClient, type StepContext } from '../../src/index.js';
import { bootApp } from '../support/workflows.js';

@Injectable()
class Greeter {
  greet(name: string) {
    return `hello ${name}`;
  }
}

@Workflow()
class HelloWorkflow {
  constructor(private readonly greeter: Greeter) {}

  @Step()
  first(input: { name: string }, ctx: StepContext<{ name: string }>) {
    return { text: this.greeter.greet(input.name), key: ctx.idempotencyKey };
  }

  @Step()
  second(prev: { text: string }, ctx: StepContext) {
    return { upper: prev.text.toUpperCase(), first: ctx.results.first, attempt: ctx.attempt };
  }

  @Step()
  third(prev: { upper: string }) {
    return Flow.complete(prev.upper + '!');
  }
}

describe('basic run', () => {
  let app: INestApplicationContext | undefined;
  afterEach(async () => app?.close());

  it('runs a pipeline with DI, results and idempotency keys', async () => {
    const booted = await bootApp([HelloWorkflow, Greeter]);
    app = booted.app;
    const client = booted.client;
    const handle = await client.start(HelloWorkflow, { name: 'ada' }, { id: 'run-1' });
    expect(await handle.result()).toBe('HELLO ADA!');
    const info = await client.describe('run-1');
    expect(info?.status).toBe('completed');
    expect(info?.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['first', 'completed', 1],
      ['second', 'completed', 1],
      ['third', 'completed', 1],
    ]);
    expect(info?.steps[0].output).toEqual({ text: 'hello ada', key: 'run-1:first' });
    expect(info?.steps[1].output).toEqual({ upper: 'HELLO ADA', first: { text: 'hello ada', key: 'run-1:first' }, attempt: 1 });
    expect(await client.execute('HelloWorkflow', { name: 'bob' })).toBe('HELLO BOB!');
    expect(app.get(WorkflowClient)).toBe(client);
  });
});
