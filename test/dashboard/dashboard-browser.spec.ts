/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core): the flows an operator follows, live
 * updates over server-sent events, inert markup in values, and read-only mode. Saves the README's screenshots.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { INestApplication } from '@nestjs/common';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { WorkflowClient } from '../../src/index.js';
import { eventually } from '../nest/helpers.js';
import {
  behaviour,
  bootDashboard,
  CHILD_WORKFLOWS,
  DashAny,
  DashApproval,
  DashBooking,
  DashFanOut,
  DashItem,
  DashOrder,
  gate,
  resetBehaviour,
  WORKFLOWS,
} from './dashboard-fixtures.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/**
 * Where the screenshots go: the README's images in docs/ with CAIRN_UPDATE_SCREENSHOTS=1, else a temporary folder (the
 * tests still take them, without rewriting tracked files on every run).
 */
const DOCS =
  process.env.CAIRN_UPDATE_SCREENSHOTS === '1'
    ? fileURLToPath(new URL('../../docs/', import.meta.url))
    : `${mkdtempSync(join(tmpdir(), 'cairn-dashboard-shots-'))}/`;
const WAIT = { timeout: 5_000 };

let browser: Browser;
let context: BrowserContext;
let page: Page;
/** Browser dialogs (alert, confirm…) that opened: none should, since the dashboard uses its own. */
const nativeDialogs: string[] = [];
/** Script errors and console errors (a Content Security Policy violation is one): none should occur. */
const browserErrors: string[] = [];

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
});

async function freshPage(): Promise<Page> {
  await context?.close();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 }, reducedMotion: 'reduce' });
  const p = await context.newPage();
  p.on('dialog', (dialog) => {
    nativeDialogs.push(dialog.message());
    void dialog.dismiss();
  });
  p.on('pageerror', (error) => browserErrors.push(error.message));
  p.on('console', (message) => {
    if (message.type() === 'error') browserErrors.push(message.text());
  });
  return p;
}

/** The status badge of the run page. */
const runStatus = (p: Page) => p.locator('.summary .badge').textContent();

