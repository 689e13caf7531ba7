import { afterEach, describe, expect, it } from '@jest/globals';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  DurableExecutionTestingModule,
  Flow,
  InvalidArgumentError,
  RetryPolicy,
  Step,
  Workflow,
  WorkflowClient,
  WorkflowTestClock,
  type StepContext,
} from '../../src/index.js';
import { silentLogger } from './helpers.js';

@Injectable()
class Mailer {
  sent: string[] = [];
  send(to: string) {
    this.sent.push(to);
  }
}

@Workflow()
class Approval {
  constructor(private readonly mailer: Mailer) {}
  @Step() ask(input: { to: string }) {
    this.mailer.send(input.to);
    return Flow.waitForSignal('approved', { timeout: '24h' });
  }
  @Step() approve(decision: { ok: boolean }) {
    return decision.ok ? 'approved' : 'rejected';
  }
}

@Workflow()
class Reminder {
  @Step() wait() {
    return Flow.sleep('7d', 'slept');
  }
  @Step() remind(prev: string) {
    return `${prev}, then reminded`;
  }
}

let attempts: number[] = [];

@Workflow()
class Flaky {
  @Step({ retry: RetryPolicy.fixed(3, '1h') }) call(_: unknown, ctx: StepContext) {
    attempts.push(ctx.attempt);
    if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} fails`);
    return 'ok';
  }
}

@Workflow()
class Stuck {
  @Step({ heartbeatTimeout: '10m', retry: RetryPolicy.fixed(2, 0) }) async work(_: unknown, ctx: StepContext) {
    attempts.push(ctx.attempt);
    await ctx.heartbeat({ attempt: ctx.attempt });
    if (ctx.attempt === 1) await new Promise(() => undefined); // hangs: no more heartbeats
    return 'second attempt';
  }
}

describe('DurableExecutionTestingModule', () => {
  let app: INestApplicationContext | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
    attempts = [];
  });

  async function boot(providers: unknown[], mailer?: Mailer) {
    let builder = Test.createTestingModule({
      imports: [DurableExecutionTestingModule.forRoot()],
      providers: [Mailer, ...(providers as never[])],
    }).setLogger(silentLogger);
    if (mailer) builder = builder.overrideProvider(Mailer).useValue(mailer);
    const moduleRef = await builder.compile();
    app = await moduleRef.init();
    return { client: app.get(WorkflowClient), clock: app.get(WorkflowTestClock) };
  }

  it('tests a 24-hour approval timeout in milliseconds, with a provider override', async () => {
    const began = Date.now();
    const mailer = new Mailer();
    const { client, clock } = await boot([Approval], mailer);
    const start = clock.now().getTime();
    const handle = await client.start(Approval, { to: 'ann@example.com' }, { id: 'approval' });
    await clock.runUntilIdle();
    expect((await handle.describe()).status).toBe('waiting');
    expect(mailer.sent).toEqual(['ann@example.com']);
    await clock.advance('23h');
    expect((await handle.describe()).status).toBe('waiting');
    await clock.advance('1h');
    const info = await handle.describe();
    expect(info.status).toBe('failed');
    expect(info.error).toMatchObject({ name: 'SignalTimeoutError', step: 'ask' });
    expect(clock.now().getTime() - start).toBe(24 * 3600_000);
    expect(Date.now() - began).toBeLessThan(2_000);
  });

  it('delivers a signal before the timeout', async () => {
    const { client, clock } = await boot([Approval]);
    const handle = await client.start(Approval, { to: 'bob@example.com' });
    await clock.runUntilIdle();
    await clock.advance('3h');
    await client.signal(handle.runId, 'approved', { ok: true });
    await clock.runUntilIdle();
    expect(await handle.result({ timeout: 1_000 })).toBe('approved');
  });

  it('fires a week-long sleep', async () => {
    const { client, clock } = await boot([Reminder]);
    const handle = await client.start(Reminder, null);
    await clock.runUntilIdle();
    expect((await handle.describe()).status).toBe('sleeping');
    await clock.advance('6d');
    expect((await handle.describe()).status).toBe('sleeping');
    await clock.advance('1d');
    expect(await handle.result({ timeout: 1_000 })).toBe('slept, then reminded');
  });

  it('waits out retry delays only when time moves', async () => {
    const { client, clock } = await boot([Flaky]);
    const handle = await client.start(Flaky, null);
    await clock.runUntilIdle();
    expect(attempts).toEqual([1]);
    await clock.advance('59m');
    expect(attempts).toEqual([1]);
    await clock.advance('1m');
    expect(attempts).toEqual([1, 2]);
    await clock.advance('2h');
    expect(attempts).toEqual([1, 2, 3]);
    expect(await handle.result({ timeout: 1_000 })).toBe('ok');
  });

  it('fires heartbeat timeouts', async () => {
    const { client, clock } = await boot([Stuck]);
    const handle = await client.start(Stuck, null);
    await clock.runUntilIdle();
    expect(attempts).toEqual([1]);
    await clock.advance('10m');
    expect(await handle.result({ timeout: 1_000 })).toBe('second attempt');
    expect(attempts).toEqual([1, 2]);
    const steps = (await handle.describe()).steps;
    expect(steps[0]).toMatchObject({ attempts: 2, heartbeat: { details: { attempt: 2 } } });
  });

  it('checks its arguments', async () => {
    const { clock } = await boot([]);
    await expect(clock.advance('soon')).rejects.toThrow(InvalidArgumentError);
    await expect(new WorkflowTestClock().runUntilIdle()).rejects.toThrow(/DurableExecutionTestingModule/);
  });
});
