/**
 * The bench's results as data: `--json out.json` (every `bench …` line as `{ store, scenario, fields }`) and
 * `--compare a.json b.json` (a table of each numeric field in both, with the ratio b/a). No timing is asserted.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export type Fields = Record<string, string | number>;

/** One `bench store=<store> scenario=<scenario> k=v …` line. */
export interface BenchRecord {
  store: string;
  scenario: string;
  fields: Fields;
}

/** A line's value: a number when it reads as one, else the text. */
function value(text: string): string | number {
  return text !== '' && !Number.isNaN(Number(text)) ? Number(text) : text;
}

/** The record of a `bench …` line, or undefined for any other line. */
export function parseLine(l: string): BenchRecord | undefined {
  const m = /^bench store=(\S+) scenario=(\S+)(?: (.*))?$/.exec(l.trim());
  if (!m) return undefined;
  const fields: Fields = {};
  for (const kv of (m[3] ?? '').split(' ')) {
    const at = kv.indexOf('=');
    if (at > 0) fields[kv.slice(0, at)] = value(kv.slice(at + 1));
  }
  return { store: m[1], scenario: m[2], fields };
}

export function writeJson(path: string, records: BenchRecord[]): void {
  writeFileSync(path, `${JSON.stringify(records, null, 2)}\n`);
}

/** The records of a `--json` file; a text file is read as printed `bench …` lines (e.g. a saved log). */
export function readRecords(path: string): BenchRecord[] {
  const text = readFileSync(path, 'utf8');
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!Array.isArray(parsed)) throw new Error(`${path}: expected an array of { store, scenario, fields }`);
    return parsed as BenchRecord[];
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    return text.split('\n').flatMap((l) => parseLine(l) ?? []);
  }
}

/**
 * Records by key: `<store> <scenario>`, and for a pair that occurs more than once in the file (the points of a curve)
 * also its first field, the x value (`curve_ended ended=100000`). A key that still repeats gets `#2`, `#3` ….
 */
function byKey(records: BenchRecord[]): Map<string, { record: BenchRecord; xField?: string }> {
  const count = new Map<string, number>();
  for (const r of records) count.set(`${r.store} ${r.scenario}`, (count.get(`${r.store} ${r.scenario}`) ?? 0) + 1);
  const out = new Map<string, { record: BenchRecord; xField?: string }>();
  for (const r of records) {
    const pair = `${r.store} ${r.scenario}`;
    const first = Object.entries(r.fields)[0];
    const xField = (count.get(pair) ?? 0) > 1 && first ? first[0] : undefined;
    let key = xField ? `${pair} ${xField}=${r.fields[xField]}` : pair;
    for (let i = 2; out.has(key); i++) key = `${key.replace(/ #\d+$/, '')} #${i}`;
    out.set(key, { record: r, xField });
  }
  return out;
}

function show(n: number): string {
  return Number.isInteger(n) ? String(n) : Math.abs(n) >= 100 ? n.toFixed(1) : n.toFixed(3);
}

/**
 * The comparison table of two result sets: one row per numeric field of each (store, scenario) present in both, with
 * its value in a, in b, and b/a (`-` when a is 0).
 */
export function compareTable(a: BenchRecord[], b: BenchRecord[]): string {
  const left = byKey(a);
  const right = byKey(b);
  const rows: string[][] = [['store', 'scenario', 'field', 'a', 'b', 'b/a']];
  for (const [key, { record, xField }] of left) {
    const other = right.get(key)?.record;
    if (!other) continue;
    const scenario = xField ? `${record.scenario} ${xField}=${record.fields[xField]}` : record.scenario;
    for (const [field, av] of Object.entries(record.fields)) {
      const bv = other.fields[field];
      if (field === xField || typeof av !== 'number' || typeof bv !== 'number') continue;
      rows.push([record.store, scenario, field, show(av), show(bv), av === 0 ? '-' : (bv / av).toFixed(3)]);
    }
  }
  if (rows.length === 1) return 'no (store, scenario) with numeric fields in both files';
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const numeric = [false, false, false, true, true, true];
  return rows
    .map((r) => r.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd())
    .join('\n');
}
