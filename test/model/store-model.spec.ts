import { afterAll, beforeAll, describe, it } from '@jest/globals';
import fc from 'fast-check';
import { MemoryStore } from '../../src/store/memory/memory.store.js';
import { testPostgres, testRedis } from '../setup/test-servers.js';
import { opSequence } from './model-ops.js';
import { checkClock, runSequence } from './model-runner.js';
import {
  memoryTarget,
  pgliteTarget,
  postgresTarget,
  redisClusterTarget,
  redisStandaloneTarget,
  type ModelTarget,
} from './model-targets.js';

/**
 * Model-based differential test of the store port: random sequences of store operations (model-ops.ts) over a few run
 * ids, applied to the memory store (the reference) and to every real store, comparing every result and the final
 * state after normalising lease tokens and clock readings (model-runner.ts explains how). Each sequence gets an empty
 * store (fresh key prefix on Redis, emptied tables on PostgreSQL/PGlite, a new memory store); each store is set up
 * once per describe.
 *
 * Budget: 15–40 sequences of up to 25 ops per store, random seed (about 25 s for the file, mostly server start-up).
 * On a failure fast-check shrinks the sequence and prints `seed` and `path`; the cause shows the whole trace.
 *   CAIRN_MODEL_SEED=<seed> CAIRN_MODEL_PATH=<path> npm run test:jest -- test/model -t 'vs redis agrees'   replays it
 *   CAIRN_MODEL_RUNS=<n>                    runs n sequences per store (e.g. 1000 for a longer search)
 *   CAIRN_MODEL_KNOWN_BUGS=1                also runs the ops of reported, unfixed divergences (model-known-bugs.ts)
 */

const MAX_OPS = 25;
const runsOverride = process.env.CAIRN_MODEL_RUNS ? Number(process.env.CAIRN_MODEL_RUNS) : undefined;
const seed = process.env.CAIRN_MODEL_SEED ? Number(process.env.CAIRN_MODEL_SEED) : undefined;
const path = process.env.CAIRN_MODEL_PATH || undefined;
/** Generous: a failing property also shrinks against the real store. */
const TIMEOUT_MS = Math.max(300_000, (runsOverride ?? 0) * 2_000);

function describeModel(describeFn: typeof describe | typeof describe.skip, target: ModelTarget, defaultRuns: number): void {
  describeFn(`store model: memory vs ${target.label}`, () => {
    beforeAll(async () => {
      await target.setup();
      const store = await target.fresh();
      try {
        await checkClock(store, target.label);
      } finally {
        await target.done(store);
      }
    }, 60_000);
    afterAll(() => target.teardown(), 60_000);

    it(
      'agrees with the memory store on every result and on the final state',
      async () => {
        await fc.assert(
          fc.asyncProperty(opSequence(MAX_OPS), async (ops) => {
            const subject = await target.fresh();
            const reference = new MemoryStore();
            try {
              await runSequence(ops, reference, subject, target.label, target.knownBugs, {
                wakesParentsInSecondWrite: target.wakesParentsInSecondWrite,
              });
            } finally {
              await target.done(subject);
              await reference.close();
            }
          }),
          {
            numRuns: runsOverride ?? defaultRuns,
            ...(seed !== undefined ? { seed } : {}),
            ...(path !== undefined ? { path } : {}),
          },
        );
      },
      TIMEOUT_MS,
    );
  });
}

const postgres = testPostgres();
const redis = testRedis();

describeModel(describe, memoryTarget(), 15);
describeModel(describe, pgliteTarget(), 30);
describeModel(postgres.describe, postgresTarget(postgres.url), 40);
describeModel(redis.describe, redisStandaloneTarget(redis.url), 40);
describeModel(redis.describe, redisClusterTarget(), 40);
