// Issue 6, end to end, as production runs it: `app/main.ts` (all
// services + embedded edge, real Postgres and Redis) in a child process with
// the telemetry preload, exporting OTLP/HTTP protobuf to a receiver in this
// process. Register and create an order through the edge's REST API, then
// check the one trace (edge -> order server -> user client -> user server ->
// pg, plus Redis), a failing call recorded as an error, /metrics moving, the
// access-log lines carrying the trace id, and /health.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import pg from "pg";
import { SERVICE_NAMES } from "../../app/services.js";
import { SCHEMA as USER_SCHEMA } from "../../services/user/migrations.js";
import { freshDatabaseUrl, freshRedisUrl } from "../support/fresh.js";
import { tokenFromMail } from "../support/mail-token.js";
import { startProduct, type RunningProduct } from "./support/child.js";
import { sample } from "./support/prom.js";
import { renderTree, SpanKind, StatusCode, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "./support/otlp.js";

const CREATE = "acme.order.v1.OrderService/CreateOrder";
const CHECK = "acme.user.v1.UserInternalService/CheckUser";

describe("observability: one trace per request across edge, services, Postgres and Redis (child process, OTLP)", function () {
  let otlp: OtlpReceiver;
  let app: RunningProduct;
  let dataDir: string;
  let dbUrl: string;
  let token = "";
  let productId = "";
  const email = `obs-${randomBytes(4).toString("hex")}@example.com`;
  const password = "correct horse battery staple";

  before(async function () {
    otlp = await startOtlpReceiver();
    dataDir = mkdtempSync(join(tmpdir(), "acme-obs-"));
    dbUrl = await freshDatabaseUrl();
    app = await startProduct([], {
      DATABASE_URL: dbUrl,
      REDIS_URL: await freshRedisUrl(),
      DATA_DIR: dataDir,
      BCRYPT_COST: "10",
      LOG_LEVEL: "info",
      SHUTDOWN_GRACE_MS: "2000",
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_BSP_SCHEDULE_DELAY: "100",
    });
  });
  after(async () => {
    await app?.stop();
    await otlp?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const metricsText = async () => (await fetch(`${app.metricsUrl()}/metrics`)).text();
  const traceOf = (traceId: string) => otlp.spans.filter((s) => s.traceId === traceId);
  const byId = (spans: ReceivedSpan[]) => new Map(spans.map((s) => [s.spanId, s]));

  it("registers through the edge (a new trace: no traceparent sent)", async () => {
    const r = await fetch(`${app.url}/v1/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password, name: "Obs" }),
    });
    assert.equal(r.status, 200, await r.clone().text());
    // The address is verified from the mailed link (npm start's .eml files), as a user would: orders need it.
    const v = await fetch(`${app.url}/v1/auth/email/verify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: await tokenFromMail({ dataDir }, email, "verify-email") }),
    });
    assert.equal(v.status, 200, await v.clone().text());
    const l = await fetch(`${app.url}/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password }) });
    token = (await l.json()).tokens.accessToken;
    assert.ok(token);
    // A product to order (as an admin would add it; written straight into the catalogue's table here).
    productId = randomUUID();
    const db = new pg.Client(dbUrl);
    await db.connect();
    await db.query("insert into catalogue.products (id, sku, name, price_minor, currency, stock) values ($1, $2, 'Widget', 150, 'EUR', 1000)", [productId, `OBS-${randomBytes(3).toString("hex").toUpperCase()}`]);
    await db.end();
    const spans = await otlp.waitFor((s) => s.some((x) => x.kind === SpanKind.SERVER && x.attributes["http.request.method"] === "POST" && x.attributes["url.path"] === "/v1/auth/register"));
    const edge = spans.find((x) => x.attributes["url.path"] === "/v1/auth/register")!;
    assert.equal(edge.parentSpanId, "", "root span: the edge started the trace");
    assert.equal(edge.service, "acme");
  });

  it("create order: one trace, edge -> order (server) -> user (client -> server) -> pg, with Redis, rpc attributes, logs and metrics", async () => {
    const before = await metricsText();
    const traceId = randomBytes(16).toString("hex");
    const callerSpan = randomBytes(8).toString("hex");
    const r = await fetch(`${app.url}/v1/orders`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${callerSpan}-01` },
      body: JSON.stringify({ lines: [{ productId, quantity: 2 }], requestId: randomBytes(6).toString("hex") }),
    });
    assert.equal(r.status, 200, await r.clone().text());
    const requestId = r.headers.get("x-request-id");
    assert.ok(requestId);

    await otlp.waitFor(() => traceOf(traceId).some((s) => s.kind === SpanKind.SERVER && s.attributes["http.request.method"] === "POST"));
    await new Promise((res) => setTimeout(res, 300)); // stragglers of the same batch
    const spans = traceOf(traceId);
    const tree = renderTree(spans);
    if (process.env.ACME_SHOW_TRACE) console.log(tree);
    const ids = byId(spans);

    // Everything this request caused is in this trace, and only here.
    const elsewhere = otlp.spans.filter((s) => s.traceId !== traceId && (s.name === CREATE || s.attributes["url.path"] === "/v1/orders"));
    assert.deepEqual(elsewhere.map((s) => s.name), [], "CreateOrder spans outside the request's trace");

    const edge = spans.find((s) => s.kind === SpanKind.SERVER && s.attributes["http.request.method"] === "POST")!;
    assert.equal(edge.parentSpanId, callerSpan, `the edge continues the incoming traceparent\n${tree}`);
    assert.equal(edge.attributes["http.response.status_code"], 200);
    assert.equal(edge.attributes["url.path"], "/v1/orders");

    const orderServer = spans.find((s) => s.name === CREATE && s.kind === SpanKind.SERVER)!;
    assert.ok(orderServer, tree);
    assert.equal(orderServer.parentSpanId, edge.spanId, `order server span is the edge span's child\n${tree}`);
    assert.equal(orderServer.attributes["rpc.service"], "acme.order.v1.OrderService");
    assert.equal(orderServer.attributes["rpc.method"], "CreateOrder");
    assert.ok(["grpc", "connect_rpc"].includes(String(orderServer.attributes["rpc.system"])));
    assert.equal(orderServer.attributes["rpc.grpc.status_code"], 0);

    const userClient = spans.find((s) => s.name === CHECK && s.kind === SpanKind.CLIENT)!;
    assert.ok(userClient, tree);
    assert.equal(userClient.parentSpanId, orderServer.spanId, `user client span under the order server span\n${tree}`);
    assert.equal(userClient.attributes["rpc.system"], "grpc");
    assert.equal(userClient.attributes["rpc.grpc.status_code"], 0);

    const userServer = spans.find((s) => s.name === CHECK && s.kind === SpanKind.SERVER)!;
    assert.ok(userServer, tree);
    assert.equal(userServer.parentSpanId, userClient.spanId, `user server span under the client span\n${tree}`);
    // In the all-in-one process the order service calls the user service in process (connect_rpc);
    // split into services (compose) the same call goes over gRPC.
    assert.ok(["grpc", "connect_rpc"].includes(String(userServer.attributes["rpc.system"])));
    assert.equal(userServer.attributes["rpc.service"], "acme.user.v1.UserInternalService");
    assert.equal(userServer.attributes["rpc.method"], "CheckUser");

    const userPg = spans.filter((s) => s.parentSpanId === userServer.spanId && s.name.startsWith("pg.query:"));
    assert.ok(userPg.length >= 1, `a pg span under the user server span\n${tree}`);
    assert.equal(userPg[0].kind, SpanKind.CLIENT);
    assert.match(String(userPg[0].attributes["db.query.text"] ?? userPg[0].attributes["db.statement"]), /users/);

    const orderPg = spans.filter((s) => s.parentSpanId === orderServer.spanId && s.name.startsWith("pg.query:"));
    assert.ok(orderPg.some((s) => /^pg\.query:INSERT/.test(s.name)), `the order insert is traced under the order server span\n${tree}`);

    const redis = spans.filter((s) => s.scope === "@opentelemetry/instrumentation-ioredis");
    assert.ok(redis.length >= 1, `Redis commands of the request are in the trace\n${tree}`);
    for (const s of redis) assert.ok(ids.has(s.parentSpanId), "redis span has a parent in the trace");

    // No span of the trace is an orphan (every parent is in the trace, or is the caller's span).
    for (const s of spans) assert.ok(s.parentSpanId === callerSpan || ids.has(s.parentSpanId), `orphan ${s.name}\n${tree}`);
    // No secrets in attributes.
    const attrs = JSON.stringify(spans.map((s) => s.attributes));
    assert.ok(!attrs.includes(token) && !attrs.includes(password) && !attrs.includes(email), "a secret or an email in span attributes");

    // Logs: the access lines of this request carry its trace id and request id.
    await new Promise((res) => setTimeout(res, 100));
    const logs = app.logs();
    const access = logs.filter((l) => l.trace_id === traceId);
    const create = access.find((l) => l.msg === "rpc" && l.rpc === CREATE);
    assert.ok(create, `access line for CreateOrder with the trace id; lines:\n${app.lines.slice(-20).join("\n")}`);
    assert.equal(create.code, "OK");
    assert.equal(create.request_id, requestId);
    assert.equal(create.level, "info");
    assert.equal(create.service, "acme");
    assert.equal(typeof create.duration_ms, "number");
    const check = access.find((l) => l.msg === "rpc" && l.rpc === CHECK);
    assert.ok(check, "the user service's access line is in the same trace");
    assert.equal(check.request_id, requestId, "the request id travels to the user service");
    const http = access.find((l) => l.msg === "http");
    assert.ok(http && http.status === 200 && http.method === "POST");
    assert.ok(!JSON.stringify(logs).includes(token) && !JSON.stringify(logs).includes(password), "secrets in logs");
    assert.ok(!JSON.stringify(logs).includes(email), "a full email in logs");

    // Metrics moved.
    const after = await metricsText();
    const created = { grpc_service: "acme.order.v1.OrderService", grpc_method: "CreateOrder", grpc_type: "unary", grpc_code: "OK" };
    assert.equal(sample(after, "grpc_server_handled_total", created) - sample(before, "grpc_server_handled_total", created), 1);
    const checked = { grpc_service: "acme.user.v1.UserInternalService", grpc_method: "CheckUser", grpc_type: "unary", grpc_code: "OK" };
    assert.equal(sample(after, "grpc_server_handled_total", checked) - sample(before, "grpc_server_handled_total", checked), 1);
    assert.equal(sample(after, "grpc_client_handled_total", checked) - sample(before, "grpc_client_handled_total", checked), 1);
    const lat = { grpc_service: "acme.order.v1.OrderService", grpc_method: "CreateOrder", grpc_type: "unary" };
    assert.equal(sample(after, "grpc_server_handling_seconds_count", lat) - sample(before, "grpc_server_handling_seconds_count", lat), 1);
    const httpReq = { method: "POST", route: String(edge.attributes["http.route"] ?? CREATE), status: "200" };
    assert.equal(sample(after, "acme_http_server_requests_total", httpReq) - sample(before, "acme_http_server_requests_total", httpReq), 1);
    assert.ok(sample(after, "acme_db_pool_connections", { db: "postgres" }) >= 1, "pool gauge");
    assert.match(after, /# TYPE acme_db_pool_waiting_clients gauge/);
  });

  it("reports every service and dependency at GET /health", async () => {
    const r = await fetch(`${app.url}/health`);
    assert.equal(r.status, 200);
    const h = await r.json();
    assert.equal(h.status, "up");
    assert.deepEqual(Object.keys(h.services).sort(), [...SERVICE_NAMES].sort());
    assert.equal(h.dependencies.postgres.status, "up");
    assert.equal(h.dependencies.postgres.kind, "postgres");
    assert.equal(h.dependencies.redis.status, "up");
    assert.equal(h.dependencies.redis.kind, "redis");
    assert.equal(typeof h.dependencies.redis.latency_ms, "number");
    // No AMQP_URL: the in-process bus stands in for the broker.
    assert.equal(h.dependencies.broker.status, "up");
    assert.equal(h.dependencies.broker.kind, "memory");
    assert.equal(typeof h.dependencies.broker.latency_ms, "number");
    for (const [name, s] of Object.entries(h.services) as [string, { status: string; dependencies: object; outbox_lag_ms?: number }][]) {
      assert.equal(s.status, "up", name);
      assert.ok("postgres" in s.dependencies && "redis" in s.dependencies, name);
      // The services that publish events (auth, order, catalogue) report their outbox's lag; the others have no outbox.
      if (name === "auth" || name === "order" || name === "catalogue") assert.ok(typeof s.outbox_lag_ms === "number" && s.outbox_lag_ms >= 0, `${name} outbox_lag_ms: ${s.outbox_lag_ms}`);
      else assert.equal(s.outbox_lag_ms, undefined, `${name} has no outbox`);
    }
  });

  it("records a failing call as an error: the user service's table is gone, the chain fails with INTERNAL", async () => {
    const before = await metricsText();
    const admin = new pg.Client(dbUrl);
    await admin.connect();
    await admin.query(`alter schema ${USER_SCHEMA} rename to ${USER_SCHEMA}_gone`);
    try {
      const traceId = randomBytes(16).toString("hex");
      const r = await fetch(`${app.url}/v1/orders`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` },
        body: JSON.stringify({ lines: [{ productId, quantity: 1 }], requestId: randomBytes(6).toString("hex") }),
      });
      assert.equal(r.status, 500);
      await otlp.waitFor(() => traceOf(traceId).some((s) => s.kind === SpanKind.SERVER && s.attributes["http.request.method"] === "POST"));
      await new Promise((res) => setTimeout(res, 300));
      const spans = traceOf(traceId);
      const tree = renderTree(spans);
      if (process.env.ACME_SHOW_TRACE) console.log(tree);

      const failedPg = spans.find((s) => s.name.startsWith("pg.query:") && s.status.code === StatusCode.ERROR);
      assert.ok(failedPg, `the failed query is an error span\n${tree}`);
      const userServer = spans.find((s) => s.name === CHECK && s.kind === SpanKind.SERVER)!;
      assert.equal(failedPg.parentSpanId, userServer.spanId);
      assert.equal(userServer.status.code, StatusCode.ERROR, tree);
      assert.equal(userServer.attributes["rpc.grpc.status_code"], 13);
      assert.ok(userServer.events.some((e) => e.name === "exception"), "exception event on the user server span");
      const userClient = spans.find((s) => s.name === CHECK && s.kind === SpanKind.CLIENT)!;
      assert.equal(userClient.status.code, StatusCode.ERROR);
      assert.equal(userClient.attributes["rpc.grpc.status_code"], 13);
      assert.ok(userClient.events.some((e) => e.name === "exception"));
      const orderServer = spans.find((s) => s.name === CREATE && s.kind === SpanKind.SERVER)!;
      assert.equal(orderServer.status.code, StatusCode.ERROR);
      assert.equal(orderServer.attributes["rpc.grpc.status_code"], 13);
      const edge = spans.find((s) => s.kind === SpanKind.SERVER && s.attributes["http.request.method"] === "POST")!;
      assert.equal(edge.status.code, StatusCode.ERROR);
      assert.equal(edge.attributes["http.response.status_code"], 500);

      const after = await metricsText();
      const failed = { grpc_service: "acme.user.v1.UserInternalService", grpc_method: "CheckUser", grpc_type: "unary", grpc_code: "Internal" };
      assert.equal(sample(after, "grpc_server_handled_total", failed) - sample(before, "grpc_server_handled_total", failed), 1);
      const line = app.logs().find((l) => l.trace_id === traceId && l.msg === "rpc" && l.rpc === CHECK);
      assert.ok(line && line.code === "Internal" && line.level === "warn", "access line of the failed call");
    } finally {
      await admin.query(`alter schema ${USER_SCHEMA}_gone rename to ${USER_SCHEMA}`);
      await admin.end();
    }
  });

  it("flushes buffered spans on SIGTERM and exits cleanly", async () => {
    const r = await fetch(`${app.url}/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password }),
    });
    assert.ok(r.status < 500);
    const n = otlp.spans.length;
    const code = await app.stop();
    assert.equal(code, 0, app.stderr());
    assert.ok(otlp.spans.length > n || otlp.spans.some((s) => s.attributes["url.path"] === "/v1/auth/login"), "the login's spans were exported");
    assert.deepEqual(otlp.other, [], "only traces are sent to the OTLP endpoint");
    const everything = JSON.stringify(otlp.spans.map((s) => [s.name, s.attributes, s.events]));
    assert.ok(!everything.includes(email) && !everything.includes(password) && !everything.includes(token), "an email or a secret in the exported spans");
    const logs = app.lines.join("\n");
    assert.ok(!logs.includes(email) && !logs.includes(password) && !logs.includes(token), "an email or a secret in the logs");
    assert.equal(app.stderr().trim(), "", "no noise on stderr");
  });
});
