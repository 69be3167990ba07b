// The storage clients fail fast when their server cannot answer: the one error
// mapping gives UNAVAILABLE with Retry-After (never INTERNAL), a refused or
// silent server is given up on within the configured timeouts, and an open
// circuit answers at once until a probe finds the server back.
import { strict as assert } from "node:assert";
import net from "node:net";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { grpcErrorReply } from "../../edge/errors.js";
import { openDatabase, sql } from "../../platform/db.js";
import { policies, registry } from "../../app/contract.js";
import { DependencyCircuit, dependencyGate } from "../../platform/dependency.js";
import { dbUnavailableReason, DependencyUnavailableError, kvUnavailableReason, POOL_BUSY, toConnectError } from "../../platform/errors.js";
import { redisStore } from "../../platform/kv.js";
import { silentLogger } from "../../platform/logger.js";
import { freshDatabaseUrl } from "../support/fresh.js";
import { freePort } from "../support/servers.js";

/** A TCP server that accepts connections and never says anything (a hung or black-holed peer). */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      sockets.forEach((s) => s.destroy());
      return new Promise((r) => server.close(() => r()));
    },
  };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; err: unknown }> {
  const t = performance.now();
  try {
    await fn();
    return { ms: performance.now() - t, err: undefined };
  } catch (err) {
    return { ms: performance.now() - t, err };
  }
}

describe("outages: error mapping", () => {
  it("maps Postgres connection failures to UNAVAILABLE with Retry-After, query errors stay INTERNAL", () => {
    const outage = [
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }),
      Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }),
      Object.assign(new Error("the database system is starting up"), { code: "57P03" }),
      Object.assign(new Error("connection failure"), { code: "08006" }),
      Object.assign(new Error("sorry, too many clients already"), { code: "53300" }),
      Object.assign(new Error("canceling statement due to statement timeout"), { code: "57014" }),
      new Error("Connection terminated unexpectedly"),
      new Error("timeout exceeded when trying to connect"),
      new Error("Query read timeout"),
    ];
    for (const err of outage) {
      assert.ok(dbUnavailableReason(err), err.message);
      const ce = toConnectError(err, silentLogger, "test/Rpc");
      assert.equal(ce.code, Code.Unavailable, err.message);
      assert.equal(ce.metadata.get("retry-after"), "1");
      assert.doesNotMatch(ce.rawMessage, /127\.0\.0\.1|terminating|ECONN/, "no driver text reaches the client");
    }
    for (const err of [Object.assign(new Error("duplicate key"), { code: "23505" }), Object.assign(new Error("syntax"), { code: "42601" }), new Error("boom")]) {
      assert.equal(dbUnavailableReason(err), undefined, err.message);
      assert.equal(toConnectError(err, silentLogger, "test/Rpc").code, Code.Internal);
    }
  });

  it("maps Redis failures but not command errors; UNAVAILABLE from anywhere gains Retry-After", () => {
    assert.ok(kvUnavailableReason(new Error("Connection is closed.")));
    assert.ok(kvUnavailableReason(new Error("Command timed out")));
    assert.ok(kvUnavailableReason(Object.assign(new Error("LOADING Redis is loading the dataset in memory"), { name: "ReplyError" })));
    assert.equal(kvUnavailableReason(Object.assign(new Error("WRONGTYPE Operation against a key"), { name: "ReplyError" })), undefined);
    const fromDep = toConnectError(new DependencyUnavailableError("redis", "connection reconnecting", { retryAfterSeconds: 2.2 }), silentLogger, "t/R");
    assert.equal(fromDep.code, Code.Unavailable);
    assert.equal(fromDep.metadata.get("retry-after"), "3");
    assert.equal(fromDep.rawMessage, "redis unavailable; retry later");
    const passed = toConnectError(new ConnectError("user service unavailable", Code.Unavailable), silentLogger, "t/R");
    assert.equal(passed.metadata.get("retry-after"), "1");
    assert.equal(toConnectError(new ConnectError("nope", Code.NotFound), silentLogger, "t/R").metadata.has("retry-after"), false);
  });
});

