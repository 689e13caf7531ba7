import { createServer, type Server, type Socket } from 'node:net';
import type { StoreLogger } from '../../src/store/store-logger.interface.js';

/** A logger that keeps every line, by level. */
export class CapturingLogger implements StoreLogger {
  readonly logs: string[] = [];
  readonly warnings: string[] = [];
  readonly errors: string[] = [];
  log(message: string) {
    this.logs.push(message);
  }
  warn(message: string) {
    this.warnings.push(message);
  }
  error(message: string) {
    this.errors.push(message);
  }
}

/** A loopback port nothing listens on: listen on a free port, then close it (connections to it are refused). */
export async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** What a promise rejects with, and how long it took (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const started = Date.now();
  try {
    await promise;
  } catch (error) {
    return { error: error as Error, ms: Date.now() - started };
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** A PostgreSQL ErrorResponse message (protocol v3): severity FATAL, the SQLSTATE and the text. */
function errorResponse(sqlState: string, message: string): Buffer {
  const fields = Buffer.concat(
    [
      ['S', 'FATAL'],
      ['V', 'FATAL'],
      ['C', sqlState],
      ['M', message],
    ]
      .map(([type, value]) => Buffer.from(`${type}${value}\0`, 'utf8'))
      .concat(Buffer.from([0])),
  );
  const header = Buffer.alloc(5);
  header.write('E', 0, 'ascii');
  header.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
}

/**
 * A stand-in PostgreSQL server on a free loopback port that answers every startup message with one FATAL error, as a
 * real server does for a wrong password (`28P01`) under password authentication. (The test PostgreSQL trusts every
 * login, so it cannot produce this error itself.) `connections` counts the connection attempts it saw.
 */
export async function fakePostgresRejecting(sqlState: string, message: string): Promise<{ url: (userInfo: string) => string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', () => socket.end(errorResponse(sqlState, message)));
  });
  await new Promise<void>((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: (userInfo) => `postgres://${userInfo}@127.0.0.1:${port}/app`,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