describe('dashboard in a browser', () => {
  let app: INestApplication;
  let client: WorkflowClient;
  let url: string;

  beforeAll(async () => {
    resetBehaviour();
    ({ app, client } = await bootDashboard('express', {}, { events: { cluster: true } }));
    await app.listen(0, '127.0.0.1');
    url = `${(await app.getUrl()).replace('[::1]', '127.0.0.1')}/workflows`;
    for (let i = 1; i <= 4; i++) await (await client.start(DashOrder, { id: `A-${100 + i}`, total: 20 * i }, { id: `order-${100 + i}` })).result().catch(() => undefined);
    behaviour.failCharge = false;
    await (await client.start(DashOrder, { id: 'A-100', total: 12 }, { id: 'order-100' })).result();
    behaviour.failCharge = true;
    await client.start(DashApproval, { order: 'A-200', amount: 4200 }, { id: 'approval-200' });
    await client.start(DashApproval, { order: 'A-201', amount: 1300 }, { id: 'approval-201' });
    await client.start(DashBooking, { room: '12B' }, { id: 'booking-300' });
    await eventually(async () => (await client.describe('booking-300'))?.status === 'waiting');
    page = await freshPage();
  });
  afterAll(async () => {
    await context?.close();
    await app?.close();
  });
  beforeEach(() => {
    nativeDialogs.length = 0;
  });

  it('opens the runs list with counts per status', async () => {
    await page.goto(url);
    await page.waitForSelector('table.runs tbody tr[data-run="order-101"]', WAIT);
    expect(await page.locator('table.runs tbody tr').count()).toBe(8);
    expect(await page.locator('.counts a[data-status="failed"] b').textContent()).toBe('4');
    expect(await page.locator('.counts a[data-status="waiting"] b').textContent()).toBe('3');
    await page.waitForSelector('#live.on', WAIT);
    mkdirSync(DOCS, { recursive: true });
    await page.screenshot({ path: `${DOCS}dashboard-list.png` });
  });

  it('filters by workflow, status and id', async () => {
    await page.goto(url);
    await page.selectOption('select[name="workflow"]', 'dash-order');
    await page.selectOption('select[name="status"]', 'failed');
    await Promise.all([page.waitForURL(/status=failed/, WAIT), page.click('form.filters button[type="submit"]')]);
    expect(page.url()).not.toContain('from=');
    const statuses = await page.locator('table.runs tbody .badge').allTextContents();
    expect(statuses).toEqual(['failed', 'failed', 'failed', 'failed']);
    await page.fill('input[name="id"]', 'order-102');
    await Promise.all([page.waitForURL(/id=order-102/, WAIT), page.click('form.filters button[type="submit"]')]);
    expect(await page.locator('table.runs tbody tr').count()).toBe(1);
    await page.click('.counts a[data-status="completed"]');
    await page.waitForSelector('table.runs tbody tr[data-run="order-100"]', WAIT);
  });

  it('opens a failed run and reads its history and step timeline', async () => {
    await page.goto(url);
    await Promise.all([page.waitForURL(/runs\/order-101$/, WAIT), page.click('a[href$="runs/order-101"]')]);
    expect(await runStatus(page)).toBe('failed');
    expect(await page.locator('.error-panel').textContent()).toContain('card declined');
    const events = await page.locator('table.history tbody td.mono').allTextContents();
    expect(events).toEqual(['run.started', 'step.started', 'step.completed', 'step.started', 'step.failed', 'run.failed']);
    expect(await page.locator('.step[data-step="charge"] .tries').textContent()).toContain('attempt 1 · failed');
    await page.locator('.step[data-step="reserve"] summary').click();
    const output = await page.locator('.step[data-step="reserve"] pre.json').textContent();
    expect(output).toContain('Date(1970-01-01T00:00:00.000Z)');
    expect(output).toContain('12n');
    expect(output).toContain('Set(1)');
    expect(output).toContain('Map(1)');
    await page.locator('.step[data-step="reserve"] summary').click();
    await page.screenshot({ path: `${DOCS}dashboard-run.png`, fullPage: true });
  });

  it('retries a failed run and watches it complete live', async () => {
    await page.goto(`${url}/runs/order-101`);
    await page.waitForSelector('#live.on', WAIT);
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 1));
    behaviour.failCharge = false;
    const held = gate();
    behaviour.chargeGate = held;
    await page.click('button[data-action="retry"]');
    await page.waitForSelector('.summary .badge.s-running', WAIT);
    held.open();
    await page.waitForSelector('.summary .badge.s-completed', WAIT);
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(1);
    expect(await page.locator('table.history').textContent()).toContain('run.completed');
    expect(await page.locator('.io .panel:nth-child(2) pre').textContent()).toContain('"shipped"');
  });

  it('sends a signal with a validated JSON payload to a waiting run', async () => {
    await page.goto(`${url}/runs/approval-200`);
    expect(await runStatus(page)).toBe('waiting');
    await page.click('details:has(form[data-action="signal"]) summary');
    expect(await page.inputValue('form[data-action="signal"] input[name="name"]')).toBe('approve');
    await page.fill('form[data-action="signal"] textarea[name="payload"]', '{"by": ');
    await page.click('form[data-action="signal"] button[type="submit"]');
    expect(await page.locator('form[data-action="signal"] .json-error').textContent()).toContain('Not valid JSON');
    expect((await client.describe('approval-200'))!.status).toBe('waiting');
    await page.fill('form[data-action="signal"] textarea[name="payload"]', '{"by": "ops", "at": "now"}');
    await page.click('form[data-action="signal"] button[type="submit"]');
    await page.waitForSelector('.summary .badge.s-completed', WAIT);
    expect(await page.locator('.io .panel:nth-child(2) pre').textContent()).toContain('"ops"');
    expect(await client.getHandle('approval-200').result()).toEqual({ approvedBy: { by: 'ops', at: 'now' } });
  });

  it('skips a failed step with an entered output', async () => {
    await page.goto(`${url}/runs/order-102`);
    await page.click('details:has(form[data-action="skip"]) summary');
    await page.fill('form[data-action="skip"] textarea[name="output"]', '{"charged": "by hand"}');
    await page.click('form[data-action="skip"] button[type="submit"]');
    await page.waitForSelector('.summary .badge.s-completed', WAIT);
    expect(await client.getHandle('order-102').result()).toEqual({ shipped: { charged: 'by hand' } });
    expect(await page.locator('table.history').textContent()).toContain('"action":"skip"');
  });

  it('forks a run from a chosen step', async () => {
    behaviour.failCharge = false;
    await page.goto(`${url}/runs/order-103`);
    await page.click('details:has(form[data-action="fork"]) summary');
    expect(await page.locator('form[data-action="fork"] select option').allTextContents()).toEqual(['reserve', 'charge']);
    await page.selectOption('form[data-action="fork"] select[name="fromStep"]', 'charge');
    await page.fill('form[data-action="fork"] input[name="id"]', 'order-103-fork');
    await Promise.all([page.waitForURL(/runs\/order-103-fork$/, WAIT), page.click('form[data-action="fork"] button[type="submit"]')]);
    await page.waitForSelector('.summary .badge.s-completed', WAIT);
    expect(await page.locator('table.history').textContent()).toContain('"forkedFrom":"order-103"');
    expect((await client.describe('order-103'))!.status).toBe('failed');
  });

  it('cancels a run with compensation after a confirmation', async () => {
    await page.goto(`${url}/runs/booking-300`);
    expect(await runStatus(page)).toBe('waiting');
    await page.click('button[data-action="cancel"]');
    await page.waitForSelector('dialog#confirm[open]', WAIT);
    expect(await page.isChecked('dialog#confirm input[name="option"]')).toBe(true);
    await page.click('dialog#confirm button[value="ok"]');
    await page.waitForSelector('.summary .badge.s-cancelled', WAIT);
    await eventually(async () => (await page.locator('table.history').textContent())?.includes('compensation.completed'));
    expect(behaviour.released).toEqual([{ booked: '12B' }]);
    expect(nativeDialogs).toEqual([]);
  });

  it('pauses and resumes a run', async () => {
    await page.goto(`${url}/runs/approval-201`);
    await page.click('button[data-action="pause"]');
    await page.waitForSelector('.summary .badge.s-paused', WAIT);
    await page.click('button[data-action="resume"]');
    await page.waitForSelector('.summary .badge.s-waiting', WAIT);
    const actions = (await client.history('approval-201')).events.filter((e) => e.type === 'operator.action').map((e) => (e.detail as { action: string }).action);
    expect(actions).toEqual(['pause', 'resume']);
  });

  it('retries the failed runs of a filter in bulk after confirming their count', async () => {
    await page.goto(`${url}?workflow=dash-order&status=failed`);
    const rows = await page.locator('table.runs tbody tr[data-run]').count();
    expect(rows).toBe(2);
    await page.click('button[data-bulk="retry"]');
    await page.waitForSelector('dialog#confirm[open]', WAIT);
    expect(await page.locator('dialog#confirm .confirm-text').textContent()).toBe('Retry 2 runs matching this filter?');
    await page.click('dialog#confirm button[value="ok"]');
    await page.waitForSelector('#toast .t:has-text("Retried 2 of 2 runs")', WAIT);
    await page.waitForSelector('table.runs td.empty', WAIT);
  });

  it('shows markup in values and ids as inert text', async () => {
    const id = '<img src=x onerror="window.pwned=1">';
    await client.start(DashApproval, '<script>window.pwned=1;alert(1)</script>', { id });
    await page.goto(url);
    await page.waitForSelector('table.runs tbody tr[data-run="order-100"]', WAIT);
    expect(await page.locator('table.runs td.id a').first().textContent()).toBe(id);
    await page.click('table.runs td.id a >> nth=0');
    await page.waitForSelector('.summary .badge', WAIT);
    expect(await page.locator('.io .panel:first-child pre').textContent()).toBe('"<script>window.pwned=1;alert(1)</script>"');
    expect(await page.locator('h1 .id').textContent()).toBe(id);
    expect(await page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned)).toBeUndefined();
    expect(await page.locator('script').count()).toBe(1);
    expect(await page.locator('img').count()).toBe(0);
    expect(nativeDialogs).toEqual([]);
    await client.cancel(id);
  });

  it('raised no script, console or policy error on any page', () => {
    expect(browserErrors).toEqual([]);
  });
});

