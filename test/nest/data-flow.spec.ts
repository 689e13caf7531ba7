import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  Flow,
  Step,
  Workflow,
  WorkflowDefinitionError,
  WorkflowFailedError,
  type StepContext,
} from '../../src/index.js';
import { rejection, useApps } from './helpers.js';

interface Seen {
  step: string;
  received: unknown;
  runId: string;
  workflow: string;
  ctxStep: string;
  attempt: number;
  input: unknown;
  results: Record<string, unknown>;
  key: string;
}
let seen: Seen[] = [];
let calls: Record<string, number> = {};

function record(step: string, received: unknown, ctx: StepContext) {
  calls[step] = (calls[step] ?? 0) + 1;
  seen.push({
    step,
    received,
    runId: ctx.runId,
    workflow: ctx.workflow,
    ctxStep: ctx.step,
    attempt: ctx.attempt,
    input: ctx.input,
    results: structuredClone(ctx.results),
    key: ctx.idempotencyKey,
  });
}

@Workflow('pipeline')
class Pipeline {
  @Step() first(input: { n: number }, ctx: StepContext<{ n: number }>) {
    record('first', input, ctx);
    return { a: input.n + 1 };
  }
  @Step({ name: 'second-step' }) second(prev: { a: number }, ctx: StepContext<{ n: number }>) {
    record('second-step', prev, ctx);
    return { b: prev.a * 10 };
  }
  @Step() third(prev: { b: number }, ctx: StepContext<{ n: number }>) {
    record('third', prev, ctx);
    return { c: prev.b + ctx.input.n };
  }
}

@Workflow()
class Looping {
  @Step() init(input: { until: number }) {
    return { count: 0, until: input.until };
  }
  @Step() loop(prev: { count: number; until: number }, ctx: StepContext) {
    record('loop', prev, ctx);
    const next = { count: prev.count + 1, until: prev.until };
    return next.count < prev.until ? Flow.goto('loop', next) : next;
  }
  @Step() done(prev: { count: number }, ctx: StepContext) {
    record('done', prev, ctx);
    return `looped ${prev.count}`;
  }
}

@Workflow()
class Branching {
  @Step() decide(input: { skip: boolean }) {
    return input.skip ? Flow.goto('last', 'skipped') : 'normal';
  }
  @Step() middle(prev: string) {
    calls.middle = (calls.middle ?? 0) + 1;
    return `${prev}+middle`;
  }
  @Step() last(prev: string, ctx: StepContext) {
    record('last', prev, ctx);
    return `${prev}+last`;
  }
}

@Workflow()
class Endless {
  @Step() spin(prev: number) {
    calls.spin = (calls.spin ?? 0) + 1;
    return Flow.goto('spin', (prev ?? 0) + 1);
  }
}

@Workflow()
class BadGoto {
  @Step() start() {
    return 'x';
  }
  @Step({ retry: { maxAttempts: 3, delay: 5 } }) jump() {
    calls.jump = (calls.jump ?? 0) + 1;
    return Flow.goto('nowhere', 1);
  }
  @Step() after() {
    return 'never';
  }
}

