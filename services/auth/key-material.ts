// The material of one ES256 signing key: a new P-256 pair with its public JWK
// (jose's exportJWK) and kid (the RFC 7638 thumbprint, jose's
// calculateJwkThumbprint), the private key sealed at rest with AES-256-GCM
// under secrets.keyEncryptionKey (secret-box.ts; the kid is the AAD), and a stored row opened
// back into a SigningKey (jose's importJWK for the public half). The schedule
// of keys is keys.ts.
import { createPrivateKey, generateKeyPairSync, KeyObject } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, importJWK } from "jose";
import type { Selectable } from "kysely";
import type { Jwk } from "../../platform/auth/keys.js";
import { ACCESS_TOKEN_ALG } from "../../platform/auth/verifier.js";
import type { Logger } from "../../platform/logger.js";
import { open, seal } from "./secret-box.js";
import type { SigningKeyTable } from "./tables.js";

export interface SigningKey {
  readonly kid: string;
  /** Undefined when the sealed key cannot be opened with this KEK (published, never used to sign). */
  readonly privateKey?: KeyObject;
  readonly publicKey: KeyObject;
  readonly jwk: Jwk;
  /** Epoch ms. */
  readonly activatesAt: number;
  readonly retiresAt?: number;
  readonly expiresAt?: number;
}

export type KeyRow = Selectable<SigningKeyTable>;

export function sealPrivateKey(kek: Buffer, kid: string, der: Buffer): Buffer {
  return seal(kek, kid, der);
}

export function openPrivateKey(kek: Buffer, kid: string, sealed: Uint8Array): Buffer {
  return open(kek, kid, sealed);
}

/** RFC 7638 thumbprint (SHA-256) of a P-256 public key: the kid. */
export function thumbprint(jwk: { crv?: string; x?: string; y?: string }): Promise<string> {
  return calculateJwkThumbprint({ kty: "EC", crv: jwk.crv, x: jwk.x, y: jwk.y }, "sha256");
}

/** A new key pair as a signing_keys row (private key sealed), signing from `activatesAt`. */
export async function newKeyRow(kek: Buffer, activatesAt: Date) {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const { kty, crv, x, y } = await exportJWK(publicKey);
  const kid = await thumbprint({ crv, x, y });
  const jwk: Jwk = { kty, crv, x, y, kid, alg: ACCESS_TOKEN_ALG, use: "sig" };
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  return {
    kid,
    alg: ACCESS_TOKEN_ALG,
    public_jwk: JSON.stringify(jwk),
    private_key_enc: sealPrivateKey(kek, kid, der),
    activates_at: activatesAt,
    retires_at: null,
    expires_at: null,
  };
}

/** A stored key with its schedule; a private key the KEK cannot open is logged and left out. */
export async function openKeyRow(kek: Buffer, r: KeyRow, log: Logger): Promise<SigningKey> {
  const jwk = (typeof r.public_jwk === "string" ? JSON.parse(r.public_jwk) : r.public_jwk) as Jwk;
  const publicKey = KeyObject.from((await importJWK(jwk, ACCESS_TOKEN_ALG, { extractable: true })) as CryptoKey);
  let privateKey: KeyObject | undefined;
  try {
    privateKey = createPrivateKey({ key: openPrivateKey(kek, r.kid, r.private_key_enc), format: "der", type: "pkcs8" });
  } catch {
    log.error("signing key cannot be decrypted with KEY_ENCRYPTION_KEY; it is published but never signs", { kid: r.kid });
  }
  return withSchedule({ kid: r.kid, privateKey, publicKey, jwk, activatesAt: 0 }, r);
}

/** The key with the schedule of its row. */
export function withSchedule(k: SigningKey, r: KeyRow): SigningKey {
  return { ...k, activatesAt: r.activates_at.getTime(), retiresAt: r.retires_at?.getTime(), expiresAt: r.expires_at?.getTime() };
}
