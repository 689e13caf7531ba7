import { randomBytes } from 'node:crypto';
import { StoreError } from '../../errors/errors.js';
import { isCluster, type RedisClient } from './redis.connection.js';
import { errorMessage } from './redis.errors.js';
import { ALL_SCRIPTS, type LuaScript } from './redis.scripts.js';

/** One script call: the script, its KEYS and its ARGV. */
export interface ScriptCall {
  script: LuaScript;
  keys: string[];
  args: (string | number)[];
}

/** The outcome of one script call of a batch. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** A kick member is a random op id (hex) followed by the run id. */
const KICK_ID_BYTES = 8;

/** The run id of a kick member (see {@link RedisScriptRunner.runKicked}). */
export function runIdOfKick(member: string): string {
  return member.slice(KICK_ID_BYTES * 2);
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.includes('NOSCRIPT');
}

/**
 * Sends the store's Lua scripts: by SHA (EVALSHA), falling back on the source (EVAL) when the server does not have the
 * script (restarted, flushed, or a Cluster node seen for the first time); batches go in one pipeline (one round trip)
 * unless the client is a Cluster.
 */
export class RedisScriptRunner {
  /**
   * @param client the client in use (read on every call: the store connects after construction)
   * @param kicksKey the key of the write-ahead index marks (see {@link RedisScriptRunner.runKicked})
   */
  constructor(
    private readonly client: () => RedisClient,
    private readonly kicksKey: string,
  ) {}

  /**
   * Loads every script on the server (standalone / Sentinel). A Cluster loads them per node on first use (EVAL
   * fallback on NOSCRIPT); the sources are still read here, so that a broken install fails at `init()`.
   * @throws StoreError when a script cannot be read or loaded
   */
  async loadAll(): Promise<void> {
    try {
      const client = this.client();
      for (const script of ALL_SCRIPTS) {
        if (isCluster(client)) void script.sha;
        else await client.call('SCRIPT', 'LOAD', script.lua);
      }
    } catch (error) {
      throw new StoreError(`Redis store: cannot load the Lua scripts: ${errorMessage(error)}`, { cause: error });
    }
  }

  /** Runs one script. */
  run<T>(call: ScriptCall): Promise<T> {
    // NOTE: a plain function (see guard): one promise of its own, the NOSCRIPT fallback's `catch`.
    const { script, keys, args } = call;
    let client: RedisClient;
    let sent: Promise<T>;
    try {
      client = this.client();
      sent = client.evalsha(script.sha, keys.length, ...keys, ...args) as Promise<T>;
    } catch (error) {
      return Promise.reject(error);
    }
    return sent.catch((error: unknown) => {
      if (!isNoScript(error)) throw error;
      return client.eval(script.lua, keys.length, ...keys, ...args) as Promise<T>;
    });
  }

  /** Runs scripts in one pipeline (one round trip) when the client is not a Cluster; throws the first failure. */
  async runMany<T>(calls: ScriptCall[]): Promise<T[]> {
    const settled = await this.runSettled<T>(calls);
    const failed = settled.find((result) => !result.ok);
    if (failed && !failed.ok) throw failed.error;
    return settled.map((result) => (result as { value: T }).value);
  }

