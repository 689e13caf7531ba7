import { InvalidArgumentError } from '../../errors/errors.js';
import type { RunStatus } from '../workflow-store.interface.js';

/**
 * Key layout of the Redis store.
 *
 * Per run (all in the slot of the run's hash tag, `{<base64url of the UTF-8 run id>}`):
 * - `<prefix>{<tag>}:r` hash: the run's fields (see `redis.scripts.ts` for the field names)
 * - `<prefix>{<tag>}:s` hash: step visits, field = index (decimal), value = JSON of the step
 * - `<prefix>{<tag>}:q` hash: signal queues, FIFO per name (`h:<name>` head, `t:<name>` tail, `v:<seq>:<name>` payload);
 *   deleted when the run ends, is replaced or purged
 *
 * Global indexes (all in the slot of the index hash tag, `{~<base64url of the prefix>}`):
 * - `...:c` zset runId → createdAt (list, no filter)
 * - `...:w:<wf>` zset runId → createdAt (list by workflow)
 * - `...:s:<status>` zset runId → createdAt (list by status)
 * - `...:ws:<wf>:<status>` zset runId → createdAt (list by workflow and status)
 * - `...:due` zset runId → earliest time the run may be claimable (claims)
 * - `...:dw:<wf>` zset runId → same, per workflow (claims restricted to workflows)
 * - `...:f:<status>` zset runId → finishedAt, per terminal status (purge)
 * - `...:m` hash runId → `<version>|<status>|<workflow>` of the index entries (makes index updates idempotent)
 * - `...:k` zset `<op id><runId>` → 0 / first time seen: write-ahead marks of index updates in flight
 *
 * Run ids and workflow names are encoded with base64url, so no byte of user data can change a key's slot, form
 * another run's key or collide with another name (base64url never contains `{`, `}` or `:`).
 */

export const STATUSES: readonly RunStatus[] = [
  'pending',
  'running',
  'sleeping',
  'waiting',
  'paused',
  'compensating',
  'completed',
  'compensated',
  'failed',
  'cancelled',
];
export const TERMINAL: readonly RunStatus[] = ['completed', 'compensated', 'failed', 'cancelled'];

/** Whether a JS string can be stored and read back byte for byte (no lone UTF-16 surrogates). */
function isWellFormed(value: string): boolean {
  const fn = (String.prototype as { isWellFormed?: () => boolean }).isWellFormed;
  if (fn) return fn.call(value);
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(value);
}

/** base64url of the UTF-8 bytes: injective on well-formed strings, and free of `{`, `}`, `:`. */
export function encodeName(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64url');
}

/** Checks a run id can be used as data in keys: a non-empty, well-formed string. */
export function checkRunId(runId: unknown): asserts runId is string {
  if (typeof runId !== 'string' || runId.length === 0) {
    throw new InvalidArgumentError('A run id must be a non-empty string.');
  }
  if (!isWellFormed(runId)) {
    throw new InvalidArgumentError('A run id must be well-formed Unicode (it contains a lone UTF-16 surrogate).');
  }
}

export interface RunKeys {
  run: string;
  steps: string;
  signals: string;
}

/** Key names of one prefix. */
export class RedisKeys {
  /** Prefix of every global index key, including its hash tag. */
  readonly index: string;
  readonly created: string;
  readonly due: string;
  readonly meta: string;
  readonly kicks: string;
  /** Pub/sub channel of store events. */
  readonly channel: string;

  constructor(readonly prefix: string) {
    this.index = `${prefix}{~${encodeName(prefix)}}`;
    this.created = `${this.index}:c`;
    this.due = `${this.index}:due`;
    this.meta = `${this.index}:m`;
    this.kicks = `${this.index}:k`;
    this.channel = `${prefix}events`;
  }

  run(runId: string): RunKeys {
    checkRunId(runId);
    const base = `${this.prefix}{${encodeName(runId)}}`;
    return { run: `${base}:r`, steps: `${base}:s`, signals: `${base}:q` };
  }

  byStatus(status: RunStatus): string {
    return `${this.index}:s:${status}`;
  }

  finished(status: RunStatus): string {
    return `${this.index}:f:${status}`;
  }

  byWorkflow(workflow: string): string {
    return `${this.index}:w:${encodeName(workflow)}`;
  }

  byWorkflowStatus(workflow: string, status: RunStatus): string {
    return `${this.index}:ws:${encodeName(workflow)}:${status}`;
  }

  dueByWorkflow(workflow: string): string {
    return `${this.index}:dw:${encodeName(workflow)}`;
  }

  /** The keys of one workflow's index group, in the order the apply script expects. */
  workflowGroup(workflow: string): string[] {
    return [this.dueByWorkflow(workflow), this.byWorkflow(workflow), ...STATUSES.map((s) => this.byWorkflowStatus(workflow, s))];
  }

  /** The fixed leading keys of the apply script. */
  applyBase(): string[] {
    return [
      this.created,
      this.meta,
      this.kicks,
      this.due,
      ...STATUSES.map((s) => this.byStatus(s)),
      ...TERMINAL.map((s) => this.finished(s)),
    ];
  }
}

/** CRC16/XMODEM, as Redis Cluster uses for key slots. */
function crc16(bytes: Buffer): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Redis Cluster slot of a key (hash tags honoured). */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % 16384;
  }
  return crc16(bytes) % 16384;
}
