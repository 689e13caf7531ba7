import { describe, expect, it, jest } from '@jest/globals';

// @opentelemetry/api is an optional peer: without it nothing is recorded, nothing fails, and one debug line says why.
jest.unstable_mockModule('@opentelemetry/api', () => {
  throw new Error("Cannot find package '@opentelemetry/api' imported from instrumentation.js");
});

describe('instrumentation without @opentelemetry/api installed', () => {
  it('is the no-op instrumentation, and says so once at debug level', async () => {
    const { createInstrumentation, NOOP_INSTRUMENTATION } = await import('../../src/observability/instrumentation.js');
    const debug = jest.fn();
    const instrumentation = await createInstrumentation({ logger: { debug } });
    expect(instrumentation).toBe(NOOP_INSTRUMENTATION);
    expect(debug).toHaveBeenCalledTimes(1);
    expect(instrumentation.captureTrace()).toBeUndefined();
    const outcome = Promise.resolve({ ok: true as const, value: 1 });
    const info = { runId: 'r', workflow: 'w', version: 1, step: 's', attempt: 1, kind: 'step' as const, instanceId: 'i' };
    expect(instrumentation.runAttempt(info, () => outcome)).toBe(outcome);
    expect(await instrumentation.clientCall('cairn.start w', { 'cairn.workflow': 'w' }, async (span) => (span.setAttribute('k', 1), 'called'))).toBe('called');
    expect(() => {
      instrumentation.runStarted('w');
      instrumentation.stepEnded('w', 's', 1, false);
      instrumentation.inFlight(1);
    }).not.toThrow();
  });
});
