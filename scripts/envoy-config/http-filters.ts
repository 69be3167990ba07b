// The HTTP filter chain, in the order a request goes through it: header strip
// (lua), CORS, gRPC-Web, transcoder, JWT, local backstop, global rate limit, router.
import { ACCEPTED_BODY_TYPES, HSTS, HSTS_HEADER } from "../../edge/headers.js";
import { DOCS_PATH, DOCS_PREFIX } from "../../edge/docs.js";
import { OPENAPI_PATH } from "../../edge/openapi.js";
import { DEFAULT_RETRY_AFTER_SECONDS } from "../../platform/errors.js";
import { Access } from "../../platform/policy.js";
import { note } from "./commented-yaml.js";
import { httpRuleText, type EdgeContract } from "./contract.js";
import { BUFFER, CONNECT_BRIDGE, CONNECT_MARK, EDGE_METADATA, FILTERED_MARK, JWT_FILTER, JWT_PAYLOAD, setHeaders, T, TRANSCODER, type ListenerKind } from "./envoy-values.js";
import { REST_BODY_LIMIT_BYTES } from "./routes.js";
import type { EdgeSettings } from "./settings.js";

const percent100 = (runtimeKey: string) => ({
  default_value: { numerator: 100, denominator: "HUNDRED" },
  runtime_key: runtimeKey,
});
/** The jwt_authn requirement of every path no rule exempts. */
const REQUIREMENT = "authenticated";

/** "1s" / "0.5s" -> whole seconds, rounded up (at least 1). */
const ceilSeconds = (d: string) => Math.max(1, Math.ceil(Number(/^(\d+(?:\.\d+)?)s$/.exec(d)?.[1] ?? NaN)));

/**
 * On the plain listener only: a browser navigation (GET/HEAD with Upgrade-Insecure-Requests: 1,
 * which browsers send and API clients do not) is answered 301 to the same host and path on the
 * HTTPS listener; everything else (REST, gRPC h2c, Connect) is served as before (docs/tls.md).
 */
function redirectLua(s: EdgeSettings): string[] {
  const port = s.tls.listener_port === 443 ? "" : `:${s.tls.listener_port}`;
  return [
    "  -- Browser navigations go to https (docs/tls.md); API clients keep plain HTTP.",
    "  local method = headers:get(\":method\")",
    "  if headers:get(\"upgrade-insecure-requests\") == \"1\" and (method == \"GET\" or method == \"HEAD\") then",
    "    local authority = headers:get(\":authority\") or \"\"",
    "    local host = string.match(authority, \"^%[[^%]]*%]\") or string.match(authority, \"^[^:]+\") or \"localhost\"",
    `    handle:respond({ [":status"] = "301", ["location"] = "https://" .. host .. "${port}" .. headers:get(":path") }, "")`,
    "    return",
    "  end",
  ];
}

