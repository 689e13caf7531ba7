import type { DataSource, EntityManager } from 'typeorm';
import { ConfigurationError, StoreError } from '../../errors/errors.js';
import type { SqlQuery } from './postgres.schema.js';
import { causeText, commonUrlProblem, RETRY_DELAYS_MS, retryDelayAfter, TRANSIENT_NETWORK_CODES } from '../connection-retry.js';

export type Row = Record<string, unknown>;

import type { StoreLogger } from '../store-logger.interface.js';

export type { StoreLogger };

/**
 * The store's view of a database connection: PostgreSQL through TypeORM, or PGlite in-process. Both run exactly the
 * same SQL; only connection handling differs.
 */
export interface SqlClient {
  readonly kind: 'postgres' | 'pglite';
  /** One statement, one round trip; returns its rows. */
  query: SqlQuery;
  /**
   * Like `query`, as a named prepared statement where the driver supports it (parsed and planned once per
   * connection instead of on every call). `name` must be unique per SQL text.
   */
  prepared?(name: string, sql: string, params: unknown[]): Promise<Row[]>;
  /** Runs `fn` in one transaction on one connection (committed when it resolves, rolled back when it throws). */
  transaction<T>(fn: (query: SqlQuery) => Promise<T>): Promise<T>;
  /**
   * LISTEN on `channel` on a connection of its own (reconnecting on errors); resolves to a function that stops.
   * Absent when the driver has no way to listen (the store then publishes its own events in-process only).
   */
  listen?(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /** Closes what this client opened itself. */
  close(): Promise<void>;
}

/**
 * Rows of a TypeORM `query()` result: TypeORM returns `rows` for SELECT (our statements are CTEs ending in SELECT),
 * `[rows, rowCount]` for a top-level UPDATE/DELETE, and drivers may hand back a result object.
 */
export function toRows(result: unknown): Row[] {
  if (Array.isArray(result)) {
    if (result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') return result[0] as Row[];
    return result as Row[];
  }
  if (result && typeof result === 'object' && Array.isArray((result as { rows?: unknown }).rows)) {
    return (result as { rows: Row[] }).rows;
  }
  return [];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function errorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; driverError?: { code?: unknown }; cause?: { code?: unknown } } | undefined;
  const code = e?.code ?? e?.driverError?.code ?? e?.cause?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Inner errors of an AggregateError (by shape: errors of node's sockets may come from another realm). */
function innerErrors(error: unknown): unknown[] | undefined {
  const errors = (error as { errors?: unknown } | undefined)?.errors;
  return Array.isArray(errors) && errors.length > 0 ? errors : undefined;
}

function errorMessage(error: unknown): string {
  const inner = innerErrors(error);
  if (inner) return inner.map((e) => errorMessage(e)).join('; ');
  const e = error as { message?: unknown; name?: unknown } | undefined;
  if (e && typeof e === 'object' && typeof e.message === 'string') return e.message || String(e.name ?? 'Error');
  return String(error);
}

/** Connection errors worth retrying at startup (server starting, not reachable yet, overloaded). */
const TRANSIENT_CODES = new Set([
  ...TRANSIENT_NETWORK_CODES,
  '57P03', // cannot_connect_now: the server is starting up
  '53300', // too_many_connections
]);

/**
 * The code of a connection error, for messages and the retry decision: the driver's code (`ECONNREFUSED`, SQLSTATE
 * `28P01` …), or `ETIMEDOUT` / `ECONNRESET` for pg's errors that carry none ("timeout expired", "Connection terminated").
 */
export function connectErrorCode(error: unknown): string | undefined {
  const code = errorCode(error);
  if (code) return code;
  for (const inner of innerErrors(error) ?? []) {
    const innerCode = connectErrorCode(inner);
    if (innerCode) return innerCode;
  }
  const message = errorMessage(error);
  if (/timeout/i.test(message)) return 'ETIMEDOUT';
  if (/terminated|ECONNRESET/i.test(message)) return 'ECONNRESET';
  if (/ECONNREFUSED/.test(message)) return 'ECONNREFUSED';
  return undefined;
}

function isTransient(error: unknown): boolean {
  const code = connectErrorCode(error);
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** An example of a valid connection URL, for messages. */
const EXAMPLE_URL = 'postgres://user:password@localhost:5432/mydb';

/**
 * Parses a connection string the way pg does (pg-connection-string: spaces and stray `%` encoded, `user@/db` with an
 * empty host accepted); undefined when it is not a URL. Never throws.
 */
function parsePgUrl(url: string): URL | undefined {
  let text = url;
  if (/ |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(text)) text = encodeURI(text).replace(/%25(\d\d)/g, '%$1');
  try {
    return new URL(text);
  } catch {
    try {
      return new URL(text.replace('@/', '@___DUMMY___/'));
    } catch {
      return undefined;
    }
  }
}

/** Which setting the URL came from, for messages: DATABASE_URL when it is that variable's value, else `store.url`. */
function urlSetting(url: string): string {
  return url === process.env.DATABASE_URL ? 'DATABASE_URL' : 'store.url';
}

/**
 * Refuses a connection string that pg could not use, before any connection attempt: not a URL (pg would resolve it
 * against `postgres://base` and fail with `getaddrinfo ENOTFOUND base`), or another scheme than `postgres://`,
 * `postgresql://` or `socket:`. Unix socket paths (`/var/run/postgresql mydb`) pass. The message names the setting,
 * says what is wrong and shows a valid URL; it never repeats the URL (it may hold a password).
 * @throws ConfigurationError
 */
export function checkPostgresUrl(url: string, setting = urlSetting(url)): void {
  const problem = postgresUrlProblem(url);
  if (!problem) return;
  throw new ConfigurationError(
    `The PostgreSQL connection URL in ${setting} is invalid: ${problem}. ` +
      `Expected a URL like ${EXAMPLE_URL} (percent-encode special characters in the user name and password, ` +
      'e.g. with encodeURIComponent), or pass a TypeORM dataSource instead.',
  );
}

function postgresUrlProblem(url: string): string | undefined {
  const common = commonUrlProblem(url);
  if (common) return common;
  if (url.startsWith('/')) return undefined; // a Unix socket directory, then optionally the database
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'socket') return parsePgUrl(url) ? undefined : 'it cannot be parsed as a socket: URL';
  if (!scheme || !url.slice(scheme.length + 1).startsWith('//')) {
    return 'it does not start with postgres:// or postgresql://';
  }
  if (scheme !== 'postgres' && scheme !== 'postgresql') {
    const redis = scheme === 'redis' || scheme === 'rediss' ? ` (a Redis URL: use store { type: 'redis' } for it)` : '';
    return `its scheme is "${scheme}://"${redis}, not postgres:// or postgresql://`;
  }
  if (!parsePgUrl(url)) {
    return (
      'it cannot be parsed as a URL (an @ : / ? # in the user name or password that is not percent-encoded, ' +
      'a port that is not a number, or a malformed host)'
    );
  }
  return undefined;
}

/** `host:port` of a connection URL, for messages (never the password). */
export function describeUrl(url: string): string {
  if (url.startsWith('/')) return url.split(' ')[0]!;
  const parsed = parsePgUrl(url);
  if (!parsed) return '(unparsable URL)';
  if (parsed.protocol === 'socket:') return decodeURI(parsed.pathname);
  const hostname = parsed.hostname === '___dummy___' ? '' : parsed.hostname;
  const host = hostname || parsed.searchParams.get('host') || 'localhost';
  return `${host}:${parsed.port || parsed.searchParams.get('port') || '5432'}`;
}

function scrub(message: string, url: string): string {
  const password = parsePgUrl(url)?.password;
  if (!password) return message;
  let plain = password;
  try {
    plain = decodeURIComponent(password);
  } catch {
    /* keep it encoded */
  }
  return message.split(plain).join('***').split(password).join('***');
}

/** What to do about a connection error, by its code (a sentence, or undefined when there is nothing to add). */
function connectHint(code: string | undefined, where: string, setting: string, message: string): string | undefined {
  switch (code) {
    case 'ECONNREFUSED':
      return `Nothing accepts connections at ${where}: start PostgreSQL, or fix the host and port in ${setting}.`;
    case 'ENOTFOUND':
      return `The host name does not resolve: fix the host in ${setting} (or, in Docker Compose and Kubernetes, check the service name).`;
    case 'EAI_AGAIN':
      return `The host name could not be resolved (DNS did not answer): check the host in ${setting} and this machine's DNS.`;
    case 'ETIMEDOUT':
      return `No answer from ${where} in time: check the host and port in ${setting}, firewalls and security groups.`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${where} cannot be reached from this machine: check the host in ${setting} and the network.`;
    case 'ECONNRESET':
    case 'EPIPE':
      return `The server closed the connection: check that ${where} is a PostgreSQL server, and whether it requires SSL (add ?sslmode=require to ${setting}).`;
    case 'ENOENT':
      return `No PostgreSQL socket at ${where}: check the socket directory (and port) in ${setting}, and that PostgreSQL runs on this machine.`;
    case '28P01':
      return `The password is wrong for this user: fix the user name and password in ${setting} (percent-encode special characters).`;
    case '28000':
      return `The server refused this login: check the user name in ${setting}, and that pg_hba.conf allows it from this host (and with or without SSL).`;
    case '3D000':
      return `The database in ${setting} does not exist: create it (CREATE DATABASE …) or fix its name, the path after the port.`;
    case '42501':
      return `The user may not connect to this database: GRANT CONNECT ON DATABASE … TO the user, or use another user in ${setting}.`;
    case '57P03':
      return 'The server is starting up or shutting down.';
    case '53300':
      return 'The server has no free connection slots: lower poolSize, or raise max_connections.';
    default:
      if (/ssl|certificate/i.test(message)) {
        return `Check the SSL settings: sslmode in ${setting} (e.g. ?sslmode=require or ?sslmode=disable) and the server's certificate.`;
      }
      return undefined;
  }
}

interface PgModule {
  Client: new (config: unknown) => PgClientLike;
}
interface PgPoolLike {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: Row[] }>;
}
interface PgClientLike {
  connect(): Promise<void>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
  on(event: 'notification', listener: (msg: { channel: string; payload?: string }) => void): void;
  on(event: 'error' | 'end', listener: (error?: Error) => void): void;
  removeAllListeners(): void;
}

/** A dynamic `import()` failed because the package is not installed. */
export function isModuleNotFound(error: unknown): boolean {
  const code = errorCode(error);
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return true;
  return /Cannot find (package|module)/i.test(errorMessage(error));
}

async function loadModule<T>(name: string): Promise<T> {
  try {
    const mod = (await import(name)) as { default?: T } & T;
    return (mod.default ?? mod) as T;
  } catch (error) {
    if (isModuleNotFound(error)) {
      throw new ConfigurationError(
        `The postgres store needs the optional packages "typeorm" and "pg" (missing: "${name}"). Run: npm install typeorm pg`,
        { cause: error },
      );
    }
    throw error;
  }
}

export interface TypeOrmClientOptions {
  url?: string;
  dataSource?: DataSource;
  poolSize?: number;
  logger: StoreLogger;
  /** Connection attempts before giving up (URL only; default 5, about 5 s). Only transient errors are retried. */
  connectAttempts?: number;
  /** The setting `url` came from, for messages (default: `DATABASE_URL` when it is that variable's value, else `store.url`). */
  urlSetting?: string;
  /** Use named prepared statements for hot paths (default true). */
  preparedStatements?: boolean;
}

/** A `SqlClient` over a TypeORM `DataSource` (created from a URL and owned, or borrowed from the app). */
export class TypeOrmSqlClient implements SqlClient {
  readonly kind = 'postgres' as const;

