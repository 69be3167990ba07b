// Issue 16: in `npm start` (every service in one process) a call from the
// order service to the user service stays in process and carries the order
// service's identity as a context value: no service token is minted and no
// audit row written per call, and the callee's policy still applies.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { policies } from "../../app/contract.js";
import { inProcessIdentity } from "../../app/services.js";
import { authorize } from "../../platform/policy.js";
import { authModule, query } from "../auth/helpers.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { signUp, type TestUser } from "../user/helpers.js";
import { linesOf } from "../support/products.js";

describe("in-process calls between services: identity without tokens", function () {
  let t: TestSystem;
  let alice: TestUser;
  let minted = 0;
  let limits: { path: string; remove(): void };

  before(async () => {
    limits = tempRateLimitConfig(GENEROUS_LIMITS);
    t = await startTestSystem({ env: { ORDER_SWEEP_INTERVAL_MS: "0", RATELIMIT_CONFIG: limits.path } });
    alice = await signUp(t, "Alice");
    // Count every service token the token service mints from here on.
    const minter = authModule(t).internals.minter;
    const original = minter.serviceToken.bind(minter);
    minter.serviceToken = (s) => (minted++, original(s));
  });
  after(async () => {
    await t?.stop();
    limits?.remove();
  });

  const auditRows = async () => Number((await query<{ n: string }>(t, "select count(*) as n from auth.auth_events"))[0].n);

  it("CreateOrder (gRPC and REST) checks the user and reserves stock in process: no token minted, no audit row per call", async () => {
    await linesOf(t, 1); // the product (its admin's sign-up is audited) before counting
    const before = await auditRows();
    for (let i = 0; i < 10; i++) {
      await t.orders(alice.token).createOrder({ lines: await linesOf(t, 1), requestId: randomUUID() });
      const res = await fetch(`${t.url}/v1/orders`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${alice.token}` },
        body: JSON.stringify({ lines: await linesOf(t, 1), requestId: randomUUID() }),
      });
      assert.equal(res.status, 200, await res.text());
    }
    assert.equal(minted, 0, "service tokens minted");
    assert.equal(await auditRows(), before, "audit rows written");
  });

  it("the callee still decides: the in-process caller has exactly its built-in client's scopes", () => {
    const order = inProcessIdentity("order");
    assert.equal(authorize(policies.get("/acme.user.v1.UserInternalService/CheckUser")!, order).allow, true);
    assert.equal(authorize(policies.get("/acme.user.v1.UserInternalService/CreateProfile")!, order).allow, false);
    assert.equal(authorize(policies.get("/acme.auth.v1.AuthInternalService/DeleteAccount")!, order).allow, false);
    const user = inProcessIdentity("user");
    assert.equal(authorize(policies.get("/acme.auth.v1.AuthInternalService/DeleteAccount")!, user).allow, true);
    assert.equal(authorize(policies.get("/acme.user.v1.UserInternalService/CheckUser")!, user).allow, false);
  });
});
