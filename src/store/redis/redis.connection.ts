import type { Cluster, Redis } from 'ioredis';
import { ConfigurationError, StoreError } from '../../errors/errors.js';
import { errorMessage } from './redis.errors.js';
import { causeText, commonUrlProblem, retryDelayAfter, TRANSIENT_NETWORK_CODES } from '../connection-retry.js';
import type { RedisStoreLogger } from './redis-store-options.interface.js';

/** A standalone (or Sentinel) client, or a Cluster. */
export type RedisClient = Redis | Cluster;

/** Whether the client is a Cluster (scripts are then sent one by one, never in a cross-slot pipeline). */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The `[member, score]` pairs of a `ZRANGE … WITHSCORES` reply read with `call()`, whatever the protocol: RESP2 gives a
 * flat `[m, s, m, s, …]`, RESP3 (ioredis 6's default) pairs `[[m, s], …]`, with scores as numbers under
 * `replyMapping: 'resp3'`. Scores come back as strings.
 */
export function scorePairs(reply: unknown): [member: string, score: string][] {
  const out: [string, string][] = [];
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i < reply.length; ) {
    const item: unknown = reply[i];
    if (Array.isArray(item)) {
      out.push([String(item[0]), String(item[1])]);
      i += 1;
    } else {
      if (i + 1 < reply.length) out.push([String(item), String(reply[i + 1])]);
      i += 2;
    }
  }
  return out;
}

/** A `CONFIG GET name` reply's value: a flat `[name, value]` (RESP2, or RESP3's legacy mapping) or `{ name: value }`. */
function configValue(reply: unknown, name: string): string | undefined {
  if (Array.isArray(reply)) return reply[1] === undefined ? undefined : String(reply[1]);
  if (reply && typeof reply === 'object') {
    const value = (reply as Record<string, unknown>)[name];
    return value === undefined ? undefined : String(value);
  }
  return undefined;
}

/** `host:port` of a Redis URL (or the socket path), without credentials. */
export function describeUrl(url: string): string {
  if (url.startsWith('/')) return url.split('?')[0]!;
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || '127.0.0.1'}:${parsed.port || '6379'}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** An example of a valid Redis URL, for messages. */
const EXAMPLE_URL = 'redis://:password@localhost:6379/0 (rediss:// for TLS)';

/** Which setting the URL came from, for messages: `store.url`, naming REDIS_URL when it is that variable's value. */
function urlSetting(url: string): string {
  return url === process.env.REDIS_URL ? 'store.url (REDIS_URL)' : 'store.url';
}

/**
 * Refuses a URL ioredis could not use as meant, before any connection attempt: not a URL, or another scheme than
 * `redis://` or `rediss://` (ioredis would connect to whatever host:port it finds). Unix socket paths (`/tmp/redis.sock`)
 * pass. The message names the setting, says what is wrong and shows a valid URL; it never repeats the URL.
 * @throws ConfigurationError
 */
export function checkRedisUrl(url: string, setting = urlSetting(url)): void {
  const problem = redisUrlProblem(url);
  if (!problem) return;
  throw new ConfigurationError(
    `Redis store: the connection URL in ${setting} is invalid: ${problem}. Expected a URL like ${EXAMPLE_URL}; ` +
      'percent-encode special characters in the user name and password (e.g. with encodeURIComponent).',
  );
}

function redisUrlProblem(url: string): string | undefined {
  const common = commonUrlProblem(url);
  if (common) return common;
  if (url.startsWith('/') && !url.startsWith('//')) return undefined; // a Unix socket path
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (!scheme) return 'it does not start with redis:// or rediss://';
  if (scheme !== 'redis' && scheme !== 'rediss') {
    const pg = scheme === 'postgres' || scheme === 'postgresql' ? ` (a PostgreSQL URL: use store { type: 'postgres' } for it)` : '';
    return `its scheme is "${scheme}://"${pg}, not redis:// or rediss://`;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return (
      'it cannot be parsed as a URL (an @ : / ? # in the user name or password that is not percent-encoded, ' +
      'a port that is not a number, or a malformed host)'
    );
  }
  if (!parsed.hostname) return 'it has no host';
  if (!/^\/?(\d+)?$/.test(parsed.pathname)) return 'the path must be a database number, as in /0, or nothing';
  return undefined;
}

/** Connection errors worth retrying at startup (server starting, not reachable yet). */
const TRANSIENT_CODES = new Set([
  ...TRANSIENT_NETWORK_CODES,
  'LOADING',
  'MASTERDOWN',
  'TRYAGAIN',
  'CLUSTERDOWN',
]);

