/**
 * The dashboard's pure parts: the value renderer (types, budget, cycles, hostile values), escaping, relative links,
 * the instants of the time filter, the operator of a request and the actions a status allows.
 */
import { describe, expect, it } from '@jest/globals';
import { toValueTree, cutString } from '../../src/dashboard/value-tree.js';
import { escapeHtml, html, trusted } from '../../src/dashboard/views/html.js';
import { valueText } from '../../src/dashboard/views/value.view.js';
import { relativeLinks } from '../../src/dashboard/dashboard-page.context.js';
import { parseInstant, parseRunsQuery } from '../../src/dashboard/dashboard-request.parser.js';
import { operatorOf } from '../../src/dashboard/dashboard-request.context.js';
import { actionsFor } from '../../src/dashboard/dashboard.reader.js';
import { assertMountAllowed, resolveDashboardOptions } from '../../src/dashboard/dashboard.options.js';
import { ConfigurationError } from '../../src/index.js';

describe('toValueTree', () => {
  it('says what each value is, as JSON-safe data', () => {
    const { tree, truncated } = toValueTree(
      { s: 'x', n: -0, nan: NaN, inf: -Infinity, b: true, u: undefined, z: null, big: 10n ** 20n, d: new Date(0), bad: new Date(NaN), m: new Map([[{ k: 1 }, 'v']]), set: new Set([1]), re: /a+/g, e: new TypeError('boom'), f: function named() {}, sym: Symbol('s'), arr: [1, [2]], buf: new Uint8Array(2) },
      10_000,
    );
    expect(truncated).toBe(false);
    expect(JSON.parse(JSON.stringify(tree))).toEqual(tree);
    const byKey = Object.fromEntries((tree as { entries: { key: string; value: unknown }[] }).entries.map((e) => [e.key, e.value]));
    expect(byKey).toEqual({
      s: { type: 'string', value: 'x' },
      n: { type: 'number', value: '-0' },
      nan: { type: 'number', value: 'NaN' },
      inf: { type: 'number', value: '-Infinity' },
      b: { type: 'boolean', value: true },
      u: { type: 'undefined' },
      z: { type: 'null' },
      big: { type: 'bigint', value: '100000000000000000000' },
      d: { type: 'date', value: '1970-01-01T00:00:00.000Z' },
      bad: { type: 'date', value: 'Invalid Date' },
      m: { type: 'map', size: 1, entries: [{ key: { type: 'object', entries: [{ key: 'k', value: { type: 'number', value: 1 } }] }, value: { type: 'string', value: 'v' } }] },
      set: { type: 'set', size: 1, items: [{ type: 'number', value: 1 }] },
      re: { type: 'regexp', value: '/a+/g' },
      e: { type: 'error', name: 'TypeError', message: 'boom' },
      f: { type: 'other', value: 'function named' },
      sym: { type: 'other', value: 'Symbol(s)' },
      arr: { type: 'array', items: [{ type: 'number', value: 1 }, { type: 'array', items: [{ type: 'number', value: 2 }] }] },
      buf: { type: 'other', value: 'Uint8Array' },
    });
  });

  it('cuts long strings and long collections to the budget, and says how much is left out', () => {
    const long = toValueTree('y'.repeat(50_000), 10_000);
    expect(long).toMatchObject({ truncated: true, tree: { type: 'string', length: 50_000 } });
    expect((long.tree as { value: string }).value.length).toBeLessThanOrEqual(10_000);
    const many = toValueTree(Array.from({ length: 100_000 }, (_, i) => i), 10_000);
    expect(many.truncated).toBe(true);
    const arr = many.tree as { items: unknown[]; more: number };
    expect(arr.items.length + arr.more).toBe(100_000);
    expect(JSON.stringify(many.tree).length).toBeLessThan(40_000);
    expect(toValueTree({ a: 'z'.repeat(100) }, 10_000).truncated).toBe(false);
  });

  it('survives cycles, deep nesting, shared references and values that throw', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    expect(toValueTree(cyclic, 1_000).tree).toEqual({ type: 'object', entries: [{ key: 'name', value: { type: 'string', value: 'loop' } }, { key: 'self', value: { type: 'circular' } }] });
    let deep: unknown = 0;
    for (let i = 0; i < 500; i++) deep = [deep];
    expect(toValueTree(deep, 100_000).truncated).toBe(true);
    const shared = { x: 1 };
    let dag: unknown = shared;
    for (let i = 0; i < 40; i++) dag = [dag, dag];
    expect(toValueTree(dag, 10_000).truncated).toBe(true);
    const hostile = new Proxy({}, { ownKeys: () => { throw new Error('no'); } });
    expect(toValueTree(hostile, 100).tree).toEqual({ type: 'other', value: '(unreadable)' });
    class Money { constructor(readonly cents: number) {} }
    expect(toValueTree(new Money(5), 100).tree).toMatchObject({ type: 'object', className: 'Money' });
  });

  it('never splits a surrogate pair', () => {
    expect(cutString('a😀b', 2)).toBe('a');
    expect(cutString('a😀b', 3)).toBe('a😀');
  });
});

