// Token minting: ES256 JWTs signed with node:crypto (IEEE P1363 signatures,
// as JWS requires), header kid + typ at+jwt, and opaque refresh tokens stored
// only as SHA-256 hashes. Verification is platform/auth/verifier.ts.
import { createHash, randomBytes, randomUUID, sign } from "node:crypto";
import { ACCESS_TOKEN_ALG, ACCESS_TOKEN_TYP } from "../../platform/auth/verifier.js";
import type { AuthConfig } from "./config.js";
import type { SigningKey, SigningKeys } from "./keys.js";

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v), "utf8").toString("base64url");

/** Compact JWS of `claims` with `key`; `header` extras are for tests of refused tokens. */
export function signJwt(key: SigningKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const input = `${b64({ alg: ACCESS_TOKEN_ALG, typ: ACCESS_TOKEN_TYP, kid: key.kid, ...header })}.${b64(claims)}`;
  if (!key.privateKey) throw new Error(`signing key ${key.kid} has no private key`);
  const sig = sign("sha256", Buffer.from(input), { key: key.privateKey, dsaEncoding: "ieee-p1363" });
  return `${input}.${sig.toString("base64url")}`;
}

/** A new refresh token: 256 random bits, base64url. */
export function newRefreshToken(): string {
  return randomBytes(32).toString("base64url");
}

export function hashToken(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** Refresh tokens we issue are exactly 43 base64url characters; anything else is refused unseen. */
export const REFRESH_TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export interface UserTokenInput {
  userId: string;
  sessionId: string;
  roles: readonly string[];
}

export interface ServiceTokenInput {
  clientId: string;
  audience: string;
  allowedRoutes: readonly string[];
  rateLimit: number;
}

export class TokenMinter {
  constructor(
    private readonly keys: SigningKeys,
    private readonly cfg: AuthConfig,
  ) {}

  /** A user access token (aud = the API audience), valid accessTtlSeconds. */
  accessToken(u: UserTokenInput): { token: string; expiresIn: number } {
    const iat = Math.floor(Date.now() / 1000);
    const token = signJwt(this.keys.current(), {
      iss: this.cfg.issuer,
      aud: this.cfg.audience,
      sub: u.userId,
      iat,
      nbf: iat,
      exp: iat + this.cfg.accessTtlSeconds,
      jti: randomUUID(),
      sid: u.sessionId,
      roles: [...u.roles],
    });
    return { token, expiresIn: this.cfg.accessTtlSeconds };
  }

  /** A service token (client credentials) for one audience. */
  serviceToken(s: ServiceTokenInput): { token: string; expiresIn: number } {
    const iat = Math.floor(Date.now() / 1000);
    const token = signJwt(this.keys.current(), {
      iss: this.cfg.issuer,
      aud: s.audience,
      sub: s.clientId,
      client_id: s.clientId,
      iat,
      nbf: iat,
      exp: iat + this.cfg.serviceTokenTtlSeconds,
      jti: randomUUID(),
      allowed_routes: [...s.allowedRoutes],
      rate_limit: s.rateLimit,
    });
    return { token, expiresIn: this.cfg.serviceTokenTtlSeconds };
  }
}