/**
 * The code of a connection error: the socket's code (`ECONNREFUSED` …), or the first word of a server reply
 * (`WRONGPASS`, `NOAUTH`, `NOPERM`, `LOADING` …), or the parser's error name.
 */
export function connectErrorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; name?: unknown } | undefined;
  if (typeof e?.code === 'string' && e.code) return e.code;
  const inner = (error as { errors?: unknown } | undefined)?.errors;
  for (const one of Array.isArray(inner) ? inner : []) {
    const code = connectErrorCode(one);
    if (code) return code;
  }
  const message = messageOf(error);
  const reply = /\b(WRONGPASS|NOAUTH|NOPERM|LOADING|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/.exec(message)?.[1];
  if (reply) return reply;
  if (/invalid password|invalid username-password/i.test(message)) return 'WRONGPASS';
  if (e?.name === 'ParserError') return 'ParserError';
  if (/timed? ?out/i.test(message)) return 'ETIMEDOUT';
  return undefined;
}

/** What to do about a connection error, by its code (a sentence, or undefined when there is nothing to add). */
function connectHint(code: string | undefined, where: string, setting: string): string | undefined {
  switch (code) {
    case 'ECONNREFUSED':
      return `Nothing accepts connections at ${where}: start Redis, or fix the host and port in ${setting}.`;
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
      return `The server closed the connection: check that ${where} is a Redis server, and whether it requires TLS (use rediss://).`;
    case 'ENOENT':
      return `No Redis socket at ${where}: check the socket path in ${setting}, and that Redis runs on this machine.`;
    case 'WRONGPASS':
      return (
        `The user name or password is wrong: fix them in ${setting} (redis://:password@host:port for the default user, ` +
        'redis://user:password@host:port for an ACL user; percent-encode special characters).'
      );
    case 'NOAUTH':
      return `The server requires a password and ${setting} has none: add it, as in redis://:password@host:port.`;
    case 'NOPERM':
      return `The user in ${setting} lacks a permission the store needs (ACL): allow it scripts, pub/sub and CONFIG GET, or use another user.`;
    case 'ParserError':
      return `The server at ${where} does not answer in the Redis protocol: check the port, and use rediss:// if it requires TLS.`;
    case 'LOADING':
      return 'The server is loading its data set into memory.';
    default:
      if (code && /SSL|CERT|TLS/i.test(code)) {
        return `Check TLS: rediss:// is only for servers with TLS on that port, and their certificate must be trusted (pass an ioredis \`client\` with tls options if it needs a CA).`;
      }
      return undefined;
  }
}

/** The message of an error, by shape (errors of node's sockets may come from another realm than `Error`). */
function messageOf(error: unknown): string {
  const e = error as { message?: unknown } | undefined;
  if (e && typeof e === 'object' && typeof e.message === 'string' && e.message) return e.message;
  return errorMessage(error);
}


/** How many connection attempts fit in `connectTimeoutMs`: the delays before them add up to at most that. */
export function connectAttempts(connectTimeoutMs: number): number {
  let attempts = 1;
  let waited = 0;
  for (;;) {
    const delay = retryDelayAfter(attempts);
    if (waited + delay > connectTimeoutMs) return attempts;
    waited += delay;
    attempts++;
  }
}

/** What {@link connectRedis} needs. */
export interface ConnectOptions {
  url: string;
  /** How long to keep trying: attempts are made while the delays between them add up to at most this. */
  connectTimeoutMs: number;
  logger: RedisStoreLogger;
  /** Whether the store was closed (its client's errors are no longer reported). */
  isClosed: () => boolean;
  /** The setting `url` came from, for messages (default `store.url`). */
  urlSetting?: string;
}

/**
 * Connects a client of the store's own: the URL is checked first (a `ConfigurationError` at once), ioredis is loaded
 * here (an optional peer dependency), transient failures (refused, unknown host, timeout, server loading) are retried
 * with a warning per retry while the delays fit in `connectTimeoutMs`; other failures (wrong password, NOAUTH, not a
 * Redis server) are not retried. Failing, it throws a `StoreError` naming host:port, the cause, the attempts made and
 * what to fix. Later connection errors are logged at most once every 10 s while ioredis reconnects.
 * @throws ConfigurationError when the URL is invalid or ioredis cannot be loaded
 */
