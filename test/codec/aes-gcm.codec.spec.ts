import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { AesGcmCodec } from '../../src/codec/aes-gcm.codec.js';
import { ConfigurationError } from '../../src/errors/errors.js';

const K1 = randomBytes(32);
const K2 = randomBytes(32);
const codec = (over: Partial<ConstructorParameters<typeof AesGcmCodec>[0]> = {}) => new AesGcmCodec({ keys: { k1: K1 }, currentKeyId: 'k1', ...over });

/** Flips one base64url character of the ciphertext part of a value (the key id and prefix stay). */
function tamper(value: string, at = -5): string {
  const i = value.length + at;
  const c = value[i] === 'A' ? 'B' : 'A';
  return value.slice(0, i) + c + value.slice(i + 1);
}

describe('AesGcmCodec', () => {
  it('round-trips any text exactly, writing the key id into each value and no plaintext', () => {
    const c = codec();
    const texts = ['', 'x', '{"card":"4111 1111 1111 1111"}', `ünï©ødé 🚀 '" \\ \n\t ${'z'.repeat(100_000)}`, JSON.stringify('\u0000 \ud83d\ude80')];
    for (const text of texts) {
      const encoded = c.encode(text);
      expect(typeof encoded).toBe('string');
      expect(encoded.startsWith('cairn:gcm:v1:k1:')).toBe(true);
      expect(encoded).toMatch(/^cairn:gcm:v1:k1:[A-Za-z0-9_-]+$/);
      if (text.length > 3) expect(encoded).not.toContain(text.slice(0, 20));
      expect(c.decode(encoded)).toBe(text);
    }
    expect(c.encode('4111').includes('4111')).toBe(false);
  });

  it('uses a fresh random IV per value: the same text never encodes the same way twice', () => {
    const c = codec();
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) seen.add(c.encode('same'));
    expect(seen.size).toBe(2000);
    const ivs = new Set([...seen].map((v) => Buffer.from(v.slice('cairn:gcm:v1:k1:'.length), 'base64url').subarray(0, 12).toString('hex')));
    expect(ivs.size).toBe(2000);
  });

  it('decodes values written under an older key after currentKeyId moves (rotation)', () => {
    const before = codec();
    const old = before.encode('written under k1');
    const after = new AesGcmCodec({ keys: { k1: K1, k2: K2 }, currentKeyId: 'k2' });
    expect(after.currentKeyId).toBe('k2');
    const fresh = after.encode('written under k2');
    expect(AesGcmCodec.keyIdOf(fresh)).toBe('k2');
    expect(AesGcmCodec.keyIdOf(old)).toBe('k1');
    expect(after.decode(old)).toBe('written under k1');
    expect(after.decode(fresh)).toBe('written under k2');
    // the old codec cannot read the new key's values, and says which key it lacks
    expect(() => before.decode(fresh)).toThrow(/key "k2" is not among the codec's keys/);
  });

  it('names the key id when the key is missing, and never quotes the value', () => {
    const value = new AesGcmCodec({ keys: { gone: K2 }, currentKeyId: 'gone' }).encode('secret-marker');
    let message = '';
    try {
      codec().decode(value);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('key "gone" is not among the codec\'s keys ("k1")');
    expect(message).not.toContain(value.slice(20));
  });

  it('refuses tampered values: ciphertext, tag, IV, a relabelled key id, a truncated value, the same id with another key', () => {
    const c = new AesGcmCodec({ keys: { k1: K1, k2: K2 }, currentKeyId: 'k1' });
    const value = c.encode('pay 10 EUR to alice');
    const body = value.slice('cairn:gcm:v1:k1:'.length);
    const raw = Buffer.from(body, 'base64url');
    const withByte = (i: number) => {
      const copy = Buffer.from(raw);
      copy[i] ^= 1;
      return `cairn:gcm:v1:k1:${copy.toString('base64url')}`;
    };
    const cases = {
      'a ciphertext byte': withByte(raw.length - 1),
      'a tag byte': withByte(12),
      'an IV byte': withByte(0),
      'a base64 character': tamper(value),
      'the key id relabelled': `cairn:gcm:v1:k2:${body}`,
      'bytes appended': `cairn:gcm:v1:k1:${Buffer.concat([raw, Buffer.from([1])]).toString('base64url')}`,
    };
    for (const [what, bad] of Object.entries(cases)) {
      expect(() => c.decode(bad)).toThrow(/fails authentication/);
      expect(what).toBeTruthy();
    }
    expect(() => c.decode(`cairn:gcm:v1:k1:${body.slice(0, 20)}`)).toThrow(/key "k1" is truncated/);
    const sameIdOtherKey = new AesGcmCodec({ keys: { k1: K2 }, currentKeyId: 'k1' });
    expect(() => sameIdOtherKey.decode(value)).toThrow(/the value under key "k1" fails authentication/);
  });

  it('refuses values that are not its own, without quoting them', () => {
    const c = codec();
    for (const bad of ['{"plain":"json"}', '', 'cairn:gcm:v1:', 'cairn:gcm:v1::abc', 'cairn:gcm:v2:k1:abc']) {
      let message = '';
      try {
        c.decode(bad);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/not a value of this codec/);
      if (bad.includes('plain')) expect(message).not.toContain('plain');
    }
    expect(AesGcmCodec.keyIdOf('{"plain":1}')).toBeUndefined();
  });

  it('accepts keys as a Buffer, base64, URL-safe base64 or hex of 32 bytes, all equivalent', () => {
    const key = randomBytes(32);
    const forms = [key, key.toString('base64'), key.toString('base64').replace(/=$/, ''), key.toString('base64url'), key.toString('hex'), key.toString('hex').toUpperCase(), ` ${key.toString('base64')}\n`];
    const value = new AesGcmCodec({ keys: { a: key }, currentKeyId: 'a' }).encode('same key');
    for (const form of forms) expect(new AesGcmCodec({ keys: { a: form }, currentKeyId: 'a' }).decode(value)).toBe('same key');
  });

  it('validates its options at construction with ConfigurationError, never quoting a key', () => {
    const secret = randomBytes(31).toString('base64');
    const bad: [unknown, RegExp][] = [
      [undefined, /keys must be an object/],
      [{ keys: {}, currentKeyId: 'a' }, /keys must be an object of at least one key/],
      [{ keys: { a: K1 }, currentKeyId: 'b' }, /currentKeyId "b" is not among the keys \("a"\)/],
      [{ keys: { a: K1 } }, /currentKeyId undefined is not among the keys/],
      [{ keys: { a: randomBytes(16) }, currentKeyId: 'a' }, /key "a" must be 32 bytes.*got 16 bytes/],
      [{ keys: { a: secret }, currentKeyId: 'a' }, /key "a" must be 32 bytes: a Buffer, or a string of base64 .* or 64 hex digits \(got a string of \d+ characters\)/],
      [{ keys: { a: 'not a key' }, currentKeyId: 'a' }, /key "a" must be 32 bytes/],
      [{ keys: { a: 42 }, currentKeyId: 'a' }, /got number/],
      [{ keys: { 'a:b': K1 }, currentKeyId: 'a:b' }, /key id "a:b" must be 1–64 characters/],
      [{ keys: { ['x'.repeat(65)]: K1 }, currentKeyId: 'x'.repeat(65) }, /must be 1–64 characters/],
    ];
    for (const [options, message] of bad) {
      let error: unknown;
      try {
        new AesGcmCodec(options as never);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain(secret);
      expect((error as ConfigurationError).code).toBe('CAIRN_CONFIGURATION');
    }
  });

  it('does not keep a reference to the caller\'s key buffer', () => {
    const key = Buffer.from(K1);
    const c = new AesGcmCodec({ keys: { k1: key }, currentKeyId: 'k1' });
    const value = c.encode('x');
    key.fill(0);
    expect(c.decode(value)).toBe('x');
  });
});
