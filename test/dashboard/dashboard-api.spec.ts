/**
 * The dashboard's HTTP surface on Express and Fastify: the guard on every route, the validation of every parameter,
 * the cross-site refusal of actions, the operator in the history, read-only mode, the production refusal, redaction,
 * truncation and the live stream.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { get } from 'node:http';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { ConfigurationError, DurableExecutionDashboardModule, WorkflowClient, type RunEvent } from '../../src/index.js';
import { SCRIPT_ASSET, STYLE_ASSET } from '../../src/dashboard/assets/dashboard-assets.js';
import { eventually, rejection } from '../nest/helpers.js';
import {
  bootDashboard,
  behaviour,
  CHILD_WORKFLOWS,
  DashAny,
  DashApproval,
  DashBooking,
  DashFanOut,
  DashItem,
  DashOrder,
  HeaderUserGuard,
  resetBehaviour,
  WORKFLOWS,
  type AdapterKind,
} from './dashboard-fixtures.js';

const ADAPTERS: AdapterKind[] = ['express', 'fastify'];
const P = '/workflows';

/** Reads a server-sent event stream until `until` is satisfied by the text received (or 5 s pass). */
function readStream(url: string, headers: Record<string, string>, until: (text: string) => boolean, onOpen?: () => void): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers }, (res) => {
      let text = '';
      const timer = setTimeout(() => finish(), 5_000);
      const finish = () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, text });
      };
      if (res.statusCode !== 200) {
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', finish);
        return;
      }
      onOpen?.();
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (until(text)) finish();
      });
    });
    req.on('error', reject);
  });
}

