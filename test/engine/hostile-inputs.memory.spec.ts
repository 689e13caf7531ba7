/**
 * The hostile-input catalogue of issue 19 on the memory store (see hostile-inputs.suite.ts). The memory store has no
 * connection to refuse, so the startup case does not apply; it takes the full 100,000 signals to one run.
 */
import { hostileInputSuite } from './hostile-inputs.suite.js';

hostileInputSuite('memory', {
  store: () => ({ type: 'memory' }),
  signals: { sent: 100_000, consumed: 1_000 },
  concurrentStarts: 2_000,
  controlCalls: 1_000,
});
