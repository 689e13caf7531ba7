/**
 * A decoded value (dates, maps, sets, bigints… as the client returns them) as a JSON-safe tree that says what each
 * part is, cut to a budget of characters. The pages render it; the JSON API sends it.
 */
export type ValueNode =
  | { type: 'null' }
  | { type: 'undefined' }
  | { type: 'boolean'; value: boolean }
  /** `value`: the number, or `'NaN'`, `'Infinity'`, `'-Infinity'`, `'-0'` (which JSON cannot carry). */
  | { type: 'number'; value: number | string }
  | { type: 'bigint'; value: string }
  /** `length`: the whole string's length when `value` is cut. */
  | { type: 'string'; value: string; length?: number }
  /** ISO 8601, or `'Invalid Date'`. */
  | { type: 'date'; value: string }
  | { type: 'regexp'; value: string }
  | { type: 'error'; name: string; message: string }
  /** `more`: entries left out to keep within the budget. */
  | { type: 'array'; items: ValueNode[]; more?: number }
  | { type: 'object'; className?: string; entries: { key: string; value: ValueNode }[]; more?: number }
  | { type: 'map'; entries: { key: ValueNode; value: ValueNode }[]; size: number; more?: number }
  | { type: 'set'; items: ValueNode[]; size: number; more?: number }
  /** A reference back to a value that contains it. */
  | { type: 'circular' }
  /** What is not data (a function, a symbol, a typed array…), described. */
  | { type: 'other'; value: string };

/** A tree and whether anything was cut from it. */
export interface ValueTree {
  tree: ValueNode;
  truncated: boolean;
}

const MAX_DEPTH = 64;
/** A cut string keeps at least this much, so a long value in a crowded object still says something. */
const MIN_STRING_CHARS = 80;

/**
 * Renders a value as a {@link ValueNode} tree of about `budget` characters at most (each part costs its text's length),
 * cutting long strings and leaving out entries past the budget (`more`). Never throws: parts that cannot be read
 * (throwing getters, revoked proxies) become `other`.
 */
export function toValueTree(value: unknown, budget: number): ValueTree {
  const state = { left: budget, truncated: false };
  const ancestors = new Set<object>();

  const spend = (chars: number) => {
    state.left -= chars;
  };

  const visit = (v: unknown, depth: number): ValueNode => {
    switch (typeof v) {
      case 'undefined':
        spend(9);
        return { type: 'undefined' };
      case 'boolean':
        spend(5);
        return { type: 'boolean', value: v };
      case 'number': {
        spend(8);
        if (Number.isNaN(v)) return { type: 'number', value: 'NaN' };
        if (!Number.isFinite(v)) return { type: 'number', value: v > 0 ? 'Infinity' : '-Infinity' };
        return { type: 'number', value: Object.is(v, -0) ? '-0' : v };
      }
      case 'bigint': {
        const text = v.toString();
        spend(text.length + 1);
        return { type: 'bigint', value: text };
      }
      case 'string':
        return visitString(v);
      case 'symbol':
        spend(10);
        return { type: 'other', value: safe(() => v.toString(), 'Symbol()') };
      case 'function':
        spend(12);
        return { type: 'other', value: `function ${safe(() => v.name, '') || '(anonymous)'}` };
    }
    if (v === null) {
      spend(4);
      return { type: 'null' };
    }
    return visitObject(v as object, depth);
  };

  const visitString = (s: string): ValueNode => {
    const room = Math.max(state.left, MIN_STRING_CHARS);
    if (s.length + 2 <= room) {
      spend(s.length + 2);
      return { type: 'string', value: s };
    }
    state.truncated = true;
    spend(room);
    return { type: 'string', value: cutString(s, room), length: s.length };
  };

  const visitObject = (o: object, depth: number): ValueNode => {
    if (ancestors.has(o)) {
      spend(10);
      return { type: 'circular' };
    }
    if (depth >= MAX_DEPTH) {
      state.truncated = true;
      spend(5);
      return { type: 'other', value: '… (nested too deeply)' };
    }
    try {
      const tag = Object.prototype.toString.call(o);
      if (o instanceof Date || tag === '[object Date]') {
        spend(26);
        const time = Date.prototype.getTime.call(o);
        return { type: 'date', value: Number.isNaN(time) ? 'Invalid Date' : new Date(time).toISOString() };
      }
      if (o instanceof RegExp) {
        const text = cutString(String(o), 500);
        spend(text.length);
        return { type: 'regexp', value: text };
      }
      if (o instanceof Error) {
        const name = cutString(String(o.name), 200);
        const message = cutString(String(o.message), Math.max(MIN_STRING_CHARS, state.left));
        spend(name.length + message.length);
        return { type: 'error', name, message };
      }
      if (ArrayBuffer.isView(o) || o instanceof ArrayBuffer || o instanceof WeakMap || o instanceof WeakSet || o instanceof Promise) {
        spend(20);
        return { type: 'other', value: tag.slice(8, -1) };
      }
      ancestors.add(o);
      try {
        if (Array.isArray(o)) return { type: 'array', ...collect(o, (item) => visit(item, depth + 1)) };
        if (o instanceof Map) {
          const { items, more } = collect([...o.entries()], ([k, val]) => ({ key: visit(k, depth + 1), value: visit(val, depth + 1) }));
          return { type: 'map', entries: items, size: o.size, ...(more ? { more } : {}) };
        }
        if (o instanceof Set) {
          const { items, more } = collect([...o.values()], (item) => visit(item, depth + 1));
          return { type: 'set', items, size: o.size, ...(more ? { more } : {}) };
        }
        const proto = Object.getPrototypeOf(o) as object | null;
        const ctor = proto && proto !== Object.prototype ? safe(() => (proto.constructor as { name?: unknown })?.name, undefined) : undefined;
        const { items, more } = collect(Object.keys(o), (key) => {
          spend(key.length + 4);
          return { key, value: visit((o as Record<string, unknown>)[key], depth + 1) };
        });
        return { type: 'object', ...(typeof ctor === 'string' && ctor !== 'Object' ? { className: ctor } : {}), entries: items, ...(more ? { more } : {}) };
      } finally {
        ancestors.delete(o);
      }
    } catch {
      spend(12);
      return { type: 'other', value: '(unreadable)' };
    }
  };

  /** Visits entries while the budget lasts; the rest are counted in `more`. */
  function collect<T, N>(all: readonly T[], each: (entry: T) => N): { items: N[]; more?: number } {
    spend(2);
    const items: N[] = [];
    for (const entry of all) {
      if (state.left <= 0) {
        state.truncated = true;
        return { items, more: all.length - items.length };
      }
      items.push(each(entry));
      spend(2);
    }
    return { items };
  }

  const tree = visit(value, 0);
  return { tree, truncated: state.truncated };
}

/** Cuts a string to `chars` code units without splitting a surrogate pair. */
export function cutString(text: string, chars: number): string {
  if (text.length <= chars) return text;
  let end = Math.max(0, chars);
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return text.slice(0, end);
}

function safe<T, F>(read: () => T, fallback: F): T | F {
  try {
    return read();
  } catch {
    return fallback;
  }
}