  private preparedEnabled: boolean;

  private constructor(
    readonly dataSource: DataSource,
    private readonly owned: boolean,
    private readonly logger: StoreLogger,
    preparedStatements: boolean,
  ) {
    this.preparedEnabled = preparedStatements;
  }

  static async connect(options: TypeOrmClientOptions): Promise<TypeOrmSqlClient> {
    if (options.dataSource) {
      const ds = options.dataSource;
      if (!ds.isInitialized) {
        try {
          await ds.initialize();
        } catch (error) {
          throw new StoreError(`Cannot initialize the given TypeORM DataSource: ${errorMessage(error)}`, { cause: error });
        }
      }
      return new TypeOrmSqlClient(ds, false, options.logger, options.preparedStatements ?? true);
    }
    const url = options.url;
    if (!url) {
      throw new ConfigurationError(
        `The postgres store needs a connection: pass \`url\` (e.g. ${EXAMPLE_URL}), a TypeORM \`dataSource\`, or set DATABASE_URL.`,
      );
    }
    const setting = options.urlSetting ?? urlSetting(url);
    checkPostgresUrl(url, setting);
    const typeorm = await loadModule<typeof import('typeorm')>('typeorm');
    const pg = await loadModule<unknown>('pg');
    const where = describeUrl(url);
    const attempts = Math.max(1, options.connectAttempts ?? RETRY_DELAYS_MS.length + 1);
    for (let attempt = 1; ; attempt++) {
      const ds = new typeorm.DataSource({
        type: 'postgres',
        url,
        driver: pg,
        applicationName: 'nestjs-cairn',
        poolSize: options.poolSize ?? 10,
        connectTimeoutMS: 5_000,
        synchronize: false,
        logging: false,
        entities: [],
      });
      try {
        await ds.initialize();
        if (attempt > 1) options.logger.log(`Connected to PostgreSQL at ${where} (attempt ${attempt}/${attempts}).`);
        return new TypeOrmSqlClient(ds, true, options.logger, options.preparedStatements ?? true);
      } catch (error) {
        if (ds.isInitialized) await ds.destroy().catch(() => undefined);
        const message = scrub(errorMessage(error), url);
        const code = connectErrorCode(error);
        const cause = causeText(code, message);
        const hint = connectHint(code, where, setting, message);
        const tail = hint ? ` ${hint}` : '';
        if (!isTransient(error)) {
          throw new StoreError(`Cannot connect to PostgreSQL at ${where} (${cause}); not retried.${tail}`, { cause: error });
        }
        if (attempt >= attempts) {
          throw new StoreError(
            `Cannot connect to PostgreSQL at ${where} after ${attempt} attempt${attempt === 1 ? '' : 's'} (${cause}).${tail}`,
            { cause: error },
          );
        }
        const delay = retryDelayAfter(attempt);
        options.logger.warn(
          `PostgreSQL at ${where}: connection attempt ${attempt}/${attempts} failed (${cause}); retrying in ${delay} ms.`,
        );
        await sleep(delay);
      }
    }
  }

