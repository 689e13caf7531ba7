import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway PostgreSQL server for tests and benchmarks. */
export interface PostgresServer {
  url: string;
  dataDir: string;
  port: number;
  stop(): Promise<void>;
  /** Stop with `-m immediate` and start again on the same data directory (crash tests). */
  restart(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Extra server settings passed as `-c name=value` (e.g. `{ fsync: 'off' }`). */
  settings?: Record<string, string>;
}

const BIN_DIRS = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'];

function findBinDir(): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const dir = BIN_DIRS.find((d) => existsSync(join(d, 'initdb')));
  if (!dir) {
    throw new Error(`PostgreSQL binaries not found (looked in ${BIN_DIRS.join(', ')}); set PG_BIN_DIR or DATABASE_URL.`);
  }
  return dir;
}

function run(file: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: '/', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
      } else resolve(stdout);
    });
  });
}

/** `initdb` and `postgres` refuse to run as root: run them as the `postgres` OS user when we are root. */
function asPostgres(binary: string, args: string[]): [string, string[]] {
  if (process.getuid?.() === 0) return ['runuser', ['-u', 'postgres', '--', binary, ...args]];
  return [binary, args];
}

async function lookupPostgresUser(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run('id', ['-u', 'postgres'])).trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).trim());
  return { uid, gid };
}

/**
 * A TCP port free on the loopback interface right now (the OS picks it).
 * NOTE: redis-server.ts keeps its own copy: Jest's global setup requires these files as CommonJS, without the
 * `.js` → `.ts` mapping, so they cannot import each other.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a fresh PostgreSQL cluster in a temporary directory on a free loopback port (~1–2 s). Works as root (CI)
 * by running the server binaries as the `postgres` OS user.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = findBinDir();
  const dataDir = mkdtempSync(join(tmpdir(), 'cairn-pg-'));
  if (process.getuid?.() === 0) {
    const { uid, gid } = await lookupPostgresUser();
    chownSync(dataDir, uid, gid);
  }
  const port = await freePort();
  const pgCtl = join(bin, 'pg_ctl');
  const settings: Record<string, string> = { max_connections: '300', ...options.settings };
  const serverOptions = [
    `-p ${port}`,
    `-k ${dataDir}`,
    '-c listen_addresses=127.0.0.1',
    ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`),
  ].join(' ');

  const start = () =>
    run(...asPostgres(pgCtl, ['-D', dataDir, '-l', join(dataDir, 'server.log'), '-o', serverOptions, '-w', '-t', '60', 'start']));
  const stopWith = (mode: 'fast' | 'immediate') => run(...asPostgres(pgCtl, ['-D', dataDir, '-m', mode, '-w', 'stop']));

  try {
    await run(...asPostgres(join(bin, 'initdb'), ['-D', dataDir, '--locale=C', '-E', 'UTF8', '-A', 'trust', '-U', 'postgres', '--no-sync']));
    await start();
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }

  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await stopWith('fast');
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    async restart() {
      await stopWith('immediate');
      await start();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Helpers for tests that share one server: each suite works in a schema of its own.
// ---------------------------------------------------------------------------------------------------------------------

/** A fresh schema name, unique per call (parallel Jest workers never collide). */
export function randomSchemaName(prefix = 'cairn_t'): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
}

/** Runs statements on a short-lived connection of its own. */
export async function withPgClient<T>(url: string, fn: (query: (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>) => Promise<T>): Promise<T> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(async (sql, params) => (await client.query(sql, params)).rows);
  } finally {
    await client.end();
  }
}

/** Drops a schema and everything in it. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  await withPgClient(url, (query) => query(`DROP SCHEMA IF EXISTS "${schema.replace(/"/g, '""')}" CASCADE`));
}
