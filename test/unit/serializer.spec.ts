import { describe, expect, it } from '@jest/globals';
import { PayloadTooLargeError, SerializationError } from '../../src/index.js';
import { Serializer } from '../../src/engine/serializer.js';

const s = new Serializer(1024);
const roundTrip = (v: unknown) => s.deserialize(s.serialize(v, 'value'));

describe('Serializer', () => {
  it('stores plain values as plain JSON', () => {
    expect(s.serialize({ a: [1, 'x', null, true] }, 'v')).toBe('{"a":[1,"x",null,true]}');
    expect(roundTrip('text')).toBe('text');
    expect(roundTrip(null)).toBeNull();
  });

  it('round-trips Date, BigInt, Map, Set, undefined, NaN, -0 and nested values', () => {
    const value = {
      when: new Date('2026-01-02T03:04:05.678Z'),
      big: 12345678901234567890n,
      map: new Map<unknown, unknown>([['k', { d: new Date(0) }], [1, new Set([1, 2])]]),
      set: new Set(['a']),
      missing: undefined,
      list: [undefined, 1],
      nan: NaN,
      neg: -0,
    };
    const back = roundTrip(value) as typeof value;
    expect(back.when).toEqual(value.when);
    expect(back.big).toBe(value.big);
    expect(back.map).toEqual(value.map);
    expect(back.set).toEqual(value.set);
    expect('missing' in back).toBe(true);
    expect(back.missing).toBeUndefined();
    expect(back.list).toEqual([undefined, 1]);
    expect(back.nan).toBeNaN();
    expect(Object.is(back.neg, -0)).toBe(true);
    expect(roundTrip(undefined)).toBeUndefined();
  });

  it('restores circular and shared references', () => {
    const shared = { v: 1 };
    const circ: Record<string, unknown> = { shared, again: shared };
    circ.self = circ;
    const back = roundTrip(circ) as typeof circ;
    expect(back.self).toBe(back);
    expect(back.shared).toBe(back.again);
  });

  it('does not confuse a user object that looks like the envelope', () => {
    expect(roundTrip({ __superjson: { json: 1 } })).toEqual({ __superjson: { json: 1 } });
  });

  it.each([
    ['a function', { save() {} }, /"save" is a function/],
    ['a symbol', { s: Symbol('x') }, /"s" is a symbol/],
    ['a class instance', { c: new (class Customer { x = 1 })() }, /"c" is an instance of class Customer/],
    ['a nested function in a Map', new Map([['k', () => 1]]), /is a function/],
  ])('rejects %s naming the path', (_what, value, message) => {
    expect(() => s.serialize(value, 'output of step "x"', 'x')).toThrow(SerializationError);
    expect(() => s.serialize(value, 'output of step "x"', 'x')).toThrow(message);
    try {
      s.serialize(value, 'output of step "x"', 'x');
    } catch (error) {
      expect((error as SerializationError).step).toBe('x');
      expect((error as SerializationError).message).toContain('output of step "x"');
    }
  });

  it('enforces maxPayloadBytes in bytes, not characters', () => {
    expect(() => s.serialize('x'.repeat(2000), 'input')).toThrow(PayloadTooLargeError);
    expect(() => s.serialize('é'.repeat(600), 'input')).toThrow(PayloadTooLargeError);
    expect(s.serialize('x'.repeat(900), 'input').length).toBe(902);
  });
});

describe('Serializer across realms', () => {
  it('accepts plain objects and arrays from another realm (vm context, structuredClone under Jest)', async () => {
    const vm = await import('node:vm');
    const foreign = vm.runInNewContext('({ a: 1, nested: { list: [1, 2] } })') as object;
    expect(Object.getPrototypeOf(foreign)).not.toBe(Object.prototype);
    expect(roundTrip(foreign)).toEqual({ a: 1, nested: { list: [1, 2] } });
    expect(roundTrip(structuredClone({ b: [new Date(0)] }))).toEqual({ b: [new Date(0)] });
  });

  it('still rejects foreign class instances', async () => {
    const vm = await import('node:vm');
    const foreign = vm.runInNewContext('new (class Thing { constructor() { this.x = 1 } })()') as object;
    expect(() => s.serialize(foreign, 'value')).toThrow(/instance of class Thing/);
  });
});

describe('Serializer: keys that cannot be restored', () => {
  it('refuses symbol-keyed properties instead of dropping them, plain or rich', () => {
    const key = Symbol('secret');
    expect(() => s.serialize({ a: 1, [key]: 2 }, 'value')).toThrow(SerializationError);
    expect(() => s.serialize({ nested: { [key]: 2 } }, 'value')).toThrow(/"nested" has a symbol-keyed property \(Symbol\(secret\)\)/);
    expect(() => s.serialize({ when: new Date(0), [key]: 2 }, 'value')).toThrow(SerializationError);
  });

  it.each(['constructor', 'prototype', '__proto__'])('refuses a property named %s whether or not the value needs superjson', (name) => {
    const plain = JSON.parse(`{"ok":1,"${name}":{"x":1}}`) as object;
    const rich = JSON.parse(`{"${name}":1}`) as Record<string, unknown>;
    rich.when = new Date(0);
    expect(() => s.serialize(plain, 'value')).toThrow(new RegExp(`property named "${name}"`));
    expect(() => s.serialize(rich, 'value')).toThrow(new RegExp(`property named "${name}"`));
    expect(() => s.serialize({ deep: [plain] }, 'value')).toThrow(SerializationError);
  });

  it('keeps those names usable as Map keys and string values, and never pollutes prototypes', () => {
    const back = roundTrip({ m: new Map([['constructor', 1], ['__proto__', 2]]), s: '__proto__' }) as { m: Map<string, number>; s: string };
    expect(back.m.get('__proto__')).toBe(2);
    expect(back.s).toBe('__proto__');
    const parsed = s.deserialize<Record<string, unknown>>('{"__proto__":{"polluted":true}}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
  });
});

describe('run id checks', () => {
  it('refuses ids that no store can keep verbatim', async () => {
    const { assertRunId } = await import('../../src/engine/argument-checks.js');
    const { InvalidArgumentError } = await import('../../src/index.js');
    expect(() => assertRunId('a\u0000b')).toThrow(InvalidArgumentError);
    expect(() => assertRunId('bad\ud800')).toThrow(/unpaired UTF-16 surrogates/);
    expect(() => assertRunId('ok 🚀 {tag} \'quoted\'')).not.toThrow();
  });
});

describe('run id order', () => {
  it('compares by code point (UTF-8 bytes), not UTF-16 units', async () => {
    const { compareRunIds } = await import('../../src/store/run-id-order.js');
    expect('\u{1F600}' < '\uE000').toBe(true); // UTF-16 order
    expect(compareRunIds('\u{1F600}', '\uE000')).toBeGreaterThan(0); // code point order
    expect(compareRunIds('a', 'b')).toBeLessThan(0);
    expect(compareRunIds('same', 'same')).toBe(0);
  });
});
