import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Inject, Logger, Optional } from '@nestjs/common';
import { ConfigurationError, Step, Workflow, type StepContext } from '../../src/index.js';
import { resolveEngineOptions } from '../../src/nest/durable-execution.options.js';
import { eventually, gate, killableStore, SharedMemoryStore, sleep, useApps, type Gate } from '../nest/helpers.js';

const APP = 'APP_NAME';

let hangIn = new Set<string>();
let hangGate: Gate = gate();
let entered: { app: string; at: number }[] = [];

@Workflow()
class Gated {
  constructor(@Optional() @Inject(APP) private readonly app: string = 'default') {}
  @Step() async work(input: string, _ctx: StepContext) {
    entered.push({ app: this.app, at: Date.now() });
    if (hangIn.has(this.app)) await hangGate.promise;
    return `${input}@${this.app}`;
  }
}

function appProvider(name: string) {
  return { providers: [{ provide: APP, useValue: name }] };
}

describe('a stable worker.instanceId: a restarted instance takes its runs back at once', () => {
  const apps = useApps();
  let warn: jest.SpiedFunction<Logger['warn']>;
  beforeEach(() => {
    hangIn = new Set(['A']);
    hangGate = gate();
    entered = [];
    warn = jest.spyOn(Logger.prototype, 'warn');
  });
  afterEach(() => {
    hangGate.open();
    warn.mockRestore();
  });

  const warnings = () => warn.mock.calls.map((call) => String(call[0]));

  /** App A (id `idA`) starts a run and hangs in its step, then its process "dies": it writes nothing more. */
  async function startAndKill(store: SharedMemoryStore, runId: string, worker: { instanceId?: string; leaseMs: number }) {
    const killable = killableStore(store);
    const a = await apps.boot([Gated], { store: killable.store, worker }, appProvider('A'));
    await a.client.start(Gated, 'in', { id: runId });
    await eventually(() => entered.some((e) => e.app === 'A'));
    killable.kill();
    return a;
  }

  it('reclaims at start the runs leased to the same id, though their leases have not expired', async () => {
    const store = new SharedMemoryStore();
    await startAndKill(store, 'r-same', { instanceId: 'pod-1', leaseMs: 60_000 });
    expect((await store.getRun('r-same'))?.leaseOwner).toBe('pod-1');

    const startedAt = Date.now();
    const b = await apps.boot([Gated], { store, worker: { instanceId: 'pod-1', leaseMs: 60_000 } }, appProvider('B'));
    expect(await b.client.getHandle('r-same').result({ timeout: '5s' })).toBe('in@B');
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    // The orphan pickup is logged with the run, the previous owner and how long it was orphaned (0: not expired), in
    // the text and as structured fields.
    expect(warnings()).toContainEqual(
      'Run "r-same" (Gated): taking over the lease of instance "pod-1", orphaned for 0 ms; recovering it from its last checkpoint: ' +
        'step "work" attempt 1 starts over (it may have run in part: keep its side effects idempotent with ctx.idempotencyKey).',
    );
    const takeover = warn.mock.calls.find((call) => String(call[0]).startsWith('Run "r-same" (Gated): taking over'));
    expect(takeover?.[1]).toEqual({
      event: 'lease.takeover',
      runId: 'r-same',
      workflow: 'Gated',
      step: 'work',
      attempt: 1,
      previousOwner: 'pod-1',
      orphanedMs: 0,
    });
  });

  it('leaves runs leased to another id alone until their leases expire', async () => {
    const store = new SharedMemoryStore();
    await startAndKill(store, 'r-other', { instanceId: 'pod-1', leaseMs: 60_000 });
    const b = await apps.boot([Gated], { store, worker: { instanceId: 'pod-2', leaseMs: 60_000 } }, appProvider('B'));
    await sleep(1_000);
    expect(entered.some((e) => e.app === 'B')).toBe(false);
    const run = (await b.client.getHandle('r-other').describe())!;
    expect(run.status).toBe('running');
    expect((await store.getRun('r-other'))?.leaseOwner).toBe('pod-1');
  });

  it('without an explicit id, a restarted instance recovers the run only once the lease expired, and logs the pickup', async () => {
    const store = new SharedMemoryStore();
    const a = await startAndKill(store, 'r-expired', { leaseMs: 400 });
    const owner = (await store.getRun('r-expired'))!.leaseOwner!;
    expect(owner).toMatch(/:\d+:/); // host:pid:random
    const b = await apps.boot([Gated], { store, worker: { leaseMs: 400 } }, appProvider('B'));
    expect(await b.client.getHandle('r-expired').result({ timeout: '5s' })).toBe('in@B');
    const line = warnings().find((w) => w.startsWith('Run "r-expired" (Gated): taking over the lease of'));
    expect(line).toMatch(
      new RegExp(
        `^Run "r-expired" \\(Gated\\): taking over the lease of instance "${owner.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}", orphaned for \\d+ ms; ` +
          'recovering it from its last checkpoint: step "work" attempt 1 starts over .* If that instance is still alive, it stalled past worker\\.leaseMs',
      ),
    );
    void a;
  });

  it('validates worker.instanceId', () => {
    expect(resolveEngineOptions({ worker: { instanceId: 'pod-0' } }).instanceId).toBe('pod-0');
    expect(resolveEngineOptions({}).instanceId).toBeUndefined();
    for (const bad of ['', 'x'.repeat(201), 42, 'pod\u00001', 'pod-\ud800']) {
      expect(() => resolveEngineOptions({ worker: { instanceId: bad as string } })).toThrow(ConfigurationError);
    }
    expect(resolveEngineOptions({ worker: { instanceId: 'x'.repeat(200) } }).instanceId).toHaveLength(200);
  });
});
