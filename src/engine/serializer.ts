import SuperJSON from 'superjson';
import { PayloadTooLargeError, SerializationError } from '../errors/errors.js';

const ENVELOPE = '__superjson';
const RICH_PROTOTYPES: ReadonlySet<object> = new Set([
  Date.prototype,
  Map.prototype,
  Set.prototype,
  RegExp.prototype,
  Error.prototype,
  URL.prototype,
]);

type Shape = 'plain' | 'rich';

function describePath(path: string): string {
  return path === '' ? 'the value' : `"${path}"`;
}

/**
 * Walks a value once: throws SerializationError for what cannot be restored (functions, symbols, class instances)
 * and tells whether plain JSON can carry it exactly (the fast path) or superjson is needed.
 */
function inspect(value: unknown, path: string, seen: Set<object>): Shape {
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
    for (let i = 0; i < obj.length; i++) {
      if (!(i in obj)) shape = 'rich';
      else if (inspect(obj[i], at(i), seen) === 'rich') shape = 'rich';
    }
  } else {
    const proto = Object.getPrototypeOf(obj);
    if (proto === Object.prototype || proto === null) {
      for (const key of Object.keys(obj)) {
        const v = (obj as Record<string, unknown>)[key];
        if (v === undefined || inspect(v, at(key), seen) === 'rich') shape = 'rich';
      }
      if (path === '' && Object.prototype.hasOwnProperty.call(obj, ENVELOPE)) shape = 'rich';
    } else if (RICH_PROTOTYPES.has(proto) || obj instanceof Error) {
      shape = 'rich';
      if (obj instanceof Map) {
        let i = 0;
        for (const [k, v] of obj) {
          inspect(k, at(`<key ${i}>`), seen);
          inspect(v, at(`<value ${i++}>`), seen);
        }
      } else if (obj instanceof Set) {
        let i = 0;
        for (const v of obj) inspect(v, at(`<item ${i++}>`), seen);
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
      const shape = inspect(value, '', new Set());
      text = shape === 'plain' ? JSON.stringify(value) : `{"${ENVELOPE}":${SuperJSON.stringify(value)}}`;
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
