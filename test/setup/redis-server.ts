import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway redis-server for tests and benchmarks. */
export interface RedisServer {
  url: string;
  dir: string;
  port: number;
  stop(): Promise<void>;
  /** SIGKILL the server and start it again on the same directory (crash tests). */
  kill9AndRestart(): Promise<void>;
}

export interface StartRedisOptions {
  /** `everysec` (default) may lose about one second of acknowledged writes on a machine crash; `always` loses none. */
  appendfsync?: 'always' | 'everysec';
  /** More `redis-server` arguments, e.g. `['--cluster-enabled', 'yes']`. */
  extraArgs?: string[];
}

/** Servers still running when this process exits are killed, so an aborted test run leaves no redis-server behind. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const proc of running) proc.kill('SIGKILL');
    });
  }
}

function findRedisServer(): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = found.status === 0 ? found.stdout.trim() : '';
  if (!path) {
    throw new Error(
      'redis-server was not found on PATH. Install it (Debian/Ubuntu: `apt-get install -y redis-server`) ' +
        'or set REDIS_URL to a server the tests may use.',
    );
  }
  return path;
}

/** As postgres-server.ts' `freePort` (global setup requires these files as CommonJS: they cannot import each other). */
async function freePort(): Promise<number> {
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

/** Sends one inline command and resolves with the first reply line (or rejects when the port refuses). */
function inlineCommand(port: number, command: string, timeoutMs = 500): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
      if (data.includes('\r\n')) {
        clearTimeout(timer);
        socket.end();
        resolve(data.slice(0, data.indexOf('\r\n')));
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

async function waitForPing(port: number, child: ChildProcess, output: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode}) before answering PING:\n${output()}`);
    }
    try {
      if ((await inlineCommand(port, 'PING')) === '+PONG') return;
    } catch {
      // not listening yet, or still loading the AOF
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms:\n${output()}`);
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts `redis-server` on a free loopback port with a private data directory, AOF on and RDB snapshots off, and
 * waits until it answers PING. The server is a child of this process; `stop()` shuts it down and removes the folder.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = findRedisServer();
  const dir = mkdtempSync(join(tmpdir(), 'cairn-redis-'));
  const appendfsync = options.appendfsync ?? 'everysec';
  let port = 0;
  let child: ChildProcess | undefined;
  let output = '';

  const launch = async (): Promise<void> => {
    output = '';
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--appendonly', 'yes',
      '--appendfsync', appendfsync,
      '--save', '',
      '--daemonize', 'no',
      '--protected-mode', 'no',
      '--maxmemory-policy', 'noeviction',
      ...(options.extraArgs ?? []),
    ];
    const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-4000)));
    proc.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-4000)));
    proc.unref();
    (proc.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (proc.stderr as unknown as { unref?: () => void } | null)?.unref?.();
    child = proc;
    track(proc);
    await waitForPing(port, proc, () => output);
  };

  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    port = await freePort();
    try {
      await launch();
      lastError = undefined;
      break;
    } catch (error) {
      lastError = error;
      child?.kill('SIGKILL');
    }
  }
  if (lastError) {
    rmSync(dir, { recursive: true, force: true });
    throw lastError;
  }

  const kill = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGKILL');
    await waitForExit(proc, 5_000);
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    dir,
    get port() {
      return port;
    },
    async stop() {
      const proc = child;
      if (proc && proc.exitCode === null && proc.signalCode === null) {
        try {
          await inlineCommand(port, 'SHUTDOWN NOSAVE', 1_000);
        } catch {
          // the connection is closed by the shutdown itself
        }
        if (!(await waitForExit(proc, 3_000))) await kill();
      }
      child = undefined;
      rmSync(dir, { recursive: true, force: true });
    },
    async kill9AndRestart() {
      await kill();
      await launch();
    },
  };
}
