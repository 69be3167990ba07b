// The verifier remembers tokens that passed (so a client's next call skips the
// signature check), but a remembered token must still be refused the moment
// it would be refused afresh: revoked session, expiry, key no longer
// published; and a token differing in any byte is never taken for it. The
// revocation list (sessions and keys) is read on every call, cached token or
// not; a list that is not loaded, or a store that cannot answer, is
// UNAVAILABLE, never a refusal and never an acceptance.
import { strict as assert } from "node:assert";
import { Code, ConnectError } from "@connectrpc/connect";
import { createSign, generateKeyPairSync, randomUUID, type KeyObject } from "node:crypto";
import { markRevocationsLoaded, REVOCATIONS_LOADED_KEY, revokeKeys, revokeSessions } from "../../platform/auth/revocation.js";
import { createVerifier, type TokenVerifier } from "../../platform/auth/verifier.js";
import { memoryStore, redisStore, type KeyValueStore } from "../../platform/kv.js";
import { freshRedisUrl } from "../support/fresh.js";

function token(privateKey: KeyObject, kid: string, claims: Record<string, unknown>): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = `${enc({ alg: "ES256", typ: "at+jwt", kid })}.${enc(claims)}`;
  const sig = createSign("sha256").update(head).sign({ key: privateKey, dsaEncoding: "ieee-p1363" });
  return `${head}.${sig.toString("base64url")}`;
}

for (const kind of ["redis", "memory"] as const) {
  describe(`verifier: remembered tokens (${kind} store)`, () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    let published: Map<string, KeyObject>;
    let clock: number;
    let kv: KeyValueStore;
    let verifier: TokenVerifier;
    const userToken = (over: Record<string, unknown> = {}) =>
      token(privateKey, "k1", { iss: "acme-auth", aud: "acme-api", sub: randomUUID(), sid: randomUUID(), jti: randomUUID(), roles: ["user"], iat: clock, nbf: clock, exp: clock + 900, ...over });
    const refusal = (t: string) =>
      verifier.verify(t).then(
        () => "accepted",
        (e: Error) => (e instanceof ConnectError ? `${Code[e.code]}: ${e.rawMessage}` : e.message),
      );

    before(async () => (kv = kind === "redis" ? redisStore(await freshRedisUrl()) : memoryStore()));
    after(async () => kv?.close());
    beforeEach(async () => {
      await markRevocationsLoaded(kv);
      published = new Map([["k1", publicKey]]);
      clock = Math.floor(Date.now() / 1000);
      verifier = createVerifier({
        issuer: "acme-auth",
        userAudience: "acme-api",
        serviceAudiences: ["acme-user"],
        keys: { get: async (kid) => published.get(kid) },
        kv,
        now: () => clock,
        cacheSize: 2,
      });
    });

    it("accepts the same token again and again", async () => {
      const t = userToken();
      for (let i = 0; i < 3; i++) assert.equal((await verifier.verify(t)).kind, "user");
    });

    it("refuses a remembered token as soon as its session is revoked", async () => {
      const sid = randomUUID();
      const t = userToken({ sid });
      await verifier.verify(t);
      await revokeSessions(kv, [sid], 900);
      assert.equal(await refusal(t), "invalid token: session revoked");
    });

    it("refuses a remembered token once it expires (with the same clock skew)", async () => {
      const t = userToken({ exp: clock + 60 });
      await verifier.verify(t);
      clock += 60 + 29;
      assert.equal(await refusal(t), "accepted");
      clock += 1;
      assert.equal(await refusal(t), "invalid token: expired");
    });

    it("refuses a remembered token once its key is no longer published", async () => {
      const t = userToken();
      await verifier.verify(t);
      published.delete("k1");
      assert.equal(await refusal(t), "invalid token: unknown kid");
    });

    it("verifies a token that differs in any part afresh (tampered signature, payload)", async () => {
      const t = userToken();
      await verifier.verify(t);
      const [h, p, s] = t.split(".");
      const flipped = s.slice(0, -2) + (s.at(-2) === "A" ? "B" : "A") + s.at(-1);
      assert.equal(await refusal(`${h}.${p}.${flipped}`), "invalid token: bad signature");
      const claims = JSON.parse(Buffer.from(p, "base64url").toString());
      const promoted = Buffer.from(JSON.stringify({ ...claims, roles: ["admin"] })).toString("base64url");
      assert.equal(await refusal(`${h}.${promoted}.${s}`), "invalid token: bad signature");
    });

    it("stays correct past its size bound (older tokens are verified afresh)", async () => {
      const tokens = [userToken(), userToken(), userToken(), userToken()];
      for (const t of tokens) await verifier.verify(t);
      const sid = (await verifier.verify(tokens[0])).kind === "user" ? JSON.parse(Buffer.from(tokens[0].split(".")[1], "base64url").toString()).sid : "";
      await revokeSessions(kv, [sid], 900);
      assert.equal(await refusal(tokens[0]), "invalid token: session revoked");
      for (const t of tokens.slice(1)) assert.equal(await refusal(t), "accepted");
    });

    it("refuses every token of a revoked signing key, remembered or not, while the key is still published", async () => {
      const seen = userToken();
      await verifier.verify(seen);
      await revokeKeys(kv, ["k1"], 900);
      assert.equal(await refusal(seen), "invalid token: key revoked");
      assert.equal(await refusal(userToken()), "invalid token: key revoked");
      const service = token(privateKey, "k1", { iss: "acme-auth", aud: "acme-user", sub: "order-service", client_id: "order-service", jti: randomUUID(), iat: clock, exp: clock + 600 });
      assert.equal(await refusal(service), "invalid token: key revoked");
      await kv.del("auth:revoked:kid:k1");
    });

    it("answers UNAVAILABLE, for remembered and new tokens alike, while the list is not loaded (flushed), then recovers", async () => {
      const seen = userToken();
      await verifier.verify(seen);
      const revokedSid = randomUUID();
      const revoked = userToken({ sid: revokedSid });
      await verifier.verify(revoked);
      await revokeSessions(kv, [revokedSid], 900);
      await kv.del(REVOCATIONS_LOADED_KEY, `auth:revoked:sid:${revokedSid}`); // what FLUSHALL does to the list
      const unavailable = "Unavailable: revocation list not loaded yet; retry shortly";
      assert.equal(await refusal(seen), unavailable);
      assert.equal(await refusal(revoked), unavailable);
      assert.equal(await refusal(userToken()), unavailable);
      await revokeSessions(kv, [revokedSid], 900); // the auth service's reload
      await markRevocationsLoaded(kv);
      assert.equal(await refusal(seen), "accepted");
      assert.equal(await refusal(revoked), "invalid token: session revoked");
    });

    it("answers UNAVAILABLE, never 'revoked' and never accepted, when the store cannot be reached", async () => {
      const down = { ...kv, mget: () => Promise.reject(new Error("connect ECONNREFUSED")) } as KeyValueStore;
      const v = createVerifier({ issuer: "acme-auth", userAudience: "acme-api", serviceAudiences: [], keys: { get: async (kid) => published.get(kid) }, kv: down, now: () => clock });
      const t = userToken();
      for (let i = 0; i < 2; i++) {
        const err = await v.verify(t).then(() => undefined, (e: unknown) => e);
        assert.ok(err instanceof ConnectError && err.code === Code.Unavailable, String(err));
      }
    });
  });
}
