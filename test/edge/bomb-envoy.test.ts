// The 1 GiB gzip bomb through the real Envoy (the stack of npm run stack): what
// Envoy does with grpc-encoding gzip (passes the compressed message on; the
// service refuses it while inflating, platform/adapter.ts) and with a gzip REST
// body (no decompressor: the transcoder's body buffer refuses it first). Each
// is refused, and the service behind still answers afterwards.
import { strict as assert } from "node:assert";
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

  it("Connect with content-encoding gzip: resource_exhausted", async () => {
    const res = await fetch(stack.edgeUrl + LOGIN, { method: "POST", headers: { "content-type": "application/proto", "connect-protocol-version": "1", "content-encoding": "gzip" }, body: bomb as BodyInit });
    const text = await res.text();
    console.log(`      Connect: HTTP ${res.status} ${text}`);
    assert.equal((JSON.parse(text) as { code: string }).code, "resource_exhausted");
  });

  it("REST with content-encoding gzip: 413 with the JSON error body", async () => {
    const res = await fetch(`${stack.edgeUrl}/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json", "content-encoding": "gzip" }, body: bomb as BodyInit });
    const text = await res.text();
    console.log(`      REST: HTTP ${res.status} ${text}`);
    assert.equal(res.status, 413);
    assert.equal((JSON.parse(text) as { code: number }).code, Code.ResourceExhausted);
  });

  it("the service still answers", async () => {
    const res = await fetch(`${stack.edgeUrl}/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "nobody@example.com", password: "correct horse battery" }) });
    assert.equal(res.status, 401);
  });
});