describe("outages: Retry-After on the embedded edge's 503s", () => {
  it("a service's UNAVAILABLE over REST: 503 with its retry-after, else the default", () => {
    const plain = grpcErrorReply(new ConnectError("user service unavailable", Code.Unavailable), registry);
    assert.equal(plain.status, 503);
    assert.equal(plain.headers["retry-after"], "1");
    const own = grpcErrorReply(new ConnectError("busy", Code.Unavailable, { "retry-after": "4" }), registry);
    assert.equal(own.headers["retry-after"], "4");
    assert.equal(grpcErrorReply(new ConnectError("gone", Code.NotFound), registry).headers["retry-after"], undefined);
  });
});

describe("outages: the dependency circuit", () => {
  it("fails fast while open, lets one probe through after openMs, closes on its success", async () => {
    let now = 0;
    const changes: boolean[] = [];
    const c = new DependencyCircuit({ dependency: "postgres", openMs: 1000, now: () => now, onChange: (up) => changes.push(up) });
    const down = () => Promise.reject(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }));
    let calls = 0;
    const counted = <T>(fn: () => Promise<T>) => () => (calls++, fn());
    await assert.rejects(c.run(counted(down), dbUnavailableReason), (e: DependencyUnavailableError) => !e.circuitOpen && e.dependency === "postgres");
    assert.equal(c.up, false);
    now = 500;
    await assert.rejects(c.run(counted(down), dbUnavailableReason), (e: DependencyUnavailableError) => e.circuitOpen && e.retryAfterSeconds === 1);
    assert.equal(calls, 1, "not asked while open");
    now = 1000;
    let release!: () => void;
    const probe = c.run(counted(() => new Promise<string>((r) => (release = () => r("ok")))), dbUnavailableReason);
    await assert.rejects(c.run(counted(down), dbUnavailableReason), (e: DependencyUnavailableError) => e.circuitOpen, "others fail fast during the probe");
    release();
    assert.equal(await probe, "ok");
    assert.equal(c.up, true);
    assert.equal(await c.run(() => Promise.resolve(1), dbUnavailableReason), 1);
    assert.deepEqual(changes, [false, true]);
  });

  it("an error of the request itself neither opens it nor hides the error", async () => {
    const c = new DependencyCircuit({ dependency: "postgres", openMs: 1000 });
    const dup = Object.assign(new Error("duplicate key"), { code: "23505" });
    await assert.rejects(c.run(() => Promise.reject(dup), dbUnavailableReason), (e) => e === dup);
    assert.equal(c.up, true);
  });
});

describe("outages: the dependency gate", () => {
  it("refuses the product's RPCs at once while Postgres is known down; health and reflection pass", async () => {
    let up = false;
    const gate = dependencyGate({ available: () => up }, policies);
    let ran = 0;
    const next = (async () => (ran++, { ok: true })) as never;
    const call = (typeName: string, method: string) =>
      gate(next)({ service: { typeName }, method: { name: method }, contextValues: createContextValues() } as never);
    await assert.rejects(call("acme.auth.v1.AuthService", "Register"), (e: DependencyUnavailableError) => e.circuitOpen && e.dependency === "postgres");
    await assert.rejects(call("acme.order.v1.OrderService", "GetOrder"), DependencyUnavailableError);
    assert.equal(ran, 0, "handlers not run");
    await call("grpc.health.v1.Health", "Check");
    assert.equal(ran, 1);
    up = true;
    await call("acme.auth.v1.AuthService", "Register");
    assert.equal(ran, 2);
  });
});

