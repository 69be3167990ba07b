// Revocations in the real topology (auth, user and order as separate
// processes behind Envoy, their own Redis and Postgres): revoked and
// deactivated users' tokens stay refused across a restart of the services, a
// Redis FLUSHALL and a Redis outage (503 meanwhile, never 401 for a valid
// token, never accepted); and `npm run admin -- rotate-keys --revoke KID`
// refuses KID's tokens at once, before Envoy's JWKS copy drops KID.
import { strict as assert } from "node:assert";
import { Redis } from "ioredis";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { startEdgeStack, type EdgeStack } from "../support/edge-stack.js";
import { rest, sleep } from "./support.js";
import { runAdmin } from "../support/admin-cli.js";

const PASSWORD = "stack-revocation-pw-1";
const kidOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString()).kid as string;

const admin = runAdmin;

describe("real edge: revocations that survive (separate processes behind Envoy)", function () {
  this.timeout(300_000);
  const rl = tempRateLimitConfig(GENEROUS_LIMITS);
  let stack: EdgeStack;
  const revoked: { what: string; token: string }[] = [];
  const valid: { what: string; token: string; email: string; refresh: string }[] = [];
  let n = 0;

  const login = async (email: string, password = PASSWORD) => {
    const a = await rest(stack.edgeUrl, "POST", "/v1/auth/login", { body: { email, password } });
    assert.equal(a.status, 200, a.text);
    return { access: a.body.tokens.accessToken as string, refresh: a.body.tokens.refreshToken as string, id: a.body.user.id as string, email };
  };
  const signUp = async () => {
    const email = `rev-${++n}-${Date.now()}@example.com`;
    const r = await rest(stack.edgeUrl, "POST", "/v1/auth/register", { body: { email, password: PASSWORD, name: "Rev User" } });
    assert.ok(r.status >= 200 && r.status < 300, r.text);
    return login(email);
  };
  /** GET /v1/users/me and GET /v1/orders through Envoy: "ok", "refused" (401), "unavailable" (503) or the status. */
  const probe = async (token: string) =>
    Promise.all(
      ["/v1/users/me", "/v1/orders"].map(async (path) => {
        const r = await rest(stack.edgeUrl, "GET", path, { token });
        return r.status === 200 ? "ok" : r.status === 401 ? "refused" : r.status === 503 ? "unavailable" : `${r.status} ${r.text}`;
      }),
    );
  /** Until no answer is 503 (bounded): revoked tokens never accepted, valid ones accepted at the end. Counts. */
  const settle = async (withinMs: number) => {
    const started = Date.now();
    const c = { tried: 0, refused: 0, unavailable: 0 };
    for (;;) {
      let pending = false;
      for (const r of revoked) {
        for (const o of await probe(r.token)) {
          c.tried++;
          if (o === "unavailable") (c.unavailable++, (pending = true));
          else (assert.equal(o, "refused", `revoked (${r.what})`), c.refused++);
        }
      }
      for (const v of valid) for (const o of await probe(v.token)) if (o === "unavailable") pending = true; else assert.equal(o, "ok", `valid (${v.what})`);
      if (!pending) return { ...c, ms: Date.now() - started };
      assert.ok(Date.now() - started < withinMs, `still 503 after ${withinMs} ms`);
      await sleep(100);
    }
  };

  before(async () => {
    stack = await startEdgeStack({
      ratelimitConfig: rl.path,
      env: { REVOCATION_SYNC_MS: "500" },
      edge: (s) => ({ ...s, jwt: { ...s.jwt, jwks_cache_duration: "2s" } }),
    });
    rl.remove();
    const adminToken = (await login(stack.admin.email, stack.admin.password)).access;
    const out = await signUp();
    assert.equal((await rest(stack.edgeUrl, "POST", "/v1/auth/logout", { body: { refreshToken: out.refresh } })).status, 200);
    revoked.push({ what: "logged out", token: out.access });
    const off = await signUp();
    const p = await rest(stack.edgeUrl, "PATCH", `/v1/users/${off.id}?updateMask=active`, { token: adminToken, body: { active: false } });
    assert.equal(p.status, 200, p.text);
    revoked.push({ what: "deactivated", token: off.access });
    const gone = await signUp();
    assert.equal((await rest(stack.edgeUrl, "DELETE", `/v1/users/${gone.id}`, { token: adminToken })).status, 200);
    revoked.push({ what: "deleted", token: gone.access });
    const ok = await signUp();
    valid.push({ what: "plain user", token: ok.access, email: ok.email, refresh: ok.refresh });
    await settle(0);
  });
  after(async () => stack?.close());

  it("restart of auth, user and order: revoked tokens refused, valid ones work", async () => {
    for (const s of ["auth", "user", "order"] as const) await stack.stop(s);
    const flush = new Redis(stack.redisUrl);
    await flush.flushall().finally(() => flush.disconnect()); // and a store that lost everything meanwhile
    for (const s of ["auth", "user", "order"] as const) await stack.start(s);
    const c = await settle(10_000);
    console.log(`      stack restart: ${c.tried} presentations of revoked tokens, ${c.refused} refused, ${c.unavailable} answered 503, 0 accepted`);
  });

  it("Redis FLUSHALL: 0 revoked tokens accepted; 503 until the auth service reloads, final within 5 s", async () => {
    const flush = new Redis(stack.redisUrl);
    await flush.flushall().finally(() => flush.disconnect());
    const c = await settle(5000);
    console.log(`      stack flush: ${c.tried} presentations, ${c.refused} refused, ${c.unavailable} answered 503, 0 accepted, final after ${c.ms} ms`);
  });

  it("Redis stopped: 503 for valid and revoked tokens, never 401 nor accepted; back: final within 5 s", async () => {
    await stack.stop("redis");
    try {
      let answers = 0;
      let slowest = 0;
      for (const x of [...revoked, ...valid]) {
        const t0 = Date.now();
        const outcomes = await probe(x.token);
        slowest = Math.max(slowest, Date.now() - t0);
        for (const o of outcomes) (answers++, assert.equal(o, "unavailable", `${x.what} while Redis is down`));
      }
      const one = await rest(stack.edgeUrl, "GET", "/v1/users/me", { token: valid[0].token });
      assert.equal(one.status, 503, one.text);
      assert.equal(one.body?.code, 14, one.text);
      assert.match(one.headers.get("retry-after") ?? "", /^[1-9][0-9]*$/, "503 with Retry-After");
      console.log(`      stack outage: ${answers} answers, all 503 (slowest pair ${slowest} ms); body ${one.text}, retry-after ${one.headers.get("retry-after")}`);
    } finally {
      await stack.start("redis");
    }
    const back = Date.now();
    const c = await settle(5000);
    console.log(`      stack outage over: final ${Date.now() - back} ms after Redis started; ${c.refused} refusals, 0 accepted`);
  });

  it("rotate-keys --revoke KID: KID's tokens refused (401) through Envoy at once and for as long as Envoy's caches pass them on; refresh works", async () => {
    const v = valid[0];
    const kid = kidOf(v.token);
    const r = await admin(["rotate-keys", `--revoke=${kid}`], { DATABASE_URL: stack.databaseUrl, REDIS_URL: stack.redisUrl, DATA_DIR: `${stack.dir}/data` });
    assert.equal(r.code, 0, r.stderr);
    const at = Date.now();
    const first = await rest(stack.edgeUrl, "GET", "/v1/users/me", { token: v.token });
    assert.equal(first.status, 401, first.text);
    assert.deepEqual(await probe(v.token), ["refused", "refused"]);
    // Envoy's JWKS copy (cache_duration 2 s here) drops KID, but its jwt_cache keeps passing a token it verified
    // before (measured: still after 10 s); the services refuse it: 401 all along, whichever layer answers.
    let envoyRefuses = 0;
    for (let i = 0; i < 40 && !envoyRefuses; i++) {
      const a = await rest(stack.edgeUrl, "GET", "/v1/users/me", { token: v.token });
      assert.equal(a.status, 401, a.text);
      if (a.body?.message !== "invalid access token") envoyRefuses = Date.now() - at;
      else await sleep(250);
    }
    const refreshed = await rest(stack.edgeUrl, "POST", "/v1/auth/refresh", { body: { refreshToken: v.refresh } });
    assert.equal(refreshed.status, 200, refreshed.text);
    const next = refreshed.body.tokens.accessToken as string;
    assert.notEqual(kidOf(next), kid);
    assert.deepEqual(await probe(next), ["ok", "ok"]);
    console.log(
      `      key revoke via Envoy: first answer 401 from the service (message "${first.body?.message}"); ` +
        (envoyRefuses ? `Envoy itself refused from ${envoyRefuses} ms` : "Envoy kept passing the token (its jwt_cache) for 10 s; the services refused it"),
    );
  });
});
