// Revocations survive what used to lose them (issue 15): the revoked list in
// the KV store is a cache of Postgres, rebuilt before the port opens and after
// a flush; while it cannot be read every authenticated call is UNAVAILABLE
// (503), never 401 for a valid token and never accepted for a revoked one.
// Revoked tokens are made through the product (logout, logout-all, session
// delete, deactivation, account deletion) and presented to the user service,
// the order service (gRPC) and the embedded edge (REST).
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { REVOCATIONS_LOADED_KEY } from "../../platform/auth/revocation.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { freePort, startRedis, type Running } from "../support/servers.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { Code } from "@connectrpc/connect";
import { authModule, decodeJwt, query, register, rejectsWith } from "./helpers.js";
import { populate, probe, settle, tally, type Population } from "./revocation-support.js";

const rl = tempRateLimitConfig(GENEROUS_LIMITS);
after(() => rl.remove());

describe("revocations: durable across a restart (npm start's shape: PGlite and the in-process store)", function () {
  this.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), "acme-revocation-"));
  const start = () => startTestSystem({ database: "pglite", store: "memory", env: { DATA_DIR: dir, RATELIMIT_CONFIG: rl.path } });
  let t: TestSystem | undefined;
  after(async () => {
    await t?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses every revoked and deactivated token after the process restarts on the same data dir; valid ones still work", async () => {
    t = await start();
    const pop = await populate(t);
    const before = tally();
    await settle(t, pop, before, 0, false);
    assert.equal(before.acceptedRevoked, 0);
    await t.stop();
    t = await start();
    // Loaded before the port opened: no UNAVAILABLE window, the first answer is final.
    const n = tally();
    await settle(t, pop, n, 0, false);
    assert.equal(n.acceptedRevoked, 0);
    assert.equal(n.refused, pop.revoked.length * 3);
    console.log(`      restart: ${n.tried} presentations of ${pop.revoked.length} revoked tokens, ${n.refused} refused, ${n.acceptedRevoked} accepted`);
  });
});

describe("revocations: durable across a Redis flush and a Redis outage (Postgres and a Redis server of its own)", function () {
  this.timeout(120_000);
  let redis: Running;
  let port: number;
  let t: TestSystem;
  let pop: Population;
  before(async () => {
    port = await freePort();
    redis = await startRedis({ port });
    t = await startTestSystem({ env: { REDIS_URL: `${redis.url}/0`, RATELIMIT_CONFIG: rl.path, REVOCATION_SYNC_MS: "500" } });
    pop = await populate(t);
    const n = tally();
    await settle(t, pop, n, 0, false);
  });
  after(async () => {
    await t?.stop();
    await redis?.stop();
  });

  it("FLUSHALL: not one revoked token accepted; UNAVAILABLE until the auth service reloads the list, then final within 5 s", async () => {
    const before = authModule(t).internals.revocations.rebuilds;
    const admin = new Redis(redis.url);
    try {
      await admin.flushall();
    } finally {
      admin.disconnect();
    }
    // Straight after the flush, before any reload: a token is refused or UNAVAILABLE, never accepted.
    const n = tally();
    for (const r of pop.revoked) {
      for (const o of await probe(t, r.token)) {
        assert.ok(o === "refused" || o === "unavailable", `${r.what}: ${o}`);
        n.tried++;
        if (o === "refused") n.refused++;
        else n.unavailable++;
      }
    }
    const ms = await settle(t, pop, n, 5000);
    assert.equal(n.acceptedRevoked, 0);
    assert.ok(authModule(t).internals.revocations.rebuilds > before, "the list was reloaded");
    console.log(`      flush: ${n.tried} presentations of revoked tokens, ${n.refused} refused, ${n.unavailable} unavailable, 0 accepted; final after ${ms} ms`);
  });

  it("Redis stopped: every token, valid or revoked, gets UNAVAILABLE (503), not 401 and not accepted; back: valid ones work within 5 s, revoked ones stay refused", async () => {
    await redis.stop();
    const latencies: number[] = [];
    let answers = 0;
    for (const x of [...pop.revoked, ...pop.valid]) {
      const t0 = Date.now();
      const outcomes = await probe(t, x.token);
      latencies.push(Date.now() - t0);
      for (const o of outcomes) {
        answers++;
        assert.equal(o, "unavailable", `${x.what} while Redis is down`);
      }
    }
    // The 503 says when to come back, in the one error shape.
    const rest = await fetch(`${t.url}/v1/users/me`, { headers: { authorization: `Bearer ${pop.valid[0].token}` } });
    assert.equal(rest.status, 503);
    assert.match(rest.headers.get("retry-after") ?? "", /^[1-9][0-9]*$/);
    const body = (await rest.json()) as { code: number; message: string };
    assert.equal(body.code, 14);
    assert.match(body.message, /unavailable|unreachable/);
    redis = await startRedis({ port }); // a new, empty Redis on the same address
    const back = Date.now();
    const n = tally();
    const ms = await settle(t, pop, n, 5000);
    assert.equal(n.acceptedRevoked, 0);
    console.log(
      `      outage: ${answers} answers all UNAVAILABLE (slowest probe of 3 calls ${Math.max(...latencies)} ms); ` +
        `after Redis returned: valid tokens accepted and revoked refused after ${Date.now() - back} ms (${ms} ms of polling), ${n.refused} refusals, 0 accepted`,
    );
    const kv = new Redis(redis.url);
    try {
      assert.notEqual(await kv.get(REVOCATIONS_LOADED_KEY), null, "the auth service marked the reloaded list");
    } finally {
      kv.disconnect();
    }
  });
});

describe("revocations: the durable record outlives the session row, and no longer than it matters", function () {
  this.timeout(60_000);
  let t: TestSystem;
  before(async () => (t = await startTestSystem({ store: "memory", edge: false, env: { REVOKED_SESSION_RETENTION_SECONDS: "0" } })));
  after(async () => t?.stop());

  it("cleanup removes the revoked session at once (retention 0) but keeps its revocation until its tokens expired; reloads still refuse the token", async () => {
    const u = await register(t);
    await t.auth().logout({ refreshToken: u.refresh });
    const sid = String(decodeJwt(u.access).claims.sid);
    const internals = authModule(t).internals;
    internals.clock.advance(1000);
    await internals.cleanup.runOnce();
    assert.equal((await query(t, "select 1 from auth.sessions where id = $1", [sid])).length, 0, "the session row is gone");
    assert.equal((await query(t, "select 1 from auth.revoked_sessions where session_id = $1", [sid])).length, 1, "its revocation is not");
    // The list reloaded from the database (what a flush or a restart of npm start leads to) still refuses it.
    await t.system.kv.del(REVOCATIONS_LOADED_KEY, `auth:revoked:sid:${sid}`);
    await internals.revocations.tick();
    await rejectsWith(t.users(u.access).getMe({}), Code.Unauthenticated);
    // Past the access-token lifetime (plus margin and an hour's grace) the record goes too.
    internals.clock.advance((internals.cfg.accessTtlSeconds + 60 + 3600) * 1000);
    await internals.cleanup.runOnce();
    assert.equal((await query(t, "select 1 from auth.revoked_sessions where session_id = $1", [sid])).length, 0);
  });
});