function stripLua(s: EdgeSettings, kind: ListenerKind): string {
  return [
    "-- Drop client-sent headers that only the edge may set (envoy/settings.yaml). Envoy's",
    "-- connection manager has already set the kept ones itself, overwriting client values.",
    `local prefixes = { ${s.strip_request_header_prefixes.map((p) => JSON.stringify(p)).join(", ")} }`,
    `local keep = { ${s.keep_request_headers.map((h) => `[${JSON.stringify(h)}] = true`).join(", ")} }`,
    `local accepted = { ${ACCEPTED_BODY_TYPES.map((t) => JSON.stringify(t)).join(", ")} }`,
    "function envoy_on_request(handle)",
    "  local headers = handle:headers()",
    ...(kind === "plain" ? redirectLua(s) : []),
    "  local doomed = {}",
    "  for name, _ in pairs(headers) do",
    "    if not keep[name] then",
    "      for _, prefix in ipairs(prefixes) do",
    "        if string.sub(name, 1, #prefix) == prefix then",
    "          doomed[#doomed + 1] = name",
    "          break",
    "        end",
    "      end",
    "    end",
    "  end",
    "  for _, name in ipairs(doomed) do",
    "    headers:remove(name)",
    "  end",
    "  -- Seen by the filters: the local reply mappers tell the connection manager's own early",
    "  -- refusals (bad path, codec: no filter ran, no text) from the filters' (dynamic metadata).",
    `  handle:streamInfo():dynamicMetadata():set("${EDGE_METADATA}", "${FILTERED_MARK}", true)`,
    "  local ctype = string.lower(headers:get(\"content-type\") or \"\")",
    "  -- A Connect call: a method path (/<package>.<Service>/<Method>, never a REST path) with",
    "  -- connect-protocol-version or a Connect streaming type. Marked for the local reply mappers",
    "  -- (Connect's error body): connect_grpc_bridge removes what made it one.",
    "  local path = string.match(headers:get(\":path\") or \"\", \"^[^?]*\")",
    "  local method_path = string.match(path, \"^/[%a_][%w_]*%.[%w_%.]*[%w_]/[^/]*$\") ~= nil",
    "  if method_path and (headers:get(\"connect-protocol-version\") ~= nil or string.sub(ctype, 1, 20) == \"application/connect+\") then",
    `    handle:streamInfo():dynamicMetadata():set("${EDGE_METADATA}", "${CONNECT_MARK}", true)`,
    "    -- gRPC bytes are not a Connect body (the bridge would mangle them): 415.",
    "    if string.sub(ctype, 1, 16) == \"application/grpc\" then",
    "      handle:respond({ [\":status\"] = \"415\" }, \"content-type \\\"\" .. ctype .. \"\\\" is not a Connect content-type\")",
    "      return",
    "    end",
    "    -- A unary Connect call's body is application/proto or application/json (UTF-8): 415 otherwise,",
    "    -- in Connect's error body (the bridge would pass an empty answer on), as the services do.",
    "    -- No method of the contract is marked idempotent (Connect GET): POST only, as the services.",
    "    if headers:get(\":method\") ~= \"POST\" then",
    "      handle:respond({ [\":status\"] = \"405\", [\"allow\"] = \"POST\" }, \"HTTP method \" .. (headers:get(\":method\") or \"\") .. \" is not allowed for this RPC; use POST\")",
    "      return",
    "    end",
    "    local bare = string.gsub(ctype, \" \", \"\")",
    "    if headers:get(\":method\") == \"POST\" and bare ~= \"application/proto\" and bare ~= \"application/json\" and bare ~= \"application/json;charset=utf-8\" then",
    "      handle:respond({ [\":status\"] = \"415\" }, \"content-type \\\"\" .. ctype .. \"\\\" is not supported by this RPC; send application/proto or application/json\")",
    "      return",
    "    end",
    "  end",
    "  -- grpc-timeout is a gRPC client's deadline: REST and Connect callers get no say in Envoy's timeouts.",
    "  if string.sub(ctype, 1, 16) ~= \"application/grpc\" then headers:remove(\"grpc-timeout\") end",
    "  -- application/grpc;params is gRPC to neither Envoy nor the services: 415, as the embedded edge.",
    "  if string.sub(ctype, 1, 17) == \"application/grpc;\" then",
    "    handle:respond({ [\":status\"] = \"415\" }, \"content-type \\\"\" .. ctype .. \"\\\" is not accepted\")",
    "    return",
    "  end",
    "  -- A body must be JSON or a gRPC/Connect type (edge/headers.ts ACCEPTED_BODY_TYPES): 415 otherwise.",
    "  local length = headers:get(\"content-length\")",
    "  if (length ~= nil and length ~= \"0\") or headers:get(\"transfer-encoding\") ~= nil then",
    "    local ok = false",
    "    for _, t in ipairs(accepted) do",
    "      if string.sub(ctype, 1, #t) == t then ok = true break end",
    "    end",
    "    if not ok then",
    "      handle:respond({ [\":status\"] = \"415\" }, \"content-type \\\"\" .. ctype .. \"\\\" is not accepted: send application/json\")",
    "    end",
    "  end",
    "end",
    "-- Every 503 tells the client when to retry (docs/outages.md): a service's UNAVAILABLE",
    "-- carries retry-after in its gRPC trailers, which the transcoder does not copy to a REST",
    "-- answer, and Envoy's own 503s have none.",
    "function envoy_on_response(handle)",
    "  local headers = handle:headers()",
    `  if headers:get(":status") == "503" and headers:get("retry-after") == nil then headers:add("retry-after", "${DEFAULT_RETRY_AFTER_SECONDS}") end`,
    "end",
    "",
  ].join("\n");
}

