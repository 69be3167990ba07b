// The revocation list every verifier reads: revoked session ids and revoked
// signing-key ids, cached in the shared KV store (Redis, or the in-process
// stand-in) with a TTL as long as any token they cover can live. The source of
// truth is Postgres (auth.revoked_sessions, auth.signing_keys.revoked_at); the
// auth service rebuilds this cache from it on start and whenever the sentinel
// below is missing (services/auth/revocations.ts). docs/revocation.md.
//
// The sentinel `auth:revoked:loaded` says "this cache holds every revocation":
// a flush or a fresh store removes it, and a verifier that does not find it
// answers UNAVAILABLE instead of trusting a list that may be empty. The store
// being unreachable is UNAVAILABLE too: never "revoked" (401), never "not
// revoked" (accepted).
import { Code, ConnectError } from "@connectrpc/connect";
import type { KeyValueStore } from "../kv.js";

export const REVOCATIONS_LOADED_KEY = "auth:revoked:loaded";
export const revokedSessionKey = (sid: string) => `auth:revoked:sid:${sid}`;
export const revokedKeyKey = (kid: string) => `auth:revoked:kid:${kid}`;
/** Entries outlive the tokens they cover by this much (clock skew). */
export const REVOCATION_MARGIN_SECONDS = 60;

/** The revocation list cannot be read (store unreachable, or not loaded): UNAVAILABLE, with Retry-After. */
export class RevocationListUnavailable extends ConnectError {
  constructor(why: "unreachable" | "not loaded", retryAfterSeconds = 1) {
    super(`revocation list ${why === "unreachable" ? "unreachable" : "not loaded yet"}; retry shortly`, Code.Unavailable, {
      "retry-after": String(Math.max(1, Math.ceil(retryAfterSeconds))),
    });
  }
}

export async function revokeSessions(kv: KeyValueStore, sessionIds: readonly string[], accessTtlSeconds: number): Promise<void> {
  // Kept a little longer than the token lifetime to cover clock skew.
  await Promise.all(sessionIds.map((sid) => kv.set(revokedSessionKey(sid), "1", (accessTtlSeconds + REVOCATION_MARGIN_SECONDS) * 1000)));
}

/** Signing keys retired for compromise: every token they signed is refused, whatever a verifier's JWKS copy says. */
export async function revokeKeys(kv: KeyValueStore, kids: readonly string[], tokenTtlSeconds: number): Promise<void> {
  await Promise.all(kids.map((kid) => kv.set(revokedKeyKey(kid), "1", (tokenTtlSeconds + REVOCATION_MARGIN_SECONDS) * 1000)));
}

/** The sentinel and then each key, in one MGET; UNAVAILABLE when unreachable or not loaded. */
async function readList(kv: KeyValueStore, keys: string[]): Promise<(string | null)[]> {
  let values: (string | null)[];
  try {
    values = await kv.mget(REVOCATIONS_LOADED_KEY, ...keys);
  } catch (err) {
    // The store's own estimate when it has one (platform/kv.ts: circuit open), else 1 s.
    const after = (err as { retryAfterSeconds?: unknown })?.retryAfterSeconds;
    throw new RevocationListUnavailable("unreachable", typeof after === "number" ? after : 1);
  }
  if (values[0] === null) throw new RevocationListUnavailable("not loaded");
  return values.slice(1);
}

/**
 * Why a token must be refused ("key revoked", "session revoked"), or undefined
 * when it is not revoked. One round trip (MGET of the sentinel and the
 * entries, atomic in Redis). Throws RevocationListUnavailable when the store
 * cannot answer or the list is not loaded.
 */
export async function revocationOf(kv: KeyValueStore, t: { kid: string; sessionId?: string }): Promise<string | undefined> {
  const [kid, sid] = await readList(kv, t.sessionId === undefined ? [revokedKeyKey(t.kid)] : [revokedKeyKey(t.kid), revokedSessionKey(t.sessionId)]);
  if (kid !== null) return "key revoked";
  if (sid !== undefined && sid !== null) return "session revoked";
  return undefined;
}

/** True when the session is revoked; throws RevocationListUnavailable like revocationOf. */
export async function isSessionRevoked(kv: KeyValueStore, sessionId: string): Promise<boolean> {
  const [sid] = await readList(kv, [revokedSessionKey(sessionId)]);
  return sid !== null;
}

/**
 * Mark the list complete (the auth service, after loading it from Postgres;
 * tests and benchmarks that have no auth service). `generation` names the load.
 */
export async function markRevocationsLoaded(kv: KeyValueStore, generation = `manual-${Date.now()}`): Promise<void> {
  await kv.set(REVOCATIONS_LOADED_KEY, generation);
}
