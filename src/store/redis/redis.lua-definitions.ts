import {
  CLAIMABLE_STATUSES,
  DUE_ON_RELEASE,
  RUN_STATUSES,
  STARTED_BY_CLAIM,
  TERMINAL_STATUSES,
} from '../run-state-machine.js';
import { RUN_HISTORY_LIMIT } from '../workflow-store.interface.js';
import { PARKED_STATUS } from './redis.codec.js';
import { COMMIT_OPS } from './redis.commit-ops.js';
import { APPLY_KEYS, WORKFLOW_GROUP_KEYS } from './redis.keys.js';

/** A Lua string literal (the names rendered here are plain ASCII, for which JSON and Lua literals agree). */
function str(value: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) throw new Error(`cairn: cannot render ${JSON.stringify(value)} into Lua`);
  return JSON.stringify(value);
}

function list(values: readonly string[]): string {
  return `{${values.map(str).join(', ')}}`;
}

function set(values: readonly string[]): string {
  return `{${values.map((v) => `[${str(v)}] = true`).join(', ')}}`;
}

function record(entries: Iterable<readonly [string, string | number]>): string {
  return `{${[...entries].map(([k, v]) => `[${str(k)}] = ${typeof v === 'number' ? String(v) : str(v)}`).join(', ')}}`;
}

/**
 * Limits a script enforces: `LIM.history`, the port's `RUN_HISTORY_LIMIT`; `LIM.debounceGraceMs`, how long after a
 * debounce key was pointed at a run that run may still be written by its creator (or, missing, by a start folding into
 * it); past it a missing run is gone (its creator died, or it was purged) and the key starts a new one (rule D).
 */
export const LUA_LIMITS = { history: RUN_HISTORY_LIMIT, debounceGraceMs: 30_000 } as const;

/**
 * Names a script uses as constants (`ST.running`, `OP.setStatus`, `AK.due`, `LIM.history`, …): replaced by their
 * values at load time.
 */
const CONSTANTS: Readonly<Record<string, Readonly<Record<string, string | number>>>> = {
  ST: Object.fromEntries(RUN_STATUSES.map((s) => [s, s])),
  OP: Object.fromEntries(Object.entries(COMMIT_OPS).map(([name, op]) => [name, op.code])),
  AK: APPLY_KEYS,
  GK: WORKFLOW_GROUP_KEYS,
  LIM: LUA_LIMITS,
};

/** Tables a script may read, each declared (as a Lua table literal) only in the scripts that use it. */
const TABLES: Readonly<Record<string, string>> = {
  STATUSES: list(RUN_STATUSES),
  TERMINAL_LIST: list(TERMINAL_STATUSES),
  TERMINAL: set(TERMINAL_STATUSES),
  CLAIMABLE: set(CLAIMABLE_STATUSES),
  STARTED_BY_CLAIM: set(STARTED_BY_CLAIM),
  DUE_ON_RELEASE: set(DUE_ON_RELEASE),
  PARKED: str(PARKED_STATUS),
  ARITY: record(Object.values(COMMIT_OPS).map((op) => [op.code, op.arity])),
};

/** Names of the definitions rendered into the scripts, which no `.lua` file defines itself. */
export const LUA_DEFINITION_NAMES: readonly string[] = [...Object.keys(CONSTANTS), ...Object.keys(TABLES)];

/**
 * The source of one script sent to Redis: `-- cairn:<name>`, the definitions it uses, then `code` (the shared prelude
 * and the script's file) with its constants replaced. The definitions come from their TypeScript source, so that the
 * Lua never spells them out itself:
 * - constants `ST.<status>` (the only way a script names a status), `OP.<op name>` (a commit op's wire code), and
 *   `AK.<section>` / `GK.<section>` (the apply script's key positions, `APPLY_KEYS` / `WORKFLOW_GROUP_KEYS` of
 *   `redis.keys.ts`), and `LIM.history` (`RUN_HISTORY_LIMIT` of the port: most history events a run keeps), replaced
 *   by their values;
 * - tables from `run-state-machine.ts`: `STATUSES` (in order), `TERMINAL_LIST` (in order: the apply script's key
 *   order), and the classes as sets `TERMINAL`, `CLAIMABLE`, `STARTED_BY_CLAIM`, `DUE_ON_RELEASE`; `PARKED`, the
 *   status a run whose `st` is not a status is indexed under (`PARKED_STATUS` of `redis.codec.ts`); `ARITY`, a commit
 *   op's argument count by wire code (`COMMIT_OPS`).
 *
 * NOTE: constants are substituted and only the tables a script reads are declared because Redis runs a script's whole
 * text on every call: a table is built anew each time.
 * @throws Error naming the script when it uses a constant that does not exist
 */
export function renderLuaScript(name: string, code: string): string {
  const body = code.replace(/\b(ST|OP|AK|GK|LIM)\.([A-Za-z_][A-Za-z0-9_]*)/g, (_, table: string, key: string) => {
    const value = Object.hasOwn(CONSTANTS[table], key) ? CONSTANTS[table][key] : undefined;
    if (value === undefined) throw new Error(`cairn: the Lua script ${name} uses ${table}.${key}, which is not defined`);
    return typeof value === 'number' ? String(value) : str(value);
  });
  const tables = Object.keys(TABLES)
    .filter((table) => new RegExp(`\\b${table}\\b`).test(body))
    .map((table) => `local ${table} = ${TABLES[table]}`);
  return [`-- cairn:${name}`, '-- Definitions rendered by redis.lua-definitions.ts.', ...tables, body].join('\n');
}
