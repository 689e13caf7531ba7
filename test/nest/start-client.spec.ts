import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  Flow,
  InvalidArgumentError,
  ResultTimeoutError,
  RunAlreadyExistsError,
  RunNotActiveError,
  RunNotFoundError,
  Step,
  UnknownWorkflowError,
  Workflow,
  type CompensationContext,
  type StepContext,
  type WorkflowClient,
} from '../../src/index.js';
import { eventually, gate, rejection, sleep, useApps, type Gate } from './helpers.js';

let calls: Record<string, number> = {};
let undos: unknown[] = [];
let hold: Gate = gate();
let seenKeys: string[] = [];

async function statusOf(client: WorkflowClient, runId: string, status: string) {
  return eventually(async () => {
    const info = await client.describe(runId);
    return info?.status === status ? info : undefined;
  });
}

@Workflow()
class Counted {
  @Step() one(input: { v: string }) {
    calls.one = (calls.one ?? 0) + 1;
    return input.v;
  }
  @Step() two(prev: string) {
    calls.two = (calls.two ?? 0) + 1;
    return `${prev}!`;
  }
}

@Workflow()
class MaybeWait {
  @Step({ compensate: 'undo' }) first(input: { v: string; wait: boolean }) {
    calls.first = (calls.first ?? 0) + 1;
    return input;
  }
  @Step() second(prev: { v: string; wait: boolean }) {
    return prev.wait ? Flow.waitForSignal('go', { value: prev.v }) : prev.v;
  }
  @Step() third(prev: unknown) {
    return { third: prev };
  }
  undo(output: unknown, _ctx: CompensationContext) {
    undos.push(output);
  }
}

@Workflow()
class HoldThenFinish {
  @Step() async work(input: string, ctx: StepContext) {
    calls.work = (calls.work ?? 0) + 1;
    seenKeys.push(ctx.idempotencyKey);
    if (input === 'hold') await hold.promise;
    return `${input} done`;
  }
  @Step() after(prev: string) {
    calls.after = (calls.after ?? 0) + 1;
    return prev;
  }
}

@Workflow()
class NotRegistered {
  @Step() a() {
    return 1;
  }
}

/** Fresh records and a closed gate for every test. */
function resetFixtures(): void {
  calls = {};
  undos = [];
  hold = gate();
  seenKeys = [];
}

