import { resolve } from 'node:path';

/** The stores the sample can run on (`CAIRN_STORE`). */
export const STORE_TYPES = ['pglite', 'postgres', 'redis', 'memory'] as const;
export type SampleStoreType = (typeof STORE_TYPES)[number];

/** Everything the sample app can be configured with. `loadConfig()` reads it from the environment. */
export interface SampleAppConfig {
  /** Where runs are stored. @default 'pglite' */
  store: SampleStoreType;
  /** The PGlite database folder (`store: 'pglite'`). @default './.cairn' */
  dataDir: string;
  /** The fake services' state (stock, charges, shipments), a small JSON file; none: kept in memory only. */
  stateFile?: string;
  /** `store: 'postgres'` */
  databaseUrl?: string;
  postgresSchema?: string;
  /** `store: 'redis'` */
  redisUrl?: string;
  redisKeyPrefix?: string;
  /** HTTP port. @default 3000 */
  port: number;
  /** Share of payment calls that fail transiently (0–1). @default 0.3 */
  paymentFailureRate: number;
  /** Orders above this amount wait for an `approve` signal. @default 1000 */
  approvalThreshold: number;
  /** How long a large order waits for approval before it is compensated. @default '24h' */
  approvalTimeout: string | number;
  /** How long shipping a parcel takes (each `handOver` attempt times out after 5 s). @default 1000 */
  shipDelayMs: number;
  /** Ownership lease of a run: after a crash, the restarted app resumes the run once it expires. @default 5000 */
  leaseMs: number;
  /** How often the worker looks for due work (retries, wake-ups, runs left by others). @default 500 */
  pollIntervalMs: number;
  /** Nest's log output. @default true */
  logger?: boolean;
}

/** An environment variable was set to something the sample cannot use. */
export class SampleConfigError extends Error {
  override readonly name = 'SampleConfigError';
}

type Env = Record<string, string | undefined>;

function numberFrom(env: Env, name: string, fallback: number, check: (n: number) => boolean, expected: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || !check(n)) throw new SampleConfigError(`${name} must be ${expected} (got ${JSON.stringify(raw)}).`);
  return n;
}

function duration(env: Env, name: string, fallback: string): string | number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^\d+$/.test(raw)) return Number(raw);
  if (!/^\d+(\.\d+)?(ms|s|m|h|d)$/.test(raw)) throw new SampleConfigError(`${name} must be ms or a duration such as 30s, 10m, 24h (got ${JSON.stringify(raw)}).`);
  return raw;
}

/**
 * Reads the configuration from environment variables: `CAIRN_STORE` (pglite | postgres | redis | memory),
 * `CAIRN_DATA_DIR`, `DATABASE_URL`, `CAIRN_PG_SCHEMA`, `REDIS_URL`, `CAIRN_REDIS_PREFIX`, `PORT`,
 * `CAIRN_PAYMENT_FAILURE_RATE`, `CAIRN_APPROVAL_THRESHOLD`, `CAIRN_APPROVAL_TIMEOUT`, `CAIRN_SHIP_DELAY_MS`,
 * `CAIRN_LEASE_MS`, `CAIRN_POLL_MS`.
 * @throws SampleConfigError naming the variable that is wrong
 */
export function loadConfig(env: Env = process.env): SampleAppConfig {
  const store = (env.CAIRN_STORE || 'pglite') as SampleStoreType;
  if (!STORE_TYPES.includes(store)) {
    throw new SampleConfigError(`CAIRN_STORE must be one of ${STORE_TYPES.join(', ')} (got ${JSON.stringify(env.CAIRN_STORE)}).`);
  }
  if (store === 'postgres' && !env.DATABASE_URL) {
    throw new SampleConfigError('CAIRN_STORE=postgres needs DATABASE_URL, e.g. postgres://user:pass@localhost:5432/db.');
  }
  if (store === 'redis' && !env.REDIS_URL) {
    throw new SampleConfigError('CAIRN_STORE=redis needs REDIS_URL, e.g. redis://localhost:6379.');
  }
  const dataDir = resolve(env.CAIRN_DATA_DIR || './.cairn');
  return {
    store,
    dataDir,
    stateFile: store === 'memory' ? undefined : defaultStateFile(dataDir),
    databaseUrl: env.DATABASE_URL || undefined,
    postgresSchema: env.CAIRN_PG_SCHEMA || undefined,
    redisUrl: env.REDIS_URL || undefined,
    redisKeyPrefix: env.CAIRN_REDIS_PREFIX || undefined,
    port: numberFrom(env, 'PORT', 3000, (n) => Number.isInteger(n) && n >= 0 && n < 65536, 'a port number'),
    paymentFailureRate: numberFrom(env, 'CAIRN_PAYMENT_FAILURE_RATE', 0.3, (n) => n >= 0 && n <= 1, 'a number from 0 to 1'),
    approvalThreshold: numberFrom(env, 'CAIRN_APPROVAL_THRESHOLD', 1000, (n) => n >= 0, 'a number >= 0'),
    approvalTimeout: duration(env, 'CAIRN_APPROVAL_TIMEOUT', '24h'),
    shipDelayMs: numberFrom(env, 'CAIRN_SHIP_DELAY_MS', 1000, (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0 (ms)'),
    leaseMs: numberFrom(env, 'CAIRN_LEASE_MS', 5000, (n) => Number.isInteger(n) && n >= 100, 'an integer >= 100 (ms)'),
    pollIntervalMs: numberFrom(env, 'CAIRN_POLL_MS', 500, (n) => Number.isInteger(n) && n >= 10, 'an integer >= 10 (ms)'),
    logger: true,
  };
}

/** Where the fake services keep their state for a given data folder. */
export function defaultStateFile(dataDir: string): string {
  return resolve(dataDir, 'sample-app-state.json');
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** One line saying which store the app uses and where its data lives. */
export function describeStore(config: SampleAppConfig): string {
  const state = config.stateFile ? `; fake services' state in ${config.stateFile}` : '';
  switch (config.store) {
    case 'pglite':
      return `Store: embedded PGlite, data in ${config.dataDir}${state}`;
    case 'postgres':
      return `Store: PostgreSQL at ${redact(config.databaseUrl!)}, schema "${config.postgresSchema ?? 'public'}"${state}`;
    case 'redis':
      return `Store: Redis at ${redact(config.redisUrl!)}, key prefix "${config.redisKeyPrefix ?? 'cairn:'}"${state}`;
    case 'memory':
      return 'Store: in memory: runs are lost when the process exits (set CAIRN_STORE=pglite for a durable store)';
  }
}
