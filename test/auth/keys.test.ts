// Signing keys: JWKS over plain HTTP/1.1 and GetJwks, private keys sealed at
// rest, rotation (publish before signing, keep until the last token expires),
// scheduled rotation, the in-process KeySource, concurrent first start.
import { strict as assert } from "node:assert";
import { createPrivateKey, createPublicKey } from "node:crypto";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Kysely } from "kysely";
import { loadConfig } from "../../platform/config.js";
import { openDatabase } from "../../platform/db.js";
import { silentLogger } from "../../platform/logger.js";
import { memoryStore } from "../../platform/kv.js";
import { loadSecrets } from "../../platform/secrets.js";
import { SERVICE_NAMES } from "../../app/services.js";
import { authService } from "../../services/auth/index.js";
import { openPrivateKey, thumbprint } from "../../services/auth/key-material.js";
import { SigningKeys } from "../../services/auth/keys.js";
import type { AuthDb } from "../../services/auth/tables.js";
import { signJwt } from "../../services/auth/tokens.js";
import { freshDatabaseUrl } from "../support/fresh.js";
import type { TestSystem } from "../support/system.js";
import { authModule, decodeJwt, login, query, register, startAuthSystem } from "./helpers.js";

interface Jwks {
  keys: { kid: string; kty: string; crv: string; x: string; y: string; alg: string; use: string; d?: string }[];
}

