/**
 * The hostile-input catalogue of issue 19 on Redis (see hostile-inputs.suite.ts).
 * NOTE: 10,000 signals, not 100,000: each `signal()` is one script call (queue, history event, index marker), so
 * 100,000 sequential sends would take about a minute; 10,000 keep the case within seconds.
 */
import { randomUUID } from 'node:crypto';
import { testRedis } from '../setup/test-servers.js';
import { closedPort } from '../store/connection-errors.helpers.js';
import { hostileInputSuite } from './hostile-inputs.suite.js';

const redis = testRedis();

redis.describe('redis', () => {
  hostileInputSuite('redis', {
    store: () => ({ type: 'redis', url: redis.url, keyPrefix: `cairn-hostile-in-${randomUUID().slice(0, 8)}:` }),
    signals: { sent: 10_000, consumed: 200 },
    concurrentStarts: 2_000,
    controlCalls: 1_000,
    unreachable: async () => {
      const port = await closedPort();
      return {
        options: { store: { type: 'redis', url: `redis://127.0.0.1:${port}` } },
        names: ['Redis', `127.0.0.1:${port}`, 'ECONNREFUSED'],
      };
    },
  });
});