function jwtAuthn(s: EdgeSettings, { routed }: EdgeContract) {
  const publicRpcs = routed.filter((p) => p.access === Access.PUBLIC);
  return {
    "@type": T("envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"),
    providers: {
      [s.jwt.provider]: {
        issuer: s.jwt.issuer,
        audiences: s.jwt.audiences,
        require_expiration: true,
        clock_skew_seconds: s.jwt.clock_skew_seconds,
        from_headers: [note("Only the Authorization header (never ?access_token=).", { name: "authorization", value_prefix: "Bearer " })],
        forward: note("Services verify the token again and read roles from it.", true),
        payload_in_metadata: note(`Dynamic metadata ${JWT_FILTER}.${JWT_PAYLOAD}: rate-limit descriptors read "sub" from it.`, JWT_PAYLOAD),
        jwt_cache_config: note("Verified tokens are remembered (keyed by the whole token; expiry still checked),\nas the embedded edge and the services do (platform/auth/verifier.ts).", { jwt_cache_size: 10000 }),
        remote_jwks: {
          http_uri: {
            uri: `http://${s.upstreams[s.jwt.jwks_upstream].host}:${s.upstreams[s.jwt.jwks_upstream].port}${s.jwt.jwks_path}`,
            cluster: `${s.jwt.jwks_upstream}_jwks`,
            timeout: "2s",
          },
          cache_duration: s.jwt.jwks_cache_duration,
          async_fetch: note("Fetch at startup and in the background, so a failed fetch is retried\nrather than failing requests with 401.", {
            fast_listener: false, failed_refetch_duration: "2s",
          }),
          retry_policy: { num_retries: 3, retry_back_off: { base_interval: "0.2s", max_interval: "2s" } },
        },
      },
    },
    requirement_map: { [REQUIREMENT]: { provider_name: s.jwt.provider } },
    bypass_cors_preflight: true,
    rules: [
      ...publicRpcs.map((p) => note(`${httpRuleText(p)} -> ${p.method.name}: ACCESS_PUBLIC, no JWT needed.`, { match: { path: p.path } })),
      note(`GET ${OPENAPI_PATH}: the OpenAPI document, public.`, { match: { path: OPENAPI_PATH } }),
      note(`GET ${DOCS_PATH} and ${DOCS_PREFIX}*: the API reference page and its files, public.`, { match: { path: DOCS_PATH } }),
      { match: { prefix: DOCS_PREFIX } },
      note("Everything else REQUIRES a valid JWT (jwt_authn lets through requests that match no rule).", {
        match: { prefix: "/" }, requirement_name: REQUIREMENT,
      }),
    ],
  };
}

/** HTTPS listener only, first in its chain so it sees every answer (upstream and local): HSTS. */
const hsts = note(`0. HTTPS only: ${HSTS_HEADER}: ${HSTS} on every answer (edge/headers.ts, as the embedded edge).\nNever on the plain listener.`, {
  name: "envoy.filters.http.header_mutation",
  typed_config: {
    "@type": T("envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"),
    mutations: { response_mutations: [{ append: setHeaders({ [HSTS_HEADER]: HSTS })[0] }] },
  },
});

