/** A throwaway redis-server for tests and benchmarks. (Placeholder: implemented with the Redis store.) */
export interface RedisServer {
  url: string;
  dir: string;
  port: number;
  stop(): Promise<void>;
  /** SIGKILL the server and start it again on the same directory (crash tests). */
  kill9AndRestart(): Promise<void>;
}

export async function startRedis(options?: { appendfsync?: 'always' | 'everysec' }): Promise<RedisServer> {
  void options;
  throw new Error('startRedis is not implemented yet');
}
