// Where verifiers find public keys by kid: the auth service's own key store
// in process, or its JWKS over HTTP (cached; refetched on an unknown kid).
// JWKs become keys through jose's importJWK. jose's createRemoteJWKSet is not
// used: it ignores the server's cache-control max-age, blocks on a stale set
// instead of serving the known key while refreshing, and its cooldown does not
// give way to a stale set; remoteJwks below keeps those semantics.
import type { KeyObject } from "node:crypto";
import { importJWK, type JWK } from "jose";

/** A public key a verifier checks ES256 signatures with (jose takes either). */
export type VerificationKey = KeyObject | CryptoKey;

export interface KeySource {
  /** The public key for a kid, or undefined when no such key is published. */
  get(kid: string): Promise<VerificationKey | undefined>;
}

export type Jwk = JWK;

/** The only algorithm keys are imported for (platform/auth/verifier.ts pins it). */
const JWK_ALG = "ES256";

/** The signing keys of a JWKS by kid; keys without a kid, for encryption, or not usable for ES256 are skipped. */
export async function keysFromJwks(jwks: { keys?: Jwk[] }): Promise<Map<string, CryptoKey>> {
  const usable = (jwks.keys ?? []).filter((jwk) => typeof jwk.kid === "string" && jwk.kid && jwk.use !== "enc");
  const imported = await Promise.all(
    usable.map(async (jwk) => {
      try {
        const key = await importJWK(jwk, JWK_ALG);
        return key instanceof Uint8Array ? undefined : ([jwk.kid!, key] as const);
      } catch {
        return undefined; // skip keys we cannot use
      }
    }),
  );
  return new Map(imported.filter((e) => e !== undefined));
}

/**
 * JWKS fetched over HTTP, kept for the max-age the auth service gives it
 * (cache-control; 5 min without one): a key published ahead of a rotation is
 * known before it signs, and a retired key is forgotten. Unknown kids trigger a
 * refetch at most once per `minRefetchMs` unless the keys are stale (so a flood of
 * made-up kids cannot flood the auth service).
 */
export function remoteJwks(url: string, opts: { minRefetchMs?: number; timeoutMs?: number } = {}): KeySource {
  let keys = new Map<string, CryptoKey>();
  let lastFetch = 0;
  let maxAgeMs = DEFAULT_JWKS_MAX_AGE_MS;
  let inflight: Promise<void> | undefined;
  const minRefetch = opts.minRefetchMs ?? 10_000;
  const refresh = () =>
    (inflight ??= (async () => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 3000) });
        if (res.ok) {
          keys = await keysFromJwks((await res.json()) as { keys?: Jwk[] });
          maxAgeMs = maxAgeOf(res.headers.get("cache-control"));
        }
      } catch {
        // keep the keys we have; the next unknown kid retries after minRefetch
      } finally {
        lastFetch = Date.now();
        inflight = undefined;
      }
    })());
  return {
    async get(kid) {
      const age = Date.now() - lastFetch;
      const stale = lastFetch === 0 || age >= maxAgeMs;
      const k = keys.get(kid);
      if (k) {
        if (stale) void refresh(); // in the background: the known key serves meanwhile
        return k;
      }
      if (stale || age >= minRefetch) await refresh();
      else if (inflight) await inflight;
      return keys.get(kid);
    },
  };
}

const DEFAULT_JWKS_MAX_AGE_MS = 300_000;

/** max-age of a cache-control header, bounded to 1 s .. 1 h (default 5 min). */
function maxAgeOf(cacheControl: string | null): number {
  const m = /(?:^|,)\s*max-age=(\d+)/i.exec(cacheControl ?? "");
  if (!m) return DEFAULT_JWKS_MAX_AGE_MS;
  return Math.min(Math.max(Number(m[1]) * 1000, 1000), 3_600_000);
}
