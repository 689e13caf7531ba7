import { describe, expect, it } from '@jest/globals';
import { Inject, Injectable, Module, Scope, type Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  ConfigurationError,
  DurableExecutionModule,
  PayloadTooLargeError,
  RetryPolicy,
  Step,
  UnknownWorkflowError,
  Workflow,
  WorkflowClient,
  WorkflowDefinitionError,
  type DurableExecutionOptions,
} from '../../src/index.js';
import { bootError, rejection, silentLogger, testOptions, useApps } from './helpers.js';

async function definitionError(providers: unknown[]): Promise<WorkflowDefinitionError> {
  return rejection(bootError(providers).then((e) => Promise.reject(e)), WorkflowDefinitionError, 'CAIRN_WORKFLOW_DEFINITION');
}

// --- bad definitions -------------------------------------------------------------------------------------------

@Workflow('shared-name')
class DupNameA {
  @Step() a() {
    return 1;
  }
}
@Workflow('shared-name')
class DupNameB {
  @Step() b() {
    return 1;
  }
}

@Workflow()
class DupSteps {
  @Step({ name: 'charge' }) chargeCard() {
    return 1;
  }
  @Step({ name: 'charge' }) chargeAgain() {
    return 2;
  }
}

@Workflow()
class NoSteps {
  notAStep() {
    return 1;
  }
}

@Workflow()
class MissingCompensation {
  @Step({ compensate: 'refundMoney' }) charge() {
    return 1;
  }
}

@Workflow()
class ZeroAttempts {
  @Step({ retry: { maxAttempts: 0 } }) flaky() {
    return 1;
  }
}

@Workflow()
class MaxDelayBelowDelay {
  @Step({ retry: { maxAttempts: 3, delay: '2s', maxDelay: '1s' } }) flaky() {
    return 1;
  }
}

@Workflow()
class UnparsableDelay {
  @Step({ retry: { maxAttempts: 3, delay: 'soonish' } }) flaky() {
    return 1;
  }
}

@Workflow()
class UnparsableTimeout {
  @Step({ timeout: 'a while' }) slow() {
    return 1;
  }
}

@Workflow()
class NegativeTimeout {
  @Step({ timeout: -5 }) slow() {
    return 1;
  }
}

@Injectable({ scope: Scope.REQUEST })
@Workflow()
class RequestScopedWorkflow {
  @Step() a() {
    return 1;
  }
}

@Workflow()
@Injectable({ scope: Scope.REQUEST })
class RequestScopedBelowWorkflow {
  @Step() a() {
    return 1;
  }
}

@Injectable({ scope: Scope.REQUEST })
class PerRequestService {
  value = 1;
}

@Workflow()
class DependsOnRequestScoped {
  constructor(private readonly svc: PerRequestService) {}
  @Step() a() {
    return this.svc.value;
  }
}

// --- good definitions ------------------------------------------------------------------------------------------

@Workflow('orders.place')
class NamedWorkflow {
  @Step() only(input: number) {
    return input + 1;
  }
}

@Workflow({ name: 'versioned', version: 3 })
class VersionedWorkflow {
  @Step() only(input: number) {
    return input * 2;
  }
}

@Workflow()
class DefaultWorkflow {
  @Step() only(input: string) {
    return `${input}!`;
  }
}

@Workflow()
class PolicyWorkflow {
  @Step({ retry: RetryPolicy.fixed(2, '10ms'), timeout: '1s' }) a(input: number) {
    return input;
  }
  @Step({ retry: RetryPolicy.exponential(3, 10, 2, '1s'), timeout: 500 }) b(input: number) {
    return input;
  }
  @Step({ retry: RetryPolicy.none() }) c(input: number) {
    return input;
  }
}

const CONFIG = Symbol('config');
@Module({ providers: [{ provide: CONFIG, useValue: { maxPayloadBytes: 200 } }], exports: [CONFIG] })
class ConfigModule {}

@Injectable()
class OptionsFactory {
  create(): DurableExecutionOptions {
    return testOptions({ maxPayloadBytes: 300 });
  }
}

