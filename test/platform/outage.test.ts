// Postgres or Redis stopped under a running system (services and embedded
// edge in process, on servers of this suite's own): every answer is 503 /
// UNAVAILABLE with Retry-After and the JSON error body, within 1 s; never 500,
// never 401 for a valid token; grpc.health.v1 says NOT_SERVING and /health
// names the dependency; both recover by themselves once it is back.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../gen/health/v1/health_pb.js";
import { relaxedRateLimits } from "../interop/support.js";
import { openDatabase, sql } from "../../platform/db.js";
import { DependencyUnavailableError } from "../../platform/errors.js";
import { rest, type Json } from "../support/http.js";
import { ownPostgres, ownRedis, type Restartable } from "../support/servers.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { makeProduct } from "../support/products.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function timedRest(...args: Parameters<typeof rest>): Promise<Json & { ms: number }> {
  const t = performance.now();
  const r = await rest(...args);
  return { ...r, ms: performance.now() - t };
}

/** Poll until check() is true; the time it took (throws after limitMs). */
async function within(limitMs: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const t = performance.now();
  for (let i = 0; performance.now() - t < limitMs && i < 500; i++) {
    if (await check().catch(() => false)) return performance.now() - t;
    await sleep(50);
  }
  throw new Error(`${what}: not within ${limitMs} ms`);
}

function assertUnavailable(r: Json & { ms: number }, what: string): void {
  assert.equal(r.status, 503, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.body?.code, Code.Unavailable, `${what}: ${r.text}`);
  assert.equal(typeof r.body?.message, "string");
  assert.deepEqual(Object.keys(r.body).sort(), ["code", "message"], `${what}: one error shape`);
  assert.match(r.headers.get("retry-after") ?? "", /^[1-9]\d*$/, `${what}: retry-after`);
  assert.ok(r.ms < 1000, `${what}: ${r.ms.toFixed(0)} ms`);
}