describe('data flow through a pipeline', () => {
  const apps = useApps();
  beforeEach(() => {
    seen = [];
    calls = {};
  });

  it('passes the input to the first step and each output to the next; the last output is the run output', async () => {
    const { client } = await apps.boot([Pipeline]);
    const output = await client.execute(Pipeline, { n: 2 }, { id: 'p-1' });
    expect(output).toEqual({ c: 32 });
    expect(seen.map((s) => [s.step, s.received])).toEqual([
      ['first', { n: 2 }],
      ['second-step', { a: 3 }],
      ['third', { b: 30 }],
    ]);
    const info = await client.describe('p-1');
    expect(info?.status).toBe('completed');
    expect(info?.output).toEqual({ c: 32 });
    expect(info?.input).toEqual({ n: 2 });
    expect(info?.steps.map((s) => [s.name, s.status, s.attempts, s.output])).toEqual([
      ['first', 'completed', 1, { a: 3 }],
      ['second-step', 'completed', 1, { b: 30 }],
      ['third', 'completed', 1, { c: 32 }],
    ]);
    expect(info?.currentStep).toBeUndefined();
    expect(info?.finishedAt).toBeInstanceOf(Date);
    for (const s of info!.steps) {
      expect(s.startedAt).toBeInstanceOf(Date);
      expect(s.finishedAt).toBeInstanceOf(Date);
      expect(s.finishedAt!.getTime()).toBeGreaterThanOrEqual(s.startedAt!.getTime());
    }
  });

  it('gives every step ctx.input (the run input), ctx.runId, ctx.workflow and ctx.step', async () => {
    const { client } = await apps.boot([Pipeline]);
    await client.execute('pipeline', { n: 1 }, { id: 'ctx-1' });
    for (const s of seen) {
      expect(s.input).toEqual({ n: 1 });
      expect(s.runId).toBe('ctx-1');
      expect(s.workflow).toBe('pipeline');
      expect(s.ctxStep).toBe(s.step);
      expect(s.attempt).toBe(1);
    }
  });

  it('gives every step ctx.results with the outputs of the steps completed so far, by step name', async () => {
    const { client } = await apps.boot([Pipeline]);
    await client.execute('pipeline', { n: 1 }, { id: 'res-1' });
    expect(seen.map((s) => s.results)).toEqual([{}, { first: { a: 2 } }, { first: { a: 2 }, 'second-step': { b: 20 } }]);
  });

  it('gives every step the idempotency key `${runId}:${step}`', async () => {
    const { client } = await apps.boot([Pipeline]);
    await client.execute('pipeline', { n: 1 }, { id: 'key-1' });
    expect(seen.map((s) => s.key)).toEqual(['key-1:first', 'key-1:second-step', 'key-1:third']);
  });

  it('generates a unique run id when none is given', async () => {
    const { client } = await apps.boot([Pipeline]);
    const a = await client.start(Pipeline, { n: 1 });
    const b = await client.start(Pipeline, { n: 1 });
    expect(typeof a.runId).toBe('string');
    expect(a.runId.length).toBeGreaterThan(0);
    expect(a.runId).not.toBe(b.runId);
    await a.result();
    await b.result();
    expect(seen.filter((s) => s.step === 'first').map((s) => s.key).sort()).toEqual([`${a.runId}:first`, `${b.runId}:first`].sort());
  });

  it('Flow.goto loops until the loop ends; each visit is a steps entry with `#n` idempotency keys', async () => {
    const { client } = await apps.boot([Looping]);
    expect(await client.execute(Looping, { until: 3 }, { id: 'loop-1' })).toBe('looped 3');
    expect(seen.filter((s) => s.step === 'loop').map((s) => [s.key, s.received])).toEqual([
      ['loop-1:loop', { count: 0, until: 3 }],
      ['loop-1:loop#2', { count: 1, until: 3 }],
      ['loop-1:loop#3', { count: 2, until: 3 }],
    ]);
    expect(seen.find((s) => s.step === 'done')?.key).toBe('loop-1:done');
    const info = await client.describe('loop-1');
    expect(info?.steps.map((s) => [s.name, s.status, s.output])).toEqual([
      ['init', 'completed', { count: 0, until: 3 }],
      ['loop', 'completed', { count: 1, until: 3 }],
      ['loop', 'completed', { count: 2, until: 3 }],
      ['loop', 'completed', { count: 3, until: 3 }],
      ['done', 'completed', 'looped 3'],
    ]);
  });

  it('ctx.results holds the latest visit of a looped step', async () => {
    const { client } = await apps.boot([Looping]);
    await client.execute(Looping, { until: 2 }, { id: 'loop-res' });
    expect(seen.find((s) => s.step === 'done')?.results).toEqual({ init: { count: 0, until: 2 }, loop: { count: 2, until: 2 } });
  });

  it('Flow.goto branches forward, skipping steps (which are not listed)', async () => {
    const { client } = await apps.boot([Branching]);
    expect(await client.execute(Branching, { skip: true }, { id: 'br-1' })).toBe('skipped+last');
    expect(calls.middle).toBeUndefined();
    expect((await client.describe('br-1'))?.steps.map((s) => s.name)).toEqual(['decide', 'last']);
    expect(seen[0].key).toBe('br-1:last');
    expect(await client.execute(Branching, { skip: false })).toBe('normal+middle+last');
  });

  it('a goto loop past maxTransitions fails the run with MaxTransitionsExceededError', async () => {
    const { client } = await apps.boot([Endless], { maxTransitions: 5 });
    const handle = await client.start(Endless, 0, { id: 'endless' });
    const error = await rejection(handle.result(), WorkflowFailedError, 'CAIRN_WORKFLOW_FAILED');
    expect(error.cause.name).toBe('MaxTransitionsExceededError');
    expect(error.step).toBe('spin');
    const info = await client.describe('endless');
    expect(info?.status).toBe('failed');
    expect(info?.error).toMatchObject({ name: 'MaxTransitionsExceededError', step: 'spin', phase: 'step' });
    expect(calls.spin).toBe(6);
    expect(info?.steps).toHaveLength(6);
    expect(info?.steps.slice(0, 5).every((s) => s.status === 'completed')).toBe(true);
    expect(info?.steps[5].status).toBe('failed');
  });

  it('Flow.goto to a missing step fails the run with WorkflowDefinitionError, not retried', async () => {
    const { client } = await apps.boot([BadGoto]);
    const handle = await client.start(BadGoto, null, { id: 'bad-goto' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.cause.name).toBe(WorkflowDefinitionError.name);
    expect(error.cause.message).toContain('nowhere');
    expect(error.step).toBe('jump');
    expect(calls.jump).toBe(1);
    const info = await client.describe('bad-goto');
    expect(info?.status).toBe('failed');
    expect(info?.error).toMatchObject({ name: 'WorkflowDefinitionError', step: 'jump', phase: 'step' });
    expect(info?.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['start', 'completed', 1],
      ['jump', 'failed', 1],
    ]);
  });
});
