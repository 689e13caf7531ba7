import { mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { PGlite, Transaction } from '@electric-sql/pglite';
import { ConfigurationError, StoreError } from '../../errors/errors.js';
import { isModuleNotFound, type Row, type SqlClient, type StoreLogger } from './postgres.client.js';
import type { SqlQuery } from './postgres.schema.js';
import { PostgresStore } from './postgres.store.js';

export const DEFAULT_PGLITE_DATA_DIR = './.cairn';
export const PGLITE_LOCK_FILE = 'cairn.lock';

export interface PgliteStoreOptions {
  /** Folder of the embedded database (created when missing). Default `./.cairn`. */
  dataDir?: string;
  schema?: string;
  tablePrefix?: string;
  logger?: StoreLogger;
}

/**
 * The embedded store: PostgreSQL compiled to WASM (PGlite) in this process, running exactly the SQL of
 * {@link PostgresStore}. One app at a time may open a data folder (a lock file guards it); `close()` frees it.
 *
 * PGlite has a single session, so every statement and transaction of the store runs one at a time.
 *
 * The lock also proves that no other process holds a lease on these runs: `init()` expires every lease at once, so the
 * runs the previous app left in flight (killed, or closed without releasing them) are recovered at the first claim
 * instead of after `leaseMs`.
 */
export function createPgliteStore(options: PgliteStoreOptions = {}): PostgresStore {
  const dataDir = resolve(options.dataDir ?? DEFAULT_PGLITE_DATA_DIR);
  return new PostgresStore({
    name: 'pglite',
    schema: options.schema,
    tablePrefix: options.tablePrefix,
    logger: options.logger,
    expireLeasesAtInit: true,
    sqlClient: () => openPglite(dataDir, options.logger),
  });
}

// -------------------------------------------------------------------------------------------------------------------
// Lock file
// -------------------------------------------------------------------------------------------------------------------

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(file: string): { pid?: number; host?: string; ageMs: number } | undefined {
  try {
    const text = readFileSync(file, 'utf8');
    const ageMs = Date.now() - statSync(file).mtimeMs;
    const [pidLine, hostLine] = text.split('\n');
    const pid = Number(pidLine);
    return { pid: Number.isInteger(pid) && pid > 0 ? pid : undefined, host: hostLine?.trim() || undefined, ageMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function inUse(dataDir: string, detail: string): StoreError {
  return new StoreError(
    `The PGlite data folder "${dataDir}" is already open in another app (${detail}). Only one app at a time can use it: ` +
      'stop the other one, or give this one another dataDir.',
  );
}

/**
 * Takes `dataDir/cairn.lock` (created with `wx`, holding our pid and host). A lock whose process is gone is stale
 * and taken over. Returns the function that releases it.
 */
export function acquireDataDirLock(dataDir: string): () => void {
  const file = join(dataDir, PGLITE_LOCK_FILE);
  const me = `${process.pid}\n${hostname()}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      writeFileSync(file, me, { flag: 'wx' });
      return () => {
        try {
          if (readFileSync(file, 'utf8') === me) unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StoreError(`Cannot create the lock file of the PGlite data folder "${dataDir}": ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    const holder = readHolder(file);
    if (!holder) continue; // released meanwhile
    if (holder.pid === undefined) {
      // Being written right now, or garbage: give a fresh file the benefit of the doubt.
      if (holder.ageMs < 10_000) throw inUse(dataDir, 'lock file being written');
    } else if (holder.host && holder.host !== hostname()) {
      throw inUse(dataDir, `process ${holder.pid} on host ${holder.host}`);
    } else if (holder.pid === process.pid) {
      throw inUse(dataDir, `this process, pid ${holder.pid}`);
    } else if (isAlive(holder.pid)) {
      throw inUse(dataDir, `process ${holder.pid}`);
    }
    // Stale: move it away atomically (only one taker succeeds), then retry the exclusive create.
    try {
      const stale = `${file}.stale-${process.pid}`;
      renameSync(file, stale);
      unlinkSync(stale);
    } catch {
      /* someone else took it over first; retry */
    }
  }
  throw inUse(dataDir, 'could not take the lock');
}

// -------------------------------------------------------------------------------------------------------------------
// PGlite client
// -------------------------------------------------------------------------------------------------------------------

type PgliteModule = typeof import('@electric-sql/pglite');

async function loadPglite(): Promise<PgliteModule> {
  try {
    return (await import('@electric-sql/pglite')) as PgliteModule;
  } catch (error) {
    if (isModuleNotFound(error)) {
      throw new ConfigurationError(
        'The pglite store needs the optional package "@electric-sql/pglite". Run: npm install @electric-sql/pglite',
        { cause: error },
      );
    }
    throw error;
  }
}

const defaultLogger: StoreLogger = {
  log: () => undefined,
  warn: (message) => console.warn(`[nestjs-cairn] ${message}`),
  error: (message) => console.error(`[nestjs-cairn] ${message}`),
};

/** Opens (creating when empty) the PGlite database in `dataDir`, guarded by the lock file. */
export async function openPglite(dataDir: string, logger: StoreLogger = defaultLogger): Promise<PgliteSqlClient> {
  const dir = resolve(dataDir);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new StoreError(`Cannot create the PGlite data folder "${dir}": ${(error as Error).message}`, { cause: error });
  }
  const release = acquireDataDirLock(dir);
  try {
    const pglite = await loadPglite();
    const db = await pglite.PGlite.create({ dataDir: dir });
    return new PgliteSqlClient(db, dir, release, logger, pglite);
  } catch (error) {
    release();
    if (error instanceof ConfigurationError) throw error;
    throw new StoreError(`Cannot open the PGlite data folder "${dir}": ${(error as Error).message}`, { cause: error });
  }
}

/**
 * `SqlClient` on one PGlite instance. PGlite has one session: statements and transactions of concurrent callers
 * would interleave (a statement landing inside someone else's transaction), so everything runs through a mutex.
 */
export class PgliteSqlClient implements SqlClient {
  readonly kind = 'pglite' as const;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** Parameter types of the named statements parsed in this session. */
  private readonly statements = new Map<string, number[]>();
  private preparedEnabled: boolean;

  constructor(
    readonly db: PGlite,
    readonly dataDir: string,
    private readonly releaseLock: () => void,
    private readonly logger: StoreLogger = defaultLogger,
    private readonly pglite?: Pick<PgliteModule, 'protocol' | 'parse'>,
  ) {
    this.preparedEnabled = pglite !== undefined;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(() => {
      if (this.closed) throw new StoreError(`The PGlite database in "${this.dataDir}" is closed.`);
      return fn();
    });
    this.tail = result.catch(() => undefined);
    return result;
  }

  readonly query: SqlQuery = (sql, params) =>
    this.exclusive(async () => (await this.db.query<Row>(sql, params ?? [])).rows);

  /**
   * A named prepared statement over PGlite's wire-protocol API (Parse once per session; Bind/Execute per call),
   * the same messages `query()` sends but without parsing and planning the statement every time: 4–7x faster for
   * the commit CTE in WASM. Falls back to `query()` if this PGlite build lacks the API.
   */
  prepared(name: string, sql: string, params: unknown[]): Promise<Row[]> {
    return this.exclusive(async () => {
      if (this.preparedEnabled && this.pglite) {
        try {
          return await this.db.runExclusive(() => this.runNamed(name, sql, params));
        } catch (error) {
          const code = (error as { code?: unknown }).code;
          if (typeof code === 'string') {
            // An SQL error: the statement failed as it would have through query(). 26000: the session lost the
            // statement (it never ran): parse it again.
            if (code !== '26000') throw error;
            this.statements.delete(name);
            return await this.db.runExclusive(() => this.runNamed(name, sql, params));
          }
          this.preparedEnabled = false;
          this.logger.warn(`PGlite: named statements are not available (${(error as Error).message}); using query().`);
        }
      }
      return (await this.db.query<Row>(sql, params)).rows;
    });
  }

  private async runNamed(name: string, sql: string, params: unknown[]): Promise<Row[]> {
    const { protocol, parse } = this.pglite!;
    const send = (message: Uint8Array) => this.db.execProtocolStream(message, { syncToFs: false });
    const messages: Awaited<ReturnType<typeof send>> = [];
    try {
      let types = this.statements.get(name);
      if (!types) {
        // Close first (a no-op when absent), so a statement left from an earlier failure never collides.
        await send(protocol.serialize.close({ type: 'S', name }));
        await send(protocol.serialize.parse({ name, text: sql }));
        types = parse.parseDescribeStatementResults(await send(protocol.serialize.describe({ type: 'S', name })));
        this.statements.set(name, types);
      }
      const values = params.map((value, i) => {
        if (value === null || value === undefined) return null;
        const serializer = this.db.serializers[types![i]];
        return serializer ? serializer(value) : String(value);
      });
      messages.push(...(await send(protocol.serialize.bind({ statement: name, values }))));
      messages.push(...(await send(protocol.serialize.describe({ type: 'P' }))));
      messages.push(...(await send(protocol.serialize.execute({}))));
    } finally {
      messages.push(...(await send(protocol.serialize.sync())));
    }
    await this.db.syncToFs();
    return (parse.parseResults(messages, this.db.parsers)[0]?.rows ?? []) as Row[];
  }

  transaction<T>(fn: (query: SqlQuery) => Promise<T>): Promise<T> {
    return this.exclusive(() =>
      this.db.transaction((tx: Transaction) => fn(async (sql, params) => (await tx.query<Row>(sql, params ?? [])).rows)),
    );
  }

  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    return this.exclusive(async () => {
      // Deliver outside PGlite's query processing: a listener may call the store at once.
      const unlisten = await this.db.listen(channel, (payload) => setImmediate(() => onPayload(payload)));
      return () => this.exclusive(() => unlisten()).catch(() => undefined);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.exclusive(async () => {
        this.closed = true;
        await this.db.close();
      });
    } finally {
      this.closed = true;
      this.releaseLock();
    }
  }
}
