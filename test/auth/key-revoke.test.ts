// `npm run admin -- rotate-keys --revoke KID` (a leaked signing key): run as
// the operator would, next to the running system (DATABASE_URL, REDIS_URL).
// At once every token KID signed is refused by the user service, the order
// service, the embedded edge and a verifier holding an older JWKS copy (as
// the services of `npm run stack` do); within one revocation sync KID leaves
// the JWKS and a new key signs; the session's refresh token still works and
// gives a token of the new key.
import { strict as assert } from "node:assert";
import { remoteJwks } from "../../platform/auth/keys.js";
import { createVerifier } from "../../platform/auth/verifier.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { authModule, decodeJwt, login, register } from "./helpers.js";
import { probe } from "./revocation-support.js";
import { runAdmin } from "../support/admin-cli.js";


const admin = runAdmin;

const kidOf = (token: string) => String(decodeJwt(token).header.kid);

describe("npm run admin -- rotate-keys --revoke KID", function () {
  this.timeout(120_000);
  const rl = tempRateLimitConfig(GENEROUS_LIMITS);
  let t: TestSystem;
  const env = () => ({ DATABASE_URL: t.env.DATABASE_URL, REDIS_URL: t.env.REDIS_URL, DATA_DIR: t.dataDir });
  const jwksKids = async () => ((await (await fetch(`${t.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
  before(async () => (t = await startTestSystem({ env: { RATELIMIT_CONFIG: rl.path, REVOCATION_SYNC_MS: "200" } })));
  after(async () => {
    await t?.stop();
    rl.remove();
  });

  it("refuses KID's tokens everywhere at once, drops it from the JWKS, signs with a new key; refresh still works", async () => {
    const u = await register(t);
    const kid = kidOf(u.access);
    // A verifier in another process: the JWKS fetched over HTTP and cached (max-age 300 s).
    const elsewhere = createVerifier({ issuer: "acme-auth", userAudience: "acme-api", serviceAudiences: [], keys: remoteJwks(`${t.url}/.well-known/jwks.json`), kv: t.system.kv });
    assert.equal((await elsewhere.verify(u.access)).kind, "user");
    assert.deepEqual(await probe(t, u.access), ["ok", "ok", "ok"]);

    const r = await admin(["rotate-keys", `--revoke=${kid}`], env());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`revoked: ${kid.replace(/[-]/g, "\\-")} `));
    assert.match(r.stdout, /revocation list updated in Redis/);
    const revokedAt = Date.now();

    // At once, before any JWKS refresh: user service, order service, embedded edge, the cached copy.
    assert.deepEqual(await probe(t, u.access), ["refused", "refused", "refused"]);
    await assert.rejects(elsewhere.verify(u.access), /key revoked/);

    // The auth service drops it from the JWKS within one sync pass.
    while ((await jwksKids()).includes(kid)) {
      assert.ok(Date.now() - revokedAt < 5000, "KID still in the JWKS after 5 s");
      await new Promise((res) => setTimeout(res, 50));
    }
    const jwksMs = Date.now() - revokedAt;
    assert.ok((await jwksKids()).length >= 1);

    // New tokens come from another key and work everywhere.
    const again = await login(t, u.email);
    assert.notEqual(kidOf(again.access), kid);
    assert.deepEqual(await probe(t, again.access), ["ok", "ok", "ok"]);
    // The refresh token is opaque (not signed by KID): the session goes on with a token of the new key.
    const refreshed = await t.auth().refresh({ refreshToken: u.refresh });
    assert.notEqual(kidOf(refreshed.tokens!.accessToken), kid);
    assert.deepEqual(await probe(t, refreshed.tokens!.accessToken), ["ok", "ok", "ok"]);
    // And the old token stays refused.
    assert.deepEqual(await probe(t, u.access), ["refused", "refused", "refused"]);
    console.log(`      key revoke: tokens of KID refused at once on 3 paths + a cached JWKS copy; KID gone from the JWKS after ${jwksMs} ms`);
  });

  it("refuses an unknown kid (exit 2), changing nothing", async () => {
    const before = await jwksKids();
    const r = await admin(["rotate-keys", "--revoke=no-such-kid"], env());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no published signing key with kid no-such-kid/);
    assert.deepEqual(await jwksKids(), before);
  });

  it("a pending key revoked: never signs, the signing key stays; the signing key revoked while one is pending: the pending one signs at once", async () => {
    const keys = authModule(t).internals.keys;
    const signing = keys.current().kid;
    const pending = await keys.rotate(); // published ahead, signs later
    assert.ok((await jwksKids()).includes(pending));
    assert.equal(await keys.revoke(pending), signing);
    assert.ok(!(await jwksKids()).includes(pending));
    assert.equal(keys.current().kid, signing);

    const next = await keys.rotate();
    assert.equal(await keys.revoke(signing), next, "the pending key signs from now");
    assert.equal(keys.current().kid, next);
    const published = await jwksKids();
    assert.ok(published.includes(next) && !published.includes(signing));
  });

  it("a retired key (still published for its last tokens) revoked: unpublished, the signing key unchanged", async () => {
    const keys = authModule(t).internals.keys;
    const retired = keys.current().kid;
    const signing = await keys.rotate({ immediate: true });
    assert.ok((await jwksKids()).includes(retired), "a retired key stays published while its tokens live");
    assert.equal(await keys.revoke(retired), signing);
    assert.ok(!(await jwksKids()).includes(retired));
    assert.equal(keys.current().kid, signing);
  });
});
