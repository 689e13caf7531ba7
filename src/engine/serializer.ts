import { types } from 'node:util';
import SuperJSON from 'superjson';
import { PayloadTooLargeError, SerializationError } from '../errors/errors.js';

const ENVELOPE = '__superjson';
/** A plain object's prototype, also from another realm (a `vm` context, Jest's test sandbox, `structuredClone`). */
function isPlainPrototype(proto: object | null): boolean {
  if (proto === null || proto === Object.prototype) return true;
  if (Object.getPrototypeOf(proto) !== null) return false;
  const ctor = (proto as { constructor?: unknown }).constructor;
  return typeof ctor === 'function' && ctor.name === 'Object';
}

/** Built-in types superjson restores, recognised across realms. */
function isRichBuiltin(obj: object): boolean {
  return types.isDate(obj) || types.isMap(obj) || types.isSet(obj) || types.isRegExp(obj) || types.isNativeError(obj) || obj instanceof Error || obj instanceof URL;
}

type Shape = 'plain' | 'rich';

interface Walk {
  seen: Set<object>;
  /** Found objects of another realm, which superjson would not recognise. */
  foreign: boolean;
}

function describePath(path: string): string {
  return path === '' ? 'the value' : `"${path}"`;
}

/**
 * Object keys refused everywhere. superjson refuses them whenever the value also needs its envelope (a Date, a Map …)
 * to guard against prototype pollution; refusing them always makes a value's fate independent of what else it holds.
 */
const RESERVED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Throws for keys that could not be restored: symbol keys (JSON drops them) and the reserved names. */
function assertStorableKeys(obj: object, path: string): void {
  for (const symbol of Object.getOwnPropertySymbols(obj)) {
    if (Object.prototype.propertyIsEnumerable.call(obj, symbol)) {
      throw new SerializationError(`${describePath(path)} has a symbol-keyed property (${String(symbol)}), which cannot be stored`);
    }
  }
  for (const key of Object.keys(obj)) {
    if (RESERVED_KEYS.has(key)) {
      throw new SerializationError(
        `${describePath(path)} has a property named "${key}", which is refused to rule out prototype pollution; rename it`,
      );
    }
  }
}

/**
 * Walks a value once: throws SerializationError for what cannot be restored (functions, symbols, class instances)
 * and tells whether plain JSON can carry it exactly (the fast path) or superjson is needed.
 */
function inspect(value: unknown, path: string, walk: Walk): Shape {
  const seen = walk.seen;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return 'plain';
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0) ? 'plain' : 'rich';
    case 'bigint':
    case 'undefined':
      return 'rich';
    case 'function':
      throw new SerializationError(`${describePath(path)} is a function, which cannot be stored`);
    case 'symbol':
      throw new SerializationError(`${describePath(path)} is a symbol, which cannot be stored`);
  }
  if (value === null) return 'plain';
  const obj = value as object;
  if (seen.has(obj)) return 'rich'; // circular or shared reference: superjson restores it
  seen.add(obj);
  let shape: Shape = 'plain';
  const at = (key: string | number) => (path === '' ? String(key) : `${path}.${key}`);
  if (Array.isArray(obj)) {
    if (!(obj instanceof Array)) walk.foreign = true;
    for (let i = 0; i < obj.length; i++) {
      if (!(i in obj)) shape = 'rich';
      else if (inspect(obj[i], at(i), walk) === 'rich') shape = 'rich';
    }
  } else {
    const proto = Object.getPrototypeOf(obj) as object | null;
    if (isPlainPrototype(proto)) {
      if (proto !== null && proto !== Object.prototype) walk.foreign = true;
      assertStorableKeys(obj, path);
      for (const key of Object.keys(obj)) {
        const v = (obj as Record<string, unknown>)[key];
        if (v === undefined || inspect(v, at(key), walk) === 'rich') shape = 'rich';
      }
      if (path === '' && Object.prototype.hasOwnProperty.call(obj, ENVELOPE)) shape = 'rich';
    } else if (isRichBuiltin(obj)) {
      shape = 'rich';
      if (!(obj instanceof Date || obj instanceof Map || obj instanceof Set || obj instanceof RegExp || obj instanceof Error || obj instanceof URL)) {
        walk.foreign = true;
      }
      if (types.isMap(obj)) {
        let i = 0;
        for (const [k, v] of obj as Map<unknown, unknown>) {
          inspect(k, at(`<key ${i}>`), walk);
          inspect(v, at(`<value ${i++}>`), walk);
        }
      } else if (types.isSet(obj)) {
        let i = 0;
        for (const v of obj as Set<unknown>) inspect(v, at(`<item ${i++}>`), walk);
      }
    } else {
      const name = (proto?.constructor as { name?: string } | undefined)?.name ?? 'unknown';
      throw new SerializationError(
        `${describePath(path)} is an instance of class ${name}, which cannot be restored from storage; return a plain object instead`,
      );
    }
  }
  seen.delete(obj);
  return shape;
}

