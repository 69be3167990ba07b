// envoy/envoy.yaml against the contract: every RPC's route, JWT requirement and
// rate-limit descriptors follow its (acme.edge.v1.policy); internal services are not
// routable; references inside the config resolve. Each check fails on a broken copy.
import assert from "node:assert/strict";
import { SERVICE_NAMES } from "../../app/services.js";
import { STRIPPED_PREFIXES } from "../../edge/headers.js";
import { Access } from "../../platform/policy.js";
import { EXTERNAL_ADDRESS_HEADER } from "../../platform/request.js";
import { OPENAPI_PATH } from "../../edge/openapi.js";
import {
  checkClusterRefs, checkCors, checkFilterChain, checkJwtRefs, checkJwtReplies, checkLocalReplies, checkOpenApi, checkPolicyRouting,
  checkTranscoder, CORS, GRPC_WEB, LOCAL_RATELIMIT,
} from "./crosscheck.js";
import { copyOf, filterConfig, hcm, httpFilters, JWT, loadInputs, RATELIMIT, TRANSCODER, vhost, type Inputs, type Json } from "./inputs.js";
import { destination, jwtRealm, localReply, routeFor } from "./simulate.js";

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
    // Derived from the contract: one public service per product service (acme.<name>.v1.*Service), in name order.
    const expected = [...new Set(base.policies.filter((p) => !p.internal).map((p) => p.service.typeName))].sort();
    assert.deepEqual(
      SERVICE_NAMES.map((name) => expected.filter((s) => s.startsWith(`acme.${name}.v1.`)).length),
      SERVICE_NAMES.map(() => 1),
      `one non-internal service per product service (${SERVICE_NAMES.join(", ")}): ${expected.join(", ")}`,
    );
    assert.deepEqual(filterConfig(base.envoy, TRANSCODER).services, expected);
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
    // x-forwarded-proto too: Envoy sets it itself and cannot route without it.
    assert.deepEqual(base.settings.keep_request_headers, [EXTERNAL_ADDRESS_HEADER, "x-forwarded-proto"]);
    const lua: string = filterConfig(base.envoy, "envoy.filters.http.lua").default_source_code.inline_string;
    for (const p of STRIPPED_PREFIXES) assert.ok(lua.includes(`"${p}"`), `Lua does not strip ${p}`);
    assert.ok(lua.includes(`["${EXTERNAL_ADDRESS_HEADER}"] = true`));
    assert.equal(hcm(base.envoy).use_remote_address, true);
    assert.equal(hcm(base.envoy).xff_num_trusted_hops, 0);
  });

  it("routes gRPC-Web calls like gRPC (the route is chosen before grpc_web rewrites the content-type)", () => {
    const getMe = routeFor(base.envoy, { path: "/acme.user.v1.UserService/GetMe", grpc: false, contentType: "application/grpc-web+proto" });
    assert.equal(destination(getMe).cluster, "user");
    const login = routeFor(base.envoy, { path: "/acme.auth.v1.AuthService/Login", grpc: false, contentType: "application/grpc-web-text" });
    assert.equal(login?.name, "acme.auth.v1.AuthService/Login", "the rate-class route, with its descriptors");
    const names = httpFilters(base.envoy).map((f) => f.name);
    assert.ok(names.indexOf(CORS) < names.indexOf(GRPC_WEB) && names.indexOf(GRPC_WEB) < names.indexOf(TRANSCODER));
  });

  it("CORS allows the gRPC-Web and Connect request headers and exposes the rate-limit and gRPC headers, as the embedded edge", () => {
    assert.deepEqual(checkCors(base), []);
  });

  it("Envoy's own answers carry the security headers, and 429s retry-after", () => {
    assert.deepEqual(checkLocalReplies(base), []);
    const r = localReply(base.envoy, 429, { "x-ratelimit-reset": "12" });
    assert.equal(r["retry-after"], "12");
    assert.equal(r["x-frame-options"], "DENY");
  });

  it("jwt_authn answers 401 with its reason and a realm naming the REST path the client sent", () => {
    assert.deepEqual(checkJwtReplies(base), []);
    assert.equal(jwtRealm(base.envoy, { host: "localhost:8080", path: "/v1/users/me", grpcPath: "/acme.user.v1.UserService/GetMe" }), "http://localhost:8080/v1/users/me");
  });

  it(`serves ${OPENAPI_PATH} (gen/openapi.json) as a public direct response`, () => {
    assert.deepEqual(checkOpenApi(base), []);
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
      const i = broken((x) => { route(x, "acme.user.v1.UserService/GetMe").route.cluster = "order"; });
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

    const swap = (x: Inputs, a: string, b: string) => {
      const f = hcm(x.envoy).http_filters as Json[];
      const [ia, ib] = [f.findIndex((y) => y.name === a), f.findIndex((y) => y.name === b)];
      [f[ia], f[ib]] = [f[ib], f[ia]];
    };

    it("the JWT filter placed before the transcoder (it would see REST paths)", () => {
      const i = broken((x) => swap(x, TRANSCODER, JWT));
      has(checkFilterChain(i), /expected .*grpc_json_transcoder > envoy\.filters\.http\.jwt_authn/);
    });

    it("the Connect bridge on the REST route, or REST bodies not bounded (fuzz findings 1 and 5)", () => {
      const bridged = broken((x) => { delete route(x, "rest-before-transcoding").typed_per_filter_config["envoy.filters.http.connect_grpc_bridge"]; });
      has(checkFilterChain(bridged), /route rest-before-transcoding: connect_grpc_bridge runs on it/);
      const unbounded = broken((x) => { delete route(x, "rest-before-transcoding").typed_per_filter_config["envoy.filters.http.buffer"]; });
      has(checkFilterChain(unbounded), /does not buffer REST bodies up to MAX_BODY_BYTES/);
      const everywhere = broken((x) => { delete vhost(x.envoy).typed_per_filter_config["envoy.filters.http.buffer"]; });
      has(checkFilterChain(everywhere), /buffer filter is not disabled on the virtual host/);
    });

    it("grpc_web after the transcoder (gRPC-Web calls: 404)", () => {
      const i = broken((x) => swap(x, GRPC_WEB, TRANSCODER));
      has(checkFilterChain(i), /grpc_web runs after the transcoder/);
    });

    it("no grpc_web filter", () => {
      const i = broken((x) => { hcm(x.envoy).http_filters = httpFilters(x.envoy).filter((f) => f.name !== GRPC_WEB); });
      has(checkFilterChain(i), /no grpc_web filter/);
    });

    it("gRPC routes matching grpc: {} (a gRPC-Web call would miss them)", () => {
      const i = broken((x) => {
        for (const r of vhost(x.envoy).routes) {
          const grpcPath = r.route && (r.match.prefix ?? r.match.path ?? "").startsWith("/acme.");
          if (grpcPath || r.match.headers?.[0]?.name === "content-type") { delete r.match.headers; r.match.grpc = {}; }
        }
      });
      has(checkPolicyRouting(i), /GetMe over gRPC-Web \(application\/grpc-web\+proto\) matches route unknown-method, not acme\.user\.v1\.UserService\/GetMe/);
    });

    it("CORS without the gRPC-Web request headers", () => {
      const i = broken((x) => { const c = vhost(x.envoy).typed_per_filter_config[CORS]; c.allow_headers = c.allow_headers.replace(", x-grpc-web", ""); });
      has(checkCors(i), /allow_headers lacks x-grpc-web/);
      has(checkCors(i), /differ from the embedded edge's/);
    });

    it("CORS not exposing retry-after", () => {
      const i = broken((x) => { const c = vhost(x.envoy).typed_per_filter_config[CORS]; c.expose_headers = c.expose_headers.replace(", retry-after", ""); });
      has(checkCors(i), /expose_headers lacks retry-after/);
    });

    it("no local_reply_config (401/404/429 without the security headers, 429 without retry-after)", () => {
      const i = broken((x) => { delete hcm(x.envoy).local_reply_config; });
      has(checkLocalReplies(i), /jwt_authn 401: x-content-type-options is missing/);
      has(checkLocalReplies(i), /ratelimit 429: retry-after is missing/);
    });

    it("a local reply without the JSON error body, or with another code", () => {
      const noBody = broken((x) => { for (const m of hcm(x.envoy).local_reply_config.mappers) delete m.body_format_override; });
      has(checkLocalReplies(noBody), /jwt_authn 401: body the filter's own text, expected \{"code":16,"message":"the filter's own text"\}/);
      const wrongCode = broken((x) => { for (const m of hcm(x.envoy).local_reply_config.mappers) if (m.body_format_override?.json_format?.code === 3) m.body_format_override.json_format.code = 2; });
      has(checkLocalReplies(wrongCode), /transcoder 400 \(unknown query parameter\): body \{"code":2/);
    });

    it("JSON bodies for gRPC clients too (they read grpc-status, not a body)", () => {
      const i = broken((x) => { for (const m of hcm(x.envoy).local_reply_config.mappers) if (m.filter.and_filter) m.filter = m.filter.and_filter.filters[0]; });
      has(checkLocalReplies(i), /a gRPC request's local reply body was rewritten/);
    });

    it("the catch-all mapper first (it would win over the 429 one)", () => {
      const i = broken((x) => hcm(x.envoy).local_reply_config.mappers.reverse());
      has(checkLocalReplies(i), /ratelimit 429: retry-after is missing, expected "7"/);
    });

    it("a 429 mapper without the security headers (the first match wins)", () => {
      const i = broken((x) => {
        // The REST one (numeric code); the Connect one comes first but does not match a REST request.
        const m = hcm(x.envoy).local_reply_config.mappers.find((y: Json) => y.filter.and_filter?.filters[0].status_code_filter?.comparison.value.default_value === 429 && typeof y.body_format_override?.json_format?.code === "number");
        m.headers_to_add = m.headers_to_add.filter((h: Json) => h.header.key === "retry-after");
      });
      has(checkLocalReplies(i), /ratelimit 429: x-frame-options is missing/);
    });

    it("the ratelimit filter without x-ratelimit headers (retry-after would be empty)", () => {
      const i = broken((x) => { delete filterConfig(x.envoy, RATELIMIT).enable_x_ratelimit_headers; });
      has(checkLocalReplies(i), /enable_x_ratelimit_headers must be DRAFT_VERSION_03/);
      has(checkLocalReplies(i), /ratelimit 429: retry-after is missing/);
    });

    it("the local backstop's 429 without retry-after", () => {
      const i = broken((x) => { const l = filterConfig(x.envoy, LOCAL_RATELIMIT); l.response_headers_to_add = l.response_headers_to_add.filter((h: Json) => h.header.key !== "retry-after"); });
      has(checkLocalReplies(i), /local_ratelimit 429: retry-after is missing, expected "1"/);
    });

    it("jwt_authn with strip_failure_response", () => {
      has(checkJwtReplies(broken((x) => { filterConfig(x.envoy, JWT).strip_failure_response = true; })), /strip_failure_response/);
    });

    it("the Lua strip after the transcoder (it would delete x-envoy-original-path: realm = gRPC path)", () => {
      const i = broken((x) => { const f = hcm(x.envoy).http_filters as Json[]; const lua = f.shift(); f.splice(f.findIndex((y) => y.name === TRANSCODER) + 1, 0, lua); });
      has(checkJwtReplies(i), /GET \/v1\/users\/me: www-authenticate realm would be http:\/\/localhost:8080\/acme\.user\.v1\.UserService\/GetMe/);
    });

    it(`${OPENAPI_PATH} with the transcoder still in its filter chain (reject_unknown_method: 404)`, () => {
      has(checkOpenApi(broken((x) => { delete route(x, "openapi").typed_per_filter_config; })), /transcoder is not disabled on route openapi/);
    });

    it(`${OPENAPI_PATH} requiring a JWT`, () => {
      has(checkOpenApi(broken((x) => { filterConfig(x.envoy, JWT).rules = rules(x).filter((r) => r.match.path !== OPENAPI_PATH); })), /openapi\.json requires a JWT/);
    });

    it(`${OPENAPI_PATH} served as text/plain`, () => {
      has(checkOpenApi(broken((x) => { route(x, "openapi").response_headers_to_add.shift(); })), /content-type must be set to application\/json/);
    });

    it(`${OPENAPI_PATH} over Envoy's direct response body limit`, () => {
      has(checkOpenApi(broken((x) => { delete hcm(x.envoy).route_config.max_direct_response_body_size_bytes; })), /over max_direct_response_body_size_bytes 4096/);
    });

    it(`${OPENAPI_PATH} missing (the transcoder would answer 404)`, () => {
      has(checkOpenApi(broken((x) => { const v = vhost(x.envoy); v.routes = v.routes.filter((r: Json) => r.name !== "openapi"); })), /GET \/openapi\.json: route rest-before-transcoding is not a direct response/);
    });

    it("no route entry for REST paths before transcoding (CORS would not apply)", () => {
      const i = broken((x) => { vhost(x.envoy).routes.pop(); });
      has(checkPolicyRouting(i), /POST \/v1\/auth\/login: no route entry before transcoding/);
    });
  });
});