export async function connectRedis(options: ConnectOptions): Promise<RedisClient> {
  const setting = options.urlSetting ?? urlSetting(options.url);
  checkRedisUrl(options.url, setting);
  let mod: { Redis?: typeof Redis; default?: unknown };
  try {
    mod = (await import('ioredis')) as unknown as { Redis?: typeof Redis; default?: unknown };
  } catch (error) {
    throw new ConfigurationError(
      `The Redis store needs the ioredis package, which could not be loaded (${errorMessage(error)}). Install it: npm install ioredis`,
    );
  }
  const RedisClass = (mod.Redis ?? mod.default) as typeof Redis;
  const where = describeUrl(options.url);
  const attempts = connectAttempts(Math.max(0, options.connectTimeoutMs));
  let connecting = true;
  let lastClientError = 0;
  // NOTE: while connecting, ioredis rejects connect() with "Connection is closed."; the real cause (ECONNREFUSED,
  // WRONGPASS …) only comes through the 'error' event, so it is kept here.
  let attemptError: unknown;
  let lastCause: unknown;
  const client = new RedisClass(options.url, {
    lazyConnect: true,
    connectTimeout: 2_000,
    retryStrategy: (times: number) => (connecting ? null : Math.min(50 * 2 ** Math.min(times, 6), 2_000)),
  });
  client.on('error', (error: unknown) => {
    if (connecting) {
      attemptError ??= error;
      return;
    }
    if (options.isClosed()) return;
    const now = Date.now();
    if (now - lastClientError < 10_000) return;
    lastClientError = now;
    options.logger.warn(`Redis store: connection to ${where}: ${errorMessage(error)}`);
  });
  try {
    for (let attempt = 1; ; attempt++) {
      attemptError = undefined;
      try {
        await client.connect();
        if (attempt > 1) options.logger.log(`Redis store: connected to Redis at ${where} (attempt ${attempt}/${attempts}).`);
        return client;
      } catch (error) {
        // The 'error' event with the cause may come a moment after connect() rejected.
        if (attemptError === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
        const cause = attemptError ?? lastCause ?? error;
        lastCause = cause;
        if (client.status !== 'end' && client.status !== 'wait' && client.status !== 'close') client.disconnect();
        const code = connectErrorCode(cause);
        const text =
          cause === error && code === undefined
            ? 'the connection closed before the server answered'
            : causeText(code, messageOf(cause));
        const hint = connectHint(code, where, setting);
        const tail = hint ? ` ${hint}` : '';
        // NOTE: a close without any error (no code) is taken as transient; an error of unknown kind is not.
        const transient = code === undefined ? cause === error : TRANSIENT_CODES.has(code);
        if (!transient) {
          client.disconnect();
          throw new StoreError(`Redis store: cannot connect to Redis at ${where} (${text}); not retried.${tail}`, { cause });
        }
        if (attempt >= attempts) {
          client.disconnect();
          throw new StoreError(
            `Redis store: cannot connect to Redis at ${where} after ${attempt} attempt${attempt === 1 ? '' : 's'} (${text}).${tail}`,
            { cause },
          );
        }
        const delay = retryDelayAfter(attempt);
        options.logger.warn(`Redis at ${where}: connection attempt ${attempt}/${attempts} failed (${text}); retrying in ${delay} ms.`);
        await sleep(delay);
      }
    }
  } finally {
    connecting = false;
  }
}

/** Warns when the server is configured so that runs may be lost. Tolerates CONFIG being disabled. */
export async function checkDurability(client: RedisClient, logger: RedisStoreLogger): Promise<void> {
  let appendonly: string | undefined;
  let policy: string | undefined;
  try {
    appendonly = configValue(await client.call('CONFIG', 'GET', 'appendonly'), 'appendonly');
    policy = configValue(await client.call('CONFIG', 'GET', 'maxmemory-policy'), 'maxmemory-policy');
  } catch (error) {
    logger.log(
      `Redis store: could not read the server configuration (${errorMessage(error)}); skipping the durability check. ` +
        'Make sure appendonly is yes and maxmemory-policy is noeviction.',
    );
    return;
  }
  if (appendonly !== undefined && appendonly !== 'yes') {
    logger.warn(
      `Redis store: appendonly is "${appendonly}" on the Redis server. Without the append-only file, a Redis crash or ` +
        'restart loses every run, step checkpoint and signal written since the last RDB snapshot (all of them when ' +
        'snapshots are off). Set appendonly yes (appendfsync everysec loses at most about one second of writes on a ' +
        'machine crash; always loses none).',
    );
  }
  if (policy !== undefined && policy !== 'noeviction') {
    logger.warn(
      `Redis store: maxmemory-policy is "${policy}" on the Redis server. When Redis reaches maxmemory it may evict ` +
        'run, step, signal or index keys, silently losing runs and their checkpoints. Set maxmemory-policy noeviction ' +
        '(writes then fail loudly instead).',
    );
  }
}
