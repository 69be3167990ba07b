// Edge conformance, rate limits: request N+1 of a window is the first
// refused, for each descriptor the edges send (envoy/ratelimit/config.yaml).
// Embedded: a system per suite with small limits of its own (minute windows,
// so a run never straddles a window by chance). EDGE_URL: the limits of
// envoy/ratelimit/config.yaml; per-second limits are hit with concurrent
// requests right after a second starts (a burst split across two windows is
// seen in the remaining counts and tried again).
import { strict as assert } from "node:assert";
import { findLimit, type Descriptor } from "../../../edge/ratelimit.js";
import { awayFromWindowEdge, call, EDGE_KINDS, expectLocalReply, expectStatus, isEdgeRateLimited, register, startTarget, type Answer, type Target } from "./target.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const IP = "0.0.0.0"; // any value: the config limits remote_address per value

function limitOf(t: Target, d: Descriptor): { n: number; unit: number } {
  const l = findLimit(t.limits, d)?.limit;
  assert.ok(l && !l.unlimited, `no limit for ${JSON.stringify(d)} in the target's config`);
  return { n: l.requestsPerUnit, unit: l.unitSeconds };
}

/**
 * Send n+1 requests inside one window and check that exactly the last one is
 * refused by the edge, with the rate-limit headers.
 */
async function expectNthPlusOneRefused(t: Target, limit: { n: number; unit: number }, send: () => Promise<Answer>): Promise<Answer> {
  const { n, unit } = limit;
  for (let attempt = 0; attempt < 3; attempt++) {
    let answers: Answer[];
    if (unit === 1) {
      await sleep(1000 - (Date.now() % 1000) + 20); // just after a second starts
      answers = await Promise.all(Array.from({ length: n + 1 }, send));
    } else {
      // A real edge's window may hold earlier requests of this run: start in a fresh one.
      if (!t.embedded) await sleep((unit - ((Date.now() / 1000) % unit)) * 1000 + 200);
      else await awayFromWindowEdge(unit, 15);
      answers = [];
      for (let i = 0; i <= n; i++) {
        answers.push(await send());
        // A real edge also limits per second (per IP): stay well under it, so only this limit can refuse.
        if (!t.embedded) await sleep(100);
      }
    }
    const refused = answers.filter(isEdgeRateLimited);
    const remaining = answers.filter((a) => !isEdgeRateLimited(a)).map((a) => Number(a.headers.get("x-ratelimit-remaining")));
    const split = unit === 1 && refused.length === 0 && new Set(remaining).size < remaining.length;
    if (split) continue; // the burst crossed a second boundary: again
    for (const a of answers.filter((x) => !isEdgeRateLimited(x))) assert.ok(a.status < 500 && a.status !== 429, `unexpected ${a.status}: ${a.text}`);
    assert.equal(refused.length, 1, `exactly one of ${n + 1} refused (statuses ${answers.map((a) => a.status).join(",")})`);
    if (unit !== 1) {
      assert.ok(isEdgeRateLimited(answers[n]), "request N+1 is the one refused");
      assert.deepEqual(
        remaining,
        Array.from({ length: n }, (_, i) => n - 1 - i),
        "x-ratelimit-remaining counts down to 0",
      );
    } else {
      assert.deepEqual(
        [...remaining].sort((a, b) => a - b),
        Array.from({ length: n }, (_, i) => i),
      );
    }
    const r = refused[0];
    assert.equal(r.status, 429);
    assert.match(r.headers.get("x-ratelimit-limit") ?? "", new RegExp(`^\\d+(, \\d+;w=\\d+)*$`));
    assert.ok((r.headers.get("x-ratelimit-limit") ?? "").includes(`${n};w=${unit}`), `x-ratelimit-limit ${r.headers.get("x-ratelimit-limit")}`);
    const reset = Number(r.headers.get("x-ratelimit-reset"));
    assert.ok(reset >= 1 && reset <= unit, `x-ratelimit-reset ${reset}`);
    const retry = Number(r.headers.get("retry-after"));
    assert.ok(retry >= 1 && retry <= unit, `retry-after ${r.headers.get("retry-after")}`);
    return r;
  }
  assert.fail("every burst crossed a window boundary");
}

for (const kind of EDGE_KINDS) {
  describe(`edge conformance (${kind}): rate limits`, function () {
    this.timeout(kind === "embedded" ? 60_000 : 300_000);

    describe("per client IP", () => {
      let t: Target;
      before(async () =>
        (t = await startTarget(kind, {
          rateLimitYaml: `
  domain: acme
  descriptors:
    - key: remote_address
      rate_limit: { unit: minute, requests_per_unit: 5 }
  `,
        })));
      after(async () => t?.stop());

      it("refuses request N+1 of a window, on public routes too", async () => {
        const limit = limitOf(t, [["remote_address", IP]]);
        await expectNthPlusOneRefused(t, limit, () => call(t, "GET", "/.well-known/jwks.json", { waitForQuota: false }));
      });
    });

    const smallLimits = `
  domain: acme
  descriptors:
    - key: remote_address
      rate_limit: { unit: minute, requests_per_unit: 1000 }
    - key: user_per_second
      rate_limit: { unit: minute, requests_per_unit: 3 }
    - key: user_per_minute
      rate_limit: { unit: hour, requests_per_unit: 1000 }
    - key: rate_class
      value: auth
      descriptors:
        - key: remote_address
          rate_limit: { unit: minute, requests_per_unit: 4 }
  `;

    describe("per user", () => {
      let t: Target;
      before(async () => (t = await startTarget(kind, { rateLimitYaml: smallLimits })));
      after(async () => t?.stop());

      it("limits each user by the sub of their token", async () => {
        const [alice, bob] = [await register(t, "rl-alice"), await register(t, "rl-bob")];
        const limit = limitOf(t, [["user_per_second", alice.id]]);
        await expectNthPlusOneRefused(t, limit, () => call(t, "GET", "/v1/users/me", { token: alice.access, waitForQuota: false }));
        expectStatus(await call(t, "GET", "/v1/users/me", { token: bob.access, waitForQuota: false }), 200, "another user");
      });
    });

    describe("per rate class", () => {
      let t: Target;
      before(async () => (t = await startTarget(kind, { rateLimitYaml: smallLimits })));
      after(async () => t?.stop());

      it("limits the credential endpoints (rate class auth) per client IP", async () => {
        const limit = limitOf(t, [["rate_class", "auth"], ["remote_address", IP]]);
        const refused = await expectNthPlusOneRefused(t, limit, () =>
          call(t, "POST", "/v1/auth/refresh", { body: { refreshToken: "made-up" }, waitForQuota: false }),
        );
        expectLocalReply(refused, 429, "rate limit exceeded", "the edge's own refusal");
        // Routes outside the class are still served.
        expectStatus(await call(t, "GET", "/.well-known/jwks.json", { waitForQuota: false }), 200, "a route outside the class");
      });
    });
  });
}