describe('child runs in a browser', () => {
  let app: INestApplication;
  let client: WorkflowClient;
  let url: string;
  const items = (parent: string, count: number) => Array.from({ length: count }, (_, i) => `${parent}:item:${String(i).padStart(2, '0')}`);

  beforeAll(async () => {
    resetBehaviour();
    browserErrors.length = 0;
    ({ app, client } = await bootDashboard('express', {}, { events: { cluster: true } }, [...WORKFLOWS, ...CHILD_WORKFLOWS]));
    await app.listen(0, '127.0.0.1');
    url = `${(await app.getUrl()).replace('[::1]', '127.0.0.1')}/workflows`;
    await client.start(DashFanOut, { count: 23 }, { id: 'fan-b' });
    await client.start(DashFanOut, { count: 2 }, { id: 'fan-s' });
    await client.start(DashAny, {}, { id: 'any-b' });
    await client.start(DashItem, { n: 0 }, { id: 'gen-b' });
    await client.start(DashItem, { n: 1 }, { id: 'gen-b', conflictPolicy: 'terminate-existing' });
    await eventually(async () => {
      const runs = await Promise.all(['fan-b', 'fan-s', 'any-b', 'gen-b', ...items('fan-b', 23), ...items('fan-s', 2)].map((id) => client.describe(id)));
      return runs.every((run) => run?.status === 'waiting');
    });
    page = await freshPage();
  });
  afterAll(async () => {
    await context?.close();
    await app?.close();
  });

  it('shows a parent\'s first 20 children and what it waits for, and opens all of them on the runs page', async () => {
    await page.goto(`${url}/runs/fan-b`);
    expect(await page.locator('.summary .waiting-for').textContent()).toBe('23 child runs');
    const rows = page.locator('.children tbody tr[data-run]');
    expect(await rows.count()).toBe(20);
    expect(new Set(await page.locator('.children tbody td.id a').allTextContents()).size).toBe(20);
    expect(await page.locator('.children tbody .badge').allTextContents()).toEqual(Array(20).fill('waiting'));
    expect(await page.locator('.children tbody td:nth-child(2)').first().textContent()).toBe('dash-item v1');
    expect(await page.locator('.children h2 .muted').textContent()).toBe('23');
    expect(await page.locator('a.all-children').textContent()).toBe('all 23 children');
    await Promise.all([page.waitForURL(/\/workflows\?parent=fan-b$/, WAIT), page.click('a.all-children')]);
    expect(await page.locator('h1').textContent()).toBe('Child runs');
    expect(await page.locator('.parent-filter').textContent()).toContain('children of fan-b');
    expect(await page.inputValue('form.filters input[name="parent"]')).toBe('fan-b');
    expect((await page.locator('table.runs tbody tr[data-run]').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-run')))).sort()).toEqual(items('fan-b', 23));
    await Promise.all([page.waitForURL(/parent=fan-b&status=waiting|status=waiting&parent=fan-b/, WAIT), page.click('.counts a[data-status="waiting"]')]);
    expect(await page.locator('table.runs tbody tr[data-run]').count()).toBe(23);
    await Promise.all([page.waitForURL(/\/workflows\?status=waiting$/, WAIT), page.click('.parent-filter a.small')]);
    expect(await page.locator('.parent-filter').count()).toBe(0);
    expect(await page.locator('table.runs tbody tr[data-run="any-b"]').count()).toBe(1);
  });

  it('filters the runs list by parent from the filter form', async () => {
    await page.goto(url);
    await page.fill('form.filters input[name="parent"]', 'fan-s');
    await Promise.all([page.waitForURL(/parent=fan-s/, WAIT), page.click('form.filters button[type="submit"]')]);
    expect(page.url()).not.toContain('id=');
    expect((await page.locator('table.runs tbody tr[data-run]').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-run')))).sort()).toEqual(items('fan-s', 2));
    await page.fill('form.filters input[name="parent"]', 'any-b');
    await Promise.all([page.waitForURL(/parent=any-b/, WAIT), page.click('form.filters button[type="submit"]')]);
    expect(await page.locator('table.runs td.empty').textContent()).toBe('No child run of this run matches this filter.');
  });

  it('links a child to its parent, and shows no children panel on a run without children', async () => {
    await page.goto(`${url}/runs/fan-b`);
    await Promise.all([page.waitForURL(/runs\/fan-b%3Aitem%3A\d\d$/, WAIT), page.click('.children tbody td.id a >> nth=0')]);
    expect(await page.locator('.summary a.parent-run').textContent()).toBe('fan-b');
    expect(await page.locator('.summary .waiting-for').textContent()).toBe('signal go');
    expect(await page.locator('.children').count()).toBe(0);
    expect(await page.locator('.summary .generation').count()).toBe(0);
    await Promise.all([page.waitForURL(/runs\/fan-b$/, WAIT), page.click('.summary a.parent-run')]);
    expect(await page.locator('h1 .id').textContent()).toBe('fan-b');
    await page.goto(`${url}/runs/fan-s`);
    expect(await page.locator('.children tbody tr[data-run]').count()).toBe(2);
    expect(await page.locator('a.all-children').count()).toBe(0);
  });

  it('shows every signal name of a waitForAny, and the generation of a run id started again', async () => {
    await page.goto(`${url}/runs/any-b`);
    expect(await page.locator('.summary .waiting-for').textContent()).toBe('any of the signals approve, reject');
    await page.goto(`${url}/runs/gen-b`);
    expect(await page.locator('.summary .generation').textContent()).toBe('2');
  });

  it('updates the children panel and the wait live as the children end', async () => {
    await page.goto(`${url}/runs/fan-s`);
    await page.waitForSelector('#live.on', WAIT);
    expect(await page.locator('.summary .waiting-for').textContent()).toBe('2 child runs');
    for (const id of items('fan-s', 2)) await client.signal(id, 'go', id);
    await page.waitForSelector('.summary .badge.s-completed', WAIT);
    for (const id of items('fan-s', 2)) await page.waitForSelector(`.children tr[data-run="${id}"] .badge.s-completed`, WAIT);
    expect(await page.locator('.summary .waiting-for').count()).toBe(0);
    expect(await page.locator('table.history').textContent()).toContain('child.ended');
  });

  it('raised no script, console or policy error on any page', () => {
    expect(browserErrors).toEqual([]);
  });
});

describe('read-only dashboard in a browser', () => {
  let app: INestApplication;
  let client: WorkflowClient;

  beforeAll(async () => {
    resetBehaviour();
    ({ app, client } = await bootDashboard('fastify', { readOnly: true }));
    await app.listen(0, '127.0.0.1');
    await (await client.start(DashOrder, { id: 'r', total: 1 }, { id: 'ro-order' })).result().catch(() => undefined);
    await client.start(DashApproval, {}, { id: 'ro-waiting' });
    page = await freshPage();
  });
  afterAll(async () => {
    await context?.close();
    await app?.close();
  });

  it('has no action controls on the list and the run pages', async () => {
    const url = `${(await app.getUrl()).replace('[::1]', '127.0.0.1')}/workflows`;
    await page.goto(url);
    await page.waitForSelector('table.runs tbody tr[data-run="ro-order"]', WAIT);
    expect(await page.locator('[data-bulk], [data-action]').count()).toBe(0);
    for (const id of ['ro-order', 'ro-waiting']) {
      await page.goto(`${url}/runs/${id}`);
      await page.waitForSelector('.summary .badge', WAIT);
      expect(await page.locator('[data-action], .actions, form').count()).toBe(0);
      expect(await page.locator('.ro').textContent()).toBe('read-only');
    }
    expect(browserErrors).toEqual([]);
  });
});