  /**
   * Runs scripts in one pipeline (one round trip) when the client is not a Cluster, and reports each call's outcome:
   * one failing call never hides what the others did (e.g. the runs a claim batch leased).
   */
  async runSettled<T>(calls: ScriptCall[]): Promise<Settled<T>[]> {
    if (calls.length === 0) return [];
    const one = (call: ScriptCall): Promise<Settled<T>> =>
      this.run<T>(call).then(
        (value) => ({ ok: true, value }),
        (error: unknown) => ({ ok: false, error }),
      );
    const client = this.client();
    if (calls.length === 1 || isCluster(client)) return Promise.all(calls.map(one));
    const pipeline = client.pipeline();
    for (const { script, keys, args } of calls) pipeline.evalsha(script.sha, keys.length, ...keys, ...args);
    let results: [Error | null, unknown][];
    try {
      results = (await pipeline.exec()) ?? [];
    } catch (error) {
      return calls.map(() => ({ ok: false, error }));
    }
    const out: Settled<T>[] = calls.map((_, i) => {
      const [error, value] = results[i] ?? [new StoreError('Redis store: missing pipeline reply'), undefined];
      return error ? { ok: false, error } : { ok: true, value: value as T };
    });
    const retry = out.flatMap((result, i) => (!result.ok && isNoScript(result.error) ? [i] : []));
    if (retry.length > 0) {
      const again = await Promise.all(retry.map((i) => one(calls[i])));
      retry.forEach((i, j) => (out[i] = again[j]));
    }
    return out;
  }

  /**
   * {@link RedisScriptRunner.runKicked} of several per-run scripts: one `ZADD` of all their kicks, then the scripts, in
   * one pipeline (one round trip) unless the client is a Cluster (then the kicks first, then the scripts side by side).
   * Reports each call's outcome; the kicks of failed calls stay (claimers repair those runs' index entries).
   */
  async runManyKicked<T>(calls: readonly { runId: string; call: ScriptCall }[]): Promise<{ results: Settled<T>[]; kicks: string[] }> {
    if (calls.length === 0) return { results: [], kicks: [] };
    const kicks = calls.map(({ runId }) => randomBytes(KICK_ID_BYTES).toString('hex') + runId);
    const marks = kicks.flatMap((kick) => [0, kick]);
    const client = this.client();
    if (isCluster(client)) {
      await client.zadd(this.kicksKey, ...marks);
      return { results: await this.runSettled<T>(calls.map(({ call }) => call)), kicks };
    }
    const pipeline = client.pipeline();
    pipeline.zadd(this.kicksKey, ...marks);
    for (const { call } of calls) pipeline.evalsha(call.script.sha, call.keys.length, ...call.keys, ...call.args);
    const replies = (await pipeline.exec()) ?? [];
    if (replies[0]?.[0]) throw replies[0][0];
    const results: Settled<T>[] = calls.map((_, i) => {
      const [error, value] = replies[i + 1] ?? [new StoreError('Redis store: missing pipeline reply'), undefined];
      return error ? { ok: false, error } : { ok: true, value: value as T };
    });
    const retry = results.flatMap((result, i) => (!result.ok && isNoScript(result.error) ? [i] : []));
    if (retry.length > 0) {
      const again = await this.runSettled<T>(retry.map((i) => calls[i].call));
      retry.forEach((i, j) => (results[i] = again[j]));
    }
    return { results, kicks };
  }

  /**
   * Runs a per-run script preceded by a kick: a write-ahead mark in the global index slot saying that the run's
   * index entries may be about to change. The mark is removed when the resulting index record is applied; if this
   * process dies in between, claimers repair the run's index entries from the run itself.
   */
  async runKicked<T>(runId: string, call: ScriptCall): Promise<{ result: T; kick: string }> {
    const kick = randomBytes(KICK_ID_BYTES).toString('hex') + runId;
    const client = this.client();
    if (isCluster(client)) {
      await client.zadd(this.kicksKey, 0, kick);
      return { result: await this.run<T>(call), kick };
    }
    const { script, keys, args } = call;
    const pipeline = client.pipeline();
    pipeline.zadd(this.kicksKey, 0, kick);
    pipeline.evalsha(script.sha, keys.length, ...keys, ...args);
    const results = (await pipeline.exec()) ?? [];
    if (results[0]?.[0]) throw results[0][0];
    const [error, value] = results[1] ?? [new StoreError('Redis store: empty pipeline reply'), undefined];
    if (error && isNoScript(error)) return { result: await this.run<T>(call), kick };
    if (error) throw error;
    return { result: value as T, kick };
  }
}
