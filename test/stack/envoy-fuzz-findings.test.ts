// What the fuzz run (test/fuzz, seed 15) found through Envoy, each sent again to the
// real Envoy of the stack and answered as a client of that protocol expects: REST
// callers the one JSON error body {"code": <number>, "message": <non-empty>}, Connect
// callers Connect's {"code": "<name>", "message"}, gRPC callers HTTP 200 with a
// grpc-status; never a 5xx (nor INTERNAL/UNKNOWN) for client input, never Envoy's own
// text about its insides. envoy/README.md ("Hostile requests") says how.
import { strict as assert } from "node:assert";
import type { FuzzRequest } from "../fuzz/rest-cases.js";
import { Sender, type FuzzAnswer } from "../fuzz/send.js";
import { sharedEdgeStack, type EdgeStack } from "../support/edge-stack.js";
import { rest, sleep } from "./support.js";

const ENVOY_TEXT = /internal buffer|no healthy upstream|upstream connect error|downstream duration|Could not resolve/i;

describe("real edge: the fuzz findings through Envoy", function () {
  this.timeout(120_000);
  let stack: EdgeStack;
  let sender: Sender;
  let token: string;

  before(async () => {
    stack = await sharedEdgeStack();
    sender = new Sender(new URL(stack.edgeUrl));
    const email = `fuzz-findings-${Date.now()}@example.com`;
    const reg = await rest(stack.edgeUrl, "POST", "/v1/auth/register", { body: { email, password: "fuzz-findings-pw-1", name: "Fuzz" } });
    assert.equal(reg.status, 200, reg.text);
    const login = await rest(stack.edgeUrl, "POST", "/v1/auth/login", { body: { email, password: "fuzz-findings-pw-1" } });
    assert.equal(login.status, 200, login.text);
    token = login.body.tokens.accessToken;
  });

  after(() => sender?.close());
  // One user's calls: each test starts in a fresh second of the per-user limit (3/s).
  beforeEach(() => sleep(1100));

  const send = (proto: FuzzRequest["proto"], method: string, path: string, headers: Record<string, string>, body?: Buffer | string) =>
    sender.send({ proto, method, path, headers, body: body === undefined ? undefined : Buffer.from(body), what: "finding" });
  const json = (a: FuzzAnswer) => JSON.parse(a.body.toString("utf8"));
  const show = (a: FuzzAnswer) => `${a.status ?? a.error} ${JSON.stringify(a.headers)} ${JSON.stringify(a.trailers)} ${a.body.toString("utf8").slice(0, 300)}`;
  const grpcStatus = (a: FuzzAnswer) => a.trailers["grpc-status"] ?? a.headers["grpc-status"];
  const auth = () => ({ authorization: `Bearer ${token}` });
  const envelope = (msg: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]);

  function restError(a: FuzzAnswer, status: number, code: number) {
    assert.equal(a.status, status, show(a));
    assert.match(a.headers["content-type"] ?? "", /^application\/json/, show(a));
    const j = json(a);
    assert.equal(j.code, code, show(a));
    assert.ok(typeof j.message === "string" && j.message.length > 0, `message must be non-empty: ${show(a)}`);
    assert.doesNotMatch(j.message, ENVOY_TEXT);
    return j;
  }

  function connectError(a: FuzzAnswer, status: number, code: string) {
    assert.equal(a.status, status, show(a));
    assert.match(a.headers["content-type"] ?? "", /^application\/json/, show(a));
    const j = json(a);
    assert.equal(j.code, code, show(a));
    assert.ok(typeof j.message === "string" && j.message.length > 0, show(a));
    assert.doesNotMatch(j.message, ENVOY_TEXT);
    return j;
  }

  function grpcAnswer(a: FuzzAnswer, status: string) {
    assert.equal(a.status, 200, show(a));
    assert.equal(grpcStatus(a), status, show(a));
  }

  it("1. a REST call carrying connect-protocol-version is REST: transcoded, the service's 400, not 503 no healthy upstream", async () => {
    const a = await send("rest", "POST", "/v1/orders", { ...auth(), "content-type": "application/json", "connect-protocol-version": "1" }, "{}");
    restError(a, 400, 3);
    const b = await send("rest", "GET", "/v1/users/me", { ...auth(), "connect-protocol-version": "1" });
    assert.equal(b.status, 200, show(b));
    assert.ok(json(b).user?.id, show(b));
  });

  it("2. grpc-timeout on a REST call is not honoured (no 504 downstream duration timeout)", async () => {
    const a = await send("rest", "GET", "/v1/users/me", { ...auth(), "grpc-timeout": "1n" });
    assert.equal(a.status, 200, show(a));
  });

  it("3. paths the connection manager refuses: 400 with a non-empty message", async () => {
    for (const path of ["/v1/users/me%00", "/v1/users/%2F", "/v1/users/..%2F..%2Fetc", "/v1/users/me;a=b%00", "/.well-known/jwks.json#x"]) {
      const j = restError(await send("rest", "GET", path, auth()), 400, 3);
      assert.equal(j.message, "bad request", path);
    }
  });

  it("4. missing or broken tokens: Connect's error body for Connect calls, the JSON error body for REST ones", async () => {
    const c = await send("connect", "POST", "/acme.user.v1.UserService/GetMe", { "content-type": "application/json", "connect-protocol-version": "1" }, "{}");
    assert.equal(connectError(c, 401, "unauthenticated").message, "Jwt is missing");
    const cp = await send("connect", "POST", "/acme.order.v1.OrderService/ListOrders", { "content-type": "application/proto", "connect-protocol-version": "1" }, "");
    connectError(cp, 401, "unauthenticated");
    const r = await send("rest", "POST", "/v1/orders", { "content-type": "application/json", "connect-protocol-version": "2" }, "{}");
    assert.equal(restError(r, 401, 16).message, "Jwt is missing");
    // jwt_verify_lib's reason is the message (envoy/README.md), in the JSON error body, not text/plain.
    const bad = await send("rest", "GET", "/v1/users/me", { authorization: "Bearer e30.e30.x", "connect-protocol-version": "1" });
    restError(bad, 401, 16);
  });

  it("5. Connect bodies: 70 KB reaches the service; over MAX_MESSAGE_BYTES (4 MiB) is 413 resource_exhausted, no buffer text", async () => {
    const body = (n: number) => JSON.stringify({ email: `${"a".repeat(n)}@example.com`, password: "x" });
    const a = await send("connect", "POST", "/acme.auth.v1.AuthService/Login", { "content-type": "application/json", "connect-protocol-version": "1" }, body(70_000));
    assert.ok(a.status !== 413 && a.status! < 500, show(a));
    assert.ok(typeof json(a).code === "string", show(a));
    const big = await send("connect", "POST", "/acme.auth.v1.AuthService/Login", { "content-type": "application/json", "connect-protocol-version": "1" }, body(5 * 1024 * 1024));
    assert.equal(connectError(big, 413, "resource_exhausted").message, "request body too large");
    // REST keeps its own bound, MAX_BODY_BYTES (1 MiB): the method route's larger buffer is not REST's.
    const restBig = await send("rest", "POST", "/v1/auth/login", { "content-type": "application/json" }, body(1024 * 1024));
    assert.equal(restError(restBig, 413, 8).message, "request body too large");
  });

  it("6. a gRPC-typed body sent as Connect over HTTP/1.1: INVALID_ARGUMENT, not 500 unknown", async () => {
    const a = await send("connect", "POST", "/acme.order.v1.OrderService/ListOrders", { ...auth(), "content-type": "application/grpc+proto", "connect-protocol-version": "1" }, Buffer.alloc(400_000));
    grpcAnswer(a, "3");
    assert.doesNotMatch(decodeURIComponent(grpcAnswerMessage(a)), ENVOY_TEXT);
  });

  it("7. a REST path sent as application/grpc over HTTP/1.1: a gRPC answer, never INTERNAL", async () => {
    grpcAnswer(await send("rest", "POST", "/v1/orders/%00:cancel", { ...auth(), "content-type": "application/grpc" }, "{}"), "3");
    grpcAnswer(await send("rest", "GET", "/.well-known/jwks.json#x", { "content-type": "application/grpc" }), "3");
  });

  it("8. a REST path sent as gRPC (with or without connect-protocol-version): gRPC's UNIMPLEMENTED, not a Connect body", async () => {
    grpcAnswer(await send("rest", "GET", "/v1/auth/sessions", { ...auth(), "content-type": "application/grpc", "connect-protocol-version": "1" }), "12");
    // Without a token the JWT check answers first (as for any gRPC call): UNAUTHENTICATED, in gRPC's terms.
    const b = await send("rest", "POST", "/v1/auth/login", { "content-type": "application/grpc", "connect-protocol-version": "2" }, "{}");
    grpcAnswer(b, "16");
  });

  it("9. content-type application/grpc;foo: 415, as the embedded edge (not the transcoder's 404 text)", async () => {
    const a = await send("grpc", "POST", "/acme.auth.v1.AuthService/GetJwks", { "content-type": "application/grpc;foo", te: "trailers" }, envelope(Buffer.alloc(0)));
    assert.equal(a.status, 415, show(a));
    assert.doesNotMatch(a.body.toString("utf8"), ENVOY_TEXT);
  });

  it("10. Connect calls to an internal service: 404 with Connect's unimplemented body", async () => {
    for (const ct of ["application/proto", "application/json"]) {
      const a = await send("connect", "POST", "/acme.user.v1.UserInternalService/CheckUser", { ...auth(), "content-type": ct, "connect-protocol-version": "1" }, ct === "application/json" ? "{}" : "");
      connectError(a, 404, "unimplemented");
    }
  });

  it("10b. gRPC and gRPC-Web calls to an internal service: UNIMPLEMENTED (gRPC-Web's HTTP 404 carried no grpc-status)", async () => {
    const body = envelope(Buffer.from("0a06776964676574", "hex"));
    grpcAnswer(await send("grpc", "POST", "/acme.user.v1.UserInternalService/CheckUser", { ...auth(), "content-type": "application/grpc", te: "trailers" }, body), "12");
    const web = await send("grpc", "POST", "/acme.user.v1.UserInternalService/CheckUser", { ...auth(), "content-type": "application/grpc-web", te: "trailers" }, body);
    assert.equal(grpcStatus(web), "12", show(web));
  });

  it("11. gRPC to an unknown method of a public service: HTTP 200, grpc-status 12 (UNIMPLEMENTED); REST and Connect keep their shapes", async () => {
    for (const path of ["/acme.user.v1.UserService/GetMex", "/acme.nope.v1.Nope/GetMe", "/acme.user.v1.UserService/", "/grpc.health.v1.Health/Check"]) {
      grpcAnswer(await send("grpc", "POST", path, { ...auth(), "content-type": "application/grpc", te: "trailers" }, envelope(Buffer.alloc(0))), "12");
    }
    const c = await send("connect", "POST", "/acme.user.v1.UserService/GetMex", { ...auth(), "content-type": "application/json", "connect-protocol-version": "1" }, "{}");
    connectError(c, 404, "unimplemented");
    const r = await send("rest", "POST", "/acme.user.v1.UserService/GetMex", { ...auth(), "content-type": "application/json" }, "{}");
    restError(r, 404, 5);
    // The known methods still work over each protocol.
    await sleep(1100);
    grpcAnswer(await send("grpc", "POST", "/acme.user.v1.UserService/GetMe", { ...auth(), "content-type": "application/grpc", te: "trailers" }, envelope(Buffer.alloc(0))), "0");
    const me = await send("connect", "POST", "/acme.user.v1.UserService/GetMe", { ...auth(), "content-type": "application/json", "connect-protocol-version": "1" }, "{}");
    assert.equal(me.status, 200, show(me));
    assert.ok(json(me).user?.id, show(me));
  });

  it("12. a lone UTF-16 surrogate in a Connect JSON body: 400 invalid_argument, not 500 (the bridge's gRPC answer could not carry the decode error)", async () => {
    const body = String.raw`{"unitPriceCents":"\ud800"}`;
    const a = await send("connect", "POST", "/acme.order.v1.OrderService/CreateOrder", { ...auth(), "content-type": "application/json", "connect-protocol-version": "1" }, body);
    connectError(a, 400, "invalid_argument");
    // And to the service's own port as gRPC with the JSON codec (what the bridge sends): grpc-status 3.
    const direct = new Sender(new URL(stack.serviceUrl("order")));
    try {
      const g = await direct.send({ proto: "grpc", method: "POST", path: "/acme.order.v1.OrderService/CreateOrder", headers: { ...auth(), "content-type": "application/grpc+json", te: "trailers" }, body: envelope(Buffer.from(body)), what: "finding" });
      grpcAnswer(g, "3");
    } finally {
      direct.close();
    }
  });

  function grpcAnswerMessage(a: FuzzAnswer): string {
    return a.trailers["grpc-message"] ?? a.headers["grpc-message"] ?? "";
  }
});
