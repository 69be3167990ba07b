// The request id: one rule (platform/telemetry/request-id.ts), decided at the
// request's entry into the process, carried to handlers (requestId(ctx)) and
// to every outgoing call, never decided again inside the same request.
import assert from "node:assert/strict";
import { createClient, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import { UserInternalService } from "../../gen/acme/user/v1/user_pb.js";
import { createLogger } from "../../platform/logger.js";
import { requestId } from "../../platform/request.js";
import { requestStore } from "../../platform/telemetry/context.js";
import { propagateContext } from "../../platform/telemetry/rpc-client.js";
import { serverObservability } from "../../platform/telemetry/rpc-server.js";
import { currentRequestId, forwardRequestId, REQUEST_ID_HEADER, requestIdFrom } from "../../platform/telemetry/request-id.js";

describe("observability: request id", () => {
  it("keeps a sane received id and makes a UUID for a missing, empty, too long or unprintable one", () => {
    assert.equal(requestIdFrom("req-1"), "req-1");
    assert.equal(requestIdFrom(["first", "second"]), "first");
    assert.equal(requestIdFrom("x".repeat(200)), "x".repeat(200));
    for (const bad of [undefined, null, "", "x".repeat(201), "has space", "tab\there", "é"]) {
      assert.match(requestIdFrom(bad), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, String(bad));
    }
  });

  it("forwards the current request's id on outgoing calls, without overriding one the caller set", () => {
    const h = new Headers();
    forwardRequestId(h);
    assert.equal(h.has(REQUEST_ID_HEADER), false, "no request in progress: nothing to forward");
    requestStore.run({ requestId: "outer-1" }, () => {
      assert.equal(currentRequestId(), "outer-1");
      forwardRequestId(h);
      const set = new Headers({ [REQUEST_ID_HEADER]: "caller-set" });
      forwardRequestId(set);
      assert.equal(set.get(REQUEST_ID_HEADER), "caller-set");
    });
    assert.equal(h.get(REQUEST_ID_HEADER), "outer-1");
  });

  describe("through the RPC server interceptor", () => {
    const log = createLogger({ service: "rid" }, { write: () => {}, pretty: false, level: "error" });
    const seen: { handler: string; store?: string }[] = [];
    const routes = (router: ConnectRouter) =>
      router.service(UserInternalService, {
        async checkUser(_req, ctx) {
          seen.push({ handler: requestId(ctx), store: currentRequestId() });
          return { exists: true, active: true };
        },
      });
    const users = createClient(
      UserInternalService,
      createRouterTransport(routes, { router: { interceptors: [serverObservability({ log })] }, transport: { interceptors: [propagateContext()] } }),
    );
    beforeEach(() => (seen.length = 0));

    it("decides the id at the entry: a received sane id is the handler's, an insane one is replaced once", async () => {
      await users.checkUser({ userId: "a" }, { headers: { [REQUEST_ID_HEADER]: "entry-1" } });
      await users.checkUser({ userId: "b" }, { headers: { [REQUEST_ID_HEADER]: "not sane" } });
      assert.deepEqual(seen[0], { handler: "entry-1", store: "entry-1" });
      assert.notEqual(seen[1].handler, "not sane");
      assert.match(seen[1].handler, /^[0-9a-f-]{36}$/);
      assert.equal(seen[1].store, seen[1].handler, "handler context and request context carry the same decision");
    });

    it("inside a request of this process, an in-process call keeps that request's id whatever header it carries", async () => {
      await requestStore.run({ requestId: "edge-7" }, () => users.checkUser({ userId: "c" }, { headers: { [REQUEST_ID_HEADER]: "other" } }));
      await requestStore.run({ requestId: "edge-8" }, () => users.checkUser({ userId: "d" }));
      assert.deepEqual(
        seen.map((s) => s.handler),
        ["edge-7", "edge-8"],
      );
    });
  });
});