describe('rendering', () => {
  it('escapes every interpolated value and keeps trusted markup', () => {
    const hostile = `<script>alert("x")</script>' & "`;
    expect(escapeHtml(hostile)).toBe('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; &amp; &quot;');
    expect(html`<a title="${hostile}">${[hostile, 1, null, false, undefined]}</a>${trusted('<br>')}`.value).toBe(
      `<a title="${escapeHtml(hostile)}">${escapeHtml(hostile)}1</a><br>`,
    );
    const text = valueText(toValueTree({ '<k>': '<v>', m: new Map([['</pre>', 1n]]) }, 1_000).tree).value;
    expect(text).not.toMatch(/<(k|v|\/pre)>/);
    expect(text).toContain('&quot;&lt;k&gt;&quot;');
    expect(text).toContain('Map(1)');
    expect(text).toContain('1n');
  });
});

describe('relative links', () => {
  it('lead back to the mount from any page, with or without a global prefix or a trailing slash', () => {
    const resolve = (page: string, href: string) => new URL(href, `http://h${page}`).pathname;
    const cases: [string, number][] = [
      ['/workflows', 0],
      ['/workflows/', 0],
      ['/api/v1/workflows', 0],
      ['/api/v1/workflows/workflows', 1],
      ['/api/v1/workflows/runs/a%2Fb', 2],
      ['/api/v1/workflows/runs/a%2Fb/', 2],
      ['/api/v1/workflows/runs/x/value', 3],
    ];
    for (const [page, depth] of cases) {
      const { root, base } = relativeLinks(page, depth);
      const mount = page.startsWith('/api') ? '/api/v1/workflows' : '/workflows';
      expect([page, resolve(page, root), resolve(page, `${base}runs/y`)]).toEqual([page, mount, `${mount}/runs/y`]);
    }
    expect(relativeLinks('/', 0)).toEqual({ root: './', base: './' });
    expect(new URL(relativeLinks('/runs/x', 2).base + 'workflows', 'http://h/runs/x').pathname).toBe('/workflows');
  });
});

describe('filters and options', () => {
  it('reads instants as ISO with a zone, epoch ms, or local time in the browser zone', () => {
    expect(parseInstant('2024-05-01T10:00:00Z', 'from').toISOString()).toBe('2024-05-01T10:00:00.000Z');
    expect(parseInstant('2024-05-01T10:00:00+02:00', 'from').toISOString()).toBe('2024-05-01T08:00:00.000Z');
    expect(parseInstant('0', 'from').getTime()).toBe(0);
    expect(parseInstant('2024-05-01T10:00', 'from', -120).toISOString()).toBe('2024-05-01T08:00:00.000Z');
    expect(parseInstant('2024-05-01', 'from').toISOString()).toBe('2024-05-01T00:00:00.000Z');
    for (const bad of ['2024-13-01', '2024-02-30T00:00', 'soon', '2024-05-01T10:00:00+2']) expect(() => parseInstant(bad, 'from')).toThrow(/date-time/);
    expect(parseRunsQuery({ status: 'failed,waiting', limit: '10', workflow: '' })).toEqual({ statuses: ['failed', 'waiting'], limit: 10 });
  });

  it('reads the parent filter as a run id, and refuses a malformed one naming the parameter', () => {
    expect(parseRunsQuery({ parent: 'order-1:spread:0' })).toEqual({ parentRunId: 'order-1:spread:0', limit: 50 });
    expect(parseRunsQuery({ parent: '' })).toEqual({ limit: 50 });
    expect(() => parseRunsQuery({ parent: 'x'.repeat(256) })).toThrow(/Parameter "parent": A run id must be/);
    expect(() => parseRunsQuery({ parent: ['a', 'b'] })).toThrow(/"parent" must be given once/);
    expect(() => parseRunsQuery({ parent: 'a\u0000b' })).toThrow(/NUL/);
  });

  it('names the operator from request.user', () => {
    expect(operatorOf({ headers: {}, user: 'ops' })).toBe('ops');
    expect(operatorOf({ headers: {}, user: { id: 7, email: 'a@b' } })).toBe('7');
    expect(operatorOf({ headers: {}, user: { email: 'a@b' } })).toBe('a@b');
    expect(operatorOf({ headers: {}, user: {} })).toBeUndefined();
    expect(operatorOf({ headers: {} })).toBeUndefined();
    expect(operatorOf({ headers: {}, user: 'x'.repeat(500) })).toHaveLength(255);
  });

  it('offers the actions a status allows', () => {
    expect(actionsFor({ status: 'waiting' })).toEqual(['cancel', 'signal', 'pause', 'fork']);
    expect(actionsFor({ status: 'paused' })).toEqual(['cancel', 'signal', 'resume', 'fork']);
    expect(actionsFor({ status: 'failed', error: { name: 'E', message: 'm', phase: 'step' } })).toEqual(['retry', 'skip', 'fork']);
    expect(actionsFor({ status: 'failed', error: { name: 'E', message: 'm', phase: 'compensation' } })).toEqual(['retry', 'fork']);
    expect(actionsFor({ status: 'completed' })).toEqual(['fork']);
  });

  it('normalises the path and refuses an unguarded production mount', () => {
    expect(resolveDashboardOptions({ path: 'ops//runs/' }).path).toBe('/ops/runs');
    expect(resolveDashboardOptions({}).path).toBe('/workflows');
    expect(resolveDashboardOptions({ path: '/' }).path).toBe('/');
    const open = resolveDashboardOptions({});
    expect(() => assertMountAllowed(open, { NODE_ENV: 'production' })).toThrow(ConfigurationError);
    expect(() => assertMountAllowed(open, { NODE_ENV: 'development' })).not.toThrow();
    expect(() => assertMountAllowed(resolveDashboardOptions({ allowUnauthenticated: true }), { NODE_ENV: 'production' })).not.toThrow();
  });
});
