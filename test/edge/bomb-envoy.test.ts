// The 1 GiB gzip bomb through the real Envoy (the stack of npm run stack): what
// Envoy does with grpc-encoding gzip (passes the compressed message on; the
// service refuses it while inflating, platform/adapter.ts), with a gzip Connect
// body (the connect_grpc_bridge's buffer refuses it first) and with a gzip REST
// body (no decompressor: the transcoder's body buffer refuses it first). Each
// is refused, and the service behind still answers afterwards.
import { strict as assert } from "node:assert";
import { gzipSync } from "node:zlib";
import { Code } from "@connectrpc/connect";
import { sharedEdgeStack, type EdgeStack } from "../support/edge-stack.js";
import { grpcFrame, grpcMessage, grpcStatus, grpcWebStatus, h2Call, makeBomb } from "../platform/wire.js";

const LOGIN = "/acme.auth.v1.AuthService/Login";

describe("edge (Envoy): a 1 GiB gzip bomb is refused", function () {
  this.timeout(180_000);
  let stack: EdgeStack;
  let bomb: Buffer;
  before(async () => {
    [stack, bomb] = await Promise.all([sharedEdgeStack(), makeBomb()]);
  });

  it("gRPC with grpc-encoding gzip: RESOURCE_EXHAUSTED (from the service, while inflating)", async () => {
    const a = await h2Call(stack.edgeUrl, LOGIN, { "content-type": "application/grpc", te: "trailers", "grpc-encoding": "gzip" }, grpcFrame(bomb, true));
    console.log(`      gRPC: HTTP ${a.status}, grpc-status ${grpcStatus(a)} ${grpcMessage(a)}`);
    assert.equal(grpcStatus(a), Code.ResourceExhausted);
  });

  it("gRPC-Web with grpc-encoding gzip: RESOURCE_EXHAUSTED", async () => {
    const a = await h2Call(stack.edgeUrl, LOGIN, { "content-type": "application/grpc-web+proto", "grpc-encoding": "gzip" }, grpcFrame(bomb, true));
    const s = grpcWebStatus(a);
    console.log(`      gRPC-Web: HTTP ${a.status}, grpc-status ${s.code} ${s.message}`);
    assert.equal(s.code, Code.ResourceExhausted);
  });

  it("Connect with content-encoding gzip: refused (resource_exhausted from the service, or 413 from the bridge's buffer)", async () => {
    const res = await fetch(stack.edgeUrl + LOGIN, { method: "POST", headers: { "content-type": "application/proto", "connect-protocol-version": "1", "content-encoding": "gzip" }, body: bomb as BodyInit });
    const text = await res.text();
    console.log(`      Connect: HTTP ${res.status} ${text}`);
    // connect_grpc_bridge buffers the unary body to re-frame it: within its buffer the service refuses
    // the message while inflating (429 resource_exhausted); over it Envoy answers 413 itself.
    if (res.status === 413) return;
    assert.equal(res.status, 429);
    assert.equal((JSON.parse(text) as { code: string }).code, "resource_exhausted");
  });

  it("REST with content-encoding gzip: refused with the JSON error body (no decompressor: 400 as JSON that is not, or 413 over the body buffer)", async () => {
    const res = await fetch(`${stack.edgeUrl}/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json", "content-encoding": "gzip" }, body: bomb as BodyInit });
    const text = await res.text();
    console.log(`      REST: HTTP ${res.status} ${text.trim()}`);
    const body = JSON.parse(text) as { code: number };
    assert.deepEqual(Object.keys(body).sort(), ["code", "message"]);
    if (res.status === 413) assert.equal(body.code, Code.ResourceExhausted);
    else assert.deepEqual([res.status, body.code], [400, Code.InvalidArgument]);
  });

  it("REST with a small gzip body: 400 (Envoy has no decompressor: the transcoder reads gzip bytes as JSON), where the embedded edge inflates it", async () => {
    const res = await fetch(`${stack.edgeUrl}/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json", "content-encoding": "gzip" }, body: gzipSync(JSON.stringify({ email: "nobody@example.com", password: "correct horse battery" })) as BodyInit });
    const text = await res.text();
    console.log(`      REST small gzip: HTTP ${res.status} ${text.trim()}`);
    assert.equal(res.status, 400);
    assert.equal((JSON.parse(text) as { code: number }).code, Code.InvalidArgument);
  });

  it("the service still answers", async () => {
    const res = await fetch(`${stack.edgeUrl}/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "nobody@example.com", password: "correct horse battery" }) });
    assert.equal(res.status, 401);
  });
});
