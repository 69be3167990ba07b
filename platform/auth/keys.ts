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
 * JWKS fetched over HTTP. Unknown kids trigger a refetch at most once per
 * `minRefetchMs` (so a flood of made-up kids cannot flood the auth service).
 */
export function remoteJwks(url: string, opts: { minRefetchMs?: number; timeoutMs?: number } = {}): KeySource {
  let keys = new Map<string, KeyObject>();
  let lastFetch = 0;
  let inflight: Promise<void> | undefined;
  const minRefetch = opts.minRefetchMs ?? 10_000;
  const refresh = () =>
    (inflight ??= (async () => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 3000) });
        if (res.ok) keys = keysFromJwks((await res.json()) as { keys?: Jwk[] });
      } catch {
        // keep the keys we have; the next unknown kid retries after minRefetch
      } finally {
        lastFetch = Date.now();
        inflight = undefined;
      }
    })());
  return {
    async get(kid) {
      const k = keys.get(kid);
      if (k) return k;
      if (Date.now() - lastFetch >= minRefetch || lastFetch === 0) await refresh();
      else if (inflight) await inflight;
      return keys.get(kid);
    },
  };
}
