/** A throwaway PostgreSQL server for tests and benchmarks. (Placeholder: implemented with the Postgres store.) */
export interface PostgresServer {
  url: string;
  dataDir: string;
  port: number;
  stop(): Promise<void>;
  /** Stop with `-m immediate` and start again on the same data directory (crash tests). */
  restart(): Promise<void>;
}

export async function startPostgres(): Promise<PostgresServer> {
  throw new Error('startPostgres is not implemented yet');
}
