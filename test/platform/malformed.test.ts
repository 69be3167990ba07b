// Malformed requests are the client's error on every path of the port: bad
// protobuf bytes (gRPC, gRPC with gzip, Connect binary, gRPC-Web), bad JSON and
// wrong JSON types (Connect JSON, REST), control characters in any text field,
// too deep JSON, too many or too large headers, and REST bodies in gzip. Each
// gives INVALID_ARGUMENT / 400 (or 431 / RESOURCE_EXHAUSTED for headers) in the
// one error shape, never INTERNAL / 500.
import { strict as assert } from "node:assert";
import { gzipSync } from "node:zlib";
import { Code, ConnectError } from "@connectrpc/connect";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { grpcFrame, grpcMessage, grpcStatus, grpcWebStatus, h2Call } from "./wire.js";

const LOGIN = "/acme.auth.v1.AuthService/Login";
/** Field 1 (email) promises 16 bytes, one follows. */
const BAD_PROTO = Buffer.from([0x0a, 0x10, 0x61]);
const GRPC = { "content-type": "application/grpc", te: "trailers" };

describe("platform: malformed requests give INVALID_ARGUMENT / 400 on every path", function () {
  this.timeout(60_000);
  let t: TestSystem;
  before(async () => {
    t = await startTestSystem();
  });
  after(async () => t?.stop());

  const fetchRaw = (path: string, headers: Record<string, string>, body: string | Uint8Array) =>
    fetch(t.url + path, { method: "POST", headers, body: body as BodyInit, signal: AbortSignal.timeout(15_000) });

  describe("bad protobuf bytes", () => {
    it("gRPC (the unary fast path)", async () => {
      const a = await h2Call(t.url, LOGIN, GRPC, grpcFrame(BAD_PROTO));
      assert.equal(grpcStatus(a), Code.InvalidArgument, grpcMessage(a));
    });

    it("gRPC with gzip: valid gzip of bad bytes, and bytes that are not gzip", async () => {
      const a = await h2Call(t.url, LOGIN, { ...GRPC, "grpc-encoding": "gzip" }, grpcFrame(gzipSync(BAD_PROTO), true));
      assert.equal(grpcStatus(a), Code.InvalidArgument, grpcMessage(a));
      const b = await h2Call(t.url, LOGIN, { ...GRPC, "grpc-encoding": "gzip" }, grpcFrame(Buffer.from("not gzip at all"), true));
      assert.equal(grpcStatus(b), Code.InvalidArgument, grpcMessage(b));
    });

    it("gRPC with the compressed flag but no grpc-encoding", async () => {
      const a = await h2Call(t.url, LOGIN, GRPC, grpcFrame(Buffer.from([0x0a, 0x00]), true));
      assert.equal(grpcStatus(a), Code.InvalidArgument, grpcMessage(a));
    });

    it("Connect binary, plain and gzip (HTTP 400, code invalid_argument)", async () => {
      for (const [headers, body] of [
        [{}, BAD_PROTO],
        [{ "content-encoding": "gzip" }, gzipSync(BAD_PROTO)],
        [{ "content-encoding": "gzip" }, Buffer.from("not gzip")],
      ] as const) {
        const res = await fetchRaw(LOGIN, { "content-type": "application/proto", "connect-protocol-version": "1", ...headers }, body);
        const text = await res.text();
        assert.equal(res.status, 400, text);
        assert.equal((JSON.parse(text) as { code: string }).code, "invalid_argument", text);
      }
    });

    it("gRPC-Web over HTTP/1.1 and HTTP/2", async () => {
      const res = await fetchRaw(LOGIN, { "content-type": "application/grpc-web+proto" }, grpcFrame(BAD_PROTO));
      const web = grpcWebStatus({ headers: Object.fromEntries(res.headers), body: Buffer.from(await res.arrayBuffer()) });
      assert.equal(web.code, Code.InvalidArgument, web.message);
      const h2 = await h2Call(t.url, LOGIN, { "content-type": "application/grpc-web+proto" }, grpcFrame(BAD_PROTO));
      assert.equal(grpcWebStatus(h2).code, Code.InvalidArgument);
    });

    it("a well-formed request still works on each path (the rewrite is only for bytes never parsed)", async () => {
      const err = await t.auth().login({ email: "nobody@example.com", password: "correct horse battery" }).catch((e: unknown) => ConnectError.from(e));
      assert.equal((err as ConnectError).code, Code.Unauthenticated);
      const res = await fetchRaw(LOGIN, { "content-type": "application/json" }, JSON.stringify({ email: "nobody@example.com", password: "correct horse battery" }));
      assert.equal(res.status, 401);
    });
  });

  describe("bad JSON and wrong JSON types", () => {
    it("Connect JSON: not JSON, and a number for a string field (naming it)", async () => {
      const a = await fetchRaw(LOGIN, { "content-type": "application/json" }, "{not json");
      assert.equal(a.status, 400);
      assert.equal(((await a.json()) as { code: string }).code, "invalid_argument");
      const b = await fetchRaw(LOGIN, { "content-type": "application/json" }, JSON.stringify({ email: 5, password: "x" }));
      const body = (await b.json()) as { code: string; message: string };
      assert.equal(b.status, 400);
      assert.equal(body.code, "invalid_argument");
      assert.match(body.message, /email/);
    });

    it("REST: not JSON, a wrong type (naming the field), and JSON nested deeper than MAX_JSON_DEPTH (64)", async () => {
      const a = await fetchRaw("/v1/auth/login", { "content-type": "application/json" }, "{not json");
      assert.equal(a.status, 400);
      assert.equal(((await a.json()) as { code: number }).code, Code.InvalidArgument);
      const b = await fetchRaw("/v1/auth/login", { "content-type": "application/json" }, JSON.stringify({ email: ["x"], password: "x" }));
      const wrong = (await b.json()) as { code: number; message: string };
      assert.equal(b.status, 400);
      assert.match(wrong.message, /email/);
      const deep = (n: number) => `{"email":"a@example.com","password":"correct horse battery","x":${"[".repeat(n - 1)}${"]".repeat(n - 1)}}`;
      const c = await fetchRaw("/v1/auth/login", { "content-type": "application/json" }, deep(65));
      const tooDeep = (await c.json()) as { code: number; message: string };
      assert.equal(c.status, 400);
      assert.deepEqual(Object.keys(tooDeep).sort(), ["code", "message"]);
      assert.match(tooDeep.message, /deeper than 64/);
      // 100,000 levels: the same 400, at once.
      const d = await fetchRaw("/v1/auth/login", { "content-type": "application/json" }, deep(100_000));
      assert.equal(d.status, 400);
      // Within the limit the body is read (the unknown field is then refused, as Envoy's transcoder does, or ignored: not a depth error).
      const e = await fetchRaw("/v1/auth/login", { "content-type": "application/json" }, deep(64));
      assert.doesNotMatch(await e.text(), /deeper/);
    });
  });

  describe("control characters in text fields", () => {
    const violations = (body: { details?: { fieldViolations?: { field: string }[] }[] }) => (body.details ?? []).flatMap((d) => d.fieldViolations ?? []).map((v) => v.field);

    it("REST: a NUL in a login email or a register name is 400 naming the field, on a route with no validation of its own", async () => {
      const a = await fetchRaw("/v1/auth/login", { "content-type": "application/json" }, JSON.stringify({ email: "a\u0000@example.com", password: "correct horse battery" }));
      const body = (await a.json()) as { code: number; details?: { fieldViolations?: { field: string }[] }[] };
      assert.equal(a.status, 400, JSON.stringify(body));
      assert.equal(body.code, Code.InvalidArgument);
      assert.deepEqual(violations(body), ["email"]);
      const b = await fetchRaw("/v1/auth/register", { "content-type": "application/json" }, JSON.stringify({ email: "nul@example.com", password: "correct horse battery", name: "A\u0001B\u001b" }));
      assert.equal(b.status, 400);
      assert.deepEqual(violations((await b.json()) as never), ["name"]);
    });

    it("gRPC, Connect JSON and Connect binary: INVALID_ARGUMENT with the field in google.rpc.BadRequest", async () => {
      const err = await t.auth().login({ email: "x@example.com", password: "pass\u0000word" }).catch((e: unknown) => ConnectError.from(e));
      assert.equal((err as ConnectError).code, Code.InvalidArgument);
      assert.match((err as ConnectError).rawMessage, /^password: /);
      const res = await fetchRaw(LOGIN, { "content-type": "application/json" }, JSON.stringify({ email: "x\u007f@example.com", password: "correct horse battery" }));
      assert.equal(res.status, 400);
      assert.match(((await res.json()) as { message: string }).message, /^email: must not contain control characters/);
      const connect = await t.auth(undefined).register({ email: "c@example.com", password: "correct horse battery", name: "\u0000" }).catch((e: unknown) => ConnectError.from(e));
      assert.equal((connect as ConnectError).code, Code.InvalidArgument);
    });

    it("tab, line feed and carriage return pass the generic check (a multi-line field may hold them)", async () => {
      const res = await fetchRaw("/v1/auth/login", { "content-type": "application/json" }, JSON.stringify({ email: "tab@example.com", password: "correct\thorse\r\nbattery" }));
      assert.equal(res.status, 401, await res.clone().text());
    });
  });

  describe("headers", () => {
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, "1"]));

    it("more than SERVER_MAX_HEADER_COUNT (100): 431 with the JSON error body over HTTP/1.1, RESOURCE_EXHAUSTED over gRPC", async () => {
      const a = await fetch(`${t.url}/health`, { headers: many(120) });
      assert.equal(a.status, 431);
      assert.deepEqual(await a.json(), { code: Code.ResourceExhausted, message: "request headers too large" });
      const b = await h2Call(t.url, LOGIN, { ...GRPC, ...many(120) }, grpcFrame(Buffer.alloc(0)));
      assert.equal(grpcStatus(b), Code.ResourceExhausted);
      const c = await h2Call(t.url, "/v1/auth/login", { "content-type": "application/json", ...many(120) }, Buffer.from("{}"));
      assert.equal(c.status, 431);
      assert.equal((await fetch(`${t.url}/health`, { headers: many(80) })).status, 200);
    });

    it("headers larger than SERVER_MAX_HEADER_BYTES (16 KiB) over HTTP/1.1: 431 with the JSON error body", async () => {
      const res = await fetch(`${t.url}/health`, { headers: { "x-big": "a".repeat(20_000) } });
      assert.equal(res.status, 431);
      assert.deepEqual(await res.json(), { code: Code.ResourceExhausted, message: "request headers too large" });
    });
  });

  describe("REST bodies in gzip", () => {
    const login = JSON.stringify({ email: "gz@example.com", password: "correct horse battery" });

    it("a gzip body is inflated and served; bytes that are not gzip are 400; another coding is 415", async () => {
      const ok = await fetchRaw("/v1/auth/login", { "content-type": "application/json", "content-encoding": "gzip" }, gzipSync(login));
      assert.equal(ok.status, 401, await ok.clone().text()); // parsed and checked: unknown account
      const bad = await fetchRaw("/v1/auth/login", { "content-type": "application/json", "content-encoding": "gzip" }, login);
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { code: number }).code, Code.InvalidArgument);
      const br = await fetchRaw("/v1/auth/login", { "content-type": "application/json", "content-encoding": "br" }, login);
      assert.equal(br.status, 415);
      assert.deepEqual(Object.keys((await br.json()) as object).sort(), ["code", "message"]);
    });
  });
});
