// Token minting: ES256 JWTs signed with jose (SignJWT), header kid + typ
// at+jwt, and opaque refresh tokens stored only as SHA-256 hashes.
// Verification is platform/auth/verifier.ts.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { SignJWT, type JWTHeaderParameters } from "jose";
import { ACCESS_TOKEN_ALG, ACCESS_TOKEN_TYP } from "../../platform/auth/verifier.js";
import type { AuthConfig } from "./config.js";
import type { SigningKey, SigningKeys } from "./keys.js";

/** Compact JWS of `claims` with `key`; `header` extras are for tests of refused tokens. */
export async function signJwt(key: SigningKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  if (!key.privateKey) throw new Error(`signing key ${key.kid} has no private key`);
  const protectedHeader = { alg: ACCESS_TOKEN_ALG, typ: ACCESS_TOKEN_TYP, kid: key.kid, ...header } as JWTHeaderParameters;
  return new SignJWT(claims).setProtectedHeader(protectedHeader).sign(key.privateKey);
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
  /** The account's address is verified: the email_verified claim (OpenID Connect's name), read by the verified_email policy. */
  emailVerified?: boolean;
}

export interface ServiceTokenInput {
  clientId: string;
  audience: string;
  /** Granted scopes, sent as the space-separated "scope" claim (RFC 9068). */
  scopes: readonly string[];
  rateLimit: number;
}

export class TokenMinter {
  constructor(
    private readonly keys: SigningKeys,
    private readonly cfg: AuthConfig,
  ) {}

  /** A user access token (aud = the API audience), valid accessTtlSeconds. */
  async accessToken(u: UserTokenInput): Promise<{ token: string; expiresIn: number }> {
    const iat = Math.floor(Date.now() / 1000);
    const token = await signJwt(this.keys.current(), {
      iss: this.cfg.issuer,
      aud: this.cfg.audience,
      sub: u.userId,
      iat,
      nbf: iat,
      exp: iat + this.cfg.accessTtlSeconds,
      jti: randomUUID(),
      sid: u.sessionId,
      roles: [...u.roles],
      email_verified: u.emailVerified === true,
    });
    return { token, expiresIn: this.cfg.accessTtlSeconds };
  }

  /** A service token (client credentials) for one audience. */
  async serviceToken(s: ServiceTokenInput): Promise<{ token: string; expiresIn: number }> {
    const iat = Math.floor(Date.now() / 1000);
    const token = await signJwt(this.keys.current(), {
      iss: this.cfg.issuer,
      aud: s.audience,
      sub: s.clientId,
      client_id: s.clientId,
      iat,
      nbf: iat,
      exp: iat + this.cfg.serviceTokenTtlSeconds,
      jti: randomUUID(),
      scope: s.scopes.join(" "),
      rate_limit: s.rateLimit,
    });
    return { token, expiresIn: this.cfg.serviceTokenTtlSeconds };
  }
}
