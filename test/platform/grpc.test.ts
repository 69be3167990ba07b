// The unary gRPC path of platform/server.ts (platform/grpc.ts + rpc.ts): the
// same interceptors, context and wire answers as connect, and everything it
// does not take (compressed requests, streaming, other protocols) still
// served by connect on the same port.
import { strict as assert } from "node:assert";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { HealthState, registerHealth } from "../../platform/health.js";
import { silentLogger } from "../../platform/logger.js";
import { contextValuesFor, peerAddressKey } from "../../platform/request.js";
import { localTransport } from "../../platform/local-transport.js";
import { startServer, type RunningServer } from "../../platform/server.js";

describe("platform: unary gRPC path and in-process transport", () => {
  let server: RunningServer;
  const seen: { protocol?: string; timeoutMs?: number; header?: string; peer?: string }[] = [];
  let cancelled: ((reason: unknown) => void) | undefined;
  const state = new HealthState();
  state.set("svc", Status.SERVING);

  // Check answers from the context: a deadline gives SERVING, none NOT_SERVING.
  const routes = (r: Parameters<typeof registerHealth>[0]) => {
    registerHealth(r, state);
    r.rpc(Health.method.check, (req, ctx) => {
      seen.push({ protocol: ctx.protocolName, timeoutMs: ctx.timeoutMs(), header: ctx.requestHeader.get("x-test") ?? undefined, peer: ctx.values.get(peerAddressKey) });
      if (req.service === "wait") {
        // Answers only when the call is cancelled (then nobody reads the answer).
        return new Promise((resolve) => ctx.signal.addEventListener("abort", () => (cancelled?.(ctx.signal.reason), resolve({}))));
      }
      if (req.service === "boom") throw new ConnectError("boom", Code.FailedPrecondition, { "x-detail": "d" });
      if (req.service === "crash") throw new Error("secret");
      ctx.responseHeader.set("x-from-handler", "h");
      ctx.responseTrailer.set("x-trailer", "t");
      return { status: ctx.timeoutMs() === undefined ? Status.NOT_SERVING : Status.SERVING };
    });
  };
  const tag: Interceptor = (next) => async (req) => {
    try {
      const res = await next(req);
      res.header.set("x-interceptor", req.method.name);
      return res;
    } catch (err) {
      const e = ConnectError.from(err);
      e.metadata.set("x-interceptor", "error");
      throw e.code === Code.Unknown ? new ConnectError("internal error", Code.Internal, e.metadata) : e;
    }
  };

  before(async () => {
    server = await startServer({ port: 0, host: "127.0.0.1", routes, interceptors: [tag], contextValues: contextValuesFor, log: silentLogger });
  });
  after(async () => server?.close(100));
  beforeEach(() => (seen.length = 0));

  const failure = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
  const grpc = (opts: Partial<Parameters<typeof createGrpcTransport>[0]> = {}) =>
    createClient(Health, createGrpcTransport({ baseUrl: server.url.replace("localhost", "127.0.0.1"), ...opts }));

  it("runs the interceptors and the handler with a gRPC context, deadline and headers, and sends headers and trailers", async () => {
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const res = await grpc().check({ service: "x" }, { timeoutMs: 5000, headers: { "x-test": "1" }, onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) });
    assert.equal(res.status, Status.SERVING);
    assert.equal(seen[0].protocol, "grpc");
    assert.ok(seen[0].timeoutMs! > 4000 && seen[0].timeoutMs! <= 5000);
    assert.equal(seen[0].header, "1");
    assert.equal(seen[0].peer, "127.0.0.1", "the connection's peer address is in the context values");
    assert.equal(header?.get("x-from-handler"), "h");
    assert.equal(header?.get("x-interceptor"), "Check");
    assert.equal(trailer?.get("x-trailer"), "t");
    assert.equal((await grpc().check({ service: "x" })).status, Status.NOT_SERVING, "no deadline");
  });

  it("answers errors with their code, message and metadata; other errors stay INTERNAL", async () => {
    const err = await failure(grpc().check({ service: "boom" }));
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, Code.FailedPrecondition);
    assert.equal(err.rawMessage, "boom");
    assert.equal(err.metadata.get("x-detail"), "d");
    assert.equal(err.metadata.get("x-interceptor"), "error");
    const crash = await failure(grpc().check({ service: "crash" }));
    assert.equal(crash?.code, Code.Internal);
    assert.doesNotMatch(crash?.rawMessage ?? "", /secret/);
  });

  it("aborts the handler's signal with CANCELED when the caller goes away", async () => {
    const reason = new Promise<unknown>((r) => (cancelled = r));
    const caller = new AbortController();
    const call = failure(grpc().check({ service: "wait" }, { signal: caller.signal }));
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 5));
    caller.abort();
    assert.equal((await call)?.code, Code.Canceled, "the client's own view");
    const r = await reason;
    assert.ok(r instanceof ConnectError && r.code === Code.Canceled, `handler saw ${String(r)}`);
    assert.equal((await grpc().check({ service: "x" })).status, Status.NOT_SERVING, "the port keeps serving");
  });

  it("refuses a request message over 4 MiB with RESOURCE_EXHAUSTED, without running the handler", async () => {
    const err = await failure(grpc().check({ service: "x".repeat(4 * 1024 * 1024 + 1) }));
    assert.equal(err?.code, Code.ResourceExhausted);
    assert.match(err?.rawMessage ?? "", /larger than max/);
    assert.equal(seen.length, 0);
    assert.equal((await grpc().check({ service: "x" })).status, Status.NOT_SERVING, "the port keeps serving");
  });

  it("answers a malformed protobuf request with INVALID_ARGUMENT, not INTERNAL, without running the handler", async () => {
    // Field 1 (service, a string) with a length that runs past the end of the message.
    const garbage = Buffer.from([0x0a, 0x7f, 0x41]);
    const base = server.url.replace("localhost", "127.0.0.1");
    const h2 = await import("node:http2");
    const grpcStatus = await new Promise<string | undefined>((resolve, reject) => {
      const c = h2.connect(base);
      c.on("error", reject);
      const r = c.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/grpc", te: "trailers" });
      let status: string | undefined;
      r.on("response", (h) => (status ??= h["grpc-status"] as string | undefined));
      r.on("trailers", (t) => (status = t["grpc-status"] as string | undefined));
      r.on("close", () => (c.close(), resolve(status)));
      r.resume();
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, garbage.length]), garbage]);
      r.end(frame);
    });
    assert.equal(grpcStatus, String(Code.InvalidArgument), "gRPC");
    assert.equal(seen.length, 0, "no handler ran");
  });

  it("leaves compressed requests, streaming calls and the Connect protocol to connect", async () => {
    assert.equal((await grpc({ sendCompression: compressionGzip, compressMinBytes: 0 }).check({ service: "svc" }, { timeoutMs: 1000 })).status, Status.SERVING);
    const watch = grpc().watch({ service: "svc" });
    for await (const r of watch) {
      assert.equal(r.status, Status.SERVING);
      break;
    }
    const connect = createClient(Health, createConnectTransport({ baseUrl: server.url.replace("localhost", "127.0.0.1"), httpVersion: "2" }));
    assert.equal((await connect.check({ service: "svc" }, { timeoutMs: 1000 })).status, Status.SERVING);
    assert.deepEqual(
      seen.map((s) => s.protocol),
      ["grpc", "connect"],
    );
  });

  it("localTransport: calls the handler in process with the client's and server's interceptors, errors carry metadata", async () => {
    const order: string[] = [];
    const client: Interceptor = (next) => (req) => (order.push("client"), next(req));
    const serverSide: Interceptor = (next) => (req) => (order.push(`server:${req.header.get("content-type")}`), next(req));
    const t = localTransport(routes, { router: { interceptors: [serverSide, tag] }, transport: { interceptors: [client] } });
    const health = createClient(Health, t);
    let header: Headers | undefined;
    assert.equal((await health.check({ service: "x" }, { timeoutMs: 2000, onHeader: (h) => (header = h) })).status, Status.SERVING);
    assert.deepEqual(order, ["client", "server:application/proto"]);
    assert.equal(header?.get("x-interceptor"), "Check");
    const err = await failure(health.check({ service: "boom" }));
    assert.equal(err?.code, Code.FailedPrecondition);
    assert.equal(err?.metadata.get("x-detail"), "d");
  });
});
