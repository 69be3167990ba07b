// AES-256-GCM sealing of secrets kept at rest under the key-encryption key
// (secrets.keyEncryptionKey): signing keys (key-material.ts, AAD = kid) and
// TOTP secrets (mfa/, AAD = user id). The AAD binds a sealed value to its row,
// so a value copied to another row does not open. Layout: iv(12) | tag(16) | ciphertext.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

export function seal(kek: Buffer, aad: string, plain: Uint8Array): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", kek, iv);
  c.setAAD(Buffer.from(aad, "utf8"));
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), ct]);
}

/** Throws when the KEK, the AAD or the sealed bytes are not the ones it was sealed with. */
export function open(kek: Buffer, aad: string, sealed: Uint8Array): Buffer {
  const b = Buffer.from(sealed);
  const d = createDecipheriv("aes-256-gcm", kek, b.subarray(0, 12));
  d.setAAD(Buffer.from(aad, "utf8"));
  d.setAuthTag(b.subarray(12, 28));
  return Buffer.concat([d.update(b.subarray(28)), d.final()]);
}
