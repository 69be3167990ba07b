// envoy/envoy.yaml is generated from the contract by scripts/envoy-config.ts: the
// committed file must be what the generator writes today, and the generator must
// follow a contract change (and refuse a contract it cannot express).
import assert from "node:assert/strict";
import { parse } from "yaml";
import { Access, type MethodPolicy } from "../../platform/policy.js";
import { loadSettings, renderEnvoyConfig } from "../../scripts/envoy-config.js";
import { checkPolicyRouting, checkTranscoder } from "./crosscheck.js";
import { parseBootstrap } from "./envoy-protos.js";
import { copyOf, filterConfig, JWT, loadInputs, readRepo } from "./inputs.js";

describe("scripts/envoy-config.ts (envoy/envoy.yaml from the contract)", function () {
  this.timeout(60_000);

  it("envoy/envoy.yaml is up to date (else: node --import tsx scripts/envoy-config.ts)", () => {
    assert.equal(readRepo("envoy/envoy.yaml"), renderEnvoyConfig());
  });

  it("is deterministic", () => {
    assert.equal(renderEnvoyConfig(), renderEnvoyConfig());
  });

  it("follows a policy change: a public RPC made private gets a JWT requirement", () => {
    const base = loadInputs();
    const policies: MethodPolicy[] = base.policies.map((p) =>
      p.path === "/acme.auth.v1.AuthService/GetJwks" ? { ...p, access: Access.AUTHENTICATED } : p);
    const envoy = parse(renderEnvoyConfig(loadSettings(), policies));
    parseBootstrap(envoy);
    const paths = filterConfig(envoy, JWT).rules.map((r: { match: { path?: string } }) => r.match.path);
    assert.ok(!paths.includes("/acme.auth.v1.AuthService/GetJwks"));
    assert.deepEqual(checkPolicyRouting({ ...copyOf(base), envoy, policies }), []);
    // ...and the committed config, checked against that changed contract, is caught.
    assert.match(checkPolicyRouting({ ...base, policies }).join("\n"), /GetJwks is ACCESS_AUTHENTICATED but passes jwt_authn without a JWT/);
  });

  it("follows a new internal service: left out of the transcoder, answered 404", () => {
    const base = loadInputs();
    const policies = base.policies.map((p) => (p.service.typeName === "acme.order.v1.OrderService" ? { ...p, internal: true, httpRules: [] } : p));
    const envoy = parse(renderEnvoyConfig(loadSettings(), policies));
    assert.deepEqual(checkTranscoder({ ...base, envoy, policies }), []);
    assert.deepEqual(checkPolicyRouting({ ...base, envoy, policies }), []);
  });

  it("refuses what it cannot express", () => {
    const base = loadInputs();
    const settings = loadSettings();
    delete (settings.upstreams as Record<string, unknown>).order;
    assert.throws(() => renderEnvoyConfig(settings), /no upstream "order" for acme\.order\.v1\.OrderService/);
    const service = base.policies.map((p) => (p.path === "/acme.user.v1.UserService/GetMe" ? { ...p, access: Access.SERVICE } : p));
    assert.throws(() => renderEnvoyConfig(loadSettings(), service), /GetMe is ACCESS_SERVICE on a routable service/);
    const noRule = base.policies.map((p) => (p.path === "/acme.user.v1.UserService/GetMe" ? { ...p, httpRules: [] } : p));
    assert.throws(() => renderEnvoyConfig(loadSettings(), noRule), /GetMe is routable but has no google\.api\.http rule/);
    assert.throws(() => renderEnvoyConfig({ ...loadSettings(), max_direct_response_body_bytes: 4096 }), /gen\/openapi\.json is \d+ bytes, over max_direct_response_body_bytes 4096/);
  });
});
