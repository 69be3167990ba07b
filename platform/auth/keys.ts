// Where verifiers find public keys by kid: the auth service's own key store
// in process, or its JWKS over HTTP (cached; refetched on an unknown kid).
import { createPublicKey, type KeyObject } from "node:crypto";

export interface KeySource {
  /** The public key for a kid, or undefined when no such key is published. */
  get(kid: string): Promise<KeyObject | undefined>;
}

export interface Jwk {
  kid?: string;
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  alg?: string;
  use?: string;
}

export function keysFromJwks(jwks: { keys?: Jwk[] }): Map<string, KeyObject> {
  const out = new Map<string, KeyObject>();
  for (const jwk of jwks.keys ?? []) {
    if (!jwk.kid || jwk.use === "enc") continue;
    try {
      out.set(jwk.kid, createPublicKey({ key: jwk as never, format: "jwk" }));
    } catch {
      // skip keys we cannot use
    }
  }
  return out;
}

/**
 * JWKS fetched over HTTP, kept for the max-age the auth service gives it
 * (cache-control; 5 min without one): a key published ahead of a rotation is
 * known before it signs, and a retired key is forgotten. Unknown kids trigger a
 * refetch at most once per `minRefetchMs` unless the keys are stale (so a flood of
 * made-up kids cannot flood the auth service).
 */
export function remoteJwks(url: string, opts: { minRefetchMs?: number; timeoutMs?: number } = {}): KeySource {
  let keys = new Map<string, KeyObject>();
  let lastFetch = 0;
  let maxAgeMs = DEFAULT_JWKS_MAX_AGE_MS;
  let inflight: Promise<void> | undefined;
  const minRefetch = opts.minRefetchMs ?? 10_000;
  const refresh = () =>
    (inflight ??= (async () => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 3000) });
        if (res.ok) {
          keys = keysFromJwks((await res.json()) as { keys?: Jwk[] });
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