  readonly query: SqlQuery = async (sql, params) => toRows(await this.dataSource.query(sql, params));

  /** The DataSource's pg pool, when it is one (accepts `{ name, text, values }` query configs). */
  private get pgPool(): PgPoolLike | undefined {
    const driver = this.dataSource.driver as unknown as { postgres?: Partial<PgModule>; master?: Partial<PgPoolLike> };
    const pool = driver.master;
    if (typeof driver.postgres?.Client !== 'function' || typeof pool?.query !== 'function') return undefined;
    return pool as PgPoolLike;
  }

  /**
   * Named prepared statements through the DataSource's pg pool: a hot statement is parsed and planned once per
   * connection (4–5x less server CPU for the commit CTE than an unnamed statement). Behind a pooler that cannot keep
   * named statements (PgBouncer < 1.21 in transaction mode) the first failure switches them off for good; the failed
   * statement did not run (it failed at Bind), so it is simply sent again unnamed.
   */
  async prepared(name: string, sql: string, params: unknown[]): Promise<Row[]> {
    const pool = this.preparedEnabled ? this.pgPool : undefined;
    if (pool) {
      try {
        return (await pool.query({ name, text: sql, values: params })).rows;
      } catch (error) {
        const code = errorCode(error);
        if (code !== '26000' && code !== '42P05') throw error;
        this.preparedEnabled = false;
        this.logger.warn(
          `Named prepared statements do not work on this connection (${errorMessage(error)}), e.g. behind PgBouncer in transaction mode; using unnamed statements from now on.`,
        );
      }
    }
    return this.query(sql, params);
  }

