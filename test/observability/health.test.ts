// GET /health: services and dependencies with status and latency, 200 when
// all are up, 503 otherwise; probes are bounded by a timeout and not traced.
import assert from "node:assert/strict";
import { context, trace } from "@opentelemetry/api";
import { createRouterTransport } from "@connectrpc/connect";
import { SERVICE_NAMES } from "../../app/services.js";
import { HealthState, registerHealth, ServingStatus } from "../../platform/health.js";
import type { Database } from "../../platform/db.js";
import { memoryStore, type KeyValueStore } from "../../platform/kv.js";
import { checkHealth } from "../../platform/telemetry/health.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { installMemoryTracing } from "./support/memory-otel.js";

/** A Database whose `select 1` resolves (making a span, as instrumentation-pg would), fails or hangs. */
function fakeDb(mode: "ok" | "fail" | "hang"): Database {
  const executor = {
    executeQuery: () =>
      mode === "ok" ? Promise.resolve(trace.getTracer("fake-pg").startSpan("pg.query:SELECT").end()).then(() => ({ rows: [{ "?column?": 1 }] })) : mode === "fail" ? Promise.reject(Object.assign(new Error("connect ECONNREFUSED postgres://u:p@db:5432/x"), { code: "ECONNREFUSED" })) : new Promise(() => {}),
  };
  const db = { getExecutor: () => ({ ...executor, transformQuery: (q: unknown) => q, compileQuery: (q: unknown) => q, adapter: {} }) };
  return { db: db as never, kind: "postgres", poolStats: () => ({ total: 1, idle: 1, waiting: 0 }), close: async () => {} };
}

describe("observability: aggregated health", () => {
  const state = new HealthState();
  state.set("acme.user.v1.UserService", ServingStatus.SERVING);
  const local = () => [{ name: "user", services: ["acme.user.v1.UserService"] }];

  it("is down, naming the dependency, when Redis does not answer; no connection string in the reason", async () => {
    const kv: KeyValueStore = { ...memoryStore(), kind: "redis", ping: () => Promise.reject(new Error("Connection is closed.")) };
    const db = fakeDb("fail");
    const h = await checkHealth({ db, kv, state, local, timeoutMs: 200 });
    assert.equal(h.status, "down");
    assert.equal(h.dependencies.redis.status, "down");
    assert.equal(h.dependencies.redis.error, "Connection is closed.");
    assert.equal(h.dependencies.postgres.status, "down");
    assert.equal(h.dependencies.postgres.error, "ECONNREFUSED: connect ECONNREFUSED <url>");
    assert.equal(h.services.user.status, "down");
    assert.match(String(h.services.user.error), /postgres down; redis down/);
  });

  it("bounds a hanging check by the timeout", async () => {
    const t = performance.now();
    const h = await checkHealth({ db: fakeDb("hang"), kv: memoryStore(), state, local, timeoutMs: 150 });
    assert.ok(performance.now() - t < 1000);
    assert.equal(h.dependencies.postgres.status, "down");
    assert.match(String(h.dependencies.postgres.error), /timed out after 150 ms/);
    assert.equal(h.dependencies.redis.status, "up");
  });

  it("reports a service that is not serving, and asks remote services with grpc.health.v1", async () => {
    const s = new HealthState();
    s.set("acme.user.v1.UserService", ServingStatus.NOT_SERVING);
    const remoteState = new HealthState();
    const remote = createRouterTransport((r) => registerHealth(r, remoteState));
    const h = await checkHealth({ db: fakeDb("ok"), kv: memoryStore(), state: s, local, remote: () => [{ name: "order", transport: remote }] });
    assert.equal(h.services.user.status, "down");
    assert.match(String(h.services.user.error), /acme\.user\.v1\.UserService not serving/);
    assert.equal(h.services.order.status, "up");
    assert.equal(h.services.order.where, "remote");
    remoteState.shutdown();
    const h2 = await checkHealth({ db: fakeDb("ok"), kv: memoryStore(), state: new HealthState(), local: () => [], remote: () => [{ name: "order", transport: remote }] });
    assert.equal(h2.services.order.status, "down");
    assert.equal(h2.status, "down");
  });

  it("makes no spans for its probes", async () => {
    const otel = installMemoryTracing();
    try {
      const span = trace.getTracer("t").startSpan("parent");
      await context.with(trace.setSpan(context.active(), span), () => checkHealth({ db: fakeDb("ok"), kv: memoryStore(), state, local }));
      span.end();
      assert.deepEqual(otel.spans().map((s) => s.name), ["parent"]);
      // ...while the same query outside the probe is traced:
      await context.with(trace.setSpan(context.active(), span), () => fakeDb("ok").db.getExecutor().executeQuery(undefined as never));
      assert.deepEqual(otel.spans().map((s) => s.name), ["parent", "pg.query:SELECT"]);
    } finally {
      await otel.uninstall();
    }
  });

  describe("on the product's port (embedded edge)", () => {
    let t: TestSystem;
    before(async () => (t = await startTestSystem()));
    after(async () => t?.stop());

    it("GET /health: 200 with every service, Postgres and Redis; 503 while shutting down", async () => {
      const r = await fetch(`${t.url}/health`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("cache-control"), "no-store");
      const h = await r.json();
      assert.equal(h.status, "up");
      assert.deepEqual(Object.keys(h.services).sort(), [...SERVICE_NAMES].sort());
      assert.deepEqual([h.dependencies.postgres.kind, h.dependencies.redis.kind, h.dependencies.broker.kind], ["postgres", "redis", "memory"]);
      assert.equal(typeof h.dependencies.postgres.latency_ms, "number");
      assert.equal(h.dependencies.broker.status, "up");
      // Each outbox's lag, on the services that have one (auth, order and catalogue publish events; user and notification do not).
      assert.deepEqual(
        Object.fromEntries(Object.entries(h.services as Record<string, { outbox_lag_ms?: number }>).map(([name, s]) => [name, s.outbox_lag_ms])),
        { auth: 0, user: undefined, order: 0, notification: undefined, catalogue: 0 },
      );
      t.system.health.shutdown();
      const down = await fetch(`${t.url}/health`);
      assert.equal(down.status, 503);
      assert.equal((await down.json()).services.order.status, "down");
    });
  });

  describe("on a single service's port (no edge)", () => {
    let t: TestSystem;
    before(async () => (t = await startTestSystem({ services: ["user"], edge: false, store: "memory", env: { AUTH_URL: "http://127.0.0.1:9" } })));
    after(async () => t?.stop());

    it("reports that service and its dependencies", async () => {
      const r = await fetch(`${t.url}/health`);
      assert.equal(r.status, 200);
      const h = await r.json();
      assert.deepEqual(Object.keys(h.services), ["user"]);
      assert.equal(h.dependencies.redis.kind, "memory");
    });
  });
});
