// envoyproxy/ratelimit behind Envoy: the behaviour chosen for an outage of the
// ratelimit service is fail OPEN (envoy/settings.yaml ratelimit.failure_mode_deny:
// false; envoy/README.md says why): requests keep being served, without
// x-ratelimit-* headers; the per-instance local backstop still bounds them
// (its config is checked statically in test/envoy).
// Request N+1 of a window refused with 429 is checked by the conformance suite
// (test/edge/conformance/ratelimit.test.ts) against this same Envoy.
import { strict as assert } from "node:assert";
import { sharedEdgeStack, type EdgeStack } from "../support/edge-stack.js";
import { rest } from "./support.js";

describe("real edge: ratelimit service down", function () {
  this.timeout(60_000);
  let stack: EdgeStack;

  before(async () => {
    stack = await sharedEdgeStack();
  });

  it("fails open, as configured: answers go on, without x-ratelimit headers; back to limiting when it returns", async () => {
    assert.equal(stack.settings.ratelimit.failure_mode_deny, false, "this test checks the fail-open choice");
    const before = await rest(stack.edgeUrl, "GET", "/.well-known/jwks.json");
    assert.equal(before.status, 200);
    assert.ok(before.headers.get("x-ratelimit-limit"), "limited while the service runs");
    await stack.stop("ratelimit");
    try {
      for (let i = 0; i < 5; i++) {
        const t0 = Date.now();
        const a = await rest(stack.edgeUrl, "GET", "/.well-known/jwks.json");
        assert.equal(a.status, 200, a.text);
        assert.equal(a.headers.get("x-ratelimit-limit"), null);
        assert.ok(Date.now() - t0 < 2000, "no long wait for the missing service (timeout 0.5 s)");
      }
    } finally {
      await stack.start("ratelimit");
    }
    const after = await rest(stack.edgeUrl, "GET", "/.well-known/jwks.json");
    assert.equal(after.status, 200, after.text);
    assert.ok(after.headers.get("x-ratelimit-limit"), "limited again");
  });
});
