// JWT authentication at the edge, answering like Envoy's jwt_authn filter:
// the token comes from "Authorization: Bearer"; a missing one is 401 "Jwt is
// missing"; a bad one is 401 with jwt_verify_lib's reason ("Jwt verification
// fails", "Jwt is expired", ...) or 403 "Audiences in Jwt are not allowed";
// both with `www-authenticate: Bearer realm="http://<host><path>"` (plus
// error="invalid_token" unless missing). The checks are those of the
// services (deps.verifier, the same everywhere); the reason is worked out in
// jwt_authn's order (format, issuer, audience, time, key, signature) so that
// both edges give the same answer.
import { Code, ConnectError } from "@connectrpc/connect";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { bearerToken } from "../platform/auth/interceptor.js";
import type { Principal } from "../platform/auth/principal.js";
import { TokenError, type TokenVerifier } from "../platform/auth/verifier.js";

export const JWT_MISSING = "Jwt is missing";
export const JWT_BAD_FORMAT = "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections";
export const JWT_BAD_HEADER = "Jwt header is an invalid JSON";
export const JWT_BAD_PAYLOAD = "Jwt payload is an invalid JSON";
export const JWT_UNKNOWN_ISSUER = "Jwt issuer is not configured";
export const JWT_AUDIENCE_NOT_ALLOWED = "Audiences in Jwt are not allowed";
export const JWT_EXPIRED = "Jwt is expired";
export const JWT_NOT_YET_VALID = "Jwt not yet valid";
export const JWKS_KID_ALG_MISMATCH = "Jwks doesn't have key to match kid or alg from Jwt";
export const JWT_VERIFICATION_FAILS = "Jwt verification fails";

export type AuthnResult =
  /** Passed the edge. principal is undefined when the token passes jwt_authn's checks but not all of the services' (see PASSED_TO_SERVICE). */
  | { ok: true; principal?: Principal; subject?: string }
  | { ok: false; status: 401 | 403; reason: string; missing: boolean };

/**
 * Verifier refusals that come after its signature check and that jwt_authn
 * does not make (revoked session, claims only the services require): Envoy
 * lets such a token through and the service refuses it with a JSON 401, so
 * the embedded edge does the same. Refusals before the signature check that
 * jwt_authn would not make either (typ, crit, size) stay refusals here: the
 * signature is unknown then.
 */
export const PASSED_TO_SERVICE: ReadonlySet<string> = new Set(["session revoked", "missing sid", "missing jti", "missing sub", "bad iat"]);

export interface EdgeAuthnOptions {
  verifier: TokenVerifier;
  issuer: string;
  /** The user-token audience the edge accepts (jwt_authn provider audiences). */
  audience: string;
  clockSkewSeconds?: number;
  now?: () => number;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

/** A JWT's header or payload (jose's decoders), or undefined when it is not a JSON object. */
function decoded<T>(decode: () => T): T | undefined {
  try {
    return decode();
  } catch {
    return undefined;
  }
}

export interface EdgeAuthn {
  /** Authenticate from an Authorization header value. */
  authenticate(authorization: string | null | undefined): Promise<AuthnResult>;
}

export function createEdgeAuthn(opts: EdgeAuthnOptions): EdgeAuthn {
  const skew = opts.clockSkewSeconds ?? 30;
  const now = opts.now ?? (() => Date.now() / 1000);
  const fail = (reason: string, status: 401 | 403 = 401): AuthnResult => ({ ok: false, status, reason, missing: false });
  return {
    async authenticate(authorization) {
      const token = bearerToken(authorization);
      if (!token) return { ok: false, status: 401, reason: JWT_MISSING, missing: true };
      const parts = token.split(".");
      if (parts.length !== 3 || !parts.every((p) => B64URL.test(p))) return fail(JWT_BAD_FORMAT);
      const header = decoded(() => decodeProtectedHeader(token));
      if (!header) return fail(JWT_BAD_HEADER);
      if (typeof header.alg !== "string" || header.alg === "none") return fail(JWT_BAD_FORMAT);
      const claims = decoded(() => decodeJwt(token));
      if (!claims) return fail(JWT_BAD_PAYLOAD);
      if (claims.iss !== opts.issuer) return fail(JWT_UNKNOWN_ISSUER);
      const aud = typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
      if (!aud.includes(opts.audience)) return fail(JWT_AUDIENCE_NOT_ALLOWED, 403);
      const t = now();
      if (typeof claims.exp === "number" && t > claims.exp + skew) return fail(JWT_EXPIRED);
      if (typeof claims.nbf === "number" && t + skew < claims.nbf) return fail(JWT_NOT_YET_VALID);
      const sub = typeof claims.sub === "string" && claims.sub ? claims.sub : undefined;
      try {
        const principal = await opts.verifier.verify(token);
        return { ok: true, principal, subject: principal.kind === "user" ? principal.userId : sub };
      } catch (err) {
        // The revocation list could not be read: pass it on, the service re-checks and answers UNAVAILABLE.
        if (err instanceof ConnectError && err.code === Code.Unavailable) return { ok: true, subject: sub };
        const reason = err instanceof TokenError ? err.reason : "";
        if (PASSED_TO_SERVICE.has(reason)) return { ok: true, subject: sub };
        // A key revoked for compromise reads as Envoy's answer once its JWKS copy has dropped the kid.
        if (reason === "key revoked" || reason === "unknown kid" || reason === "algorithm not allowed" || reason === "missing kid") return fail(JWKS_KID_ALG_MISMATCH);
        if (reason === "expired") return fail(JWT_EXPIRED);
        if (reason === "not yet valid") return fail(JWT_NOT_YET_VALID);
        return fail(JWT_VERIFICATION_FAILS);
      }
    },
  };
}

/** The www-authenticate value jwt_authn sends with a refusal. */
export function wwwAuthenticate(realm: string, missing: boolean): string {
  return missing ? `Bearer realm="${realm}"` : `Bearer realm="${realm}", error="invalid_token"`;
}
