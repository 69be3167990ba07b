// Interceptors and the HTTP span, in process with an in-memory exporter:
// W3C context in and out of metadata, the parent chain across a gRPC hop and
// an in-process hop, span names and rpc.* attributes, error status per the
// semantic conventions, RED metrics, and access-log lines that carry the
// trace and request ids.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { UserInternalService } from "../../gen/acme/user/v1/user_pb.js";
import { createLogger } from "../../platform/logger.js";
import { installLogContext } from "../../platform/telemetry/context.js";
import { metrics, METRIC } from "../../platform/telemetry/metrics.js";
import { installMemoryTracing, parentOf, type MemoryTracing } from "./support/memory-otel.js";
import { startTiny, type Tiny } from "./support/tiny.js";

const CHECK = "acme.user.v1.UserInternalService/CheckUser";
const MARK = "acme.order.v1.OrderInternalService/MarkOwnerDeleted";

function traceparent() {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

describe("observability: RPC and HTTP tracing, metrics, access log (in process)", () => {
  let otel: MemoryTracing;
  let tiny: Tiny;
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ service: "tiny" }, { write: (l) => lines.push(JSON.parse(l)), pretty: false, level: "debug" });

  before(async () => {
    otel = installMemoryTracing();
    installLogContext();
    tiny = await startTiny(log);
  });
  after(async () => {
    await tiny?.stop();
    await otel?.uninstall();
  });
  beforeEach(() => {
    otel.reset();
    lines.length = 0;
  });

  const grpcUsers = (headers: Record<string, string> = {}) =>
    createClient(UserInternalService, createGrpcTransport({ baseUrl: tiny.url, interceptors: [(next) => (req) => (Object.entries(headers).forEach(([k, v]) => req.header.set(k, v)), next(req))] }));

  /** Wait for the spans of a trace (the client call may return before the server span ends). */
  async function spansOf(traceId: string, n: number) {
    for (let i = 0; i < 100 && otel.trace(traceId).length < n; i++) await new Promise((r) => setTimeout(r, 10));
    return otel.trace(traceId);
  }

  it("continues the caller's traceparent: server -> client -> server, named package.Service/Method with rpc.* attributes", async () => {
    const tp = traceparent();
    const res = await grpcUsers({ traceparent: tp.header, "x-request-id": "req-123" }).checkUser({ userId: "u1" });
    assert.equal(res.exists, true);
    const spans = await spansOf(tp.traceId, 3);
    assert.equal(spans.length, 3, spans.map((s) => s.name).join(", "));
    const userServer = spans.find((s) => s.name === CHECK && s.kind === SpanKind.SERVER)!;
    const orderClient = spans.find((s) => s.name === MARK && s.kind === SpanKind.CLIENT)!;
    const orderServer = spans.find((s) => s.name === MARK && s.kind === SpanKind.SERVER)!;
    assert.ok(userServer && orderClient && orderServer);
    assert.equal(parentOf(userServer), tp.spanId, "server span's parent is the caller's span from traceparent");
    assert.equal(parentOf(orderClient), userServer.spanContext().spanId);
    assert.equal(parentOf(orderServer), orderClient.spanContext().spanId);
    assert.deepEqual(
      { ...userServer.attributes },
      { "rpc.system": "grpc", "rpc.service": "acme.user.v1.UserInternalService", "rpc.method": "CheckUser", "rpc.grpc.status_code": 0 },
    );
    assert.equal(orderClient.attributes["rpc.system"], "grpc");
    assert.equal(orderClient.attributes["rpc.service"], "acme.order.v1.OrderInternalService");
    assert.equal(orderClient.attributes["rpc.method"], "MarkOwnerDeleted");
    assert.equal(orderClient.attributes["server.address"], "127.0.0.1");
    assert.equal(orderClient.attributes["rpc.grpc.status_code"], 0);
    for (const s of spans) assert.equal(s.status.code, SpanStatusCode.UNSET);
  });

  it("writes one access-log line per RPC, and handler lines, with the trace id and the request id of the first hop", async () => {
    const tp = traceparent();
    await grpcUsers({ traceparent: tp.header, "x-request-id": "req-abc" }).checkUser({ userId: "u2" });
    await spansOf(tp.traceId, 3);
    const access = lines.filter((l) => l.msg === "rpc");
    assert.deepEqual(access.map((l) => l.rpc).sort(), [MARK, CHECK].sort());
    for (const l of access) {
      assert.equal(l.trace_id, tp.traceId);
      assert.equal(l.request_id, "req-abc", "the request id travels to the next service");
      assert.equal(l.code, "OK");
      assert.equal(l.grpc_code, 0);
      assert.equal(l.level, "info");
      assert.equal(typeof l.duration_ms, "number");
      assert.equal(l.service, "tiny");
      assert.match(String(l.time), /^\d{4}-\d\d-\d\dT/);
      assert.match(String(l.span_id), /^[0-9a-f]{16}$/);
    }
    const handler = lines.find((l) => l.msg === "checking user")!;
    assert.equal(handler.trace_id, tp.traceId, "a line logged by a handler carries the trace id");
    assert.equal(handler.request_id, "req-abc");
    assert.equal(handler.rpc, CHECK);
    assert.equal(handler.email, "a***@example.com");
    assert.ok(!("password" in handler) && !("accessToken" in handler));
    const marking = lines.find((l) => l.msg === "marking orders")!;
    assert.equal(marking.trace_id, tp.traceId);
    assert.equal(marking.rpc, MARK);
    assert.ok(!JSON.stringify(lines).includes("hunter2") && !JSON.stringify(lines).includes("eyJ.secret"));
  });

  it("starts a new trace without traceparent and makes up a request id", async () => {
    await grpcUsers().checkUser({ userId: "u3" });
    const server = otel.spans().find((s) => s.name === CHECK && s.kind === SpanKind.SERVER)!;
    assert.equal(parentOf(server), undefined);
    const access = lines.filter((l) => l.msg === "rpc");
    assert.equal(new Set(access.map((l) => l.request_id)).size, 1);
    assert.match(String(access[0].request_id), /^[0-9a-f-]{36}$/);
  });

  it("records a client-side failure as an error with an exception event; NOT_FOUND on a server span is not a server fault", async () => {
    const tp = traceparent();
    await assert.rejects(grpcUsers({ traceparent: tp.header }).checkUser({ userId: "missing" }), (e) => ConnectError.from(e).code === Code.NotFound);
    const spans = await spansOf(tp.traceId, 3);
    const orderServer = spans.find((s) => s.name === MARK && s.kind === SpanKind.SERVER)!;
    const orderClient = spans.find((s) => s.name === MARK && s.kind === SpanKind.CLIENT)!;
    const userServer = spans.find((s) => s.name === CHECK && s.kind === SpanKind.SERVER)!;
    assert.equal(orderServer.attributes["rpc.grpc.status_code"], Code.NotFound);
    assert.equal(orderServer.status.code, SpanStatusCode.UNSET);
    assert.equal(orderClient.attributes["rpc.grpc.status_code"], Code.NotFound);
    assert.equal(orderClient.status.code, SpanStatusCode.ERROR);
    assert.equal(orderClient.status.message, "no such user");
    const ev = orderClient.events.find((e) => e.name === "exception")!;
    assert.ok(ev, "exception event on the failed client span");
    assert.equal(ev.attributes?.["exception.message"], "no such user");
    assert.equal(userServer.attributes["rpc.grpc.status_code"], Code.NotFound);
    const access = lines.filter((l) => l.msg === "rpc");
    assert.ok(access.every((l) => l.code === "NotFound" && l.grpc_code === 5));
  });

  it("marks a server fault (INTERNAL) as an error on the server span, with an exception event", async () => {
    const tp = traceparent();
    await assert.rejects(grpcUsers({ traceparent: tp.header }).checkUser({ userId: "boom" }), (e) => ConnectError.from(e).code === Code.Internal);
    const spans = await spansOf(tp.traceId, 3);
    for (const s of spans) {
      assert.equal(s.attributes["rpc.grpc.status_code"], Code.Internal, s.name);
      assert.equal(s.status.code, SpanStatusCode.ERROR, `${s.name} ${s.kind}`);
      assert.ok(s.events.some((e) => e.name === "exception"), `${s.name} has an exception event`);
    }
    const warn = lines.filter((l) => l.msg === "rpc" && l.level === "warn");
    assert.equal(warn.length, 2, "server faults are logged at warn");
    assert.ok(!JSON.stringify(lines.filter((l) => l.msg === "rpc")).includes("relation"), "no internal error text in access lines");
  });

  it("says connect_rpc for the Connect protocol, with its error code", async () => {
    const tp = traceparent();
    const users = createClient(
      UserInternalService,
      createConnectTransport({ baseUrl: tiny.url, httpVersion: "1.1", interceptors: [(next) => (req) => (req.header.set("traceparent", tp.header), next(req))] }),
    );
    await assert.rejects(users.checkUser({ userId: "missing" }));
    const spans = await spansOf(tp.traceId, 3);
    const s = spans.find((x) => x.name === CHECK)!;
    assert.equal(s.attributes["rpc.system"], "connect_rpc");
    assert.equal(s.attributes["rpc.connect_rpc.error_code"], "not_found");
  });

  it("HTTP (edge) requests continue an incoming traceparent; the in-process call is the edge span's child even though the client's traceparent was forwarded", async () => {
    const tp = traceparent();
    const r = await fetch(`${tiny.url}/v1/check/u4`, { headers: { traceparent: tp.header, "x-request-id": "edge-req-1" } });
    assert.equal(r.status, 200);
    const spans = await spansOf(tp.traceId, 4);
    const edge = spans.find((s) => s.kind === SpanKind.SERVER && s.attributes["http.request.method"] === "GET")!;
    assert.ok(edge, spans.map((s) => s.name).join(", "));
    assert.equal(parentOf(edge), tp.spanId);
    assert.equal(edge.name, `GET ${CHECK}`, "named after the RPC it was transcoded to");
    assert.equal(edge.attributes["http.response.status_code"], 200);
    assert.equal(edge.attributes["url.path"], "/v1/check/u4");
    const userServer = spans.find((s) => s.name === CHECK && s.kind === SpanKind.SERVER)!;
    assert.equal(userServer.attributes["rpc.system"], "connect_rpc", "in-process router transport");
    assert.equal(parentOf(userServer), edge.spanContext().spanId, "edge -> service server span, no forwarded-traceparent shortcut");
    const orderClient = spans.find((s) => s.name === MARK && s.kind === SpanKind.CLIENT)!;
    assert.equal(parentOf(orderClient), userServer.spanContext().spanId);
    const http = lines.find((l) => l.msg === "http")!;
    assert.equal(http.trace_id, tp.traceId);
    assert.equal(http.request_id, "edge-req-1");
    assert.equal(http.status, 200);
    assert.equal(http.route, CHECK);
    assert.ok(lines.filter((l) => l.msg === "rpc").every((l) => l.request_id === "edge-req-1"));
  });

  it("HTTP requests without traceparent start a trace; a 5xx is an error", async () => {
    const r = await fetch(`${tiny.url}/v1/check/boom`);
    assert.equal(r.status, 500);
    await new Promise((res) => setTimeout(res, 50));
    const edge = otel.spans().find((s) => s.kind === SpanKind.SERVER && s.attributes["http.request.method"] === "GET")!;
    assert.equal(parentOf(edge), undefined);
    assert.equal(edge.status.code, SpanStatusCode.ERROR);
    assert.equal(edge.attributes["http.response.status_code"], 500);
    const server = otel.trace(edge.spanContext().traceId).find((s) => s.name === CHECK)!;
    assert.equal(parentOf(server), edge.spanContext().spanId);
  });

  it("counts RPCs by code and observes latency (RED), visible at /metrics", async () => {
    const handled = async (method: string, code: string) => (await metrics.value(METRIC.rpcServerHandled, { grpc_service: "acme.order.v1.OrderInternalService", grpc_method: method, grpc_type: "unary", grpc_code: code })) ?? 0;
    const ok0 = await handled("MarkOwnerDeleted", "OK");
    const nf0 = await handled("MarkOwnerDeleted", "NotFound");
    const lat0 = (await metrics.value(METRIC.rpcServerSeconds, { grpc_service: "acme.order.v1.OrderInternalService", grpc_method: "MarkOwnerDeleted", grpc_type: "unary" })) ?? 0;
    await grpcUsers().checkUser({ userId: "u5" });
    await grpcUsers().checkUser({ userId: "u6" });
    await assert.rejects(grpcUsers().checkUser({ userId: "missing" }));
    assert.equal((await handled("MarkOwnerDeleted", "OK")) - ok0, 2);
    assert.equal((await handled("MarkOwnerDeleted", "NotFound")) - nf0, 1);
    assert.equal(((await metrics.value(METRIC.rpcServerSeconds, { grpc_service: "acme.order.v1.OrderInternalService", grpc_method: "MarkOwnerDeleted", grpc_type: "unary" })) ?? 0) - lat0, 3);
    const text = await (await fetch(`${tiny.url}/metrics`)).text();
    assert.match(text, /# TYPE grpc_server_handled_total counter/);
    assert.match(text, /grpc_server_handled_total\{grpc_code="NotFound",grpc_method="MarkOwnerDeleted",grpc_service="acme\.order\.v1\.OrderInternalService",grpc_type="unary"\} \d+/);
    assert.match(text, /grpc_server_handling_seconds_bucket\{le="\+Inf",grpc_method="MarkOwnerDeleted",grpc_service="acme\.order\.v1\.OrderInternalService",grpc_type="unary"\} \d+/);
    assert.match(text, /grpc_client_handled_total\{grpc_code="OK",grpc_method="MarkOwnerDeleted"/);
    assert.match(text, /acme_http_server_requests_total\{method="GET",route="acme\.user\.v1\.UserInternalService\/CheckUser",status="200"\} \d+/);
    assert.match(text, /grpc_server_in_flight\{grpc_method="MarkOwnerDeleted",grpc_service="acme\.order\.v1\.OrderInternalService"\} 0/);
  });

  it("with tracing off (no SDK): no spans and no trace ids, but metrics, request ids and access lines remain", async () => {
    await otel.uninstall();
    try {
      const before = await metrics.sum(METRIC.rpcServerHandled, { grpc_method: "CheckUser" });
      await grpcUsers({ "x-request-id": "off-1" }).checkUser({ userId: "u7" });
      assert.equal((await metrics.sum(METRIC.rpcServerHandled, { grpc_method: "CheckUser" })) - before, 1);
      assert.equal(otel.spans().length, 0);
      const access = lines.filter((l) => l.msg === "rpc");
      assert.equal(access.length, 2);
      for (const l of access) {
        assert.equal(l.trace_id, undefined);
        assert.equal(l.request_id, "off-1");
      }
      const r = await fetch(`${tiny.url}/v1/check/u8`);
      assert.equal(r.status, 200);
      const http = lines.find((l) => l.msg === "http")!;
      assert.equal(http.route, CHECK, "edge metrics label does not depend on tracing");
    } finally {
      otel = installMemoryTracing();
    }
  });
});
