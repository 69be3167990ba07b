// The per-client rate limit service tokens carry (rate_limit claim, seed 002),
// enforced by every service for the RPCs that need a service token.
import { strict as assert } from "node:assert";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { UserInternalService } from "../../gen/acme/user/v1/user_pb.js";
import { clientRateLimiter } from "../../platform/auth/client-limit.js";
import { authModule } from "../auth/helpers.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { bearer } from "./table.js";

describe("per-client rate limit of service tokens", function () {
  let t: TestSystem;
  before(async () => {
    t = await startTestSystem({ edge: false });
  });
  after(async () => t?.stop());

  const tokenOf = async (clientId: string, rateLimit: number) =>
    (await authModule(t).internals.minter.serviceToken({ clientId, audience: "acme-user", scopes: ["users.check"], rateLimit })).token;
  const check = async (token: string) =>
    createClient(UserInternalService, createGrpcTransport({ baseUrl: t.url, interceptors: bearer(token) }))
      .checkUser({ userId: "00000000-0000-4000-8000-000000000000" })
      .then(() => "ok", (e: unknown) => ConnectError.from(e));

  it("refuses a client's calls over its rate_limit per minute with RESOURCE_EXHAUSTED and retry-after; other clients go on", async () => {
    const limited = await tokenOf("limited-client", 3);
    for (let i = 0; i < 3; i++) assert.equal(await check(limited), "ok");
    const over = await check(limited);
    assert.ok(over instanceof ConnectError && over.code === Code.ResourceExhausted, String(over));
    assert.equal(over.rawMessage, "client rate limit exceeded");
    const retryAfter = Number(over.metadata.get("retry-after"));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
    // A new token of the same client shares its count; another client has its own.
    assert.ok((await check(await tokenOf("limited-client", 3))) instanceof ConnectError);
    assert.equal(await check(await tokenOf("other-client", 3)), "ok");
  });

  it("counts in one-minute windows; 0 means no limit of its own", () => {
    let now = 1_000_000;
    const limiter = clientRateLimiter(() => now);
    assert.equal(limiter.take("a", 2), 0);
    assert.equal(limiter.take("a", 2), 0);
    assert.equal(limiter.take("a", 2), 60);
    now += 30_000;
    assert.equal(limiter.take("a", 2), 30);
    now += 30_000;
    assert.equal(limiter.take("a", 2), 0, "a new window");
    for (let i = 0; i < 1000; i++) assert.equal(limiter.take("b", 0), 0);
  });
});