describe("outages: Postgres client timeouts", () => {
  it("a refused server: UNAVAILABLE at once, then at once again from the open circuit", async () => {
    const port = await freePort();
    const db = await openDatabase({ url: `postgres://postgres@127.0.0.1:${port}/none`, dataDir: "/nonexistent", env: {} });
    try {
      const first = await timed(() => sql`select 1`.execute(db.db));
      assert.ok(first.err instanceof DependencyUnavailableError, String(first.err));
      assert.ok(first.ms < 500, `${first.ms} ms`);
      const second = await timed(() => sql`select 1`.execute(db.db));
      assert.ok(second.err instanceof DependencyUnavailableError && second.err.circuitOpen, String(second.err));
      assert.ok(second.ms < 50, `${second.ms} ms`);
    } finally {
      await db.close();
    }
  });

  it("a silent server: given up on after DB_CONNECT_TIMEOUT_MS, later calls fail fast until the circuit's pause ends", async () => {
    const silent = await silentServer();
    const db = await openDatabase({
      url: `postgres://postgres@127.0.0.1:${silent.port}/none`,
      dataDir: "/nonexistent",
      env: { DB_CONNECT_TIMEOUT_MS: "300", DB_CIRCUIT_OPEN_MS: "2000" },
    });
    try {
      const first = await timed(() => sql`select 1`.execute(db.db));
      assert.ok(first.err instanceof DependencyUnavailableError, String(first.err));
      assert.ok(first.ms >= 250 && first.ms < 800, `${first.ms} ms`);
      const burst = await Promise.all(Array.from({ length: 20 }, () => timed(() => sql`select 1`.execute(db.db))));
      for (const r of burst) {
        assert.ok(r.err instanceof DependencyUnavailableError && r.err.circuitOpen, String(r.err));
        assert.ok(r.ms < 50, `${r.ms} ms`);
      }
      assert.equal(db.poolStats().waiting, 0, "nothing queued behind the dead pool");
    } finally {
      await db.close();
      await silent.close();
    }
  });
});

describe("outages: a busy pool", () => {
  it("no connection free within DB_CONNECT_TIMEOUT_MS: UNAVAILABLE for that call, the circuit stays closed", async () => {
    const db = await openDatabase({ url: await freshDatabaseUrl(), dataDir: "/nonexistent", max: 1, env: { DB_CONNECT_TIMEOUT_MS: "200" } });
    try {
      let release!: () => void;
      const held = db.db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx);
        await new Promise<void>((r) => (release = r));
      });
      await new Promise((r) => setTimeout(r, 50));
      const r = await timed(() => sql`select 1`.execute(db.db));
      assert.ok(r.err instanceof DependencyUnavailableError && r.err.reason === POOL_BUSY, String(r.err));
      assert.ok(r.ms >= 150 && r.ms < 600, `${r.ms} ms`);
      assert.equal(toConnectError(r.err, silentLogger, "t/R").code, Code.Unavailable);
      assert.equal(db.available?.(), true, "an overloaded pool is not an outage");
      release();
      await held;
      assert.equal((await sql<{ n: number }>`select 1 as n`.execute(db.db)).rows[0].n, 1);
    } finally {
      await db.close();
    }
  });
});

describe("outages: Redis client timeouts", () => {
  it("a silent server: a command gives up after REDIS_COMMAND_TIMEOUT_MS, the next ones fail fast", async () => {
    const silent = await silentServer();
    const kv = redisStore(`redis://127.0.0.1:${silent.port}`, { REDIS_COMMAND_TIMEOUT_MS: "300", REDIS_CIRCUIT_OPEN_MS: "2000" });
    try {
      const first = await timed(() => kv.get("k"));
      assert.ok(first.err instanceof DependencyUnavailableError && first.err.dependency === "redis", String(first.err));
      assert.ok(first.ms >= 250 && first.ms < 800, `${first.ms} ms`);
      const next = await Promise.all(Array.from({ length: 20 }, () => timed(() => kv.incr("k", 1, 1000))));
      for (const r of next) {
        assert.ok(r.err instanceof DependencyUnavailableError, String(r.err));
        assert.ok(r.ms < 50, `${r.ms} ms`);
      }
    } finally {
      kv.client.disconnect();
      await silent.close();
    }
  });
});