describe('workflow definitions at bootstrap', () => {
  const apps = useApps();

  it('rejects two workflows with the same name, naming both classes', async () => {
    const error = await definitionError([DupNameA, DupNameB]);
    expect(error.message).toContain('shared-name');
    expect(error.message).toContain('DupNameA');
    expect(error.message).toContain('DupNameB');
  });

  it('rejects two steps with the same name, naming the class and both methods', async () => {
    const error = await definitionError([DupSteps]);
    expect(error.message).toContain('DupSteps');
    expect(error.message).toContain('chargeCard');
    expect(error.message).toContain('chargeAgain');
  });

  it('rejects a workflow without steps, naming the class', async () => {
    const error = await definitionError([NoSteps]);
    expect(error.message).toContain('NoSteps');
  });

  it('rejects compensate naming a missing method, naming the class, the step method and the missing one', async () => {
    const error = await definitionError([MissingCompensation]);
    expect(error.message).toContain('MissingCompensation');
    expect(error.message).toContain('charge');
    expect(error.message).toContain('refundMoney');
  });

  it('rejects retry.maxAttempts 0', async () => {
    const error = await definitionError([ZeroAttempts]);
    expect(error.message).toContain('ZeroAttempts');
    expect(error.message).toContain('flaky');
    expect(error.message).toContain('maxAttempts');
  });

  it('rejects retry.maxDelay below retry.delay', async () => {
    const error = await definitionError([MaxDelayBelowDelay]);
    expect(error.message).toContain('MaxDelayBelowDelay');
    expect(error.message).toContain('flaky');
    expect(error.message).toContain('maxDelay');
  });

  it('rejects an unparsable retry.delay', async () => {
    const error = await definitionError([UnparsableDelay]);
    expect(error.message).toContain('UnparsableDelay');
    expect(error.message).toContain('flaky');
    expect(error.message).toContain('delay');
  });

  it('rejects an unparsable timeout', async () => {
    const error = await definitionError([UnparsableTimeout]);
    expect(error.message).toContain('UnparsableTimeout');
    expect(error.message).toContain('slow');
    expect(error.message).toContain('timeout');
  });

  it('rejects a negative timeout', async () => {
    const error = await definitionError([NegativeTimeout]);
    expect(error.message).toContain('NegativeTimeout');
    expect(error.message).toContain('slow');
    expect(error.message).toContain('timeout');
  });

  it('rejects a request-scoped workflow provider', async () => {
    const error = await definitionError([RequestScopedWorkflow]);
    expect(error.message).toContain('RequestScopedWorkflow');
  });

  it('rejects a request-scoped workflow provider when @Injectable({ scope }) is written below @Workflow()', async () => {
    const error = await definitionError([RequestScopedBelowWorkflow]);
    expect(error.message).toContain('RequestScopedBelowWorkflow');
  });

  it('rejects a workflow that depends on a request-scoped provider', async () => {
    const error = await definitionError([DependsOnRequestScoped, PerRequestService]);
    expect(error.message).toContain('DependsOnRequestScoped');
  });

  it('registers a workflow under its name option (and not under its class name)', async () => {
    const { client } = await apps.boot([NamedWorkflow]);
    expect(await client.execute('orders.place', 1)).toBe(2);
    const handle = await client.start(NamedWorkflow, 5, { id: 'named-1' });
    expect(await handle.result()).toBe(6);
    expect((await client.describe('named-1'))?.workflow).toBe('orders.place');
    await rejection(client.start('NamedWorkflow', 1, { id: 'named-2' }), UnknownWorkflowError, 'CAIRN_UNKNOWN_WORKFLOW');
    expect(await client.describe('named-2')).toBeUndefined();
  });

  it('stores the version option with each run (default 1)', async () => {
    const { client } = await apps.boot([VersionedWorkflow, DefaultWorkflow]);
    const v = await client.start('versioned', 2, { id: 'v-1' });
    expect(await v.result()).toBe(4);
    const info = await client.describe('v-1');
    expect(info?.version).toBe(3);
    expect(info?.workflow).toBe('versioned');
    const d = await client.start(DefaultWorkflow, 'x', { id: 'd-1' });
    expect(await d.result()).toBe('x!');
    expect((await client.describe('d-1'))?.version).toBe(1);
    expect((await client.describe('d-1'))?.workflow).toBe('DefaultWorkflow');
  });

  it('accepts RetryPolicy helpers and duration strings in step options', async () => {
    const { client } = await apps.boot([PolicyWorkflow]);
    expect(await client.execute(PolicyWorkflow, 7)).toBe(7);
  });

  it('forRootAsync with useFactory and inject applies the factory options', async () => {
    const { client } = await apps.bootModule(
      [
        DurableExecutionModule.forRootAsync({
          imports: [ConfigModule],
          inject: [CONFIG],
          useFactory: (config: { maxPayloadBytes: number }) => testOptions({ maxPayloadBytes: config.maxPayloadBytes }),
        }),
      ],
      [DefaultWorkflow],
    );
    expect(await client.execute(DefaultWorkflow, 'async')).toBe('async!');
    await rejection(client.start(DefaultWorkflow, 'x'.repeat(250), { id: 'too-big' }), PayloadTooLargeError, 'CAIRN_PAYLOAD_TOO_LARGE');
    expect(await client.describe('too-big')).toBeUndefined();
  });

  it('forRootAsync with useClass applies the options of its create()', async () => {
    const { client } = await apps.bootModule([DurableExecutionModule.forRootAsync({ useClass: OptionsFactory })], [DefaultWorkflow]);
    expect(await client.execute(DefaultWorkflow, 'cls')).toBe('cls!');
    await client.start(DefaultWorkflow, 'x'.repeat(250), { id: 'fits' });
    await rejection(client.start(DefaultWorkflow, 'x'.repeat(350), { id: 'too-big' }), PayloadTooLargeError);
    expect(await client.describe('too-big')).toBeUndefined();
  });

  it('rejects worker.concurrency 0 with ConfigurationError', async () => {
    const error = await bootError([DefaultWorkflow], { worker: { concurrency: 0 } });
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).code).toBe('CAIRN_CONFIGURATION');
    expect((error as Error).message).toContain('concurrency');
  });

  it('rejects other bad module options with ConfigurationError', async () => {
    for (const options of [
      { worker: { leaseMs: -1 } },
      { worker: { pollIntervalMs: 1.5 } },
      { maxPayloadBytes: 0 },
      { retention: { completed: 'forever' } },
      { worker: { enabled: 'yes' as unknown as boolean } },
    ] as DurableExecutionOptions[]) {
      const error = await bootError([DefaultWorkflow], options);
      expect(error).toBeInstanceOf(ConfigurationError);
    }
  });

  it('rejects an unknown store type with ConfigurationError', async () => {
    const error = await bootError([DefaultWorkflow], { store: { type: 'mongo' } as never });
    expect(error).toBeInstanceOf(ConfigurationError);
  });

  it('WorkflowClient can be injected into a user provider', async () => {
    @Injectable()
    class Starter {
      constructor(@Inject(WorkflowClient) readonly client: WorkflowClient) {}
    }
    const { app, client } = await apps.boot([DefaultWorkflow], {}, { providers: [Starter] });
    expect(app.get(Starter).client).toBe(client);
  });
});
