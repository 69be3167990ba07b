// Access-token verification, the same everywhere in the system (RFC 8725):
// algorithm pinned to ES256, typ at+jwt, issuer and audience checked, exp/nbf
// enforced, kid required and looked up, size bounded, revoked sessions
// refused. jose decodes the token and checks the signature and the standard
// claims (jwtVerify, with a key resolver over the KeySource); the cheap header
// checks run first and the claims are checked again here in a fixed order, so
// that a token with several faults is refused for the same reason as before
// jose (edge/authn.ts maps the reasons to Envoy's messages).
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
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from "jose";
import type { KeyValueStore } from "../kv.js";
import type { KeySource, VerificationKey } from "./keys.js";
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

/** Three non-empty base64url parts: checked before jose decodes anything. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const payloadDecodes = (token: string): boolean => {
  try {
    decodeJwt(token);
    return true;
  } catch {
    return false;
  }
};

const strings = (v: unknown): string[] | undefined =>
  typeof v === "string" ? [v] : Array.isArray(v) && v.every((x) => typeof x === "string") ? (v as string[]) : undefined;

/** A token that passed every check: what must still hold on its next use. */
interface Verified {
  readonly principal: Principal;
  readonly kid: string;
  readonly key: VerificationKey;
  readonly exp: number;
  readonly nbf?: number;
}

/** The reason for a jose refusal that our own ordered checks did not name first. */
function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "expired";
  if (err instanceof errors.JWTClaimValidationFailed) return CLAIM_REASONS[err.claim] ?? "malformed";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "bad signature";
  if (err instanceof errors.JOSEAlgNotAllowed) return "algorithm not allowed";
  if (err instanceof errors.JOSENotSupported) return "unsupported crit";
  // After our checks of the shape and the header, the only part jose can still
  // find undecodable is the signature (base64url of an impossible length).
  if (err instanceof errors.JWSInvalid) return "bad signature";
  if (err instanceof errors.JOSEError) return "malformed";
  throw err;
}

const CLAIM_REASONS: Readonly<Record<string, string>> = {
  typ: "wrong typ",
  iss: "wrong issuer",
  aud: "wrong audience",
  exp: "expired",
  nbf: "not yet valid",
  iat: "bad iat",
  sub: "missing sub",
  jti: "missing jti",
};

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

  /** Header checks, in order, before any key is looked up: the kid to look up. */
  function checkHeader(token: string, refuse: (reason: string) => TokenError): string {
    let header: Record<string, unknown>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new TokenError("malformed");
    }
    if (header.alg !== ACCESS_TOKEN_ALG) throw refuse("algorithm not allowed");
    const typ = typeof header.typ === "string" ? header.typ.toLowerCase() : "";
    if (typ !== ACCESS_TOKEN_TYP && typ !== `application/${ACCESS_TOKEN_TYP}`) throw refuse("wrong typ");
    if (header.crit !== undefined) throw refuse("unsupported crit");
    if (typeof header.kid !== "string" || header.kid.length === 0 || header.kid.length > 128) throw refuse("missing kid");
    return header.kid;
  }

  async function verifyFully(token: string): Promise<{ principal: Principal; kid: string; key: VerificationKey; claims: JWTPayload }> {
    if (token.length > MAX_TOKEN_BYTES) throw new TokenError("too large");
    if (!COMPACT_JWS.test(token)) throw new TokenError("malformed");
    // A payload that is not a JSON object makes the token "malformed" whatever else is wrong
    // with it; it is decoded here only on the way to a refusal (jose decodes it after the signature).
    const refuse = (reason: string) => new TokenError(payloadDecodes(token) ? reason : "malformed");
    const kid = checkHeader(token, refuse);
    let key: VerificationKey | undefined;
    const t = now();
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(
        token,
        async () => {
          key = await opts.keys.get(kid);
          if (!key) throw refuse("unknown kid");
          return key;
        },
        {
          algorithms: [ACCESS_TOKEN_ALG],
          typ: ACCESS_TOKEN_TYP,
          issuer: opts.issuer,
          requiredClaims: ["exp", "iat", "sub", "jti"],
          // jose compares exp and nbf with whole seconds (now rounded down): one second
          // more leaves the exact bounds to principalOf, as they were before jose.
          clockTolerance: skew + 1,
          currentDate: new Date(t * 1000),
        },
      ));
    } catch (err) {
      if (err instanceof TokenError) throw err;
      // A claim jose refused (the signature was good): the first fault in our order names it.
      if (err instanceof errors.JWTClaimValidationFailed || err instanceof errors.JWTExpired) principalOf(decodeJwt(token), t);
      throw refuse(reasonOf(err));
    }
    return { principal: principalOf(claims, t), kid, key: key!, claims };
  }

  /** The claims checks, in order (jose's come first in another order); the principal they describe. */
  function principalOf(claims: JWTPayload, t: number): Principal {
    if (claims.iss !== opts.issuer) throw new TokenError("wrong issuer");
    const aud = strings(claims.aud);
    if (!aud) throw new TokenError("wrong audience");
    if (typeof claims.exp !== "number" || claims.exp <= t - skew) throw new TokenError("expired");
    if (claims.nbf !== undefined && (typeof claims.nbf !== "number" || claims.nbf > t + skew)) throw new TokenError("not yet valid");
    if (typeof claims.iat !== "number" || claims.iat > t + skew) throw new TokenError("bad iat");
    if (typeof claims.sub !== "string" || !claims.sub) throw new TokenError("missing sub");
    if (typeof claims.jti !== "string" || !claims.jti) throw new TokenError("missing jti");

    if (typeof claims.client_id === "string") {
      if (!aud.some((a) => opts.serviceAudiences.includes(a))) throw new TokenError("wrong audience");
      return {
        kind: "service",
        clientId: claims.client_id,
        scopes: typeof claims.scope === "string" ? claims.scope.split(" ").filter(Boolean) : [],
        rateLimit: typeof claims.rate_limit === "number" ? claims.rate_limit : 0,
        audience: aud,
        tokenId: claims.jti,
        expiresAt: claims.exp,
      };
    }
    if (!aud.includes(opts.userAudience)) throw new TokenError("wrong audience");
    if (typeof claims.sid !== "string" || !claims.sid) throw new TokenError("missing sid");
    return {
      kind: "user",
      userId: claims.sub,
      sessionId: claims.sid,
      roles: strings(claims.roles) ?? [],
      emailVerified: claims.email_verified === true,
      tokenId: claims.jti,
      expiresAt: claims.exp,
    };
  }
}
