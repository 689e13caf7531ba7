import { createCipheriv, createDecipheriv, createSecretKey, randomFillSync, type KeyObject } from 'node:crypto';
import { ConfigurationError } from '../errors/errors.js';
import type { PayloadCodec } from './payload-codec.interface.js';

/** Options of {@link AesGcmCodec}. */
export interface AesGcmCodecOptions {
  /**
   * The keys by id, each of 32 bytes: a `Buffer`, or a string of the key's base64 (standard or URL-safe, e.g.
   * `openssl rand -base64 32`) or 64 hex digits. Ids are 1–64 characters of `A–Z a–z 0–9 . _ -`. Keep every key that
   * stored values may still use (runs in flight, and ended runs not yet purged).
   */
  keys: Record<string, string | Buffer>;
  /** The key new values are encrypted with. Values under the other keys still decode (key rotation). */
  currentKeyId: string;
}

/** Every value starts with this, then the key id, a colon and base64url(iv ‖ tag ‖ ciphertext). */
const PREFIX = 'cairn:gcm:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/_-]{43}=?$/;
/** IVs are taken from a pool filled 4 KiB at a time (one call into the CSPRNG per 341 values instead of one each). */
const IV_POOL_BYTES = 4096 - (4096 % IV_BYTES);

interface Key {
  id: string;
  secret: KeyObject;
  /** `PREFIX + id + ':'`: the start of each value, also authenticated as the cipher's additional data. */
  header: string;
  aad: Buffer;
}

/**
 * A {@link PayloadCodec} that encrypts with AES-256-GCM (`node:crypto`): a random 96-bit IV per value, and the key id
 * written into each value (`cairn:gcm:v1:<keyId>:<base64url(iv ‖ tag ‖ ciphertext)>`, the header authenticated too),
 * so that values written under older keys still decode after `currentKeyId` moves to a new key. Synchronous: it adds no
 * promise to the checkpoint path.
 *
 * Decoding a value whose key is not among `keys`, that was tampered with, or that is not one of its values throws an
 * error naming the key id (never the value).
 *
 * @example
 * new AesGcmCodec({ keys: { '2025-06': process.env.CAIRN_KEY_2025_06!, '2025-01': process.env.CAIRN_KEY_2025_01! }, currentKeyId: '2025-06' })
 */
export class AesGcmCodec implements PayloadCodec {
  private readonly keys = new Map<string, Key>();
  private readonly current: Key;
  private readonly ivPool = Buffer.alloc(IV_POOL_BYTES);
  private ivOffset = IV_POOL_BYTES;

  constructor(options: AesGcmCodecOptions) {
    const { keys, currentKeyId } = (options ?? {}) as Partial<AesGcmCodecOptions>;
    if (!keys || typeof keys !== 'object' || Array.isArray(keys) || Object.keys(keys).length === 0) {
      throw new ConfigurationError('AesGcmCodec: keys must be an object of at least one key by id, e.g. { k1: process.env.CAIRN_KEY_K1 }.');
    }
    for (const [id, material] of Object.entries(keys)) {
      if (!KEY_ID.test(id)) {
        throw new ConfigurationError(`AesGcmCodec: key id ${JSON.stringify(id).slice(0, 80)} must be 1–64 characters of A–Z a–z 0–9 . _ -`);
      }
      const header = `${PREFIX}${id}:`;
      this.keys.set(id, { id, secret: createSecretKey(keyBytes(id, material)), header, aad: Buffer.from(header, 'latin1') });
    }
    const current = typeof currentKeyId === 'string' ? this.keys.get(currentKeyId) : undefined;
    if (!current) {
      throw new ConfigurationError(
        `AesGcmCodec: currentKeyId ${JSON.stringify(currentKeyId)?.slice(0, 80)} is not among the keys (${[...this.keys.keys()].map((k) => JSON.stringify(k)).join(', ')}).`,
      );
    }
    this.current = current;
  }

  /** The id new values are written under. */
  get currentKeyId(): string {
    return this.current.id;
  }

