import type { RedactionContext } from './dashboard-options.interface.js';
import type { ShownValue } from './dashboard-api.interface.js';
import type { ResolvedDashboardOptions } from './dashboard.options.js';
import { toValueTree } from './value-tree.js';

/**
 * Turns run values into what may leave the server: `redact` first (a redact that throws hides the value), then a
 * {@link ValueNode} tree cut to `budget` characters.
 */
export class ValuePresenter {
  constructor(private readonly redact: ResolvedDashboardOptions['redact']) {}

  /** A value as shown; `ref` is kept when the tree was cut, for the "show all" link. */
  show(value: unknown, where: RedactionContext, ref: string | undefined, budget: number): ShownValue {
    const redacted = this.apply(value, where);
    const { tree, truncated } = toValueTree(redacted, budget);
    return { tree, truncated, ...(truncated && ref !== undefined ? { ref } : {}) };
  }

  /** An error message as shown (redacted as field `error`; a redact may return another text or any value). */
  showMessage(message: string, where: Omit<RedactionContext, 'field'>, ref: string | undefined, budget: number): ShownValue {
    return this.show(message, { ...where, field: 'error' }, ref, budget);
  }

  /** A short plain text of an error message, for the runs list. */
  messageText(message: string, where: Omit<RedactionContext, 'field'>, chars: number): string {
    const redacted = this.apply(message, { ...where, field: 'error' });
    const text = typeof redacted === 'string' ? redacted : safeJson(redacted);
    return text.length > chars ? `${text.slice(0, chars)}…` : text;
  }

  private apply(value: unknown, where: RedactionContext): unknown {
    if (!this.redact) return value;
    try {
      return this.redact(value, { ...where });
    } catch {
      // NOTE: the error of a redact could quote the value it failed on: it is not shown either.
      return '[hidden: redact threw]';
    }
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(value);
  } catch {
    return String(value);
  }
}
