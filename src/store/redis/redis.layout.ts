import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { StoreError } from '../../errors/errors.js';
import type { IndexRecord, Snapshot } from './redis.codec.js';
import { isCluster, type RedisClient } from './redis.connection.js';
import type { RedisIndexWriter } from './redis.index-writer.js';
import { INDEX_LAYOUT, type RedisKeys } from './redis.keys.js';
import type { RedisStoreLogger } from './redis-store-options.interface.js';
import type { RedisScriptRunner } from './redis.script-runner.js';
import { INDEX_LAYOUT_SCRIPT, READ_RUN } from './redis.scripts.js';

/**
 * The key layout's version and its migration (see `redis.keys.ts`).
 *
 * Layout 1 (stores written before workflow versions were claimed side by side) kept one due index per workflow
 * (`...:dw:<wf>`); layout 2 keeps one per (workflow, version) (`...:dv:<wf>:<ver>`), so that a claimer of some
 * versions is never held back by due runs of others. Every other key is the same in both.
 *
 * `init()` reads the layout (`...:layout`, absent in layout 1) with one script in the index slot. A new store gets the
 * current layout at once. A store of layout 1 is migrated by one instance, which holds `...:layout-lock` (renewed as
 * it goes); instances starting meanwhile wait for it, and take over if its lock expires (it died):
 * 1. every run of the global due index (`...:due`, kept in both layouts) is read and its index record applied (as a
 *    repair): this writes its entry in the due index of its (workflow, version);
 * 2. the layout 1 due indexes are deleted (their workflows are read from the index meta);
 * 3. the layout is set to 2, and the lock released.
 * Each step is idempotent and safe alongside instances already running this release (index records are versioned),
 * so a migration cut short is simply done again.
 *
 * NOTE: an instance of an earlier release still running against the same prefix keeps writing layout 1 entries: a
 * run it indexes after the migration is not in a layout 2 due index until an instance of this release writes it again
 * (any claim, control or commit of it) or `reindex()` runs. Stop instances of earlier releases before upgrading, or
 * call `reindex()` once they are gone.
 */

/** How long the migration lock lasts without renewal. */
const LOCK_MS = 30_000;
/** How often an instance waiting for another's migration looks again. */
const POLL_MS = 100;
/** Entries read per page. */
const PAGE = 500;

/** What the layout check and the migration read and write with. */
export interface LayoutDeps {
  client: RedisClient;
  runner: RedisScriptRunner;
  keys: RedisKeys;
  index: RedisIndexWriter;
  logger: RedisStoreLogger;
}

