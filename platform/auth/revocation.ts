// Immediate revocation of access tokens: a revoked session id is kept in the
// shared store for as long as any access token of that session can live.
// The auth service writes these keys; every verifier reads them.
import type { KeyValueStore } from "../kv.js";

const key = (sid: string) => `auth:revoked:sid:${sid}`;

export async function revokeSessions(kv: KeyValueStore, sessionIds: readonly string[], accessTtlSeconds: number): Promise<void> {
  // Kept a little longer than the token lifetime to cover clock skew.
  await Promise.all(sessionIds.map((sid) => kv.set(key(sid), "1", (accessTtlSeconds + 60) * 1000)));
}

export async function isSessionRevoked(kv: KeyValueStore, sessionId: string): Promise<boolean> {
  return (await kv.get(key(sessionId))) !== null;
}
