// Issue 16: one access policy, declared in the .proto files, decided by one
// module (platform/policy.ts) and answered the same at every entry point.
// The pairs come from the descriptors: a new method is covered as it is added.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { parse } from "yaml";
import { policies, productServices } from "../../app/contract.js";
import { policyTable } from "../../platform/policy.js";
import { loadConfig } from "../../platform/config.js";
import { loadAuthConfig } from "../../services/auth/config.js";
import { TokenMinter } from "../../services/auth/tokens.js";
import { renderEnvoyConfig } from "../../scripts/envoy-config.js";
import { authModule } from "../auth/helpers.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { filterConfig, JWT } from "../envoy/inputs.js";
import { jwtFor } from "../envoy/simulate.js";
import { stackKeys } from "../stack/support.js";
import { sharedEdgeStack } from "../support/edge-stack.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import {
  bearer, callRpc, describePair, expected, KINDS, pairs, principalOf, restOutcome, restRequest, rpcOutcome, tokenFor, type Outcome, type Pair,
} from "./table.js";

const show = (o: Outcome) => (o.allowed ? "allowed" : Code[o.code]);

/** Every pair through `ask`; the mismatches, for one readable failure. */
async function mismatches(
  list: Pair[],
  ask: (pair: Pair, token: string | undefined) => Promise<Outcome | undefined>,
  minter: TokenMinter,
  databaseUrl: string,
  paceMs = 0,
) {
  const out: string[] = [];
  let asked = 0;
  for (const listed of list) {
    // Owner-only RPCs act on a user of their own (an admin's DeleteUser removes it).
    const pair = listed.policy.owner ? { ...listed, ownerId: await newProfile(databaseUrl) } : listed;
    const principal = principalOf(pair.kind, pair.policy);
    const got = await ask(pair, await tokenFor(minter, principal));
    if (!got) continue;
    asked++;
    const want = expected(pair, principal);
    if (show(got) !== show(want)) out.push(`${describePair(pair)}: policy says ${show(want)}, entry answered ${show(got)}`);
    if (paceMs) await sleep(paceMs);
  }
  return { out, asked };
}

async function newProfile(databaseUrl: string): Promise<string> {
  const id = randomUUID();
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  await c.query("insert into users.profiles (id, email, name) values ($1, $2, 'Owner')", [id, `owner-${id}@example.com`]);
  await c.end();
  return id;
}