describe('start and conflict policies', () => {
  const apps = useApps();
  beforeEach(resetFixtures);

  it("use-existing (the default) returns the existing run; its steps ran once and its input is the first one", async () => {
    const { client } = await apps.boot([Counted]);
    const a = await client.start(Counted, { v: 'first' }, { id: 'same' });
    expect(await a.result()).toBe('first!');
    const b = await client.start(Counted, { v: 'second' }, { id: 'same' });
    const c = await client.start(Counted, { v: 'third' }, { id: 'same', conflictPolicy: 'use-existing' });
    expect(b.runId).toBe('same');
    expect(c.runId).toBe('same');
    expect(await b.result()).toBe('first!');
    expect(await client.execute(Counted, { v: 'fourth' }, { id: 'same' })).toBe('first!');
    expect(calls).toEqual({ one: 1, two: 1 });
    const info = await client.describe('same');
    expect(info?.input).toEqual({ v: 'first' });
    expect((await client.list()).runs).toHaveLength(1);
  });

  it('use-existing while the first run is still running does not start a second one', async () => {
    const { client } = await apps.boot([HoldThenFinish]);
    const a = await client.start(HoldThenFinish, 'hold', { id: 'busy' });
    await eventually(() => calls.work === 1);
    const b = await client.start(HoldThenFinish, 'other', { id: 'busy' });
    hold.open();
    expect(await b.result()).toBe('hold done');
    expect(await a.result()).toBe('hold done');
    expect(calls.work).toBe(1);
  });

  it("conflictPolicy 'fail' throws RunAlreadyExistsError and leaves the run as it was", async () => {
    const { client } = await apps.boot([Counted]);
    await client.execute(Counted, { v: 'x' }, { id: 'dup' });
    const before = await client.describe('dup');
    const error = await rejection(
      client.start(Counted, { v: 'y' }, { id: 'dup', conflictPolicy: 'fail' }),
      RunAlreadyExistsError,
      'CAIRN_RUN_ALREADY_EXISTS',
    );
    expect(error.runId).toBe('dup');
    expect(await client.describe('dup')).toEqual(before);
    expect(calls.one).toBe(1);
  });

  it("conflictPolicy 'fail' with a new id starts the run", async () => {
    const { client } = await apps.boot([Counted]);
    const h = await client.start(Counted, { v: 'n' }, { id: 'fresh', conflictPolicy: 'fail' });
    expect(await h.result()).toBe('n!');
  });

  it("terminate-existing on a waiting run cancels it without compensation and runs a new one under the same id", async () => {
    const { client } = await apps.boot([MaybeWait]);
    await client.start(MaybeWait, { v: 'old', wait: true }, { id: 'term' });
    await statusOf(client, 'term', 'waiting');
    const h = await client.start(MaybeWait, { v: 'new', wait: false }, { id: 'term', conflictPolicy: 'terminate-existing' });
    expect(h.runId).toBe('term');
    expect(await h.result({ timeout: '2s' })).toEqual({ third: 'new' });
    const info = await client.describe('term');
    expect(info?.status).toBe('completed');
    expect(info?.input).toEqual({ v: 'new', wait: false });
    expect(info?.steps.map((s) => s.name)).toEqual(['first', 'second', 'third']);
    expect(undos).toEqual([]);
    expect(calls.first).toBe(2);
    await rejection(client.signal('term', 'go', 'late'), RunNotActiveError);
    expect((await client.list()).runs.map((r) => r.runId)).toEqual(['term']);
  });

  it('terminate-existing on a running run drops the old run and runs the new one', async () => {
    const { client } = await apps.boot([HoldThenFinish]);
    await client.start(HoldThenFinish, 'hold', { id: 'term-run' });
    await eventually(() => calls.work === 1);
    const h = await client.start(HoldThenFinish, 'new', { id: 'term-run', conflictPolicy: 'terminate-existing' });
    expect(await h.result({ timeout: '2s' })).toBe('new done');
    hold.open();
    await sleep(50);
    const info = await client.describe('term-run');
    expect(info?.status).toBe('completed');
    expect(info?.output).toBe('new done');
    expect(info?.input).toBe('new');
    expect(info?.steps.map((s) => [s.name, s.output])).toEqual([
      ['work', 'new done'],
      ['after', 'new done'],
    ]);
    expect(calls.after).toBe(1);
  });

  it('terminate-existing on an ended run replaces it with a new run', async () => {
    const { client } = await apps.boot([MaybeWait]);
    expect(await client.execute(MaybeWait, { v: 'one', wait: false }, { id: 'replace' })).toEqual({ third: 'one' });
    const first = await client.describe('replace');
    const h = await client.start(MaybeWait, { v: 'two', wait: false }, { id: 'replace', conflictPolicy: 'terminate-existing' });
    expect(await h.result()).toEqual({ third: 'two' });
    const info = await client.describe('replace');
    expect(info?.input).toEqual({ v: 'two', wait: false });
    expect(info?.output).toEqual({ third: 'two' });
    expect(info?.createdAt.getTime()).toBeGreaterThanOrEqual(first!.createdAt.getTime());
    expect(calls.first).toBe(2);
  });

  it('an unknown workflow (name or unregistered class) throws UnknownWorkflowError and stores nothing', async () => {
    const { client } = await apps.boot([Counted]);
    const error = await rejection(client.start('nope', 1, { id: 'u-1' }), UnknownWorkflowError, 'CAIRN_UNKNOWN_WORKFLOW');
    expect(error.message).toContain('nope');
    await rejection(client.start(NotRegistered, 1, { id: 'u-2' }), UnknownWorkflowError);
    await rejection(client.execute('nope', 1, { id: 'u-3' }), UnknownWorkflowError);
    expect(await client.describe('u-1')).toBeUndefined();
    expect(await client.describe('u-2')).toBeUndefined();
    expect((await client.list()).runs).toEqual([]);
  });

  it('an unknown conflictPolicy throws InvalidArgumentError', async () => {
    const { client } = await apps.boot([Counted]);
    await rejection(client.start(Counted, { v: 'x' }, { id: 'cp', conflictPolicy: 'whatever' as never }), InvalidArgumentError);
    expect(await client.describe('cp')).toBeUndefined();
  });
});

