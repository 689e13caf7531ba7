/**
 * Encodes the values a run stores (inputs, outputs, signal payloads, heartbeat details, error messages, the engine's
 * state and history) on their way into the store, and decodes them on their way out: set it as the module's `codec`
 * option and the store holds only what `encode` returns. `AesGcmCodec` encrypts; a custom codec may call a KMS,
 * compress, or both.
 *
 * Rules:
 * - `decode(encode(x))` must return `x` exactly, for any string (empty, long, any Unicode).
 * - Both may be synchronous (return the string: no promise is created on the checkpoint path) or asynchronous.
 * - A value `decode` cannot read (unknown key, tampered, not one of its values) must make it throw (or reject) with a
 *   message naming why, e.g. the key id; never with the value itself, which may be plaintext. The run it belongs to is
 *   then failed with `CorruptRunError` naming the run, the field and that message; nothing stored is rewritten.
 * - `encode` throwing (or rejecting) fails that store call as a store error would: nothing of the write is stored.
 */
export interface PayloadCodec {
  encode(data: string): string | Promise<string>;
  decode(data: string): string | Promise<string>;
}