/** Rebuilds values of another realm with this realm's built-ins (keeping shared and circular references). */
function toThisRealm(value: unknown, memo: Map<object, unknown>): unknown {
  if (value === null || typeof value !== 'object') return value;
  const obj = value as object;
  if (memo.has(obj)) return memo.get(obj);
  if (Array.isArray(obj)) {
    const out: unknown[] = new Array(obj.length);
    memo.set(obj, out);
    for (let i = 0; i < obj.length; i++) if (i in obj) out[i] = toThisRealm(obj[i], memo);
    return out;
  }
  if (types.isDate(obj)) return new Date((obj as Date).getTime());
  if (types.isRegExp(obj)) return new RegExp((obj as RegExp).source, (obj as RegExp).flags);
  if (types.isMap(obj)) {
    const out = new Map<unknown, unknown>();
    memo.set(obj, out);
    for (const [k, v] of obj as Map<unknown, unknown>) out.set(toThisRealm(k, memo), toThisRealm(v, memo));
    return out;
  }
  if (types.isSet(obj)) {
    const out = new Set<unknown>();
    memo.set(obj, out);
    for (const v of obj as Set<unknown>) out.add(toThisRealm(v, memo));
    return out;
  }
  if (obj instanceof URL) return obj;
  if (types.isNativeError(obj) && !(obj instanceof Error)) {
    const e = obj as Error;
    const out = new Error(e.message);
    out.name = e.name;
    return out;
  }
  if (obj instanceof Error) return obj;
  const out: Record<string, unknown> = Object.getPrototypeOf(obj) === null ? Object.create(null) : {};
  memo.set(obj, out);
  for (const key of Object.keys(obj)) out[key] = toThisRealm((obj as Record<string, unknown>)[key], memo);
  return out;
}

/**
 * Turns step inputs and outputs into the strings stores keep, and back. Plain JSON values are stored as JSON; values
 * with `Date`, `BigInt`, `Map`, `Set`, `undefined`, shared or circular references go through superjson.
 */
export class Serializer {
  constructor(private readonly maxPayloadBytes: number) {}

  /**
   * @param what what is serialized, for error messages (e.g. `output of step "charge"`)
   * @throws SerializationError | PayloadTooLargeError
   */
  serialize(value: unknown, what: string, step?: string): string {
    let text: string;
    try {
      const walk: Walk = { seen: new Set(), foreign: false };
      const shape = inspect(value, '', walk);
      if (shape === 'plain') text = JSON.stringify(value);
      else {
        const local = walk.foreign ? toThisRealm(value, new Map()) : value;
        text = `{"${ENVELOPE}":${SuperJSON.stringify(local)}}`;
      }
    } catch (error) {
      if (error instanceof SerializationError) {
        throw new SerializationError(`Cannot serialize ${what}: ${error.message}.`, step);
      }
      throw new SerializationError(`Cannot serialize ${what}: ${(error as Error).message}`, step);
    }
    // NOTE: most payloads are ASCII; only measure bytes when the length could exceed the limit.
    if (text.length * 3 > this.maxPayloadBytes) {
      const bytes = Buffer.byteLength(text, 'utf8');
      if (bytes > this.maxPayloadBytes) throw new PayloadTooLargeError(what.charAt(0).toUpperCase() + what.slice(1), bytes, this.maxPayloadBytes);
    }
    return text;
  }

  deserialize<T = unknown>(text: string | undefined): T {
    if (text === undefined) return undefined as T;
    const parsed = JSON.parse(text) as unknown;
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && ENVELOPE in parsed) {
      return SuperJSON.deserialize((parsed as Record<string, never>)[ENVELOPE]) as T;
    }
    return parsed as T;
  }
}
