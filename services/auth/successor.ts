// The refresh-token reuse grace window's memory: when a refresh token is spent,
// the pair it was exchanged for is kept beside it, encrypted with AES-256-GCM
// under a key derived (HKDF-SHA256) from the spent token itself. Only the
// token's hash is stored, so the database alone cannot decrypt it: a retry
// presenting the old token can, and gets the same pair again. AAD is the
// token's hash, so a blob cannot be moved to another row.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

export interface IssuedPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

const INFO = "acme refresh successor v1";

function keyFor(spentToken: string): Buffer {
  return Buffer.from(hkdfSync("sha256", Buffer.from(spentToken, "utf8"), Buffer.alloc(0), INFO, 32));
}

export function sealSuccessor(spentToken: string, spentHash: Uint8Array, pair: IssuedPair): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", keyFor(spentToken), iv);
  c.setAAD(spentHash);
  const body = Buffer.concat([c.update(JSON.stringify(pair), "utf8"), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]);
}

/** The pair, or undefined when the blob does not open with this token. */
export function openSuccessor(spentToken: string, spentHash: Uint8Array, sealed: Uint8Array): IssuedPair | undefined {
  try {
    const b = Buffer.from(sealed);
    const d = createDecipheriv("aes-256-gcm", keyFor(spentToken), b.subarray(0, 12));
    d.setAAD(spentHash);
    d.setAuthTag(b.subarray(12, 28));
    const p = JSON.parse(Buffer.concat([d.update(b.subarray(28)), d.final()]).toString("utf8")) as IssuedPair;
    return typeof p.accessToken === "string" && typeof p.refreshToken === "string" && typeof p.expiresIn === "number" ? p : undefined;
  } catch {
    return undefined;
  }
}
