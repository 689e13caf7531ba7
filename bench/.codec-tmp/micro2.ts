import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { AesGcmCodec } from '../../src/codec/aes-gcm.codec.js';
const key = randomBytes(32); const ko = createSecretKey(key);
const s = JSON.stringify({ t: 'step.completed', at: Date.now(), s: 'charge', a: 1, d: 12, i: 'host:1234:abcdef' });
const iv = randomBytes(12); const aad = Buffer.from('cairn:gcm:v1:k1:');
const aes = new AesGcmCodec({ keys: { k1: key }, currentKeyId: 'k1' });
function bench(name: string, fn: () => void) {
  for (let i = 0; i < 20000; i++) fn();
  const N = 200000; const c0 = process.cpuUsage(); for (let i = 0; i < N; i++) fn(); const c = process.cpuUsage(c0);
  console.log(name.padEnd(30), ((c.user + c.system) / N).toFixed(2), 'us cpu');
}
const enc = aes.encode(s);
for (let r = 0; r < 2; r++) {
bench('codec.encode', () => aes.encode(s));
bench('codec.decode', () => aes.decode(enc));
bench('createCipheriv only', () => { createCipheriv('aes-256-gcm', ko, iv); });
bench('+aad', () => { const c = createCipheriv('aes-256-gcm', ko, iv); c.setAAD(aad); });
bench('+aad+update', () => { const c = createCipheriv('aes-256-gcm', ko, iv); c.setAAD(aad); c.update(s, 'utf8'); });
bench('+aad+update+final+tag', () => { const c = createCipheriv('aes-256-gcm', ko, iv); c.setAAD(aad); c.update(s, 'utf8'); c.final(); c.getAuthTag(); });
bench('noaad update final tag', () => { const c = createCipheriv('aes-256-gcm', ko, iv); c.update(s, 'utf8'); c.final(); c.getAuthTag(); });
bench('buffer key', () => { const c = createCipheriv('aes-256-gcm', key, iv); c.update(s, 'utf8'); c.final(); c.getAuthTag(); });
bench('Buffer.from(s)', () => { Buffer.from(s, 'utf8'); });
bench('base64url 120B', () => { enc.length; Buffer.allocUnsafe(120).toString('base64url'); });
}
