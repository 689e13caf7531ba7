import { createHash } from 'node:crypto';
import type { WorkflowDefinition } from '../definition/workflow-definition.interface.js';
import type { LiveRunGroup } from '../store/workflow-store.interface.js';

/** What `client.checkCompatibility()` and the bootstrap check report. */
export interface CompatibilityReport {
  /** No incompatible run and no unclaimable version. */
  ok: boolean;
  /** Live runs looked at. */
  runsChecked: number;
  /**
   * Live runs the registered definitions cannot continue: their next step is gone, or steps they completed no longer
   * exist. At most 20 runs are named per (workflow, version, pipeline, step) group; `reason` gives the group's size.
   */
  incompatible: { runId: string; workflow: string; version: number; reason: string }[];
  /** Live runs of (workflow, version) pairs this app does not register: no instance running this code claims them. */
  unclaimable: { workflow: string; version: number; runs: number }[];
}

/** The stored description of a pipeline, saved once under its fingerprint. */
interface PipelineBody {
  workflow: string;
  version: number;
  steps: string[];
}

/** The fingerprint of a definition's pipeline (workflow, version and step names in order) and its stored body. */
export function pipelineOf(def: Pick<WorkflowDefinition, 'name' | 'version' | 'steps'>): { fingerprint: string; body: string } {
  const body = JSON.stringify({ workflow: def.name, version: def.version, steps: def.steps.map((s) => s.name) } satisfies PipelineBody);
  return { fingerprint: `p1:${createHash('sha256').update(body).digest('base64url').slice(0, 22)}`, body };
}

function parseBody(text: string | undefined): PipelineBody | undefined {
  if (text === undefined) return undefined;
  try {
    const body = JSON.parse(text) as PipelineBody;
    return Array.isArray(body?.steps) && body.steps.every((s) => typeof s === 'string') ? body : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Compares the live runs (grouped by the store) with the registered definitions. Pure.
 * @param lookup the registered definition of a (workflow, version), if any
 * @param pipelines stored pipeline bodies by fingerprint
 */
export function checkCompatibility(
  groups: readonly LiveRunGroup[],
  lookup: (workflow: string, version: number) => WorkflowDefinition | undefined,
  pipelines: Readonly<Record<string, string>>,
): CompatibilityReport {
  const report: CompatibilityReport = { ok: true, runsChecked: 0, incompatible: [], unclaimable: [] };
  const unclaimable = new Map<string, { workflow: string; version: number; runs: number }>();
  for (const group of groups) {
    report.runsChecked += group.count;
    const def = lookup(group.workflow, group.version);
    if (!def) {
      const key = `${group.version}:${group.workflow}`;
      const entry = unclaimable.get(key) ?? { workflow: group.workflow, version: group.version, runs: 0 };
      entry.runs += group.count;
      unclaimable.set(key, entry);
      continue;
    }
    const reason = incompatibility(group, def, pipelines);
    if (reason === undefined) continue;
    const size = group.count === 1 ? '' : ` (${group.count} runs like this one)`;
    for (const runId of group.runIds) report.incompatible.push({ runId, workflow: group.workflow, version: group.version, reason: reason + size });
  }
  report.unclaimable = [...unclaimable.values()];
  report.ok = report.incompatible.length === 0 && report.unclaimable.length === 0;
  return report;
}

function incompatibility(group: LiveRunGroup, def: WorkflowDefinition, pipelines: Readonly<Record<string, string>>): string | undefined {
  if (group.pipeline !== undefined && group.pipeline === pipelineOf(def).fingerprint) return undefined;
  const now = def.steps.map((s) => s.name);
  const step = group.currentStep;
  if (step !== undefined && !def.stepsByName.has(step)) {
    return `it is at step "${step}", which ${def.className} (${def.name} v${def.version}) no longer has (steps: ${now.join(', ')})`;
  }
  const old = parseBody(group.pipeline === undefined ? undefined : pipelines[group.pipeline]);
  if (!old || step === undefined) return undefined;
  const done = old.steps.slice(0, Math.max(0, old.steps.indexOf(step)));
  const gone = done.filter((name) => !def.stepsByName.has(name));
  if (gone.length > 0) {
    return `step(s) it completed (${gone.map((n) => `"${n}"`).join(', ')}) no longer exist in ${def.className} (${def.name} v${def.version}; steps: ${now.join(', ')})`;
  }
  return undefined;
}
