import { createCipheriv, createSecretKey, randomBytes, randomFillSync } from 'node:crypto';
const key = randomBytes(32); const ko = createSecretKey(key);
const s = JSON.stringify({ t: 'step.completed', at: Date.now(), s: 'charge', a: 1, d: 12, i: 'host:1234:abcdef' });
const iv = randomBytes(12); const aad = Buffer.from('cairn:gcm:v1:k1:');
function bench(name: string, fn: () => void) {
  for (let i = 0; i < 20000; i++) fn();
  const N = 100000; const t = performance.now(); for (let i = 0; i < N; i++) fn();
  console.log(name, ((performance.now() - t) * 1000 / N).toFixed(2), 'us');
}
for (let r = 0; r < 2; r++) {
bench('noop createCipheriv buffer key', () => { createCipheriv('aes-256-gcm', key, iv); });
bench('noop createCipheriv KeyObject', () => { createCipheriv('aes-256-gcm', ko, iv); });
bench('full gcm KeyObject', () => { const c = createCipheriv('aes-256-gcm', ko, iv); c.setAAD(aad); const a = c.update(s, 'utf8'); c.final(); c.getAuthTag(); });
bench('full gcm buffer', () => { const c = createCipheriv('aes-256-gcm', key, iv); c.setAAD(aad); const a = c.update(s, 'utf8'); c.final(); c.getAuthTag(); });
bench('full chacha', () => { const c = createCipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 }); c.setAAD(aad, { plaintextLength: Buffer.byteLength(s) }); c.update(s, 'utf8'); c.final(); c.getAuthTag(); });
bench('base64url 100B', () => { iv.toString('base64url'); Buffer.alloc(100).toString('base64url'); });
bench('randomFill 12', () => { randomFillSync(Buffer.allocUnsafe(12)); });
}