  /**
   * The key id a value names, without decrypting it (undefined when it is not a value of this codec), e.g. to find
   * which stored values still use a key before removing it.
   */
  static keyIdOf(value: string): string | undefined {
    if (typeof value !== 'string' || !value.startsWith(PREFIX)) return undefined;
    const end = value.indexOf(':', PREFIX.length);
    return end > PREFIX.length ? value.slice(PREFIX.length, end) : undefined;
  }

  encode(data: string): string {
    const key = this.current;
    const iv = this.nextIv();
    const cipher = createCipheriv('aes-256-gcm', key.secret, iv);
    cipher.setAAD(key.aad);
    // NOTE: text is encoded as UTF-8; a lone UTF-16 surrogate (which the engine never writes: its values are JSON text
    // and sanitized error messages) would come back as U+FFFD.
    const head = cipher.update(data, 'utf8');
    const tail = cipher.final();
    const out = Buffer.allocUnsafe(IV_BYTES + TAG_BYTES + head.length + tail.length);
    iv.copy(out, 0);
    cipher.getAuthTag().copy(out, IV_BYTES);
    head.copy(out, IV_BYTES + TAG_BYTES);
    tail.copy(out, IV_BYTES + TAG_BYTES + head.length);
    return key.header + out.toString('base64url');
  }

  decode(value: string): string {
    if (typeof value !== 'string' || !value.startsWith(PREFIX)) {
      throw new Error(`not a value of this codec (it does not start with "${PREFIX}")`);
    }
    const end = value.indexOf(':', PREFIX.length);
    if (end <= PREFIX.length) throw new Error('not a value of this codec (no key id after its prefix)');
    const id = value.slice(PREFIX.length, end);
    const key = this.keys.get(id);
    if (!key) {
      throw new Error(`key ${JSON.stringify(id.slice(0, 64))} is not among the codec's keys (${[...this.keys.keys()].map((k) => JSON.stringify(k)).join(', ')})`);
    }
    const bytes = Buffer.from(value.slice(end + 1), 'base64url');
    if (bytes.length < IV_BYTES + TAG_BYTES) throw new Error(`the value under key ${JSON.stringify(id)} is truncated`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.secret, bytes.subarray(0, IV_BYTES));
      decipher.setAAD(key.aad);
      decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const body = bytes.subarray(IV_BYTES + TAG_BYTES);
      return decipher.update(body, undefined, 'utf8') + decipher.final('utf8');
    } catch {
      throw new Error(`the value under key ${JSON.stringify(id)} fails authentication: it was tampered with, or encrypted with another key of that id`);
    }
  }

  private nextIv(): Buffer {
    if (this.ivOffset + IV_BYTES > IV_POOL_BYTES) {
      randomFillSync(this.ivPool);
      this.ivOffset = 0;
    }
    // NOTE: a view, not a copy: encode() uses it synchronously, before the pool can be refilled.
    const iv = this.ivPool.subarray(this.ivOffset, this.ivOffset + IV_BYTES);
    this.ivOffset += IV_BYTES;
    return iv;
  }
}

/** The 32 bytes of a key option. @throws ConfigurationError (never quoting the key) */
function keyBytes(id: string, material: unknown): Buffer {
  let bytes: Buffer | undefined;
  let got: string;
  if (Buffer.isBuffer(material) || material instanceof Uint8Array) {
    bytes = Buffer.from(material);
    got = `${bytes.length} bytes`;
  } else if (typeof material === 'string') {
    const text = material.trim();
    if (HEX_KEY.test(text)) bytes = Buffer.from(text, 'hex');
    // NOTE: Node's base64 decoder reads the URL-safe alphabet too.
    else if (BASE64_KEY.test(text)) bytes = Buffer.from(text, 'base64');
    got = `a string of ${material.length} characters`;
  } else {
    got = material === undefined ? 'undefined' : typeof material;
  }
  if (!bytes || bytes.length !== KEY_BYTES) {
    throw new ConfigurationError(
      `AesGcmCodec: key ${JSON.stringify(id)} must be 32 bytes: a Buffer, or a string of base64 (e.g. \`openssl rand -base64 32\`) ` +
        `or 64 hex digits (got ${got}).`,
    );
  }
  return bytes;
}
