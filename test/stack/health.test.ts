// Envoy's readiness follows the backends: GET /health through Envoy answers 200
// while every service is healthy (Envoy's active gRPC health checks) and 503 in
// the JSON error shape when one is down; a stopped service gives a JSON 503 on
// its routes and everything recovers when it comes back.
import { strict as assert } from "node:assert";
import { sharedEdgeStack, type EdgeStack } from "../support/edge-stack.js";
import { eventually, rest } from "./support.js";

describe("real edge: health through Envoy", function () {
  this.timeout(120_000);
  let stack: EdgeStack;
  let token: string;

  before(async () => {
    stack = await sharedEdgeStack();
    const email = `health-${Date.now()}@example.com`;
    const reg = await rest(stack.edgeUrl, "POST", "/v1/auth/register", { body: { email, password: "health-password-1", name: "Health" } });
    assert.equal(reg.status, 200, reg.text);
    const login = await rest(stack.edgeUrl, "POST", "/v1/auth/login", { body: { email, password: "health-password-1" } });
    assert.equal(login.status, 200, login.text);
    token = login.body.tokens.accessToken;
  });

  it("answers 200 on /health while every service is healthy, without a token", async () => {
    const a = await eventually(async () => {
      const r = await rest(stack.edgeUrl, "GET", stack.settings.health_path);
      return r.status === 200 ? r : undefined;
    }, "Envoy ready");
    assert.equal(a.headers.get("x-content-type-options"), "nosniff");
  });

  it("a stopped service: JSON 503 on its routes and on /health; both recover when it is back", async () => {
    await stack.stop("user");
    try {
      const me = await rest(stack.edgeUrl, "GET", "/v1/users/me", { token });
      assert.equal(me.status, 503, me.text);
      assert.equal(me.body?.code, 14, me.text);
      assert.equal(typeof me.body?.message, "string");
      const down = await eventually(async () => {
        const r = await rest(stack.edgeUrl, "GET", stack.settings.health_path);
        return r.status === 503 ? r : undefined;
      }, "Envoy's /health notices the stopped service (health checks every 5 s, 2 failures)", 30_000);
      assert.equal(down.body?.code, 14, down.text);
      // The other services still answer.
      const jwks = await rest(stack.edgeUrl, "GET", "/.well-known/jwks.json");
      assert.equal(jwks.status, 200, jwks.text);
    } finally {
      await stack.start("user");
    }
    await eventually(async () => (await rest(stack.edgeUrl, "GET", "/v1/users/me", { token })).status === 200, "GetMe through Envoy again", 30_000);
    await eventually(async () => (await rest(stack.edgeUrl, "GET", stack.settings.health_path)).status === 200, "/health 200 again", 30_000);
  });
});
