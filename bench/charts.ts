/**
 * `npm run bench -- --charts curves.json [--charts-out=bench/charts]`: one SVG per scaling curve, from the JSON of a
 * `--curves` run (`--json`), rendered with Vega-Lite (compiled to Vega, then a headless Vega View's `toSVG()`: no
 * browser, no canvas, no native module). bench/README.md embeds them ("Scaling curves").
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { BenchRecord } from './report.js';

type Row = Record<string, string | number>;
type Spec = vl.TopLevelSpec;

const PANEL = { width: 240, height: 180 };
const COLOR = { field: 'store', type: 'nominal', title: 'store', scale: { domain: ['postgres', 'redis'], range: ['#336791', '#d82c20'] } } as const;
/** A legend of line dashes drawn as dashes (the points of the lines would make it circles). */
const DASH_LEGEND = { symbolType: 'stroke', symbolStrokeColor: '#444', symbolStrokeWidth: 2, symbolSize: 400, symbolFillColor: 'transparent' } as const;
const CONFIG = { font: 'sans-serif', axis: { labelFontSize: 11, titleFontSize: 11 }, legend: { labelFontSize: 11, titleFontSize: 11 }, title: { fontSize: 13 } };

/** The rows of one scenario: each record's fields with its store. */
function rows(records: BenchRecord[], scenario: string): Row[] {
  return records.filter((r) => r.scenario === scenario).map((r) => ({ store: r.store, ...r.fields }));
}

/** A line-and-points panel of `y` over the ordinal `x` (one line per store). */
function linePanel(x: string, xTitle: string, y: string, yTitle: string, extra: Record<string, unknown> = {}) {
  return {
    ...PANEL,
    mark: { type: 'line', point: { filled: true }, strokeWidth: 2 },
    encoding: {
      x: { field: x, type: 'ordinal', title: xTitle, axis: { labelAngle: 0, labelExpr: "format(datum.value, ',')" } },
      y: { field: y, type: 'quantitative', title: yTitle, scale: { zero: true } },
      color: COLOR,
      ...extra,
    },
  };
}