describe.each(ADAPTERS)('dashboard API on %s', (kind) => {
  let app: INestApplication;
  let client: WorkflowClient;
  let url: string;
  let token: string;
  let cookie: string;
  const user = { 'x-user': 'alice' };

  const api = () => request(url);
  /** A state-changing request as the dashboard's page sends it. */
  const post = (path: string, body: unknown = {}, headers: Record<string, string> = {}) =>
    api()
      .post(`${P}${path}`)
      .set({ ...user, cookie, 'x-cairn-csrf': token, 'content-type': 'application/json', ...headers })
      .send(JSON.stringify(body));

  beforeAll(async () => {
    resetBehaviour();
    ({ app, client } = await bootDashboard(kind, { guard: HeaderUserGuard }, { events: { cluster: true }, maxPayloadBytes: 65_536 }));
    await app.listen(0, '127.0.0.1');
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const res = await api().get(`${P}/api/csrf`).set(user);
    token = res.body.token;
    cookie = String(res.headers['set-cookie']).split(';')[0];
    for (let i = 0; i < 3; i++) await (await client.start(DashOrder, { id: `o${i}`, total: i }, { id: `failed-${i}` })).result().catch(() => undefined);
    await client.start(DashApproval, { who: 'bob' }, { id: 'waiting-1' });
    await eventually(async () => (await client.describe('waiting-1'))?.status === 'waiting');
  });
  afterAll(async () => {
    await app?.close();
  });
  beforeEach(() => resetBehaviour());

  it('puts the guard in front of every page, file, API route, stream and action', async () => {
    const routes = [`${P}`, `${P}/workflows`, `${P}/runs/failed-0`, `${P}/runs/failed-0/value?ref=input`, `${P}/assets/${SCRIPT_ASSET.name}`, `${P}/api/runs`, `${P}/api/counts`, `${P}/api/workflows`, `${P}/api/runs/failed-0`, `${P}/api/runs/failed-0/history`, `${P}/api/runs/failed-0/signals`, `${P}/api/runs/failed-0/value?ref=input`, `${P}/api/csrf`, `${P}/api/bulk/retry`];
    for (const route of routes) expect([route, (await api().get(route)).status]).toEqual([route, 403]);
    const stream = await readStream(`${url}${P}/api/events`, {}, () => true);
    expect(stream.status).toBe(403);
    const refused = await api().post(`${P}/api/runs/failed-0/retry`).set({ cookie, 'x-cairn-csrf': token, 'content-type': 'application/json' }).send('{}');
    expect(refused.status).toBe(403);
    const page = await api().get(P);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('403');
    expect((await api().get(`${P}/api/runs`)).body).toMatchObject({ statusCode: 403 });
  });

  it('serves the pages and files with a strict content security policy, and the assets cacheable', async () => {
    const page = await api().get(P).set(user);
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.text).toContain(SCRIPT_ASSET.name);
    for (const asset of [SCRIPT_ASSET, STYLE_ASSET]) {
      const res = await api().get(`${P}/assets/${asset.name}`).set(user);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe(asset.contentType);
      expect(res.headers['cache-control']).toContain('immutable');
    }
    expect((await api().get(`${P}/assets/other.js`).set(user)).status).toBe(404);
  });

  it('lists runs with filters, counts and paging', async () => {
    const all = await api().get(`${P}/api/runs`).set(user);
    expect(all.status).toBe(200);
    expect(all.body.counts).toMatchObject({ failed: 3, waiting: 1, completed: expect.any(Number) });
    const failed = await api().get(`${P}/api/runs?status=failed&workflow=dash-order&limit=2`).set(user);
    expect(failed.body.runs.map((r: { runId: string }) => r.runId)).toEqual(['failed-2', 'failed-1']);
    expect(failed.body.runs[0]).toMatchObject({ status: 'failed', error: { name: 'Error', message: 'card declined', step: 'charge' } });
    const next = await api().get(`${P}/api/runs?status=failed&workflow=dash-order&limit=2&cursor=${failed.body.cursor}`).set(user);
    expect(next.body.runs.map((r: { runId: string }) => r.runId)).toEqual(['failed-0']);
    expect(next.body.cursor).toBeUndefined();
    const byId = await api().get(`${P}/api/runs?id=waiting-1&status=waiting,paused`).set(user);
    expect(byId.body.runs.map((r: { runId: string }) => r.runId)).toEqual(['waiting-1']);
    expect((await api().get(`${P}/api/runs?id=waiting-1&status=failed`).set(user)).body.runs).toEqual([]);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await api().get(`${P}/api/runs?from=${future}`).set(user)).body.runs).toEqual([]);
    const local = await api().get(`${P}/api/runs?from=2000-01-01T00:00&tz=-120&status=failed`).set(user);
    expect(local.body.runs).toHaveLength(3);
    expect((await api().get(`${P}/api/counts?workflow=dash-approval`).set(user)).body).toMatchObject({ waiting: 1, failed: 0 });
  });

  it('refuses every malformed list parameter with 400', async () => {
    const bad = [
      'status=bogus',
      'limit=0',
      'limit=201',
      'limit=ten',
      'from=yesterday',
      'from=2024-02-30T10:00',
      'to=2020-01-01T00:00:00Z&from=2021-01-01T00:00:00Z',
      'tz=abc',
      'cursor=!!!',
      'cursor=abc',
      `id=${'x'.repeat(256)}`,
      'workflow=a&workflow=b',
      'unknown=1',
    ];
    for (const query of bad) {
      const res = await api().get(`${P}/api/runs?${query}`).set(user);
      expect([query, res.status, res.body.code]).toEqual([query, 400, 'CAIRN_INVALID_ARGUMENT']);
    }
    expect((await api().get(`${P}/api/counts?status=failed`).set(user)).status).toBe(400);
    expect((await api().get(`${P}/api/workflows?x=1`).set(user)).status).toBe(400);
    const page = await api().get(`${P}?status=bogus`).set(user);
    expect(page.status).toBe(400);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('Unknown status');
  });

  it('describes a run, its history, signals and whole values, and refuses bad ids and references', async () => {
    const run = await api().get(`${P}/api/runs/failed-0`).set(user);
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({ runId: 'failed-0', status: 'failed', actions: expect.arrayContaining(['retry', 'skip', 'fork']), forkSteps: ['reserve', 'charge'] });
    expect(run.body.steps[0].output.tree).toMatchObject({ type: 'object' });
    const types = Object.fromEntries(run.body.steps[0].output.tree.entries.map((e: { key: string; value: { type: string } }) => [e.key, e.value.type]));
    expect(types).toEqual({ reserved: 'string', at: 'date', big: 'bigint', tags: 'set', meta: 'map' });
    expect(run.body.steps[1].tries).toMatchObject([{ kind: 'step', outcome: 'failed', attempt: 1, error: { name: 'Error' } }]);
    expect(run.body.history.map((e: RunEvent) => e.type)).toEqual(['run.started', 'step.started', 'step.completed', 'step.started', 'step.failed', 'run.failed']);

    const history = await api().get(`${P}/api/runs/failed-0/history?limit=2`).set(user);
    expect(history.body.events.map((e: RunEvent) => e.seq)).toEqual([1, 2]);
    expect((await api().get(`${P}/api/runs/failed-0/history?limit=2&cursor=${history.body.cursor}`).set(user)).body.events[0].seq).toBe(3);
    for (const q of ['limit=0', 'limit=1001', 'cursor=zz', 'other=1']) expect([q, (await api().get(`${P}/api/runs/failed-0/history?${q}`).set(user)).status]).toEqual([q, 400]);

    expect((await api().get(`${P}/api/runs/nope`).set(user)).body).toMatchObject({ statusCode: 404, code: 'CAIRN_RUN_NOT_FOUND' });
    // NOTE: Fastify refuses path parameters over its maxParamLength (100 by default) itself, with 414.
    expect(kind === 'fastify' ? [400, 414] : [400]).toContain((await api().get(`${P}/api/runs/${'x'.repeat(256)}`).set(user)).status);
    expect((await api().get(`${P}/api/runs/failed-0?x=1`).set(user)).status).toBe(400);
    expect((await api().get(`${P}/api/runs/nope/signals`).set(user)).status).toBe(404);
    expect((await api().get(`${P}/api/runs/nope/history`).set(user)).status).toBe(404);
    expect((await api().get(`${P}/runs/nope`).set(user)).status).toBe(404);

    expect((await api().get(`${P}/api/runs/failed-0/value?ref=input`).set(user)).body.value.tree).toMatchObject({ type: 'object' });
    expect((await api().get(`${P}/api/runs/failed-0/value?ref=output`).set(user)).status).toBe(404);
    expect((await api().get(`${P}/api/runs/failed-0/value?ref=steps.9.output`).set(user)).status).toBe(404);
    for (const ref of ['bogus', 'steps.x.output', '', 'signals']) {
      expect([ref, (await api().get(`${P}/api/runs/failed-0/value?ref=${ref}`).set(user)).status]).toEqual([ref, 400]);
    }
  });

  it('shows run ids with slashes and markup as text, on pages and in the API', async () => {
    const id = 'odd/<b>id</b> & "quotes"';
    await client.start(DashApproval, '<script>alert(1)</script>', { id });
    const page = await api().get(`${P}/runs/${encodeURIComponent(id)}`).set(user);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('<script>alert(1)</script>');
    expect(page.text).not.toContain('<b>id</b>');
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect((await api().get(`${P}/api/runs/${encodeURIComponent(id)}`).set(user)).body.runId).toBe(id);
    await client.cancel(id);
  });

  it('cuts large values at about 10 KB and gives them whole on the value route', async () => {
    await client.start(DashApproval, { blob: 'y'.repeat(30_000), list: Array.from({ length: 3_000 }, (_, i) => i) }, { id: 'large-1' });
    const run = await api().get(`${P}/api/runs/large-1`).set(user);
    expect(run.body.input).toMatchObject({ truncated: true, ref: 'input' });
    expect(JSON.stringify(run.body.input).length).toBeLessThan(20_000);
    const page = await api().get(`${P}/runs/large-1`).set(user);
    expect(page.text).toContain('value?ref=input');
    const whole = await api().get(`${P}/api/runs/large-1/value?ref=input`).set(user);
    expect(whole.body.value.truncated).toBe(false);
    expect(whole.body.value.tree.entries[0].value.value).toHaveLength(30_000);
    expect(whole.body.value.tree.entries[1].value.items).toHaveLength(3_000);
    expect((await api().get(`${P}/runs/large-1/value?ref=input`).set(user)).status).toBe(200);
    await client.cancel('large-1');
  });

  it('refuses cross-site and tokenless actions', async () => {
    const path = '/api/runs/waiting-1/pause';
    expect((await post(path, {}, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await post(path, {}, { origin: 'null' })).status).toBe(403);
    expect((await post(path, {}, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await post(path, {}, { 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect((await post(path, {}, { 'x-cairn-csrf': 'A'.repeat(43) })).status).toBe(403);
    const noToken = await api().post(`${P}${path}`).set({ ...user, cookie, 'content-type': 'application/json' }).send('{}');
    expect(noToken.body).toMatchObject({ statusCode: 403, message: expect.stringContaining('CSRF') });
    const noCookie = await api().post(`${P}${path}`).set({ ...user, 'x-cairn-csrf': token, 'content-type': 'application/json' }).send('{}');
    expect(noCookie.status).toBe(403);
    const form = await api().post(`${P}${path}`).set({ ...user, cookie, 'x-cairn-csrf': token, 'content-type': 'text/plain' }).send('{}');
    expect(form.status).toBe(415);
    expect((await client.describe('waiting-1'))!.status).toBe('waiting');
    const host = new URL(url).host;
    const sameOrigin = await post(path, {}, { origin: `http://${host}`, 'sec-fetch-site': 'same-origin' });
    expect(sameOrigin.body).toEqual({ outcome: 'ok' });
    expect((await post('/api/runs/waiting-1/resume')).body).toEqual({ outcome: 'ok' });
  });

  it('records the operator of each action in the run history', async () => {
    await client.start(DashApproval, {}, { id: 'ops-1' });
    await eventually(async () => (await client.describe('ops-1'))?.status === 'waiting');
    expect((await post('/api/runs/ops-1/pause')).body).toEqual({ outcome: 'ok' });
    expect((await post('/api/runs/ops-1/pause')).body).toEqual({ outcome: 'noop' });
    expect((await post('/api/runs/ops-1/resume', {}, { 'x-user': 'bob' })).body).toEqual({ outcome: 'ok' });
    expect((await post('/api/runs/ops-1/cancel', { compensate: false })).body).toEqual({ outcome: 'ok' });
    await eventually(async () => (await client.describe('ops-1'))?.status === 'cancelled');
    const { events } = await client.history('ops-1');
    const actions = events.filter((e) => e.type === 'operator.action').map((e) => e.detail);
    expect(actions).toEqual([
      { action: 'pause', by: 'alice' },
      { action: 'resume', by: 'bob' },
      { action: 'cancel', compensate: false, by: 'alice' },
    ]);
  });

  it('validates each action body and maps the run state to 404 and 409', async () => {
    expect((await post('/api/runs/nope/pause')).status).toBe(404);
    expect(kind === 'fastify' ? [400, 414] : [400]).toContain((await post(`/api/runs/${'x'.repeat(256)}/pause`)).status);
    expect((await post('/api/runs/waiting-1/pause', { now: true })).status).toBe(400);
    expect((await post('/api/runs/waiting-1/cancel', { compensate: 'yes' })).status).toBe(400);
    expect((await post('/api/runs/waiting-1/cancel', [])).status).toBe(400);
    expect((await post('/api/runs/failed-0/cancel')).body).toMatchObject({ statusCode: 409, code: 'CAIRN_RUN_NOT_ACTIVE' });
    expect((await post('/api/runs/waiting-1/retry')).body).toMatchObject({ statusCode: 409, code: 'CAIRN_INVALID_RUN_STATE' });
    expect((await post('/api/runs/waiting-1/signal', {})).status).toBe(400);
    expect((await post('/api/runs/waiting-1/signal', { name: '' })).status).toBe(400);
    expect((await post('/api/runs/waiting-1/signal', { name: 'n'.repeat(256) })).status).toBe(400);
    expect((await post('/api/runs/waiting-1/signal', { name: 'approve', extra: 1 })).status).toBe(400);
    expect((await post('/api/runs/waiting-1/signal', { name: 'later', payload: 'p'.repeat(70_000) })).body).toMatchObject({ statusCode: 413, code: 'CAIRN_PAYLOAD_TOO_LARGE' });
    expect((await post('/api/runs/failed-0/skip', {})).status).toBe(400);
    expect((await post('/api/runs/waiting-1/skip', { output: 1 })).body).toMatchObject({ statusCode: 409, code: 'CAIRN_INVALID_RUN_STATE' });
    expect((await post('/api/runs/failed-0/fork', {})).status).toBe(400);
    expect((await post('/api/runs/failed-0/fork', { fromStep: 'nope' })).status).toBe(400);
    expect((await post('/api/runs/failed-0/fork', { fromStep: 'ship' })).status).toBe(400);
    expect((await post('/api/runs/failed-0/fork', { fromStep: 'charge', id: 'failed-1' })).body).toMatchObject({ statusCode: 409, code: 'CAIRN_RUN_ALREADY_EXISTS' });
    expect((await post('/api/runs/failed-0/fork', { fromStep: 'charge', id: '' , input: 1, x: 2 })).status).toBe(400);
  });

  it('signals, skips and forks through the API', async () => {
    await client.start(DashApproval, {}, { id: 'sig-1' });
    await eventually(async () => (await client.describe('sig-1'))?.status === 'waiting');
    expect((await post('/api/runs/sig-1/signal', { name: 'approve', payload: { ok: true } })).body).toEqual({ outcome: 'ok' });
    expect(await client.getHandle('sig-1').result({ timeout: '5s' })).toEqual({ approvedBy: { ok: true } });

    await (await client.start(DashOrder, { id: 'x', total: 1 }, { id: 'skip-1' })).result().catch(() => undefined);
    expect((await post('/api/runs/skip-1/skip', { output: { charged: 'by hand' } })).body).toEqual({ outcome: 'ok' });
    expect(await client.getHandle('skip-1').result({ timeout: '5s' })).toEqual({ shipped: { charged: 'by hand' } });
    const skipped = (await client.history('skip-1')).events.find((e) => e.type === 'operator.action');
    expect(skipped?.detail).toMatchObject({ action: 'skip', step: 'charge', by: 'alice' });

    behaviour.failCharge = false;
    const fork = await post('/api/runs/failed-0/fork', { fromStep: 'charge', id: `fork-${kind}` });
    expect(fork.status).toBe(201);
    expect(fork.body).toEqual({ runId: `fork-${kind}` });
    expect(await client.getHandle(`fork-${kind}`).result({ timeout: '5s' })).toEqual({ shipped: { charged: 'o0' } });
    const started = (await client.history(`fork-${kind}`)).events[0];
    expect(started.detail).toMatchObject({ forkedFrom: 'failed-0', fromStep: 'charge', by: 'alice' });
  });

  it('previews and runs bulk actions by filter, refusing more runs than confirmed', async () => {
    for (let i = 0; i < 3; i++) await client.start(DashApproval, {}, { id: `bulk-${kind}-${i}` });
    const filter = { workflow: 'dash-approval', status: 'waiting', from: new Date(Date.now() - 60_000).toISOString() };
    await eventually(async () => (await api().get(`${P}/api/bulk/cancel?workflow=dash-approval&status=waiting`).set(user)).body.count >= 3);
    const preview = await api().get(`${P}/api/bulk/cancel?${new URLSearchParams(filter)}`).set(user);
    expect(preview.body).toMatchObject({ action: 'cancel', capped: false });
    const count = preview.body.count as number;
    expect(count).toBeGreaterThanOrEqual(3);
    for (const q of ['cursor=abc', 'limit=5', 'status=nope', 'x=1']) expect([q, (await api().get(`${P}/api/bulk/cancel?${q}`).set(user)).status]).toEqual([q, 400]);
    expect((await api().get(`${P}/api/bulk/delete`).set(user)).status).toBe(400);
    expect((await post('/api/bulk/cancel', { filter })).status).toBe(400);
    expect((await post('/api/bulk/cancel', { filter, confirmCount: count - 1 })).body).toMatchObject({ statusCode: 409 });
    expect((await post('/api/bulk/retry', { filter, confirmCount: 1, compensate: true })).status).toBe(400);
    expect((await post('/api/bulk/cancel', { filter: { ...filter, cursor: 'x' }, confirmCount: count })).status).toBe(400);
    const done = await post('/api/bulk/cancel', { filter, confirmCount: count, compensate: false });
    expect(done.body).toMatchObject({ action: 'cancel', matched: count, done: count, skipped: 0, failed: [] });
    expect((await client.describe(`bulk-${kind}-0`))!.status).toBe('cancelled');

    const retry = await api().get(`${P}/api/bulk/retry?workflow=dash-order`).set(user);
    expect(retry.body.count).toBeGreaterThanOrEqual(3);
    behaviour.failCharge = false;
    const retried = await post('/api/bulk/retry', { filter: { workflow: 'dash-order' }, confirmCount: retry.body.count });
    expect(retried.body).toMatchObject({ matched: retry.body.count, done: retry.body.count });
    await eventually(async () => (await client.describe('failed-2'))?.status === 'completed');
  });

  it('streams live events of the runs asked for', async () => {
    const bad = await readStream(`${url}${P}/api/events?runId=${'x'.repeat(300)}`, user, () => true);
    expect(bad.status).toBe(400);
    expect((await readStream(`${url}${P}/api/events?other=1`, user, () => true)).status).toBe(400);
    let started!: () => void;
    const open = new Promise<void>((resolve) => (started = resolve));
    const stream = readStream(`${url}${P}/api/events?workflow=dash-booking`, user, (text) => text.includes('run.waiting'), () => started());
    await open;
    await client.start(DashBooking, { room: '1' }, { id: `live-${kind}` });
    const { status, text } = await stream;
    expect(status).toBe(200);
    expect(text).toContain('event: hello');
    expect(text).toContain('"scope":"cluster"');
    expect(text).toContain(`"runId":"live-${kind}"`);
    expect(text).toContain('"type":"run.started"');
    await client.cancel(`live-${kind}`);
  });
});

describe.each(ADAPTERS)('child runs in the dashboard API on %s', (kind) => {
  let app: INestApplication;
  let client: WorkflowClient;
  const items = (parent: string, count: number) => Array.from({ length: count }, (_, i) => `${parent}:item:${String(i).padStart(2, '0')}`);
  const ids = (runs: { runId: string }[]) => runs.map((r) => r.runId);
  const api = () => request(app.getHttpServer());

  beforeAll(async () => {
    ({ app, client } = await bootDashboard(kind, {}, {}, [...WORKFLOWS, ...CHILD_WORKFLOWS]));
    await client.start(DashFanOut, { count: 22 }, { id: 'fan-big' });
    await client.start(DashFanOut, { count: 2 }, { id: 'fan-small' });
    await client.start(DashAny, {}, { id: 'any-1' });
    await client.start(DashItem, { n: 0 }, { id: 'gen-1' });
    await client.start(DashItem, { n: 1 }, { id: 'gen-1', conflictPolicy: 'terminate-existing' });
    await eventually(async () => {
      const runs = await Promise.all(['fan-big', 'fan-small', 'any-1', 'gen-1', ...items('fan-big', 22), ...items('fan-small', 2)].map((id) => client.describe(id)));
      return runs.every((run) => run?.status === 'waiting');
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('shows flow control on the run: priority, when a delayed run is due (JSON and page)', async () => {
    await client.start(DashAny, {}, { id: 'later-1', delay: '1h', priority: 3 });
    const res = await api().get(`${P}/api/runs/later-1`);
    expect(res.body).toMatchObject({ status: 'pending', priority: 3 });
    expect(Date.parse(res.body.dueAt)).toBeGreaterThan(Date.now() + 3_500_000);
    const page = await api().get(`${P}/runs/later-1`);
    expect(page.text).toMatch(/<dt>Priority<\/dt><dd class="priority">3<\/dd>/);
    expect(page.text).toMatch(/<dt>Due<\/dt><dd class="due-at">/);
  });

  it('gives a parent its first 20 children, whether it has more, their total and that it waits for them', async () => {
    const res = await api().get(`${P}/api/runs/fan-big`);
    expect(res.status).toBe(200);
    const run = res.body;
    expect(run).toMatchObject({ runId: 'fan-big', status: 'waiting', generation: 1, waitingForChildren: 22, children: { more: true, total: 22 } });
    expect(run).not.toHaveProperty('parentRunId');
    expect(run).not.toHaveProperty('waitingFor');
    expect(run.children.runs).toHaveLength(20);
    expect(new Set(ids(run.children.runs)).size).toBe(20);
    for (const child of run.children.runs) {
      expect(items('fan-big', 22)).toContain(child.runId);
      expect(child).toMatchObject({ workflow: 'dash-item', version: 1, status: 'waiting', parentRunId: 'fan-big' });
    }
    const small = (await api().get(`${P}/api/runs/fan-small`)).body;
    expect(small).toMatchObject({ waitingForChildren: 2, children: { more: false, total: 2 } });
    expect(ids(small.children.runs).sort()).toEqual(items('fan-small', 2));
    const lone = (await api().get(`${P}/api/runs/any-1`)).body;
    expect(lone.children).toEqual({ runs: [], more: false, total: 0 });
  });

  it('gives a child its parent, every signal name of a wait and the generation', async () => {
    const child = (await api().get(`${P}/api/runs/fan-big:item:03`)).body;
    expect(child).toMatchObject({ runId: 'fan-big:item:03', parentRunId: 'fan-big', generation: 1, waitingFor: 'go', waitingForSignals: ['go'] });
    expect(child).not.toHaveProperty('waitingForChildren');
    expect((await api().get(`${P}/api/runs/any-1`)).body).toMatchObject({ waitingFor: 'approve', waitingForSignals: ['approve', 'reject'] });
    expect((await api().get(`${P}/api/runs/gen-1`)).body).toMatchObject({ generation: 2, waitingForSignals: ['go'] });
  });

  it('says no more that a parent waits once its children ended, and shows them ended', async () => {
    for (const id of items('fan-small', 2)) await client.signal(id, 'go', id);
    expect(await client.getHandle('fan-small').result({ timeout: '5s' })).toEqual({ children: 2 });
    const run = (await api().get(`${P}/api/runs/fan-small`)).body;
    expect(run.status).toBe('completed');
    expect(run).not.toHaveProperty('waitingForChildren');
    expect(run.children.runs.map((c: { status: string }) => c.status)).toEqual(['completed', 'completed']);
    expect(run.history.map((e: RunEvent) => e.type)).toEqual(expect.arrayContaining(['child.started', 'child.ended']));
  });

  it('lists the children of a run with ?parent=, with the other filters and paging', async () => {
    const all = await api().get(`${P}/api/runs?parent=fan-big`);
    expect(all.status).toBe(200);
    expect(ids(all.body.runs).sort()).toEqual(items('fan-big', 22));
    expect(all.body.runs.every((r: { parentRunId?: string }) => r.parentRunId === 'fan-big')).toBe(true);
    const first = await api().get(`${P}/api/runs?parent=fan-big&limit=15`);
    expect(first.body.runs).toHaveLength(15);
    const rest = await api().get(`${P}/api/runs?parent=fan-big&limit=15&cursor=${first.body.cursor}`);
    expect([...ids(first.body.runs), ...ids(rest.body.runs)].sort()).toEqual(items('fan-big', 22));
    expect((await api().get(`${P}/api/runs?parent=fan-big&status=completed`)).body.runs).toEqual([]);
    expect(ids((await api().get(`${P}/api/runs?parent=fan-small&workflow=dash-item`)).body.runs).sort()).toEqual(items('fan-small', 2));
    expect(ids((await api().get(`${P}/api/runs?parent=fan-small&id=fan-small:item:01`)).body.runs)).toEqual(['fan-small:item:01']);
    expect((await api().get(`${P}/api/runs?parent=fan-big&id=fan-small:item:01`)).body.runs).toEqual([]);
    expect((await api().get(`${P}/api/runs?parent=any-1`)).body.runs).toEqual([]);
    expect((await api().get(`${P}/api/runs?parent=`)).body.runs.length).toBeGreaterThan(22);
  });

  it('refuses a malformed parent with 400, on the API, the page and a bulk preview', async () => {
    for (const query of [`parent=${'x'.repeat(256)}`, 'parent=a&parent=b', 'parent=%00']) {
      const res = await api().get(`${P}/api/runs?${query}`);
      expect([query, res.status, res.body.code]).toEqual([query, 400, 'CAIRN_INVALID_ARGUMENT']);
    }
    expect((await api().get(`${P}/api/runs?parent=${'x'.repeat(256)}`)).body.message).toContain('"parent"');
    const page = await api().get(`${P}?parent=a&parent=b`);
    expect(page.status).toBe(400);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect((await api().get(`${P}/api/bulk/cancel?parent=${'x'.repeat(256)}`)).status).toBe(400);
  });

  it('keeps the parent in a bulk action\'s filter: only that run\'s children are touched', async () => {
    expect((await api().get(`${P}/api/bulk/cancel?parent=fan-big`)).body).toEqual({ action: 'cancel', count: 22, capped: false });
    expect((await api().get(`${P}/api/bulk/cancel?parent=fan-big&id=fan-big:item:00`)).body.count).toBe(1);
    expect((await api().get(`${P}/api/bulk/cancel?parent=any-1&id=fan-big:item:00`)).body.count).toBe(0);
    expect((await api().get(`${P}/api/bulk/cancel?workflow=dash-item`)).body.count).toBe(23);
  });

  it('renders the parent filter, the children panel and the parent link on the pages', async () => {
    const list = await api().get(`${P}?parent=fan-big`);
    expect(list.status).toBe(200);
    expect(list.text).toContain('children of <a class="id" href="workflows/runs/fan-big">fan-big</a>');
    expect(list.text).toContain('name="parent" value="fan-big"');
    expect(list.text).toContain('data-filter="{&quot;parent&quot;:&quot;fan-big&quot;}"');
    expect(list.text.match(/<tr data-run=/g)).toHaveLength(22);
    const parent = await api().get(`${P}/runs/fan-big`);
    expect(parent.text).toContain('<a class="all-children" href="../../workflows?parent=fan-big">all 22 children</a>');
    expect(parent.text).toContain('22 child runs');
    expect(parent.text).toMatch(/<section data-live="children"><section class="panel children">/);
    const child = await api().get(`${P}/runs/${encodeURIComponent('fan-big:item:00')}`);
    expect(child.text).toContain('<a class="parent-run" href="../../workflows/runs/fan-big">fan-big</a>');
    expect(child.text).toContain('<section data-live="children"></section>');
    expect(child.text).not.toContain('Generation');
    expect((await api().get(`${P}/runs/gen-1`)).text).toMatch(/<dt>Generation<\/dt><dd class="generation"[^>]*>2<\/dd>/);
  });
});

describe('dashboard options', () => {
  const env = process.env.NODE_ENV;
  afterAll(() => {
    process.env.NODE_ENV = env;
  });

  it('refuses to mount without a guard in production, unless allowUnauthenticated', async () => {
    process.env.NODE_ENV = 'production';
    try {
      const error = await rejection(bootDashboard('express'), ConfigurationError, 'CAIRN_CONFIGURATION');
      expect(error.message).toContain('without a guard');
      expect(error.message).toContain('allowUnauthenticated');
      const open = await bootDashboard('express', { allowUnauthenticated: true });
      await open.app.close();
      const guarded = await bootDashboard('express', { guard: HeaderUserGuard });
      await guarded.app.close();
    } finally {
      process.env.NODE_ENV = env;
    }
  });

  it('refuses malformed options when forRoot is called', () => {
    expect(() => DurableExecutionDashboardModule.forRoot({ path: '/a b' })).toThrow(ConfigurationError);
    expect(() => DurableExecutionDashboardModule.forRoot({ path: '/:id' })).toThrow(/segment/);
    expect(() => DurableExecutionDashboardModule.forRoot({ path: '/a/../b' })).toThrow(ConfigurationError);
    expect(() => DurableExecutionDashboardModule.forRoot({ readOnly: 'yes' as never })).toThrow(/readOnly/);
    expect(() => DurableExecutionDashboardModule.forRoot({ guard: {} as never })).toThrow(/guard/);
    expect(() => DurableExecutionDashboardModule.forRoot({ redact: 1 as never })).toThrow(/redact/);
  });
});

describe.each(ADAPTERS)('read-only dashboard on %s', (kind) => {
  let app: INestApplication;
  let client: WorkflowClient;

  beforeAll(async () => {
    ({ app, client } = await bootDashboard(kind, { readOnly: true, path: 'ops/runs' }));
    await (await client.start(DashOrder, { id: 'o', total: 1 }, { id: 'ro-1' })).result().catch(() => undefined);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('mounts no action route and renders no action control, at the configured path', async () => {
    const server = app.getHttpServer();
    for (const action of ['cancel', 'pause', 'resume', 'retry', 'signal', 'skip', 'fork']) {
      const res = await request(server).post(`/ops/runs/api/runs/ro-1/${action}`).set('content-type', 'application/json').send('{}');
      expect([action, res.status]).toEqual([action, 404]);
    }
    expect((await request(server).get('/ops/runs/api/bulk/retry')).status).toBe(404);
    expect((await request(server).post('/ops/runs/api/bulk/retry').set('content-type', 'application/json').send('{}')).status).toBe(404);
    const list = await request(server).get('/ops/runs');
    expect(list.status).toBe(200);
    expect(list.text).not.toContain('data-bulk');
    expect(list.text).toContain('read-only');
    const run = await request(server).get('/ops/runs/runs/ro-1');
    expect(run.status).toBe(200);
    expect(run.text).not.toMatch(/data-action|<form data-/);
    expect((await request(server).get('/ops/runs/api/runs/ro-1')).body).toMatchObject({ status: 'failed', actions: [], forkSteps: [] });
    expect((await request(server).get(`/workflows`)).status).toBe(404);
  });

  it('streams this instance\'s events when the durable module does not broadcast them, and says so', async () => {
    const page = await request(app.getHttpServer()).get('/ops/runs');
    expect(page.text).toContain('live (this instance)');
    expect(page.text).toContain('events: { cluster: true }');
  });
});

describe('live streams and shutdown', () => {
  it.each(ADAPTERS)('closing the %s app ends the open live streams at once', async (kind) => {
    const { app } = await bootDashboard(kind);
    await app.listen(0, '127.0.0.1');
    const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const ended = new Promise<string>((resolve, reject) => {
      get(`${base}/workflows/api/events`, (res) => {
        let text = '';
        opened();
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
        res.on('error', reject);
      }).on('error', reject);
    });
    await open;
    const start = Date.now();
    await app.close();
    expect(await ended).toContain('event: hello');
    expect(Date.now() - start).toBeLessThan(2_000);
  });
});

describe('the sample app', () => {
  it('mounts the dashboard at /workflows', async () => {
    const { createApp, loadConfig } = await import('../../sample-app/src/create-app.js');
    const app = await createApp({ ...loadConfig({ CAIRN_STORE: 'memory' }), logger: false });
    try {
      const server = app.getHttpServer();
      const page = await request(server).get('/workflows');
      expect(page.status).toBe(200);
      expect(page.text).toContain('<h1>Runs</h1>');
      expect((await request(server).get('/workflows/workflows')).text).toContain('order-fulfilment');
    } finally {
      await app.close();
    }
  });
});

describe('redact', () => {
  it('runs on the server before any value leaves it, and hides a value when it throws', async () => {
    const { app, client } = await bootDashboard('express', {
      redact: (value, where) => {
        if (where.field === 'input' && value && typeof value === 'object' && 'card' in value) return { ...value, card: '****' };
        if (where.field === 'error' && typeof value === 'string') return value.replace('declined', '[redacted]');
        if (where.field === 'signal') throw new Error('no signals for you: secret-payload');
        return value;
      },
    });
    try {
      await (await client.start(DashOrder, { id: 'o', total: 1, card: '4242-4242' } as never, { id: 'red-1' })).result().catch(() => undefined);
      await client.start(DashApproval, {}, { id: 'red-2' });
      await eventually(async () => (await client.describe('red-2'))?.status === 'waiting');
      await client.signal('red-2', 'other', { secret: 'secret-payload' });
      const server = app.getHttpServer();
      const texts = await Promise.all(
        ['/workflows/api/runs/red-1', '/workflows/runs/red-1', '/workflows/api/runs', '/workflows', '/workflows/api/runs/red-1/value?ref=input', '/workflows/api/runs/red-2', '/workflows/runs/red-2', '/workflows/api/runs/red-2/signals'].map(
          async (path) => (await request(server).get(path)).text,
        ),
      );
      for (const text of texts) {
        expect(text).not.toContain('4242-4242');
        expect(text).not.toContain('declined');
        expect(text).not.toContain('secret-payload');
      }
      expect(texts[0]).toContain('****');
      expect(texts[0]).toContain('[redacted]');
      expect(texts[5]).toContain('[hidden: redact threw]');
    } finally {
      await app.close();
    }
  });
});
