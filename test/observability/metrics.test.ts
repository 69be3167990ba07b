// The metrics facade over prom-client (families declared on first use, series
// bounded), the counter API the auth service and rate limiters call, and
// /metrics on the operator's listener (in process).
import assert from "node:assert/strict";
import { MetricsRegistry, METRIC, metrics } from "../../platform/telemetry/metrics.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { sample } from "./support/prom.js";

describe("observability: metrics registry and /metrics", () => {
  it("renders counters, gauges and cumulative histograms in the text format", async () => {
    const r = new MetricsRegistry();
    r.describe("jobs_total", "counter", "Jobs done.");
    r.counter("jobs_total", { kind: "a" });
    r.counter("jobs_total", { kind: "a" }, 2);
    r.counter("jobs_total", { kind: "b" });
    r.gauge("queue_depth", {}, 7);
    r.describe("wait_seconds", "histogram", "Wait.", [0.1, 1]);
    for (const v of [0.05, 0.5, 0.5, 3]) r.observe("wait_seconds", { q: "x" }, v);
    const text = await r.render();
    assert.equal(
      text,
      [
        "# HELP jobs_total Jobs done.",
        "# TYPE jobs_total counter",
        'jobs_total{kind="a"} 3',
        'jobs_total{kind="b"} 1',
        "",
        "# HELP queue_depth queue_depth",
        "# TYPE queue_depth gauge",
        "queue_depth 7",
        "",
        "# HELP wait_seconds Wait.",
        "# TYPE wait_seconds histogram",
        'wait_seconds_bucket{le="0.1",q="x"} 1',
        'wait_seconds_bucket{le="1",q="x"} 3',
        'wait_seconds_bucket{le="+Inf",q="x"} 4',
        'wait_seconds_sum{q="x"} 4.05',
        'wait_seconds_count{q="x"} 4',
        "",
      ].join("\n"),
    );
  });

  it("escapes label values and sanitises names; counters never go down", async () => {
    const r = new MetricsRegistry();
    r.counter("bad-name.total", { "odd-label": 'a"b\\c\nd' });
    r.counter("bad-name.total", { "odd-label": 'a"b\\c\nd' }, -5);
    assert.match(await r.render(), /^bad_name_total\{odd_label="a\\"b\\\\c\\nd"\} 1$/m);
  });

  it("caps the series of a family and counts what it dropped, and drops a call with another label set", async () => {
    const r = new MetricsRegistry();
    for (let i = 0; i < 2100; i++) r.counter("per_user_total", { user: String(i) });
    assert.equal(await r.sum("per_user_total"), 2000);
    assert.equal(await r.value(METRIC.droppedSeries, { metric: "per_user_total" }), 100);
    r.counter("per_user_total", { user: "1", extra: "x" });
    assert.equal(await r.value(METRIC.droppedSeries, { metric: "per_user_total" }), 101);
    assert.equal(await r.sum("per_user_total"), 2000);
  });

  it("collectors set gauges at scrape time and can be removed; a failing one does not break the scrape", async () => {
    const r = new MetricsRegistry();
    let n = 1;
    const off = r.collect(() => r.gauge("pool", {}, n++));
    r.collect(() => {
      throw new Error("broken");
    });
    assert.match(await r.render(), /^pool 1$/m);
    assert.match(await r.render(), /^pool 2$/m);
    off();
    assert.match(await r.render(), /^pool 2$/m);
  });

  it("has the security counters the auth service and the rate limiters call, with help text", async () => {
    const r = new MetricsRegistry();
    r.counter(METRIC.loginFailures);
    r.counter(METRIC.lockouts, { scope: "account" });
    r.counter(METRIC.rateLimitRejections, { source: "edge", descriptor: "login" });
    const text = await r.render();
    assert.match(text, /# HELP acme_auth_login_failures_total Failed logins \(no reason[^\n]*\n# TYPE acme_auth_login_failures_total counter\nacme_auth_login_failures_total 1/);
    assert.match(text, /acme_auth_lockouts_total\{scope="account"\} 1/);
    assert.match(text, /acme_ratelimit_rejections_total\{descriptor="login",source="edge"\} 1/);
  });

  describe("on the product's port", () => {
    let t: TestSystem;
    before(async () => (t = await startTestSystem()));
    after(async () => t?.stop());

    const metricsUrl = () => `${t.system.metricsUrl}/metrics`;

    it("GET /metrics answers on the operator's listener without any OTLP endpoint, with RPC counters that move and the pool gauges", async () => {
      const before = await (await fetch(metricsUrl())).text();
      await assert.rejects(t.usersInternal().checkUser({ userId: "x" })); // no service token
      const res = await fetch(metricsUrl());
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const after = await res.text();
      const labels = { grpc_service: "acme.user.v1.UserInternalService", grpc_method: "CheckUser", grpc_type: "unary", grpc_code: "Unauthenticated" };
      assert.equal(sample(after, "grpc_server_handled_total", labels) - sample(before, "grpc_server_handled_total", labels), 1);
      assert.ok(sample(after, "acme_db_pool_connections", { db: "postgres" }) >= 1);
      assert.match(after, /^process_resident_memory_bytes \d+/m);
    });

    it("counts tokens the auth interceptor refuses, by reason", async () => {
      const before = await metrics.sum(METRIC.tokenRejections);
      await assert.rejects(t.usersInternal("not-a-jwt").checkUser({ userId: "x" }));
      assert.equal((await metrics.sum(METRIC.tokenRejections)) - before, 1);
    });

    it("does not tell an unknown email from a wrong password: both failed logins look the same in /metrics", async () => {
      const email = `metrics-${Date.now()}@example.com`;
      await t.auth().register({ email, password: "metrics-password-1", name: "Metrics" });
      const scrape = async () => (await (await fetch(metricsUrl())).text()).split("\n").filter((l) => l.startsWith("acme_auth_login_failures_total"));
      const s0 = await scrape();
      await assert.rejects(t.auth().login({ email, password: "wrong-password-1" }));
      const s1 = await scrape();
      await assert.rejects(t.auth().login({ email: `nobody-${email}`, password: "wrong-password-1" }));
      const s2 = await scrape();
      const series = (s: string[]) => s.map((l) => l.replace(/ \d+$/, ""));
      assert.deepEqual(series(s1), series(s2), "the same series after either failure");
      assert.deepEqual(series(s2), ["acme_auth_login_failures_total"]);
      const value = (s: string[]) => Number(s[0]?.split(" ")[1] ?? 0);
      assert.equal(value(s1) - value(s0), 1);
      assert.equal(value(s2) - value(s1), 1);
    });

    it("rejects other methods on /metrics", async () => {
      const res = await fetch(metricsUrl(), { method: "POST" });
      assert.equal(res.status, 405);
    });

    it("serves no /metrics on the public port, and binds the metrics listener to loopback", async () => {
      for (const method of ["GET", "HEAD"]) {
        const res = await fetch(`${t.url}/metrics`, { method });
        assert.equal(res.status, 404, method);
        const body = method === "GET" ? await res.text() : "";
        assert.doesNotMatch(body, /grpc_server_handled_total|acme_auth_login_failures_total/);
      }
      assert.match(t.system.metricsUrl ?? "", /^http:\/\/127\.0\.0\.1:\d+$/);
    });
  });
});