function http11(url: string, method = "GET"): Promise<{ status: number; version: string; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, version: res.httpVersion, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("auth: signing keys and JWKS", () => {
  let t: TestSystem;
  before(async () => (t = await startAuthSystem()));
  after(async () => t?.stop());
  const internals = () => authModule(t).internals;
  const jwks = async () => JSON.parse((await http11(`${t.url}/.well-known/jwks.json`)).body) as Jwks;
  const alive = (access: string) => t.auth(access).listSessions({}).then(() => true, () => false);

  it("serves GET /.well-known/jwks.json over plain HTTP/1.1 with cache-control, public parts only", async () => {
    const res = await http11(`${t.url}/.well-known/jwks.json`);
    assert.equal(res.status, 200);
    assert.equal(res.version, "1.1");
    assert.equal(res.headers["content-type"], "application/jwk-set+json");
    assert.equal(res.headers["cache-control"], "public, max-age=300");
    const set = JSON.parse(res.body) as Jwks;
    assert.equal(set.keys.length, 1);
    const [k] = set.keys;
    assert.deepEqual(Object.keys(k).sort(), ["alg", "crv", "kid", "kty", "use", "x", "y"]);
    assert.equal(k.kty, "EC");
    assert.equal(k.crv, "P-256");
    assert.equal(k.alg, "ES256");
    assert.equal(k.use, "sig");
    assert.equal(k.kid, await thumbprint(k), "kid is the RFC 7638 thumbprint");
    const head = await http11(`${t.url}/.well-known/jwks.json`, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    assert.equal((await http11(`${t.url}/.well-known/jwks.json`, "POST")).status, 405);
  });

  it("AuthService.GetJwks answers the same set as google.api.HttpBody", async () => {
    const body = await t.auth().getJwks({});
    assert.equal(body.contentType, "application/jwk-set+json");
    assert.deepEqual(JSON.parse(Buffer.from(body.data).toString("utf8")), await jwks());
  });

  it("keeps private keys sealed with AES-256-GCM under the key-encryption key", async () => {
    const [row] = await query<{ kid: string; private_key_enc: Buffer; public_jwk: unknown }>(t, "select kid, private_key_enc, public_jwk from auth.signing_keys");
    const sealed = Buffer.from(row.private_key_enc);
    assert.throws(() => createPrivateKey({ key: sealed, format: "der", type: "pkcs8" }));
    const kek = loadSecrets(t.dataDir, t.env, SERVICE_NAMES).keyEncryptionKey;
    const der = openPrivateKey(kek, row.kid, sealed);
    const pub = createPublicKey(createPrivateKey({ key: der, format: "der", type: "pkcs8" })).export({ format: "jwk" });
    assert.equal(await thumbprint(pub as { crv: string; x: string; y: string }), row.kid);
    // Tampering, another kid (AAD) or another key-encryption key all fail.
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1] ^= 1;
    assert.throws(() => openPrivateKey(kek, row.kid, flipped));
    assert.throws(() => openPrivateKey(kek, "another-kid", sealed));
    assert.throws(() => openPrivateKey(Buffer.alloc(32, 7), row.kid, sealed));
    assert.ok(!JSON.stringify(row.public_jwk).includes('"d"'));
  });

  it("rotation: the next key is published first, signs after the publish-ahead time, old tokens verify until the old key retires", async () => {
    const before = await register(t);
    const oldKid = String(decodeJwt(before.access).header.kid);
    const newKid = await internals().keys.rotate();
    assert.notEqual(newKid, oldKid);
    // Published at once, not signing yet.
    assert.deepEqual((await jwks()).keys.map((k) => k.kid), [oldKid, newKid]);
    assert.equal(decodeJwt((await login(t, before.email)).access).header.kid, oldKid);
    assert.equal(await internals().keys.rotate(), newKid, "rotating again while a key is pending is a no-op");

    internals().clock.advance(3600_000 + 1000); // KEY_PUBLISH_AHEAD_SECONDS default 3600
    const after = await login(t, before.email);
    assert.equal(decodeJwt(after.access).header.kid, newKid);
    assert.ok(await alive(before.access), "a token of the old key still verifies");
    assert.ok(await alive(after.access));
    assert.deepEqual((await jwks()).keys.map((k) => k.kid), [oldKid, newKid]);

    const [old] = await query<{ retires_at: Date; expires_at: Date }>(t, "select retires_at, expires_at from auth.signing_keys where kid = $1", [oldKid]);
    const [next] = await query<{ activates_at: Date }>(t, "select activates_at from auth.signing_keys where kid = $1", [newKid]);
    assert.equal(old.retires_at.getTime(), next.activates_at.getTime());
    // Kept for the longest token lifetime (15 min access, 10 min service), the reload interval
    // of other instances (KEY_CHECK_SECONDS 60) and a minute of skew.
    assert.equal(old.expires_at.getTime() - old.retires_at.getTime(), (900 + 60 + 60) * 1000);

    internals().clock.advance(1020_000 + 1000);
    assert.deepEqual((await jwks()).keys.map((k) => k.kid), [newKid], "unpublished once its last token expired");
    assert.equal(await authModule(t).keySource!.get(oldKid), undefined);
  });

  it("scheduled rotation: maintenance publishes the next key KEY_PUBLISH_AHEAD_SECONDS before the 30-day mark, once", async () => {
    const keys = internals().keys;
    const count = async () => (await query<{ n: number }>(t, "select count(*)::int as n from auth.signing_keys"))[0].n;
    const before = await count();
    await keys.maintain();
    assert.equal(await count(), before, "nothing due yet");
    const current = keys.current();
    const due = current.activatesAt + (30 * 86400 - 3600) * 1000;
    internals().clock.advance(due - internals().clock.now() + 1000);
    await Promise.all([keys.maintain(), keys.maintain(), keys.maintain()]);
    assert.equal(await count(), before + 1, "exactly one new key, however many instances ran maintenance");
    const sched = keys.schedule().filter((k) => k.expiresAt === undefined);
    assert.equal(sched.length, 1);
    assert.ok(sched[0].activatesAt > internals().clock.now(), "the new key is pending");
    assert.equal(keys.current().kid, current.kid, "and the current key still signs");
  });

  it("the in-process KeySource loads a key another instance created on first sight of its kid, reloading at most every 2 s", async () => {
    const kdb = t.system.db.db as Kysely<AuthDb>;
    const kek = loadSecrets(t.dataDir, t.env, SERVICE_NAMES).keyEncryptionKey;
    const other = new SigningKeys(kdb, kek, internals().cfg, internals().clock, silentLogger);
    await other.rotate({ immediate: true }); // activates the pending key of the previous test
    await other.rotate({ immediate: true }); // a brand-new key, signing at once
    const mine = await register(t);
    const { claims } = decodeJwt(mine.access);
    const fromOther = await signJwt(other.current(), claims);
    const kid = String(decodeJwt(fromOther).header.kid);
    assert.ok(!internals().keys.schedule().some((k) => k.kid === kid), "this instance has not seen the key yet");
    internals().clock.advance(3000);
    assert.ok(await alive(fromOther), "unknown kid -> reload -> verified");

    const keys = internals().keys;
    internals().clock.advance(3000);
    const loads = keys.loads;
    assert.equal(await keys.get("made-up-1"), undefined);
    assert.equal(await keys.get("made-up-2"), undefined);
    assert.equal(await keys.get("made-up-3"), undefined);
    assert.equal(keys.loads - loads, 1, "a flood of made-up kids costs one reload");
  });

  it("several instances starting at once on an empty database create exactly one key", async () => {
    const url = await freshDatabaseUrl();
    const dataDir = mkdtempSync(join(tmpdir(), "acme-keys-"));
    const config = loadConfig({ DATABASE_URL: url, DATA_DIR: dataDir, BCRYPT_COST: "10", METRICS_PORT: "0" });
    const secrets = loadSecrets(dataDir, {}, SERVICE_NAMES);
    const dbs = await Promise.all([1, 2, 3].map(() => openDatabase({ url, dataDir })));
    try {
      const prepared = await Promise.all(dbs.map((db) => authService.prepare({ db, config, secrets, log: silentLogger, kv: memoryStore() })));
      const [{ n }] = (await dbs[0].db.selectFrom("auth.signing_keys").select((eb) => eb.fn.countAll<number>().as("n")).execute()) as { n: number }[];
      assert.equal(Number(n), 1);
      const [{ kid }] = await dbs[0].db.selectFrom("auth.signing_keys").select("kid").execute();
      const found = await Promise.all(prepared.map(async (p) => (await p.keySource!.get(kid)) !== undefined));
      assert.deepEqual(found, [true, true, true]);
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