describe('run id checks', () => {
  const apps = useApps();
  const badIds = ['', 'x'.repeat(256)];

  it('start with an empty or 256-character id throws InvalidArgumentError and stores nothing', async () => {
    const { client } = await apps.boot([Counted]);
    for (const id of badIds) {
      await rejection(client.start(Counted, { v: 'a' }, { id }), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
      await rejection(client.execute(Counted, { v: 'a' }, { id }), InvalidArgumentError);
    }
    expect((await client.list()).runs).toEqual([]);
  });

  it('describe, signal, cancel, pause, resume and retry check the id', async () => {
    const { client } = await apps.boot([Counted]);
    for (const id of badIds) {
      await rejection(client.describe(id), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
      await rejection(client.signal(id, 's', 1), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
      await rejection(client.cancel(id), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
      await rejection(client.pause(id), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
      await rejection(client.resume(id), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
      await rejection(client.retry(id), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
    }
  });

  it('getHandle checks the id', async () => {
    const { client } = await apps.boot([Counted]);
    for (const id of badIds) {
      await rejection(async () => client.getHandle(id), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
    }
  });

  it('a non-string id throws InvalidArgumentError', async () => {
    const { client } = await apps.boot([Counted]);
    await rejection(client.describe(42 as unknown as string), InvalidArgumentError);
    await rejection(client.start(Counted, { v: 'a' }, { id: 42 as unknown as string }), InvalidArgumentError);
  });

  it('a 255-character id and ids with quotes, colons, braces, spaces and unicode are accepted as data', async () => {
    const { client } = await apps.boot([Counted]);
    for (const id of ['y'.repeat(255), "it's {a}:b*", 'with space', 'ünïcødé-🎉', "'; DROP TABLE runs; --", '{tag}']) {
      const h = await client.start(Counted, { v: id }, { id });
      expect(h.runId).toBe(id);
      expect(await h.result()).toBe(`${id}!`);
      expect((await client.describe(id))?.runId).toBe(id);
    }
    expect((await client.list()).runs).toHaveLength(6);
  });
});

describe('handles and results', () => {
  const apps = useApps();
  beforeEach(resetFixtures);

  it('describe of an unknown id resolves undefined', async () => {
    const { client } = await apps.boot([Counted]);
    expect(await client.describe('missing')).toBeUndefined();
  });

  it('handle.result() and handle.describe() of an unknown id reject RunNotFoundError', async () => {
    const { client } = await apps.boot([Counted]);
    const handle = client.getHandle('missing');
    expect(handle.runId).toBe('missing');
    const e1 = await rejection(handle.result(), RunNotFoundError, 'CAIRN_RUN_NOT_FOUND');
    expect(e1.runId).toBe('missing');
    await rejection(handle.describe(), RunNotFoundError, 'CAIRN_RUN_NOT_FOUND');
  });

  it('handle.describe() returns the run info', async () => {
    const { client } = await apps.boot([Counted]);
    const handle = await client.start(Counted, { v: 'd' }, { id: 'hd' });
    await handle.result();
    const info = await handle.describe();
    expect(info).toEqual(await client.describe('hd'));
    expect(info.runId).toBe('hd');
    expect(info.workflow).toBe('Counted');
    expect(info.createdAt).toBeInstanceOf(Date);
    expect(info.updatedAt).toBeInstanceOf(Date);
  });

  it('result({ timeout }) on a waiting run rejects ResultTimeoutError with runId; the run goes on', async () => {
    const { client } = await apps.boot([MaybeWait]);
    const handle = await client.start(MaybeWait, { v: 'w', wait: true }, { id: 'rt' });
    const started = Date.now();
    const error = await rejection(handle.result({ timeout: '50ms' }), ResultTimeoutError, 'CAIRN_RESULT_TIMEOUT');
    expect(error.runId).toBe('rt');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect((await client.describe('rt'))?.status).toBe('waiting');
    await client.signal('rt', 'go', 'later');
    expect(await handle.result({ timeout: 2_000 })).toEqual({ third: 'later' });
  });

  it('execute({ timeout }) rejects ResultTimeoutError and the run goes on', async () => {
    const { client } = await apps.boot([MaybeWait]);
    const error = await rejection(client.execute(MaybeWait, { v: 'e', wait: true }, { id: 'et', timeout: 40 }), ResultTimeoutError);
    expect(error.runId).toBe('et');
    expect((await client.describe('et'))?.status).toBe('waiting');
  });

  it('an invalid result timeout throws InvalidArgumentError', async () => {
    const { client } = await apps.boot([Counted]);
    const handle = await client.start(Counted, { v: 'x' }, { id: 'bad-timeout' });
    await rejection(handle.result({ timeout: 'soon' }), InvalidArgumentError);
    expect(await handle.result()).toBe('x!');
  });

  it('execute with an invalid timeout throws InvalidArgumentError before starting anything', async () => {
    const { client } = await apps.boot([Counted]);
    await rejection(client.execute(Counted, { v: 'x' }, { id: 'ex-bad', timeout: 'later' }), InvalidArgumentError);
    expect(await client.describe('ex-bad')).toBeUndefined();
    expect(calls.one).toBeUndefined();
  });

  it('several result() calls on one run all resolve', async () => {
    const { client } = await apps.boot([HoldThenFinish]);
    const handle = await client.start(HoldThenFinish, 'hold', { id: 'many' });
    const results = [handle.result(), handle.result(), client.getHandle('many').result()];
    hold.open();
    expect(await Promise.all(results)).toEqual(['hold done', 'hold done', 'hold done']);
  });

  it('execute starts and waits for the output', async () => {
    const { client } = await apps.boot([Counted]);
    expect(await client.execute('Counted', { v: 'ex' })).toBe('ex!');
  });
});
