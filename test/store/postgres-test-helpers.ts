/**
 * Helpers of the Postgres and PGlite store specs (not a spec file).
 */
import type { SchemaNames } from '../../src/store/postgres/postgres.schema.js';
import type { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import type { WorkflowStore } from '../../src/store/workflow-store.interface.js';
import type { ConformanceTarget } from '../conformance/store.conformance.js';

/**
 * Damage to the fields the store encodes itself, written behind its back (`$1`: the run id) through `exec` (a
 * connection of the test's, or PGlite's only session). `error` is jsonb (PostgreSQL refuses text that is not JSON): it
 * gets JSON of the wrong shape.
 */
export function corruptions(exec: (store: PostgresStore, sql: string, params: unknown[]) => Promise<unknown>): ConformanceTarget['corruptions'] {
  const damage = (statements: (n: SchemaNames) => string[]) => async (store: WorkflowStore, runId: string) => {
    for (const sql of statements((store as PostgresStore).names)) await exec(store as PostgresStore, sql, [runId]);
  };
  return {
    'live_step is not JSON': damage((n) => [`UPDATE ${n.runs} SET live_step = 'garbage' WHERE run_id = $1`]),
    'live_step is JSON of another shape': damage((n) => [`UPDATE ${n.runs} SET live_step = '{"v":2}' WHERE run_id = $1`]),
    'live_step is a JSON number': damage((n) => [`UPDATE ${n.runs} SET live_step = '42' WHERE run_id = $1`]),
    'a steps row has an unknown status': damage((n) => [
      `UPDATE ${n.runs} SET live_step = NULL, live_index = NULL WHERE run_id = $1`,
      `INSERT INTO ${n.steps} (run_id, idx, name, status, attempts) VALUES ($1, 0, 'a', 'garbage', 0)`,
    ]),
    'a steps row has negative attempts': damage((n) => [
      `UPDATE ${n.runs} SET live_step = NULL, live_index = NULL WHERE run_id = $1`,
      `INSERT INTO ${n.steps} (run_id, idx, name, status, attempts) VALUES ($1, 0, 'a', 'running', -1)`,
    ]),
    'live_step has a heartbeat time that is not a number': damage((n) => [
      `UPDATE ${n.runs} SET live_step = (live_step::jsonb || '{"hb":"soon","hd":"{}"}'::jsonb)::text WHERE run_id = $1`,
    ]),
    'a steps row has heartbeat details without a heartbeat time': damage((n) => [
      `UPDATE ${n.runs} SET live_step = NULL, live_index = NULL WHERE run_id = $1`,
      `INSERT INTO ${n.steps} (run_id, idx, name, status, attempts, heartbeat) VALUES ($1, 0, 'a', 'running', 0, '{"done":1}')`,
    ]),
    'error is a JSON number': damage((n) => [`UPDATE ${n.runs} SET error = '42'::jsonb WHERE run_id = $1`]),
    'error lacks name and message': damage((n) => [`UPDATE ${n.runs} SET error = '{"v":2}'::jsonb WHERE run_id = $1`]),
    'resume_status is not a status': damage((n) => [`UPDATE ${n.runs} SET resume_status = 'garbage' WHERE run_id = $1`]),
  };
}