describe("policy table: the contract's decision at every entry point", function () {
  this.timeout(240_000);
  let t: TestSystem;
  let minter: TokenMinter;
  const ownerId = randomUUID();
  let list: Pair[];

  let limits: { path: string; remove(): void };
  before(async () => {
    limits = tempRateLimitConfig(GENEROUS_LIMITS);
    t = await startTestSystem({ env: { RATELIMIT_CONFIG: limits.path, VERIFIED_EMAIL_POLICY: "enforce" } });
    minter = authModule(t).internals.minter;
    list = pairs(policies, ownerId);
  });
  after(async () => {
    await t?.system.stop();
    limits?.remove();
  });

  it("is built from the descriptors: every method, every principal kind, with both answers for each kind", () => {
    assert.equal(list.length, policies.all().length * KINDS.length);
    for (const kind of ["user", "admin", "service-granted"]) {
      const answers = new Set(list.filter((p) => p.kind === kind).map((p) => show(expected(p, principalOf(p.kind, p.policy)))));
      assert.ok(answers.has("allowed") && answers.size > 1, `${kind}: ${[...answers]}`);
    }
  });

  it("decides as the contract documents (spot checks of the decision itself)", () => {
    const decide = (path: string, kind: Pair["kind"]) => {
      const policy = policies.get(path)!;
      return show(expected({ policy, kind, ownerId: policy.owner ? ownerId : undefined }, principalOf(kind, policy)));
    };
    assert.equal(decide("/acme.auth.v1.AuthService/Login", "anonymous"), "allowed");
    assert.equal(decide("/acme.user.v1.UserService/GetMe", "anonymous"), "Unauthenticated");
    assert.equal(decide("/acme.user.v1.UserService/GetMe", "service-granted"), "PermissionDenied");
    assert.equal(decide("/acme.user.v1.UserService/ListUsers", "user"), "PermissionDenied");
    assert.equal(decide("/acme.user.v1.UserService/ListUsers", "admin"), "allowed");
    assert.equal(decide("/acme.user.v1.UserService/GetUser", "user"), "NotFound"); // someone else's id
    assert.equal(decide("/acme.user.v1.UserService/GetUser", "admin"), "allowed");
    assert.equal(decide("/acme.user.v1.UserInternalService/CheckUser", "user"), "PermissionDenied");
    assert.equal(decide("/acme.user.v1.UserInternalService/CheckUser", "service-granted"), "allowed");
    assert.equal(decide("/acme.user.v1.UserInternalService/CheckUser", "service-other"), "PermissionDenied");
    // docs/accounts.md: an unverified account may sign in and read, but not create orders.
    assert.equal(decide("/acme.auth.v1.AuthService/Login", "unverified"), "allowed");
    assert.equal(decide("/acme.user.v1.UserService/GetMe", "unverified"), "allowed");
    assert.equal(decide("/acme.auth.v1.AuthService/ResendVerification", "unverified"), "allowed");
    assert.equal(decide("/acme.order.v1.OrderService/CreateOrder", "unverified"), "PermissionDenied");
    assert.equal(decide("/acme.order.v1.OrderService/CreateOrder", "user"), "allowed");
    assert.equal(decide("/acme.order.v1.OrderService/ListOrders", "unverified"), "allowed");
    const verifiedOnly = policies.all().filter((p) => p.verifiedEmail).map((p) => p.path);
    assert.deepEqual(verifiedOnly, ["/acme.order.v1.OrderService/CreateOrder"]);
  });

  it("VERIFIED_EMAIL_POLICY=off: the same contract lets an unverified account create orders", () => {
    const off = policyTable(productServices, { verifiedEmail: false });
    const policy = off.get("/acme.order.v1.OrderService/CreateOrder")!;
    assert.equal(show(expected({ policy, kind: "unverified" }, principalOf("unverified", policy))), "allowed");
  });

  it("gRPC to the services answers every pair as the policy decides", async () => {
    const transport = (token?: string) => createGrpcTransport({ baseUrl: t.url, interceptors: bearer(token) });
    const { out, asked } = await mismatches(list, async (pair, token) => rpcOutcome(pair, await callRpc(transport, pair, token)), minter, t.env.DATABASE_URL);
    assert.equal(asked, list.length);
    assert.deepEqual(out, []);
  });

  it("Connect to the services answers every pair as the policy decides", async () => {
    const transport = (token?: string) => createConnectTransport({ baseUrl: t.url, httpVersion: "1.1", interceptors: bearer(token) });
    const { out, asked } = await mismatches(list, async (pair, token) => rpcOutcome(pair, await callRpc(transport, pair, token)), minter, t.env.DATABASE_URL);
    assert.equal(asked, list.length);
    assert.deepEqual(out, []);
  });

  it("REST on the embedded edge answers every routed pair as the policy decides", async () => {
    const { out, asked } = await mismatches(list, async (pair, token) => {
      const r = restRequest(pair);
      if (!r) return undefined;
      const headers: Record<string, string> = { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) };
      const res = await fetch(`${t.url}${r.path}`, { method: r.method, headers, body: r.body });
      return restOutcome(pair, res.status, await res.text());
    }, minter, t.env.DATABASE_URL);
    assert.ok(asked >= 20 * 5, `asked ${asked}`);
    assert.deepEqual(out, []);
  });

  it("Envoy's generated config asks for a JWT exactly where the policy refuses an anonymous caller", () => {
    const jwt = filterConfig(parse(renderEnvoyConfig(undefined, [...policies.all()])), JWT);
    const wrong = policies.all().filter((p) => !p.internal).filter((p) => {
      const refused = !expected({ policy: p, kind: "anonymous" }, undefined).allowed;
      return (jwtFor(jwt, p.path).providers.length > 0) !== refused;
    });
    assert.deepEqual(wrong.map((p) => p.path), []);
  });

  it("the real stack: REST through Envoy and gRPC to each service process answer every pair as the policy decides", async () => {
    const stack = await sharedEdgeStack();
    const keys = await stackKeys(stack);
    const stackOwner = randomUUID();
    try {
      const cfg = loadAuthConfig(loadConfig({ METRICS_PORT: "0", DATABASE_URL: stack.databaseUrl }));
      const stackMinter = new TokenMinter(keys.keys, cfg);
      // The shared stack runs with VERIFIED_EMAIL_POLICY=off (test/support/edge-stack.ts): its table.
      const routed = pairs(policyTable(productServices, { verifiedEmail: false }), stackOwner);
      // Paced under Envoy's per-address backstop (20/s); a 429 counts as let through by the policy.
      const { out, asked } = await mismatches(routed, async (pair, token) => {
        const r = restRequest(pair);
        if (!r) return undefined;
        const headers: Record<string, string> = { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) };
        const res = await fetch(`${stack.edgeUrl}${r.path}`, { method: r.method, headers, body: r.body });
        return restOutcome(pair, res.status, await res.text());
      }, stackMinter, stack.databaseUrl, 80);
      assert.ok(asked >= 20 * 5, `asked ${asked}`);
      assert.deepEqual(out, []);
      // And gRPC straight to each service process of the stack (no edge in front).
      const direct = await mismatches(routed, async (pair, token) => {
        const name = pair.policy.service.typeName.split(".")[1] as "auth" | "user" | "order";
        const transport = (tk?: string) => createGrpcTransport({ baseUrl: stack.serviceUrl(name), interceptors: bearer(tk) });
        return rpcOutcome(pair, await callRpc(transport, pair, token));
      }, stackMinter, stack.databaseUrl);
      assert.equal(direct.asked, routed.length);
      assert.deepEqual(direct.out, []);
    } finally {
      await keys.close();
    }
  });
});