export function httpFilters(s: EdgeSettings, contract: EdgeContract, kind: ListenerKind = "plain") {
  const retryAfterLocal = String(ceilSeconds(s.local_rate_limit.fill_interval));
  return [
    ...(kind === "tls" ? [hsts] : []),
    note(kind === "plain"
      ? "1. Strip client-sent internal headers before anything reads them; redirect browser navigations to https."
      : "1. Strip client-sent internal headers before anything reads them.", {
      name: "envoy.filters.http.lua",
      typed_config: { "@type": T("envoy.extensions.filters.http.lua.v3.Lua"), default_source_code: { inline_string: stripLua(s, kind) } },
    }),
    note(`1b. GET ${s.health_path}: Envoy's readiness as the backends see it: 200 while every service cluster\n` +
      "has all its endpoints healthy (active gRPC health checks), 503 (the JSON error body) otherwise.\n" +
      "Answered here, before the JWT check and the rate limits.", {
      name: "envoy.filters.http.health_check",
      typed_config: {
        "@type": T("envoy.extensions.filters.http.health_check.v3.HealthCheck"),
        pass_through_mode: false,
        headers: [{ name: ":path", string_match: { exact: s.health_path } }],
        cluster_min_healthy_percentages: Object.fromEntries(Object.keys(s.upstreams).sort().map((name) => [name, { value: 100 }])),
      },
    }),
    note("2. CORS: answers allowed preflights itself, before the JWT check.", {
      name: "envoy.filters.http.cors", typed_config: { "@type": T("envoy.extensions.filters.http.cors.v3.Cors") },
    }),
    note("3. gRPC-Web -> gRPC (application/grpc-web[+proto], -web-text), for browser clients. Before the\n" +
      "transcoder, which would take a gRPC-Web call for REST and answer 404; after CORS, so its own\n" +
      "400s (bad base64) still carry the CORS headers. The route was chosen on the gRPC-Web\n" +
      "content-type already: gRPC routes match content-type prefix application/grpc.", {
      name: "envoy.filters.http.grpc_web", typed_config: { "@type": T("envoy.extensions.filters.http.grpc_web.v3.GrpcWeb") },
    }),
    note("3b. Connect -> gRPC (unary Connect calls: connect-protocol-version, application/json or proto), so\n" +
      "Connect clients work through Envoy as against the services. Before the transcoder, which\n" +
      "would take a Connect JSON call for REST.", {
      name: CONNECT_BRIDGE,
      typed_config: { "@type": T("envoy.extensions.filters.http.connect_grpc_bridge.v3.FilterConfig") },
    }),
    note(`3c. REST bodies whole, at most MAX_BODY_BYTES (${REST_BODY_LIMIT_BYTES}): 413 over it. Enabled on the REST route only\n` +
      "(the route of a REST path before transcoding); gRPC streams and the Connect bridge (4 MiB) are left alone.", {
      name: BUFFER,
      typed_config: { "@type": T("envoy.extensions.filters.http.buffer.v3.Buffer"), max_request_bytes: REST_BODY_LIMIT_BYTES },
    }),
    note("4. REST -> gRPC from the google.api.http rules in the descriptor set (gen/api.binpb).\nRoutes and the filters below then see the gRPC path, e.g. /acme.auth.v1.AuthService/Login;\nx-envoy-original-path keeps the REST path (jwt_authn's www-authenticate realm shows it).", {
      name: TRANSCODER,
      typed_config: {
        "@type": T("envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"),
        proto_descriptor: s.descriptor_set,
        services: note("Fully qualified; the services marked (acme.edge.v1.internal) are left out.", contract.routable.map((x) => x.name)),
        convert_grpc_status: true,
        request_validation_options: note("A field set both by the body and by the path or query is refused (400), not silently overwritten.",
          { reject_unknown_method: true, reject_unknown_query_parameters: true, reject_binding_body_field_collisions: true }),
        print_options: note("Canonical proto3 JSON: lowerCamelCase names, enum names, defaults omitted.", {
          add_whitespace: false,
          always_print_primitive_fields: false,
          always_print_enums_as_ints: false,
          preserve_proto_field_names: false,
        }),
      },
    }),
    note("5. JWT (ES256 from the auth service's JWKS), checked on the gRPC path. Refusals: 401/403 with\njwt_verify_lib's reason as body and www-authenticate: Bearer realm=\"http://<host><REST path>\".", {
      name: JWT_FILTER, typed_config: jwtAuthn(s, contract),
    }),
    note("6. Per-instance backstop, before the global limit so a flood does not reach redis.", {
      name: "envoy.filters.http.local_ratelimit",
      typed_config: {
        "@type": T("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"),
        stat_prefix: "edge_backstop",
        token_bucket: s.local_rate_limit,
        filter_enabled: percent100("edge_backstop.enabled"),
        filter_enforced: percent100("edge_backstop.enforced"),
        rate_limited_as_resource_exhausted: true,
        response_headers_to_add: note(`On its 429s only; retry-after: the refill interval (${s.local_rate_limit.fill_interval}), rounded up.`,
          setHeaders({ "x-local-rate-limit": "true", "retry-after": retryAfterLocal })),
      },
    }),
    note(`7. Global limits (envoy/ratelimit/config.yaml, domain "${s.ratelimit.domain}").\nfailure_mode_deny: ${s.ratelimit.failure_mode_deny} = ${s.ratelimit.failure_mode_deny ? "fail closed" : "fail open"} when the ratelimit service is unreachable.`, {
      name: "envoy.filters.http.ratelimit",
      typed_config: {
        "@type": T("envoy.extensions.filters.http.ratelimit.v3.RateLimit"),
        domain: s.ratelimit.domain,
        request_type: "both",
        timeout: s.ratelimit.timeout,
        failure_mode_deny: s.ratelimit.failure_mode_deny,
        enable_x_ratelimit_headers: note("x-ratelimit-limit/-remaining/-reset; on a 429 the local reply mapper copies -reset to retry-after.", "DRAFT_VERSION_03"),
        rate_limited_as_resource_exhausted: true,
        rate_limit_service: {
          grpc_service: { envoy_grpc: { cluster_name: "ratelimit" }, timeout: s.ratelimit.timeout },
          transport_api_version: "V3",
        },
      },
    }),
    note("8. Router.", { name: "envoy.filters.http.router", typed_config: { "@type": T("envoy.extensions.filters.http.router.v3.Router"), suppress_envoy_headers: true } }),
  ];
}
