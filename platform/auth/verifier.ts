// Access-token verification, the same everywhere in the system (RFC 8725):
// algorithm pinned to ES256, typ at+jwt, issuer and audience checked, exp/nbf
// enforced, kid required and looked up, size bounded, revoked sessions
// refused. Signatures are checked with node:crypto on cached KeyObjects.
//
// Tokens that passed are remembered (as Envoy's jwt_authn jwt_cache_config
// does), keyed by the whole token string, so a client's next call skips the
// signature check (~100-190 us of CPU, the largest part of an authenticated
// read). A remembered token is still refused once it expires, once its key is
// no longer published and once its session or its signing key is revoked:
// those checks run on every call.
//
// Revocation (platform/auth/revocation.ts): one MGET per call for the list's
// sentinel, the token's kid and (user tokens) its session. A store that cannot
// answer, or a list not loaded, throws RevocationListUnavailable (a
// ConnectError UNAVAILABLE), never a TokenError: the caller answers 503, not
// 401, and never accepts the token.
import { verify as cryptoVerify, type KeyObject } from "node:crypto";
import type { KeyValueStore } from "../kv.js";
import type { KeySource } from "./keys.js";
import type { Principal } from "./principal.js";
import { revocationOf } from "./revocation.js";

export const ACCESS_TOKEN_ALG = "ES256";
export const ACCESS_TOKEN_TYP = "at+jwt";
/** Tokens longer than this are refused before any parsing. */
export const MAX_TOKEN_BYTES = 4096;

export class TokenError extends Error {
  constructor(readonly reason: string) {
    super(`invalid token: ${reason}`);
  }
}

export interface VerifierOptions {
  issuer: string;
  /** Audience of user access tokens (e.g. "acme-api"). */
  userAudience: string;
  /** Audiences of service tokens accepted here (e.g. ["acme-user"]); the policy checks which. */
  serviceAudiences: readonly string[];
  keys: KeySource;
  /** Store of the revocation list (revoked sessions and keys); omitted only in unit tests. */
  kv?: KeyValueStore;
  clockSkewSeconds?: number;
  now?: () => number;
  /** Verified tokens remembered (0 = none); the oldest are dropped first. Default 10000. */
  cacheSize?: number;
}

export interface TokenVerifier {
  /** The principal of a valid token; throws TokenError otherwise. */
  verify(token: string): Promise<Principal>;
}

const b64json = (part: string): Record<string, unknown> => {
  const v = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
  return v as Record<string, unknown>;
};

const strings = (v: unknown): string[] | undefined =>
  typeof v === "string" ? [v] : Array.isArray(v) && v.every((x) => typeof x === "string") ? (v as string[]) : undefined;

/** A token that passed every check: what must still hold on its next use. */
interface Verified {
  readonly principal: Principal;
  readonly kid: string;
  readonly key: KeyObject;
  readonly exp: number;
  readonly nbf?: number;
}

