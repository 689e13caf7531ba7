import { describe, expect, it } from '@jest/globals';
import { Flow, InvalidArgumentError, NonRetryableError, Step, Workflow, type RunInfo, type WorkflowClient } from '../../src/index.js';
import { eventually, rejection, sleep, useApps } from './helpers.js';

@Workflow()
class Outcomes {
  @Step() only(input: 'ok' | 'fail' | 'wait') {
    if (input === 'fail') throw new NonRetryableError('failed on purpose');
    if (input === 'wait') return Flow.waitForSignal('never');
    return input;
  }
}

@Workflow('other')
class Other {
  @Step() only(input: unknown) {
    return input;
  }
}

async function allPages(client: WorkflowClient, limit: number, filter: Parameters<WorkflowClient['list']>[0] = {}) {
  const pages: RunInfo[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 100; i++) {
    const page = await client.list({ ...filter, limit, cursor });
    pages.push(page.runs);
    if (!page.cursor) break;
    cursor = page.cursor;
  }
  return pages;
}

const pad = (n: number) => String(n).padStart(2, '0');

describe('list', () => {
  const apps = useApps();

  it('lists runs newest first', async () => {
    const { client } = await apps.boot([Other], { worker: { enabled: false } });
    for (let i = 1; i <= 5; i++) {
      await client.start(Other, i, { id: `run-${pad(i)}` });
      await sleep(2);
    }
    const { runs, cursor } = await client.list();
    expect(runs.map((r) => r.runId)).toEqual(['run-05', 'run-04', 'run-03', 'run-02', 'run-01']);
    expect(cursor).toBeUndefined();
    for (let i = 1; i < runs.length; i++) expect(runs[i - 1].createdAt.getTime()).toBeGreaterThanOrEqual(runs[i].createdAt.getTime());
  });

  it('ties on createdAt sort by runId descending', async () => {
    const { client } = await apps.boot([Other], { worker: { enabled: false } });
    const ids = ['b', 'a', 'd', 'c', 'e'];
    await Promise.all(ids.map((id) => client.start(Other, id, { id })));
    const { runs } = await client.list();
    const ordered = [...runs].sort((x, y) => y.createdAt.getTime() - x.createdAt.getTime() || (x.runId < y.runId ? 1 : -1));
    expect(runs.map((r) => r.runId)).toEqual(ordered.map((r) => r.runId));
  });

  it('lists RunInfo like describe()', async () => {
    const { client } = await apps.boot([Other]);
    await client.execute(Other, { x: new Date(1) }, { id: 'same-shape' });
    const { runs } = await client.list();
    expect(runs[0]).toEqual(await client.describe('same-shape'));
  });

  it('filters by one status and by several', async () => {
    const { client } = await apps.boot([Outcomes]);
    await client.execute(Outcomes, 'ok', { id: 'ok-1' });
    await client.execute(Outcomes, 'ok', { id: 'ok-2' });
    await client.execute(Outcomes, 'fail', { id: 'fail-1' }).catch(() => undefined);
    await client.start(Outcomes, 'wait', { id: 'wait-1' });
    await eventually(async () => (await client.describe('wait-1'))?.status === 'waiting');
    const completed = await client.list({ status: 'completed' });
    expect(completed.runs.map((r) => r.runId).sort()).toEqual(['ok-1', 'ok-2']);
    const some = await client.list({ status: ['failed', 'waiting'] });
    expect(some.runs.map((r) => r.runId).sort()).toEqual(['fail-1', 'wait-1']);
    expect((await client.list({ status: 'cancelled' })).runs).toEqual([]);
  });

  it('an unknown status in the filter throws InvalidArgumentError', async () => {
    const { client } = await apps.boot([Outcomes]);
    await rejection(client.list({ status: 'done' as never }), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
  });

  it('filters by workflow name', async () => {
    const { client } = await apps.boot([Outcomes, Other]);
    await client.execute(Outcomes, 'ok', { id: 'o-1' });
    await client.execute(Other, 1, { id: 'x-1' });
    await client.execute(Other, 2, { id: 'x-2' });
    expect((await client.list({ workflow: 'other' })).runs.map((r) => r.runId).sort()).toEqual(['x-1', 'x-2']);
    expect((await client.list({ workflow: 'Outcomes' })).runs.map((r) => r.runId)).toEqual(['o-1']);
    expect((await client.list({ workflow: 'nope' })).runs).toEqual([]);
    expect((await client.list({ workflow: 'other', status: 'completed', limit: 1 })).runs).toHaveLength(1);
  });

  it('pages with the cursor to the end without duplicates or gaps; the last page has no cursor', async () => {
    const { client } = await apps.boot([Other], { worker: { enabled: false } });
    for (let i = 1; i <= 7; i++) await client.start(Other, i, { id: `p-${pad(i)}` });
    const full = (await client.list({ limit: 1000 })).runs.map((r) => r.runId);
    expect(full).toHaveLength(7);
    const pages = await allPages(client, 3);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat().map((r) => r.runId)).toEqual(full);
  });

  it('when the runs fill the last page exactly, that page has no cursor', async () => {
    const { client } = await apps.boot([Other], { worker: { enabled: false } });
    for (let i = 1; i <= 6; i++) await client.start(Other, i, { id: `e-${pad(i)}` });
    const pages = await allPages(client, 3);
    expect(pages.map((p) => p.length)).toEqual([3, 3]);
    const first = await client.list({ limit: 6 });
    expect(first.runs).toHaveLength(6);
    expect(first.cursor).toBeUndefined();
  });

  it('pages with ties on createdAt without duplicates or gaps', async () => {
    const { client } = await apps.boot([Other], { worker: { enabled: false } });
    await Promise.all(Array.from({ length: 9 }, (_, i) => client.start(Other, i, { id: `t-${i}` })));
    const full = (await client.list({ limit: 100 })).runs.map((r) => r.runId);
    for (const limit of [1, 2, 4]) {
      const paged = (await allPages(client, limit)).flat().map((r) => r.runId);
      expect(paged).toEqual(full);
    }
  });

  it('pages with a filter', async () => {
    const { client } = await apps.boot([Outcomes, Other]);
    for (let i = 0; i < 5; i++) {
      await client.execute(Other, i, { id: `fo-${i}` });
      await client.execute(Outcomes, 'ok', { id: `fx-${i}` });
    }
    const paged = (await allPages(client, 2, { workflow: 'other' })).flat().map((r) => r.runId);
    expect(paged).toEqual(['fo-4', 'fo-3', 'fo-2', 'fo-1', 'fo-0']);
  });

  it('the default limit is 50', async () => {
    const { client } = await apps.boot([Other], { worker: { enabled: false } });
    for (let i = 0; i < 55; i++) await client.start(Other, i, { id: `d-${pad(i)}` });
    const page = await client.list();
    expect(page.runs).toHaveLength(50);
    expect(page.cursor).toBeDefined();
    const rest = await client.list({ cursor: page.cursor });
    expect(rest.runs).toHaveLength(5);
    expect(rest.cursor).toBeUndefined();
  });

  it('limit 0 or 1001 (or not an integer) throws InvalidArgumentError; 1 and 1000 are fine', async () => {
    const { client } = await apps.boot([Other]);
    for (const limit of [0, 1001, -1, 1.5]) {
      await rejection(client.list({ limit }), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
    }
    await client.list({ limit: 1 });
    await client.list({ limit: 1000 });
  });

  it('a cursor that list() did not return throws InvalidArgumentError', async () => {
    const { client } = await apps.boot([Other]);
    for (const cursor of ['garbage', '', 'eyJmb28iOjF9', Buffer.from('["c1","x","y"]').toString('base64url')]) {
      await rejection(client.list({ cursor }), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
    }
  });
});