async function toSvg(spec: Spec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The charts of the curves present in `records`, by file name. */
export function chartSpecs(records: BenchRecord[]): Record<string, Spec> {
  const specs: Record<string, Spec> = {};
  const ended = rows(records, 'curve_ended');
  if (ended.length > 0) {
    const claims = ended.flatMap((r) => [
      { store: r.store, ended: r.ended, kind: 'nothing due', ms: r.claim_empty_ms },
      { store: r.store, ended: r.ended, kind: 'a few due', ms: r.claim_due_ms },
    ]);
    specs['curve-ended.svg'] = {
      title: 'conc64 and one claim, by ended runs in the store',
      config: { ...CONFIG, legend: { ...CONFIG.legend, orient: 'bottom' } },
      resolve: { scale: { strokeDash: 'independent' }, legend: { strokeDash: 'independent' } },
      hconcat: [
        {
          data: {
            values: ended.flatMap((r) => [
              { store: r.store, ended: r.ended, stat: 'all turns', rate: r.wf_per_s },
              ...(r.turn_median_wf_per_s === undefined ? [] : [{ store: r.store, ended: r.ended, stat: 'median turn', rate: r.turn_median_wf_per_s }]),
            ]),
          },
          ...linePanel('ended', 'ended runs', 'rate', 'runs/s (conc64)', { strokeDash: { field: 'stat', type: 'nominal', title: 'runs/s of', legend: DASH_LEGEND, scale: { domain: ['all turns', 'median turn'], range: [[1, 0], [4, 2]] } } }),
        },
        { data: { values: ended }, ...linePanel('ended', 'ended runs', 'p99_ms', 'p99 latency (ms)') },
        {
          data: { values: claims },
          ...linePanel('ended', 'ended runs', 'ms', 'one claim (ms, median)', { strokeDash: { field: 'kind', type: 'nominal', title: 'claim', legend: DASH_LEGEND, scale: { domain: ['a few due', 'nothing due'], range: [[1, 0], [4, 2]] } } }),
        },
      ],
    } as Spec;
  }
  const live = rows(records, 'curve_live');
  if (live.length > 0) {
    const base = ended.filter((r) => r.ended === 0).map((r) => ({ ...r, point: 'empty store' }));
    const withLive = live.map((r) => ({ ...r, point: `${Number(r.sleeping).toLocaleString('en')} sleeping + ${Number(r.waiting).toLocaleString('en')} waiting` }));
    const values = [...base, ...withLive];
    const domain = ['empty store', ...new Set(withLive.map((r) => r.point))];
    const bars = (field: string, title: string) => ({
      ...PANEL,
      width: 200,
      mark: 'bar',
      encoding: {
        x: { field: 'store', type: 'nominal', title: null, axis: { labelAngle: 0 } },
        xOffset: { field: 'point', type: 'nominal', sort: domain },
        y: { field, type: 'quantitative', title },
        color: { field: 'point', type: 'nominal', title: 'store holding', scale: { domain, range: ['#9aa5b1', '#e39b2d'] } },
      },
    });
    specs['curve-live.svg'] = {
      title: 'conc64 and one claim, with live (sleeping, waiting) runs in the store',
      config: { ...CONFIG, legend: { ...CONFIG.legend, orient: 'bottom', labelLimit: 400 } },
      data: { values },
      hconcat: [bars('wf_per_s', 'runs/s (conc64)'), bars('p99_ms', 'p99 latency (ms)'), bars('claim_due_ms', 'one claim, a few due (ms)')],
    } as Spec;
  }
  const workers = rows(records, 'curve_workers');
  if (workers.length > 0) {
    specs['curve-workers.svg'] = {
      title: `worker processes sharing one store (64 runs in flight each; ${workers[0].cores ?? 2} cores)`,
      config: CONFIG,
      data: { values: workers },
      hconcat: [
        linePanel('workers', 'worker processes', 'wf_per_s', 'total runs/s'),
        {
          data: {
            values: workers.flatMap((r) => [
              { store: r.store, workers: r.workers, who: 'worker processes', pct: r.workers_cpu_pct },
              ...(r.server_cpu_pct === undefined ? [] : [{ store: r.store, workers: r.workers, who: 'server', pct: r.server_cpu_pct }]),
              { store: r.store, workers: r.workers, who: 'whole machine', pct: Number(r.cpu_busy_pct) * Number(r.cores ?? 2) },
            ]),
          },
          ...linePanel('workers', 'worker processes', 'pct', 'CPU (% of one core)', { strokeDash: { field: 'who', type: 'nominal', title: 'CPU of', legend: DASH_LEGEND } }),
        },
      ],
    } as Spec;
  }
  const cluster = rows(records, 'curve_cluster');
  if (cluster.length > 0) {
    const bar = (field: string, title: string) => ({
      ...PANEL,
      width: 160,
      mark: 'bar',
      encoding: {
        x: { field: 'masters', type: 'ordinal', title: 'Redis masters', axis: { labelAngle: 0 } },
        y: { field, type: 'quantitative', title },
        color: { field: 'masters', type: 'ordinal', legend: null, scale: { range: ['#d82c20', '#8c1c14'] } },
      },
    });
    specs['curve-cluster.svg'] = {
      title: 'conc64: one Redis against a Redis Cluster of 3 masters',
      config: CONFIG,
      data: { values: cluster },
      hconcat: [bar('wf_per_s', 'runs/s (conc64)'), bar('p99_ms', 'p99 latency (ms)')],
    } as Spec;
  }
  const rss = rows(records, 'curve_rss').map((r) => ({ ...r, kb_per_run: Number(r.bytes_per_run) / 1024, heap_kb_per_run: Number(r.heap_bytes_per_run) / 1024 }));
  if (rss.length > 0) {
    specs['curve-rss.svg'] = {
      title: 'memory of one instance per run blocked in a step',
      config: CONFIG,
      data: { values: rss },
      hconcat: [
        {
          ...PANEL,
          layer: [
            linePanel('inflight', 'runs in flight', 'kb_per_run', 'RSS per run (KiB)'),
            { mark: { type: 'rule', strokeDash: [4, 4], color: '#666' }, encoding: { y: { datum: 20 } } },
          ],
        },
        linePanel('inflight', 'runs in flight', 'heap_kb_per_run', 'JS heap per run (KiB)'),
      ],
    } as Spec;
  }
  const resume = rows(records, 'curve_resume');
  if (resume.length > 0) {
    specs['curve-resume.svg'] = {
      title: 'resuming runs interrupted by a dead instance',
      config: CONFIG,
      data: { values: resume },
      hconcat: [linePanel('runs', 'interrupted runs', 'resume_s', 'time to resume all (s)'), linePanel('runs', 'interrupted runs', 'wf_per_s', 'runs resumed per s')],
    } as Spec;
  }
  return specs;
}

/** Writes the SVG of each curve in `records` to `outDir`; returns the paths written. */
export async function renderCharts(records: BenchRecord[], outDir: string): Promise<string[]> {
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const [file, spec] of Object.entries(chartSpecs(records))) {
    const path = join(outDir, file);
    writeFileSync(path, `${await toSvg(spec)}\n`);
    written.push(path);
  }
  if (written.length === 0) throw new Error('no curve_* lines in the results: run `npm run bench -- --curves --json curves.json` first');
  return written;
}
