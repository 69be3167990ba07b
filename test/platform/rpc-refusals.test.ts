// What a hostile or mistaken client sees when the port refuses an RPC before any
// handler runs (fuzz findings of issue 15 on the embedded edge, seed 15):
// - an unknown method answers in the caller's protocol: gRPC and gRPC-Web
//   UNIMPLEMENTED (HTTP 200, grpc-status 12), Connect 404 {"code":"unimplemented"},
//   never the REST 404 body a gRPC client cannot read;
// - connect's own 405 and 415 carry Connect's JSON error body, not an empty one;
// - more than SERVER_MAX_HEADER_COUNT headers is 431 with the JSON body even when
//   the client sends Host last (node dropped it and answered an empty 400);
// - an answer given before the request body was read (gRPC over HTTP/1.1 refusing
//   the first envelope, a REST body that is not gzip) leaves the keep-alive
//   connection usable: the next request on it is answered;
// - bad protobuf bytes in a streaming call (health Watch, reflection) are
//   INVALID_ARGUMENT, as in unary calls.
import { strict as assert } from "node:assert";
import http from "node:http";
import net from "node:net";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { UserService } from "../../gen/acme/user/v1/user_pb.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { grpcFrame, grpcMessage, grpcStatus, grpcWebStatus, h2Call } from "./wire.js";

const GRPC = { "content-type": "application/grpc", te: "trailers" };
const LOGIN = "/acme.auth.v1.AuthService/Login";

interface H1Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP/1.1 request with node's client (which sends Host after the caller's headers). */
function h1(base: string, method: string, path: string, headers: Record<string, string>, body?: Uint8Array, agent?: http.Agent, timeoutMs = 5_000): Promise<H1Answer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method, path, agent, headers: { ...headers, ...(body ? { "content-length": String(body.length) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer to ${method} ${path} within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** Bytes written as they are on a new connection; the raw answer until the server closes or `ms` pass. */
function raw(base: string, bytes: string, ms = 3_000): Promise<string> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname, () => s.write(bytes));
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("error", reject);
    const timer = setTimeout(() => s.destroy(), ms);
    s.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
  });
}

const json = (a: { body: string }) => JSON.parse(a.body) as { code: unknown; message: unknown };

function assertConnectError(a: H1Answer, status: number, code: string): void {
  assert.equal(a.status, status, a.body);
  assert.match(String(a.headers["content-type"]), /^application\/json/);
  const j = json(a);
  assert.deepEqual(Object.keys(j).sort(), ["code", "message"]);
  assert.equal(j.code, code);
  assert.ok(typeof j.message === "string" && j.message.length > 0, a.body);
}

