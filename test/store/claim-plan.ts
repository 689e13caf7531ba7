/**
 * What the claim-plan specs share (test/store/postgres-claim-bound.spec.ts on PostgreSQL,
 * test/store/pglite-claim-levels.spec.ts on PGlite): sleeping runs written in bulk over priority levels, and the nodes
 * of an `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` plan of the claim that choose its candidates.
 */

/** The priorities of the sleeping runs (highest first); the due runs of the tests sit below or between them. */
export const LEVELS = [7, 5, 3, 0];

/** One node of a JSON plan (the fields the specs read). */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Subplan Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

/**
 * The INSERT of sleeping runs `'sleeper-<from..to>'` (due in an hour or more) of one workflow, spread over LEVELS, into
 * `runsTable`. Parameters: `sleeperParams(workflow, from, to)`.
 */
export const insertSleepersSql = (runsTable: string) => `
  INSERT INTO ${runsTable} (run_id, workflow, version, status, input, state, created_at, updated_at, due_at, priority)
  SELECT 'sleeper-' || g, $1::text, 1, 'sleeping', '{}', '{}', now(), now(),
    now() + interval '1 hour' + g * interval '1 millisecond', ($2::bigint[])[1 + g % $3::integer]
  FROM generate_series($4::integer, $5::integer) g`;

export const sleeperParams = (workflow: string, from: number, to: number) => [workflow, LEVELS, LEVELS.length, from, to];

/** The claim's CTEs that choose and lock its candidates (`lv`, the levels, and `c`) of the plan `root`. */
export const candidateCtes = (root: PlanNode): PlanNode[] => (root.Plans ?? []).filter((x) => ['CTE lv', 'CTE c'].includes(x['Subplan Name'] ?? ''));

/** `nodes` and every node below them, depth first. */
export function allNodes(nodes: PlanNode[]): PlanNode[] {
  const out: PlanNode[] = [];
  const walk = (node: PlanNode) => {
    out.push(node);
    for (const child of node.Plans ?? []) walk(child);
  };
  nodes.forEach(walk);
  return out;
}