export function createVerifier(opts: VerifierOptions): TokenVerifier {
  const skew = opts.clockSkewSeconds ?? 30;
  const now = opts.now ?? (() => Date.now() / 1000);
  const cacheSize = opts.cacheSize ?? 10_000;
  const verified = new Map<string, Verified>();

  const remember = (token: string, entry: Verified) => {
    if (cacheSize <= 0) return;
    if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!);
    verified.set(token, entry);
  };

  /**
   * The checks a remembered token must pass on every use (time, session); undefined
   * when its key is no longer the published one (it is then verified afresh).
   */
  async function recheck(token: string, v: Verified): Promise<Principal | undefined> {
    const t = now();
    if (v.exp <= t - skew) {
      verified.delete(token);
      throw new TokenError("expired");
    }
    if (v.nbf !== undefined && v.nbf > t + skew) throw new TokenError("not yet valid");
    if ((await opts.keys.get(v.kid)) !== v.key) {
      verified.delete(token);
      return undefined;
    }
    await checkRevoked(v.kid, v.principal);
    return v.principal;
  }

  /** Throws TokenError when the token's session or key is revoked, RevocationListUnavailable when that cannot be known. */
  async function checkRevoked(kid: string, p: Principal): Promise<void> {
    if (!opts.kv) return;
    const why = await revocationOf(opts.kv, { kid, sessionId: p.kind === "user" ? p.sessionId : undefined });
    if (why) throw new TokenError(why);
  }

  return {
    async verify(token) {
      const known = verified.get(token);
      const again = known && (await recheck(token, known));
      if (again) return again;
      const { principal, kid, key, claims } = await verifyFully(token);
      await checkRevoked(kid, principal);
      const nbf = typeof claims.nbf === "number" ? claims.nbf : undefined;
      remember(token, { principal, kid, key, exp: claims.exp as number, nbf });
      return principal;
    },
  };

  async function verifyFully(token: string): Promise<{ principal: Principal; kid: string; key: KeyObject; claims: Record<string, unknown> }> {
    if (token.length > MAX_TOKEN_BYTES) throw new TokenError("too large");
    const parts = token.split(".");
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) throw new TokenError("malformed");
    let header: Record<string, unknown>;
    let claims: Record<string, unknown>;
    try {
      header = b64json(parts[0]);
      claims = b64json(parts[1]);
    } catch {
      throw new TokenError("malformed");
    }
    if (header.alg !== ACCESS_TOKEN_ALG) throw new TokenError("algorithm not allowed");
    const typ = typeof header.typ === "string" ? header.typ.toLowerCase() : "";
    if (typ !== ACCESS_TOKEN_TYP && typ !== `application/${ACCESS_TOKEN_TYP}`) throw new TokenError("wrong typ");
    if (header.crit !== undefined) throw new TokenError("unsupported crit");
    if (typeof header.kid !== "string" || header.kid.length === 0 || header.kid.length > 128) throw new TokenError("missing kid");
    const key = await opts.keys.get(header.kid);
    if (!key) throw new TokenError("unknown kid");
    const ok = cryptoVerify(
      "sha256",
      Buffer.from(`${parts[0]}.${parts[1]}`),
      { key, dsaEncoding: "ieee-p1363" },
      Buffer.from(parts[2], "base64url"),
    );
    if (!ok) throw new TokenError("bad signature");

    const t = now();
    if (claims.iss !== opts.issuer) throw new TokenError("wrong issuer");
    const aud = strings(claims.aud);
    if (!aud) throw new TokenError("wrong audience");
    if (typeof claims.exp !== "number" || claims.exp <= t - skew) throw new TokenError("expired");
    if (claims.nbf !== undefined && (typeof claims.nbf !== "number" || claims.nbf > t + skew)) throw new TokenError("not yet valid");
    if (typeof claims.iat !== "number" || claims.iat > t + skew) throw new TokenError("bad iat");
    if (typeof claims.sub !== "string" || !claims.sub) throw new TokenError("missing sub");
    if (typeof claims.jti !== "string" || !claims.jti) throw new TokenError("missing jti");

    const kid = header.kid;
    if (typeof claims.client_id === "string") {
      if (!aud.some((a) => opts.serviceAudiences.includes(a))) throw new TokenError("wrong audience");
      const principal: Principal = {
        kind: "service",
        clientId: claims.client_id,
        allowedRoutes: strings(claims.allowed_routes) ?? [],
        rateLimit: typeof claims.rate_limit === "number" ? claims.rate_limit : 0,
        audience: aud,
        tokenId: claims.jti,
        expiresAt: claims.exp,
      };
      return { principal, kid, key, claims };
    }
    if (!aud.includes(opts.userAudience)) throw new TokenError("wrong audience");
    if (typeof claims.sid !== "string" || !claims.sid) throw new TokenError("missing sid");
    const principal: Principal = {
      kind: "user",
      userId: claims.sub,
      sessionId: claims.sid,
      roles: strings(claims.roles) ?? [],
      tokenId: claims.jti,
      expiresAt: claims.exp,
    };
    return { principal, kid, key, claims };
  }
}