describe("platform: the port's own refusals of RPCs, in each protocol's form", function () {
  this.timeout(60_000);
  let t: TestSystem;
  before(async () => {
    t = await startTestSystem();
  });
  after(async () => t?.stop());

  describe("a method the port does not serve", () => {
    for (const path of ["/acme.user.v1.UserService/GetMex", "/acme.user.v1.UserService/", "/acme.nope.v1.Nope/GetMe"]) {
      it(`gRPC ${path}: HTTP 200, grpc-status UNIMPLEMENTED and a grpc-message, trailers-only`, async () => {
        const a = await h2Call(t.url, path, GRPC, grpcFrame(Buffer.alloc(0)));
        assert.equal(a.status, 200);
        assert.equal(a.headers["grpc-status"], String(Code.Unimplemented), JSON.stringify(a.headers));
        assert.ok(grpcMessage(a).length > 0);
        assert.equal(a.body.length, 0);
      });
    }

    it("gRPC-Web over HTTP/1.1 and HTTP/2: HTTP 200 with grpc-status UNIMPLEMENTED", async () => {
      const type = { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" };
      const a = await h1(t.url, "POST", "/acme.user.v1.UserService/GetMex", type, grpcFrame(Buffer.alloc(0)));
      assert.equal(a.status, 200);
      assert.equal(grpcWebStatus({ headers: a.headers, body: Buffer.from(a.body) }).code, Code.Unimplemented);
      const b = await h2Call(t.url, "/acme.user.v1.UserService/GetMex", type, grpcFrame(Buffer.alloc(0)));
      assert.equal(b.status, 200);
      assert.equal(grpcWebStatus(b).code, Code.Unimplemented);
    });

    it("Connect, with its version header or as a unary POST of application/proto or application/json: 404 {\"code\":\"unimplemented\"}", async () => {
      for (const headers of [
        { "content-type": "application/json", "connect-protocol-version": "1" } as Record<string, string>,
        { "content-type": "application/proto" },
        { "content-type": "application/json; charset=utf-8" },
      ]) {
        assertConnectError(await h1(t.url, "POST", "/acme.user.v1.UserService/GetMex", headers, Buffer.from("{}")), 404, "unimplemented");
      }
      assertConnectError(await h1(t.url, "GET", "/acme.user.v1.UserService/GetMex?connect=v1&encoding=json&message=%7B%7D", {}), 404, "unimplemented");
    });

    it("the clients themselves get UNIMPLEMENTED (a server under another path prefix)", async () => {
      const base = `${t.url}/not-here`;
      const transports: [string, Transport][] = [
        ["grpc", createGrpcTransport({ baseUrl: base })],
        ["grpc-web", createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1" })],
        ["connect", createConnectTransport({ baseUrl: base, httpVersion: "1.1" })],
      ];
      for (const [name, transport] of transports) {
        const err = await createClient(UserService, transport)
          .getMe({})
          .then(() => undefined, (e: unknown) => ConnectError.from(e));
        assert.equal(err?.code, Code.Unimplemented, `${name}: ${err?.message}`);
      }
    });

    it("plain HTTP to an unknown path keeps the REST 404 body", async () => {
      const a = await h1(t.url, "GET", "/nope", {});
      assert.equal(a.status, 404);
      assert.deepEqual(json(a), { code: Code.NotFound, message: "no route matches this path" });
    });
  });

  describe("connect's 405 and 415", () => {
    it("GET of a method without NO_SIDE_EFFECTS: 405, Allow: POST and Connect's error body", async () => {
      const a = await h1(t.url, "GET", LOGIN, { "connect-protocol-version": "1" });
      assertConnectError(a, 405, "unimplemented");
      assert.equal(a.headers.allow, "POST");
    });

    for (const type of ["application/proto; x", "application/json; charset=latin1", "application/connect+proto", "application/xml"]) {
      it(`content-type "${type}" on a unary method: 415 with Connect's error body`, async () => {
        assertConnectError(await h1(t.url, "POST", LOGIN, { "content-type": type, "connect-protocol-version": "1" }, Buffer.from("{}")), 415, "unimplemented");
      });
    }
  });

  it("a bidi stream over HTTP/1.1 (reflection): connect's 505 with Connect's error body and connection: close", async () => {
    const a = await h1(t.url, "POST", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", { "content-type": "application/connect+proto", "connect-protocol-version": "1" }, Buffer.alloc(0));
    assertConnectError(a, 505, "unimplemented");
    assert.equal(a.headers.connection, "close");
  });

  describe("headers", () => {
    it("120 extra headers from node's client (Host sent last): 431 with the JSON error body", async () => {
      const many = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`x-fuzz-${i}`, "v".repeat(40)]));
      for (const [method, path] of [["GET", "/v1/orders"], ["DELETE", "/v1/orders/fuzz-id"], ["POST", LOGIN]]) {
        const a = await h1(t.url, method, path, { ...many, "content-type": "application/json" });
        assert.equal(a.status, 431, `${method} ${path}: ${a.status} ${a.body}`);
        assert.deepEqual(json(a), { code: Code.ResourceExhausted, message: "request headers too large" });
      }
    });

    it("HTTP/1.1 without Host: 400 with the JSON error body; HTTP/1.0 without Host is served", async () => {
      const a = await raw(t.url, "GET /v1/orders HTTP/1.1\r\n\r\n");
      assert.match(a, /^HTTP\/1\.1 400 /);
      assert.match(a, /\{"code":3,"message":"missing Host header"\}/);
      const body = '{"email":"a@example.com","password":"correct horse battery"}';
      const b = await raw(t.url, `POST ${LOGIN} HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      assert.match(b, /^HTTP\/1\.1 401 /, b);
      assert.match(b, /"code":"unauthenticated"/);
    });
  });

  describe("an answer before the whole request body was read leaves the keep-alive connection usable", () => {
    let agent: http.Agent;
    beforeEach(() => {
      agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    });
    afterEach(() => agent.destroy());

    /** The next request on the one connection of `agent`, answered. */
    async function nextRequestAnswered(): Promise<void> {
      const ok = await h1(t.url, "POST", "/acme.auth.v1.AuthService/GetJwks", { "content-type": "application/json", "connect-protocol-version": "1" }, Buffer.from("{}"), agent, 3_000);
      assert.equal(ok.status, 200, ok.body);
    }

    it("gRPC over HTTP/1.1 refused at its first envelope (200 KB body)", async () => {
      // Envelope flags 0x9b and a length of 110 MB: RESOURCE_EXHAUSTED at once, 200 KB unread.
      const body = Buffer.from(Array.from({ length: 100_000 }, () => [0x9b, 0x06]).flat());
      for (let i = 0; i < 3; i++) {
        const a = await h1(t.url, "POST", "/acme.user.v1.UserService/GetMe", { "content-type": "application/grpc+proto" }, body, agent, 3_000);
        assert.equal(a.status, 200);
        assert.equal(a.headers["grpc-status"] ?? "trailer", "trailer");
        await nextRequestAnswered();
      }
      assert.equal(Object.values(agent.freeSockets).flat().length, 1, "one connection served all of them");
    });

    it("a REST body that is not gzip (300 KB)", async () => {
      const body = Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff]), Buffer.alloc(300_000, 0xff)]);
      for (let i = 0; i < 3; i++) {
        const a = await h1(t.url, "POST", "/v1/auth/login", { "content-type": "application/json", "content-encoding": "gzip" }, body, agent, 3_000);
        assert.equal(a.status, 400, a.body);
        await nextRequestAnswered();
      }
    });
  });

  describe("bad protobuf bytes in a streaming call", () => {
    /** Field 1 (a string in both requests) promises 16 bytes, one follows. */
    const BAD = grpcFrame(Buffer.from([0x0a, 0x10, 0x61]));
    for (const path of ["/grpc.health.v1.Health/Watch", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"]) {
      it(`${path}: INVALID_ARGUMENT over gRPC and gRPC-Web`, async () => {
        const a = await h2Call(t.url, path, GRPC, BAD);
        assert.equal(grpcStatus(a), Code.InvalidArgument, grpcMessage(a));
        const b = await h2Call(t.url, path, { "content-type": "application/grpc-web+proto" }, BAD);
        assert.equal(grpcWebStatus(b).code, Code.InvalidArgument, grpcWebStatus(b).message);
      });
    }

    it("a well-formed Watch still streams", async () => {
      const service = Buffer.from("acme.user.v1.UserService");
      const ok = grpcFrame(Buffer.concat([Buffer.from([0x0a, service.length]), service]));
      const a = await h2Call(t.url, "/grpc.health.v1.Health/Watch", { ...GRPC, "grpc-timeout": "300m" }, ok);
      assert.ok(a.body.length > 5, "a first message");
      assert.notEqual(grpcStatus(a), Code.InvalidArgument, grpcMessage(a));
    });
  });
});
