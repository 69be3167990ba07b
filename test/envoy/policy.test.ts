// envoy/envoy.yaml against the contract: every RPC's route, JWT requirement and
// rate-limit descriptors follow its (acme.edge.v1.policy); internal services are not
// routable; references inside the config resolve. Each check fails on a broken copy.
import assert from "node:assert/strict";
import { STRIPPED_PREFIXES } from "../../edge/headers.js";
import { Access } from "../../platform/policy.js";
import { EXTERNAL_ADDRESS_HEADER } from "../../platform/request.js";
import { checkClusterRefs, checkFilterChain, checkJwtRefs, checkPolicyRouting, checkTranscoder } from "./crosscheck.js";
import { copyOf, filterConfig, hcm, JWT, loadInputs, TRANSCODER, vhost, type Inputs, type Json } from "./inputs.js";
import { destination, routeFor } from "./simulate.js";

describe("envoy/envoy.yaml follows the contract (proto/ edge policy)", () => {
  let base: Inputs;
  before(() => { base = loadInputs(); });

  it("references resolve: clusters, JWT requirements and providers, per-filter configs", () => {
    assert.deepEqual(checkClusterRefs(base), []);
    assert.deepEqual(checkJwtRefs(base), []);
    assert.deepEqual(checkFilterChain(base), []);
  });

  it("transcodes exactly the non-internal services, fully qualified, as in gen/api.binpb", () => {
    assert.deepEqual(checkTranscoder(base), []);
    assert.deepEqual(filterConfig(base.envoy, TRANSCODER).services, ["acme.auth.v1.AuthService", "acme.order.v1.OrderService", "acme.user.v1.UserService"]);
  });

  it("every RPC reaches its cluster with its JWT requirement and rate-limit descriptors", () => {
    assert.deepEqual(checkPolicyRouting(base), []);
    const rpcs = base.policies.filter((p) => !p.internal);
    assert.ok(rpcs.length >= 20 && rpcs.some((p) => p.access === Access.PUBLIC) && rpcs.some((p) => p.rateLimit === "auth"));
  });

  it("answers every internal RPC with an explicit 404 (native gRPC); REST has no rule for them", () => {
    const internal = base.policies.filter((p) => p.internal);
    assert.ok(internal.length >= 5);
    for (const p of internal) {
      assert.deepEqual(destination(routeFor(base.envoy, { path: p.path, grpc: true })), { status: 404 }, p.path);
      assert.equal(p.httpRules.length, 0, `${p.path} has an http rule`);
    }
  });

  it("verifies JWTs as agreed: ES256 JWKS from auth, async fetch with retries, sub in metadata", () => {
    const jwt = filterConfig(base.envoy, JWT);
    const p = jwt.providers.acme;
    assert.equal(p.issuer, "acme-auth");
    assert.deepEqual(p.audiences, ["acme-api"]);
    assert.equal(p.remote_jwks.http_uri.uri, "http://auth:50051/.well-known/jwks.json");
    assert.ok(p.remote_jwks.async_fetch && p.remote_jwks.retry_policy?.num_retries > 0);
    assert.equal(p.payload_in_metadata, "jwt_payload");
    assert.deepEqual(p.from_headers, [{ name: "authorization", value_prefix: "Bearer " }]);
    assert.equal(jwt.bypass_cors_preflight, true);
    assert.equal(p.claim_to_headers, undefined, "identity travels as metadata, never as headers");
  });

  it("strips the same client headers as the embedded edge, keeping the client address Envoy sets", () => {
    assert.deepEqual(base.settings.strip_request_header_prefixes, [...STRIPPED_PREFIXES]);
    assert.deepEqual(base.settings.keep_request_headers, [EXTERNAL_ADDRESS_HEADER]);
    const lua: string = filterConfig(base.envoy, "envoy.filters.http.lua").default_source_code.inline_string;
    for (const p of STRIPPED_PREFIXES) assert.ok(lua.includes(`"${p}"`), `Lua does not strip ${p}`);
    assert.ok(lua.includes(`["${EXTERNAL_ADDRESS_HEADER}"] = true`));
    assert.equal(hcm(base.envoy).use_remote_address, true);
    assert.equal(hcm(base.envoy).xff_num_trusted_hops, 0);
  });

  describe("catches a broken copy", () => {
    const broken = (mutate: (i: Inputs) => void) => { const i = copyOf(base); mutate(i); return i; };
    const has = (problems: string[], re: RegExp) => assert.ok(problems.some((p) => re.test(p)), `expected ${re} in:\n${problems.join("\n") || "(none)"}`);
    const route = (i: Inputs, name: string) => vhost(i.envoy).routes.find((r: Json) => r.name === name);
    const rules = (i: Inputs) => filterConfig(i.envoy, JWT).rules as Json[];

    it("a route to a cluster that does not exist", () => {
      const i = broken((x) => { x.envoy.static_resources.clusters = x.envoy.static_resources.clusters.filter((c: Json) => c.name !== "order"); });
      has(checkClusterRefs(i), /cluster "order" does not exist/);
    });

    it("a requirement_name that does not exist", () => {
      const i = broken((x) => { filterConfig(x.envoy, JWT).requirement_map = { signed_in: { provider_name: "acme" } }; });
      has(checkJwtRefs(i), /requirement_name "authenticated" does not exist/);
    });

    it("a requirement naming an unknown provider", () => {
      const i = broken((x) => { filterConfig(x.envoy, JWT).requirement_map.authenticated.provider_name = "okta"; });
      has(checkJwtRefs(i), /provider "okta" does not exist/);
    });

    it("no catch-all rule (jwt_authn would let unmatched requests through)", () => {
      const i = broken((x) => { rules(x).pop(); });
      has(checkJwtRefs(i), /last jwt_authn rule must be a catch-all/);
      has(checkPolicyRouting(i), /GetMe is ACCESS_AUTHENTICATED but passes jwt_authn without a JWT/);
    });

    it("an internal service routed", () => {
      const i = broken((x) => { route(x, "internal:acme.user.v1.UserInternalService").direct_response = undefined; route(x, "internal:acme.user.v1.UserInternalService").route = { cluster: "user" }; });
      has(checkPolicyRouting(i), /UserInternalService\/CheckUser is internal but routed to cluster user/);
    });

    it("an internal service reachable through the catch-all (its 404 route removed)", () => {
      const i = broken((x) => { const v = vhost(x.envoy); v.routes = v.routes.filter((r: Json) => !r.name.startsWith("internal:")); v.routes.unshift({ name: "all", match: { prefix: "/acme.order.v1." }, route: { cluster: "order" } }); });
      has(checkPolicyRouting(i), /OrderInternalService\/MarkOwnerDeleted is internal but routed/);
    });

    it("an internal service in the transcoder's services", () => {
      const i = broken((x) => { filterConfig(x.envoy, TRANSCODER).services.push("acme.auth.v1.AuthInternalService"); });
      has(checkTranscoder(i), /!= non-internal services/);
    });

    it("a service name that is not fully qualified", () => {
      const i = broken((x) => { filterConfig(x.envoy, TRANSCODER).services[0] = "AuthService"; });
      has(checkTranscoder(i), /AuthService is not in gen\/api\.binpb/);
    });

    it("a public route requiring a JWT", () => {
      const i = broken((x) => { filterConfig(x.envoy, JWT).rules = rules(x).filter((r) => r.match.path !== "/acme.auth.v1.AuthService/Login"); });
      has(checkPolicyRouting(i), /AuthService\/Login is ACCESS_PUBLIC but jwt_authn requires a JWT/);
    });

    it("a private route exempt from JWT", () => {
      const i = broken((x) => { rules(x).unshift({ match: { prefix: "/acme.order.v1.OrderService/" } }); });
      has(checkPolicyRouting(i), /OrderService\/CreateOrder is ACCESS_AUTHENTICATED but passes jwt_authn without a JWT/);
    });

    it("a service routed to the wrong cluster", () => {
      const i = broken((x) => { route(x, "acme.user.v1.UserService").route.cluster = "order"; });
      has(checkPolicyRouting(i), /UserService\/GetMe reaches order, expected cluster user/);
    });

    it("route-level limits without vh_rate_limits: INCLUDE (the IP and user limits vanish)", () => {
      const i = broken((x) => { delete route(x, "acme.auth.v1.AuthService/ChangePassword").typed_per_filter_config; });
      has(checkPolicyRouting(i), /ChangePassword .* sends \[\(rate_class, auth\), \(remote_address, [\d.]+\)\], expected/);
    });

    it("an auth-class RPC without its rate_class descriptor", () => {
      const i = broken((x) => { route(x, "acme.auth.v1.AuthService/Login").route.rate_limits = []; });
      has(checkPolicyRouting(i), /AuthService\/Login \(ACCESS_PUBLIC, rate class auth\) sends \[\(remote_address/);
    });

    it("a user descriptor taken from a client header instead of the JWT metadata", () => {
      const i = broken((x) => { vhost(x.envoy).rate_limits[1] = { actions: [{ request_headers: { header_name: "x-user-id", descriptor_key: "user_per_second" } }] }; });
      has(checkPolicyRouting(i), /user_per_second comes from client header x-user-id, not from the verified JWT/);
    });

    it("a descriptor missing from envoy/ratelimit/config.yaml", () => {
      const i = broken((x) => { x.ratelimit.descriptors = x.ratelimit.descriptors.filter((d: Json) => d.key !== "user_per_minute"); });
      has(checkPolicyRouting(i), /descriptor \[\(user_per_minute, user-42\)\] has no limit/);
    });

    it("a ratelimit entry that Envoy never sends", () => {
      const i = broken((x) => { x.ratelimit.descriptors.push({ key: "user_per_hour", rate_limit: { unit: "hour", requests_per_unit: 1000 } }); });
      has(checkPolicyRouting(i), /user_per_hour is never sent/);
    });

    it("the JWT filter placed before the transcoder (it would see REST paths)", () => {
      const i = broken((x) => { const f = x.envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters; [f[2], f[3]] = [f[3], f[2]]; });
      has(checkFilterChain(i), /expected .*grpc_json_transcoder > envoy\.filters\.http\.jwt_authn/);
    });

    it("no route entry for REST paths before transcoding (CORS would not apply)", () => {
      const i = broken((x) => { vhost(x.envoy).routes.pop(); });
      has(checkPolicyRouting(i), /POST \/v1\/auth\/login: no route entry before transcoding/);
    });
  });
});