describe("outages: Postgres or Redis stopped under a running system", function () {
  this.timeout(120_000);
  let pg: Restartable;
  let redis: Restartable;
  let sys: TestSystem;
  let token: string;
  let orderId: string;
  const password = "correct horse battery staple";
  const email = `outage-${randomBytes(4).toString("hex")}@example.com`;
  const dir = mkdtempSync(join(tmpdir(), "acme-outage-"));
  let productId = "";

  before(async () => {
    [pg, redis] = await Promise.all([ownPostgres(), ownRedis()]);
    sys = await startTestSystem({ env: { DATABASE_URL: pg.url, REDIS_URL: `${redis.url}/1`, HEALTH_PROBE_INTERVAL_MS: "200", REVOCATION_SYNC_MS: "200", RATELIMIT_CONFIG: relaxedRateLimits(dir) } });
    const reg = await rest(sys.url, "POST", "/v1/auth/register", { body: { email, password, name: "Outage" } });
    assert.ok(reg.status < 300, reg.text);
    const login = await rest(sys.url, "POST", "/v1/auth/login", { body: { email, password } });
    assert.equal(login.status, 200, login.text);
    token = login.body.tokens.accessToken;
    productId = (await makeProduct(sys)).id;
    const order = await rest(sys.url, "POST", "/v1/orders", { token, body: { lines: [{ productId, quantity: 1 }], requestId: "outage-1" } });
    assert.equal(order.status, 200, order.text);
    orderId = order.body.order.id;
  });

  after(async () => {
    await sys?.stop();
    await Promise.all([pg?.close(), redis?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const health = () => createClient(Health, sys.transport());
  const orderServing = async () => (await health().check({ service: "acme.order.v1.OrderService" })).status;

  it("a connection held in a transaction when Postgres stops: the transaction fails UNAVAILABLE, the process lives on", async () => {
    const db = await openDatabase({ url: pg.url, dataDir: dir, max: 2, env: {} });
    try {
      let stopped!: () => void;
      const whenStopped = new Promise<void>((r) => (stopped = r));
      const tx = db.db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx);
        await whenStopped; // the server goes away while this client is checked out and idle
        await sql`select 1`.execute(trx);
      });
      const outcome = tx.then(() => undefined, (err: unknown) => err);
      await sleep(50);
      await pg.stop();
      await sleep(200); // the client's 'error' event has fired (unhandled, it would end the process)
      stopped();
      const err = await outcome;
      assert.ok(err instanceof DependencyUnavailableError, String(err));
      assert.equal(db.available?.(), false, "the circuit is open");
    } finally {
      await pg.start();
      await db.close();
    }
  });

  it("Postgres stopped: 503 with Retry-After within 1 s on reads, writes and login; health names it; back by itself", async () => {
    await pg.stop();
    for (let i = 0; i < 3; i++) {
      assertUnavailable(await timedRest(sys.url, "GET", `/v1/orders/${orderId}`, { token }), "read order");
      assertUnavailable(await timedRest(sys.url, "POST", "/v1/orders", { token, body: { lines: [{ productId, quantity: 1 }], requestId: `down-${i}` } }), "create order");
      assertUnavailable(await timedRest(sys.url, "POST", "/v1/auth/login", { body: { email, password } }), "login");
    }
    // gRPC callers see UNAVAILABLE with retry-after in the trailers.
    const err = await sys.orders(token).getOrder({ id: orderId }).then(() => undefined, (e) => ConnectError.from(e));
    assert.equal(err?.code, Code.Unavailable);
    assert.equal(err?.metadata.get("retry-after"), "1");

    await within(2000, "NOT_SERVING", async () => (await orderServing()) === Serving.NOT_SERVING);
    const h = await rest(sys.url, "GET", "/health");
    assert.equal(h.status, 503);
    assert.equal(h.body.dependencies.postgres.status, "down");
    assert.equal(h.body.dependencies.redis.status, "up");
    assert.match(h.body.services.order.error, /postgres down/);

    await pg.start();
    const recovered = await within(5000, "reads again", async () => (await rest(sys.url, "GET", `/v1/orders/${orderId}`, { token })).status === 200);
    await within(2000, "SERVING", async () => (await orderServing()) === Serving.SERVING);
    assert.equal((await rest(sys.url, "GET", "/health")).status, 200);
    const login = await rest(sys.url, "POST", "/v1/auth/login", { body: { email, password } });
    assert.equal(login.status, 200, login.text);
    console.log(`      postgres back: reads answered again after ${recovered.toFixed(0)} ms`);
  });

  it("Redis stopped: a valid token gets 503, never 401; login fails fast with 503; health names it; back by itself", async () => {
    await redis.stop();
    for (let i = 0; i < 3; i++) {
      assertUnavailable(await timedRest(sys.url, "GET", "/v1/users/me", { token }), "users/me");
      assertUnavailable(await timedRest(sys.url, "GET", `/v1/orders/${orderId}`, { token }), "read order");
      assertUnavailable(await timedRest(sys.url, "POST", "/v1/auth/login", { body: { email, password } }), "login");
    }
    const err = await sys.users(token).getMe({}).then(() => undefined, (e) => ConnectError.from(e));
    assert.equal(err?.code, Code.Unavailable);

    await within(2000, "NOT_SERVING", async () => (await orderServing()) === Serving.NOT_SERVING);
    const h = await rest(sys.url, "GET", "/health");
    assert.equal(h.status, 503);
    assert.equal(h.body.dependencies.redis.status, "down");
    assert.equal(h.body.dependencies.postgres.status, "up");

    await redis.start();
    const recovered = await within(5000, "users/me again", async () => (await rest(sys.url, "GET", "/v1/users/me", { token })).status === 200);
    await within(2000, "SERVING", async () => (await orderServing()) === Serving.SERVING);
    const login = await rest(sys.url, "POST", "/v1/auth/login", { body: { email, password } });
    assert.equal(login.status, 200, login.text);
    console.log(`      redis back: users/me answered again after ${recovered.toFixed(0)} ms`);
  });
});