/** Options of {@link ensureIndexLayout} (tests). */
export interface LayoutOptions {
  lockMs?: number;
  pollMs?: number;
  /** Called after each page of the migration (tests). */
  onPage?: () => Promise<void> | void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function layoutCall(keys: RedisKeys, op: string, token: string, lockMs: number) {
  return {
    script: INDEX_LAYOUT_SCRIPT,
    keys: [keys.layout, keys.layoutLock, keys.created, keys.meta, keys.due],
    args: [op, token, lockMs, INDEX_LAYOUT],
  };
}

/**
 * Makes sure the store's keys are of the current layout, migrating them once if needed (see above). Returns the layout
 * found first (below `INDEX_LAYOUT` when this call or another instance migrated).
 * @throws StoreError when the keys are of a newer layout than this release knows
 */
export async function ensureIndexLayout(deps: LayoutDeps, options: LayoutOptions = {}): Promise<number> {
  const { runner, keys, logger } = deps;
  const lockMs = options.lockMs ?? LOCK_MS;
  const token = randomUUID();
  let waited = false;
  let first: number | undefined;
  for (;;) {
    const [found, locked] = await runner.run<[string, number]>(layoutCall(keys, 'begin', token, lockMs));
    const layout = Number(found);
    first ??= layout;
    if (layout > INDEX_LAYOUT) {
      throw new StoreError(
        `Redis store: the keys of prefix ${JSON.stringify(keys.prefix)} are of index layout ${layout}, newer than layout ` +
          `${INDEX_LAYOUT} that this release of nestjs-cairn supports. Upgrade nestjs-cairn on this instance, or use another keyPrefix.`,
      );
    }
    if (layout === INDEX_LAYOUT) return first;
    if (locked !== 1) {
      if (!waited) logger.log(`Redis store: waiting for another instance to migrate the indexes to layout ${INDEX_LAYOUT}.`);
      waited = true;
      await sleep(options.pollMs ?? POLL_MS);
      continue;
    }
    try {
      logger.log(`Redis store: migrating the indexes of prefix ${JSON.stringify(keys.prefix)} from layout ${layout} to ${INDEX_LAYOUT}.`);
      const renew = async () => {
        const [, held] = await runner.run<[string, number]>(layoutCall(keys, 'renew', token, lockMs));
        if (held !== 1) logger.warn('Redis store: the index migration lock expired; another instance may be migrating too (harmless).');
        await options.onPage?.();
      };
      const moved = await migrateDueIndexes(deps, renew);
      await runner.run(layoutCall(keys, 'done', token, lockMs));
      logger.log(`Redis store: indexes migrated to layout ${INDEX_LAYOUT} (${moved} due run(s)).`);
      return first;
    } catch (error) {
      await runner.run(layoutCall(keys, 'release', token, lockMs)).catch(() => undefined);
      throw error;
    }
  }
}

/**
 * Steps 1 and 2 of the migration: indexes every due run in the due index of its (workflow, version), then deletes the
 * layout 1 due indexes. Returns the number of due runs read.
 */
async function migrateDueIndexes({ client, runner, keys, index }: LayoutDeps, afterPage: () => Promise<void>): Promise<number> {
  await index.flush();
  let count = 0;
  const workflows = new Set<string>();
  let cursor = '0';
  do {
    const [next, flat] = await client.zscan(keys.due, cursor, 'COUNT', PAGE);
    cursor = next;
    const ids = [...new Set(flat.filter((_, i) => i % 2 === 0))];
    if (ids.length === 0) continue;
    const reads = await runner.runMany<[Snapshot, IndexRecord]>(
      ids.map((id) => {
        const runKeys = keys.run(id);
        return { script: READ_RUN, keys: [runKeys.run, runKeys.steps], args: [id] };
      }),
    );
    const records: { record: IndexRecord; options: { repair: true } }[] = [];
    for (const [, record] of reads) {
      // a run gone meanwhile: its due entry is dropped by the claimers that meet it (as in layout 1)
      if (record[1] !== '1') continue;
      workflows.add(record[3]);
      records.push({ record, options: { repair: true } });
    }
    await index.applyNow(records);
    count += records.length;
    await afterPage();
  } while (cursor !== '0');
  // the workflows of layout 1 due indexes: those of the due runs, and every workflow the index meta names
  cursor = '0';
  do {
    const [next, flat] = await client.hscan(keys.meta, cursor, 'COUNT', PAGE);
    cursor = next;
    for (let i = 1; i < flat.length; i += 2) {
      const meta = flat[i];
      const a = meta.indexOf('|');
      const b = a === -1 ? -1 : meta.indexOf('|', a + 1);
      if (b !== -1) workflows.add(meta.slice(b + 1));
    }
  } while (cursor !== '0');
  await deleteKeys(client, [...workflows].map((workflow) => keys.legacyDueByWorkflow(workflow)));
  await afterPage();
  return count;
}

/** Deletes keys of the index slot, a page at a time. */
async function deleteKeys(client: RedisClient, names: string[]): Promise<void> {
  for (let i = 0; i < names.length; i += PAGE) {
    const page = names.slice(i, i + PAGE);
    if (page.length > 0) await client.unlink(...page);
  }
}

/**
 * The keys of the index slot that match `pattern` (a SCAN MATCH glob of index keys), from every master of a Cluster
 * (only the one that serves the index slot has any). For `reindex()`, not a hot path.
 */
export async function scanIndexKeys(client: RedisClient, pattern: string): Promise<string[]> {
  const masters: Redis[] = isCluster(client) ? client.nodes('master') : [client];
  const found = new Set<string>();
  for (const node of masters) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) found.add(key);
    } while (cursor !== '0');
  }
  return [...found];
}

/** Deletes every layout 1 due index left (`reindex()`: e.g. written by an instance of an earlier release). */
export async function deleteLegacyDueIndexes(client: RedisClient, keys: RedisKeys): Promise<number> {
  const legacy = (await scanIndexKeys(client, keys.legacyDuePattern)).filter((key) => key.startsWith(`${keys.index}:dw:`));
  await deleteKeys(client, legacy);
  return legacy.length;
}

/** Sets the layout to the current one (after a full `reindex()`, which writes every index of it). */
export async function markIndexLayout(runner: RedisScriptRunner, keys: RedisKeys): Promise<void> {
  await runner.run(layoutCall(keys, 'done', randomUUID(), LOCK_MS));
}