  async transaction<T>(fn: (query: SqlQuery) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      try {
        const result = await fn(async (sql, params) => toRows(await runner.query(sql, params)));
        await runner.commitTransaction();
        return result;
      } catch (error) {
        if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
        throw error;
      }
    } finally {
      await runner.release();
    }
  }

  /** A dedicated `pg.Client` with the pool's own connection settings, so LISTEN never holds a pool slot. */
  private clientFactory(): (() => PgClientLike) | undefined {
    const driver = this.dataSource.driver as unknown as { postgres?: Partial<PgModule>; master?: { options?: unknown } };
    const Client = driver.postgres?.Client;
    const config = driver.master?.options;
    if (typeof Client !== 'function' || !config) return undefined;
    return () => new Client({ ...(config as object), application_name: 'nestjs-cairn-listener' });
  }

  get canListen(): boolean {
    return this.clientFactory() !== undefined;
  }

  async listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    const factory = this.clientFactory();
    if (!factory) throw new StoreError('This DataSource driver offers no pg.Client to LISTEN with.');
    const listener = new PgChannelListener(factory, channel, onPayload, this.logger);
    await listener.start();
    return () => listener.stop();
  }

  async close(): Promise<void> {
    if (this.owned && this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}

/** One LISTEN connection that reconnects (with backoff) when it drops. */
class PgChannelListener {
  private client?: PgClientLike;
  private stopped = false;
  private retryTimer?: NodeJS.Timeout;
  private failures = 0;

  constructor(
    private readonly factory: () => PgClientLike,
    private readonly channel: string,
    private readonly onPayload: (payload: string) => void,
    private readonly logger: StoreLogger,
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = this.factory();
    this.client = client;
    let failed = false;
    const discard = () => {
      failed = true;
      client.removeAllListeners();
      client.on('error', () => undefined);
      client.end().catch(() => undefined);
      if (this.client === client) this.client = undefined;
    };
    const onFailure = (error?: Error) => {
      if (failed || this.stopped || this.client !== client) return;
      discard();
      this.scheduleReconnect(error);
    };
    client.on('error', onFailure);
    client.on('end', () => onFailure(new Error('connection ended')));
    client.on('notification', (msg) => {
      if (msg.channel === this.channel && typeof msg.payload === 'string') this.onPayload(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel.replace(/"/g, '""')}"`);
      if (this.failures > 0) this.logger.log(`Store events: LISTEN connection restored.`);
      this.failures = 0;
    } catch (error) {
      if (!failed) discard();
      if (this.stopped) return;
      if (this.failures === 0 && !this.retryTimer) {
        // The first connection: report it to the caller (the store then publishes in-process only and polls).
        throw new StoreError(`Cannot open the LISTEN connection: ${errorMessage(error)}`, { cause: error });
      }
      this.scheduleReconnect(error as Error);
    }
  }

  private scheduleReconnect(error?: Error): void {
    if (this.stopped || this.retryTimer) return;
    this.failures++;
    const delay = Math.min(100 * 2 ** Math.min(this.failures - 1, 6), 5_000);
    this.logger.warn(
      `Store events: LISTEN connection lost (${error ? errorMessage(error) : 'closed'}); reconnecting in ${delay} ms. Other instances' work is found by polling meanwhile.`,
    );
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopped) void this.connect().catch(() => undefined);
    }, delay);
    this.retryTimer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners();
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
    }
  }
}

/** Runs one statement through a caller's TypeORM `EntityManager` (its transaction, if any). */
export function managerQuery(manager: EntityManager): SqlQuery {
  return async (sql, params) => toRows(await manager.query(sql, params));
}
