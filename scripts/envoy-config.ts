// Writes envoy/envoy.yaml from the contract and envoy/settings.yaml:
//   node --import tsx scripts/envoy-config.ts           write envoy/envoy.yaml
//   node --import tsx scripts/envoy-config.ts --check   exit 1 if envoy/envoy.yaml is stale
//   node --import tsx scripts/envoy-config.ts --stdout  print instead of writing
// Routes, JWT requirements and rate-limit classes come from platform/policy.ts (the
// (acme.edge.v1.policy) options); hosts, ports and limits from envoy/settings.yaml.
// CORS header lists and the OpenAPI path are the embedded edge's (edge/cors.ts,
// edge/openapi.ts), so both edges answer alike.
// The output is deterministic: same inputs, same bytes.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Document, Pair, parse, Scalar, YAMLMap, YAMLSeq, type Node } from "yaml";
import { corsPolicy } from "../edge/cors.js";
import { OPENAPI_PATH } from "../edge/openapi.js";
import { Access, allPolicies, type MethodPolicy } from "../platform/policy.js";

const root = fileURLToPath(new URL("..", import.meta.url));
export const ENVOY_YAML = `${root}envoy/envoy.yaml`;
export const SETTINGS_YAML = `${root}envoy/settings.yaml`;
/** The OpenAPI document docker-compose.yml mounts at settings.openapi_document. */
export const OPENAPI_JSON = `${root}gen/openapi.json`;

interface HostPort { host: string; port: number }
export interface EdgeSettings {
  listener_port: number;
  admin_port: number;
  descriptor_set: string;
  openapi_document: string;
  max_direct_response_body_bytes: number;
  upstreams: Record<string, HostPort>;
  jwt: {
    provider: string; issuer: string; audiences: string[]; jwks_upstream: string;
    jwks_path: string; jwks_cache_duration: string; clock_skew_seconds: number;
  };
  ratelimit: HostPort & { domain: string; timeout: string; failure_mode_deny: boolean };
  local_rate_limit: { max_tokens: number; tokens_per_fill: number; fill_interval: string };
  tracing: HostPort & { service_name: string; sampling_percent: number };
  cors: { allowed_origins: string[]; max_age_seconds: number };
  strip_request_header_prefixes: string[];
  keep_request_headers: string[];
  response_headers: Record<string, string>;
}

export function loadSettings(path = SETTINGS_YAML): EdgeSettings {
  return parse(readFileSync(path, "utf8")) as EdgeSettings;
}

/** A value with a comment printed above it (above the key inside a map). */
class Commented { constructor(readonly comment: string, readonly value: unknown) {} }
const note = (comment: string, value: unknown) => new Commented(comment, value);

function toNode(v: unknown): Node {
  if (v instanceof Commented) {
    const n = toNode(v.value);
    n.commentBefore = v.comment.split("\n").map((l) => ` ${l}`).join("\n");
    return n;
  }
  if (Array.isArray(v)) {
    const seq = new YAMLSeq();
    for (const item of v) seq.items.push(toNode(item));
    return seq;
  }
  if (v !== null && typeof v === "object") {
    const map = new YAMLMap();
    for (const [k, val] of Object.entries(v)) {
      const key = new Scalar(k);
      if (val instanceof Commented) {
        key.commentBefore = val.comment.split("\n").map((l) => ` ${l}`).join("\n");
        map.items.push(new Pair(key, toNode(val.value)));
      } else map.items.push(new Pair(key, toNode(val)));
    }
    return map;
  }
  return new Scalar(v);
}

const T = (name: string) => `type.googleapis.com/${name}`;
const setHeaders = (h: Record<string, string>) => Object.entries(h).map(([key, value]) => ({
  header: { key, value }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD",
}));
const percent100 = (runtimeKey: string) => ({
  default_value: { numerator: 100, denominator: "HUNDRED" },
  runtime_key: runtimeKey,
});
const JWT_FILTER = "envoy.filters.http.jwt_authn";
const TRANSCODER = "envoy.filters.http.grpc_json_transcoder";
/**
 * gRPC and gRPC-Web requests (application/grpc, application/grpc+proto, application/grpc-web,
 * application/grpc-web+proto, application/grpc-web-text, ...). Not `grpc: {}`: Envoy picks the
 * route before the grpc_web filter rewrites a gRPC-Web content-type to application/grpc and
 * grpc_web does not clear the route cache, so `grpc: {}` would never match a gRPC-Web call.
 */
const GRPC_CONTENT = { name: "content-type", string_match: { prefix: "application/grpc" } };
const JWT_PAYLOAD = "jwt_payload";
const REQUIREMENT = "authenticated";
const NO_UPSTREAM = "no_upstream";

/** acme.auth.v1.AuthService -> "auth": the cluster a service package maps to. */
export function clusterOf(serviceTypeName: string): string {
  return serviceTypeName.split(".")[1];
}

function httpRuleText(p: MethodPolicy): string {
  return p.httpRules
    .map((r) => r.pattern.case === "custom"
      ? `${r.pattern.value.kind} ${r.pattern.value.path}`
      : `${String(r.pattern.case).toUpperCase()} ${r.pattern.value}`)
    .join(", ");
}

const accessName = (a: Access) => `ACCESS_${Access[a]}`;

/** "1s" / "0.5s" -> whole seconds, rounded up (at least 1). */
const ceilSeconds = (d: string) => Math.max(1, Math.ceil(Number(/^(\d+(?:\.\d+)?)s$/.exec(d)?.[1] ?? NaN)));

/** An access-log filter on the local reply's status code (the runtime key may override it). */
const statusIs = (op: "EQ" | "GE", status: number, runtimeKey: string) => ({
  status_code_filter: { comparison: { op, value: { default_value: status, runtime_key: runtimeKey } } },
});

function userDescriptor(key: string) {
  return note(`[(${key}, <jwt sub>)]: only when jwt_authn verified a token.`, {
    actions: [{
      metadata: {
        descriptor_key: key,
        metadata_key: { key: JWT_FILTER, path: [{ key: JWT_PAYLOAD }, { key: "sub" }] },
        source: "DYNAMIC",
      },
    }],
  });
}

function cluster(name: string, hp: HostPort, opts: { http2: boolean; healthService?: string }) {
  const c: Record<string, unknown> = {
    name,
    type: "STRICT_DNS",
    connect_timeout: "1s",
    dns_lookup_family: "V4_ONLY",
    lb_policy: "ROUND_ROBIN",
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: hp.host, port_value: hp.port } } } }] }],
    },
  };
  if (opts.http2) {
    c.typed_extension_protocol_options = {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": T("envoy.extensions.upstreams.http.v3.HttpProtocolOptions"),
        explicit_http_config: { http2_protocol_options: {} },
      },
    };
  }
  if (opts.healthService !== undefined) {
    c.health_checks = [{
      timeout: "1s",
      interval: "5s",
      no_traffic_interval: "5s",
      unhealthy_threshold: 2,
      healthy_threshold: 1,
      grpc_health_check: { service_name: opts.healthService },
    }];
  }
  return c;
}

export function renderEnvoyConfig(
  s: EdgeSettings = loadSettings(),
  policies: readonly MethodPolicy[] = [...allPolicies().values()],
): string {
  const services = [...new Map(policies.map((p) => [p.service.typeName, p])).values()]
    .map((p) => ({ name: p.service.typeName, internal: p.internal, cluster: clusterOf(p.service.typeName) }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const routable = services.filter((x) => !x.internal);
  for (const svc of routable) {
    if (!s.upstreams[svc.cluster]) throw new Error(`envoy/settings.yaml: no upstream "${svc.cluster}" for ${svc.name}`);
  }
  const routed = policies.filter((p) => !p.internal);
  for (const p of routed) {
    if (p.access === Access.SERVICE) {
      throw new Error(`${p.path} is ACCESS_SERVICE on a routable service: Envoy only accepts audience ${s.jwt.audiences.join(",")}; mark the service internal or decide how the edge checks service tokens`);
    }
    if (p.httpRules.length === 0) throw new Error(`${p.path} is routable but has no google.api.http rule`);
  }
  const openApiBytes = statSync(OPENAPI_JSON).size;
  if (openApiBytes > s.max_direct_response_body_bytes) {
    throw new Error(`gen/openapi.json is ${openApiBytes} bytes, over max_direct_response_body_bytes ${s.max_direct_response_body_bytes} (envoy/settings.yaml): Envoy would refuse the config`);
  }
  const retryAfterLocal = String(ceilSeconds(s.local_rate_limit.fill_interval));

  // ---- routes: matched on the gRPC path (the transcoder rewrites REST paths first).
  const routes: unknown[] = [];
  for (const svc of services.filter((x) => x.internal)) {
    routes.push(note(`${svc.name} is (acme.edge.v1.internal): never routed.`, {
      name: `internal:${svc.name}`,
      match: { prefix: `/${svc.name}/` },
      direct_response: { status: 404 },
    }));
  }
  routes.push(note(
    `GET ${OPENAPI_PATH}: gen/openapi.json, mounted at ${s.openapi_document} (Envoy reads it once, at start).\n` +
    "Public (a jwt_authn rule exempts it). The transcoder is left out of this route's filter chain,\n" +
    "else reject_unknown_method would answer 404. Direct responses have no route entry, so the\n" +
    "ratelimit filter sends no descriptors here; the local backstop applies. Other methods: 404.",
    {
      name: "openapi",
      match: { path: OPENAPI_PATH, headers: [{ name: ":method", string_match: { safe_regex: { regex: "GET|HEAD" } } }] },
      direct_response: { status: 200, body: { filename: s.openapi_document } },
      response_headers_to_add: setHeaders({ "content-type": "application/json", "cache-control": "public, max-age=300" }),
      typed_per_filter_config: {
        [TRANSCODER]: { "@type": T("envoy.config.route.v3.FilterConfig"), disabled: true },
      },
    },
  ));
  for (const p of routed.filter((x) => x.rateLimit !== "default")) {
    routes.push(note(`${httpRuleText(p)} -> ${p.method.name}: ${accessName(p.access)}, rate class "${p.rateLimit}".`, {
      name: p.path.slice(1),
      match: { path: p.path, headers: [GRPC_CONTENT] },
      route: {
        cluster: clusterOf(p.service.typeName),
        max_stream_duration: { grpc_timeout_header_max: "15s" },
        rate_limits: [note(`[(rate_class, ${p.rateLimit}), (remote_address, <client ip>)]`, {
          actions: [
            { generic_key: { descriptor_key: "rate_class", descriptor_value: p.rateLimit } },
            { remote_address: {} },
          ],
        })],
      },
      response_headers_to_add: note("Credential endpoint: never cached.", setHeaders({ "cache-control": "no-store" })),
      typed_per_filter_config: {
        "envoy.filters.http.ratelimit": note("Keep the virtual host descriptors too.", {
          "@type": T("envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute"),
          vh_rate_limits: "INCLUDE",
        }),
      },
    }));
  }
  for (const svc of routable) {
    const rpcs = routed.filter((p) => p.service.typeName === svc.name && p.rateLimit === "default");
    const lines = rpcs.map((p) => `  ${httpRuleText(p)} -> ${p.method.name}: ${accessName(p.access)}`);
    routes.push(note([`${svc.name}, every other RPC (rate class "default"):`, ...lines].join("\n"), {
      name: svc.name,
      match: { prefix: `/${svc.name}/`, headers: [GRPC_CONTENT] },
      route: { cluster: svc.cluster, max_stream_duration: { grpc_timeout_header_max: "15s" } },
    }));
  }
  routes.push(note("Any other gRPC service (health, reflection, ...) is not exposed, over gRPC or gRPC-Web.", {
    name: "other-grpc", match: { prefix: "/", headers: [GRPC_CONTENT] }, direct_response: { status: 404 },
  }));
  routes.push(note(
    "REST requests match here only BEFORE transcoding: the CORS filter needs a route entry to find\n" +
    "the virtual host's CORS policy. The transcoder then rewrites the path and routing runs again\n" +
    "on the gRPC path above; requests it cannot map get 404 (reject_unknown_method), so nothing\n" +
    `reaches the router on this route, and if something did, "${NO_UPSTREAM}" has no endpoints.`,
    { name: "rest-before-transcoding", match: { prefix: "/" }, route: { cluster: NO_UPSTREAM } },
  ));

  const edgeCors = corsPolicy(s.cors.allowed_origins);
  const cors = {
    "@type": T("envoy.extensions.filters.http.cors.v3.CorsPolicy"),
    allow_origin_string_match: s.cors.allowed_origins.map((o) => ({ exact: o })),
    allow_methods: note("Methods and headers: the embedded edge's lists (edge/cors.ts), for REST, gRPC-Web and Connect clients.", edgeCors.allowMethods),
    allow_headers: edgeCors.allowHeaders,
    expose_headers: edgeCors.exposeHeaders,
    max_age: String(s.cors.max_age_seconds),
    allow_credentials: false,
  };

  const stripLua = [
    "-- Drop client-sent headers that only the edge may set (envoy/settings.yaml). Envoy's",
    "-- connection manager has already set the kept ones itself, overwriting client values.",
    `local prefixes = { ${s.strip_request_header_prefixes.map((p) => JSON.stringify(p)).join(", ")} }`,
    `local keep = { ${s.keep_request_headers.map((h) => `[${JSON.stringify(h)}] = true`).join(", ")} }`,
    "function envoy_on_request(handle)",
    "  local headers = handle:headers()",
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
    "end",
    "",
  ].join("\n");

  const publicRpcs = routed.filter((p) => p.access === Access.PUBLIC);
  const jwtAuthn = {
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
      note("Everything else REQUIRES a valid JWT (jwt_authn lets through requests that match no rule).", {
        match: { prefix: "/" }, requirement_name: REQUIREMENT,
      }),
    ],
  };

  const accessLog = {
    name: "envoy.access_loggers.stdout",
    typed_config: {
      "@type": T("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"),
      log_format: {
        json_format: {
          time: "%START_TIME%",
          request_id: "%REQ(X-REQUEST-ID)%",
          trace_id: "%TRACE_ID%",
          traceparent: "%REQ(TRACEPARENT)%",
          client_ip: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
          method: "%REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)%",
          path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
          grpc_path: "%REQ(:PATH)%",
          protocol: "%PROTOCOL%",
          status: "%RESPONSE_CODE%",
          grpc_status: "%GRPC_STATUS%",
          details: "%RESPONSE_CODE_DETAILS%",
          flags: "%RESPONSE_FLAGS%",
          duration_ms: "%DURATION%",
          bytes_in: "%BYTES_RECEIVED%",
          bytes_out: "%BYTES_SENT%",
          upstream: "%UPSTREAM_CLUSTER%",
          upstream_host: "%UPSTREAM_HOST%",
          user_agent: "%REQ(USER-AGENT)%",
          jwt_sub: `%DYNAMIC_METADATA(${JWT_FILTER}:${JWT_PAYLOAD}:sub)%`,
        },
      },
    },
  };

  const httpFilters = [
    note("1. Strip client-sent internal headers before anything reads them.", {
      name: "envoy.filters.http.lua",
      typed_config: { "@type": T("envoy.extensions.filters.http.lua.v3.Lua"), default_source_code: { inline_string: stripLua } },
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
    note("4. REST -> gRPC from the google.api.http rules in the descriptor set (gen/api.binpb).\nRoutes and the filters below then see the gRPC path, e.g. /acme.auth.v1.AuthService/Login;\nx-envoy-original-path keeps the REST path (jwt_authn's www-authenticate realm shows it).", {
      name: TRANSCODER,
      typed_config: {
        "@type": T("envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"),
        proto_descriptor: s.descriptor_set,
        services: note("Fully qualified; the services marked (acme.edge.v1.internal) are left out.", routable.map((x) => x.name)),
        convert_grpc_status: true,
        request_validation_options: { reject_unknown_method: true, reject_unknown_query_parameters: true },
        print_options: note("Canonical proto3 JSON: lowerCamelCase names, enum names, defaults omitted.", {
          add_whitespace: false,
          always_print_primitive_fields: false,
          always_print_enums_as_ints: false,
          preserve_proto_field_names: false,
        }),
      },
    }),
    note("5. JWT (ES256 from the auth service's JWKS), checked on the gRPC path. Refusals: 401/403 with\njwt_verify_lib's reason as body and www-authenticate: Bearer realm=\"http://<host><REST path>\".", {
      name: JWT_FILTER, typed_config: jwtAuthn,
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

  const hcm = {
    "@type": T("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"),
    stat_prefix: "edge",
    codec_type: "AUTO",
    use_remote_address: note("Clients connect directly: the client IP is the peer address, not X-Forwarded-For.", true),
    xff_num_trusted_hops: 0,
    internal_address_config: note("Only loopback is internal: compose-network clients are external (x-envoy-* sanitised).", {
      cidr_ranges: [{ address_prefix: "127.0.0.1", prefix_len: 32 }],
    }),
    generate_request_id: true,
    preserve_external_request_id: note("Keep a client's x-request-id (as the embedded edge does); generated otherwise.", true),
    always_set_request_id_in_response: true,
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: "REJECT_REQUEST",
    request_headers_timeout: "10s",
    stream_idle_timeout: "60s",
    common_http_protocol_options: { idle_timeout: "300s", headers_with_underscores_action: "REJECT_REQUEST" },
    http2_protocol_options: { max_concurrent_streams: 100, initial_stream_window_size: 65536, initial_connection_window_size: 1048576 },
    tracing: {
      random_sampling: { value: s.tracing.sampling_percent },
      provider: {
        name: "envoy.tracers.opentelemetry",
        typed_config: {
          "@type": T("envoy.config.trace.v3.OpenTelemetryConfig"),
          grpc_service: { envoy_grpc: { cluster_name: "otlp" }, timeout: "1s" },
          service_name: s.tracing.service_name,
        },
      },
    },
    access_log: [note("One JSON line per request, with the request id and the W3C trace id.", accessLog)],
    local_reply_config: note(
      "Envoy's own answers (jwt_authn 401/403, transcoder 400/404, direct responses, rate-limit 429s,\n" +
      "router 503s) get the security headers too: the virtual host's response_headers_to_add are\n" +
      "certain only on upstream answers. The first mapper that matches a reply applies; bodies are\n" +
      "left as they are.",
      {
        mappers: [
          note("429: retry-after = the refusing window's x-ratelimit-reset, set by the ratelimit filter before\n" +
            "this runs. The local backstop's 429 has no x-ratelimit-reset (an empty value adds nothing)\n" +
            "and carries its own retry-after.", {
            filter: statusIs("EQ", 429, "edge.local_reply.rate_limited_status"),
            headers_to_add: setHeaders({ "retry-after": "%RESP(X-RATELIMIT-RESET)%", ...s.response_headers }),
          }),
          note("Every other local reply.", {
            filter: statusIs("GE", 100, "edge.local_reply.min_status"),
            headers_to_add: setHeaders(s.response_headers),
          }),
        ],
      },
    ),
    route_config: {
      name: "edge",
      max_direct_response_body_size_bytes: note(`Envoy's default is 4096; gen/openapi.json (${s.openapi_document}) is served as a direct response.`, s.max_direct_response_body_bytes),
      virtual_hosts: [{
        name: "api",
        domains: ["*"],
        typed_per_filter_config: { "envoy.filters.http.cors": note("CORS policy for the whole API.", cors) },
        response_headers_to_add: setHeaders(s.response_headers),
        rate_limits: note("Sent for every routed request (routes with a rate class add theirs: vh_rate_limits INCLUDE).", [
          note("[(remote_address, <client ip>)]: per-IP backstop.", { actions: [{ remote_address: {} }] }),
          userDescriptor("user_per_second"),
          userDescriptor("user_per_minute"),
        ]),
        routes,
      }],
    },
    http_filters: httpFilters,
  };

  const clusters = [
    ...Object.entries(s.upstreams).sort(([a], [b]) => a.localeCompare(b)).map(([name, hp]) => {
      const health = routable.find((x) => x.cluster === name)?.name;
      return note(`gRPC (h2c) to the ${name} service; Envoy health-checks ${health ?? "its server (\"\")"}.`,
        cluster(name, hp, { http2: true, healthService: health ?? "" }));
    }),
    note("The same auth port over HTTP/1.1, for the JWKS fetch only.",
      cluster(`${s.jwt.jwks_upstream}_jwks`, s.upstreams[s.jwt.jwks_upstream], { http2: false })),
    note("envoyproxy/ratelimit gRPC API.", cluster("ratelimit", s.ratelimit, { http2: true })),
    note("Jaeger's OTLP gRPC receiver.", cluster("otlp", s.tracing, { http2: true })),
    note("No endpoints: see the rest-before-transcoding route.", {
      name: NO_UPSTREAM, type: "STATIC", connect_timeout: "1s", load_assignment: { cluster_name: NO_UPSTREAM },
    }),
  ];

  const bootstrap = {
    node: { id: "acme-edge", cluster: "acme-edge" },
    admin: note(`Admin: /stats/prometheus, /ready, /config_dump. Published on 127.0.0.1 only.`, {
      address: { socket_address: { address: "0.0.0.0", port_value: s.admin_port } },
    }),
    layered_runtime: { layers: [{ name: "admin", admin_layer: {} }] },
    overload_manager: {
      resource_monitors: [{
        name: "envoy.resource_monitors.global_downstream_max_connections",
        typed_config: {
          "@type": T("envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"),
          max_active_downstream_connections: 10000,
        },
      }],
    },
    static_resources: {
      listeners: [{
        name: "edge",
        address: { socket_address: { address: "0.0.0.0", port_value: s.listener_port } },
        per_connection_buffer_limit_bytes: 32768,
        filter_chains: [{ filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: hcm }] }],
      }],
      clusters,
    },
  };

  const doc = new Document();
  doc.commentBefore = [
    " GENERATED by scripts/envoy-config.ts from the contract (proto/, via platform/policy.ts)",
    " and envoy/settings.yaml. Do not edit: change those and run",
    "   node --import tsx scripts/envoy-config.ts",
    " Proven by test/envoy (strict parse against Envoy's API protos + cross-checks).",
  ].join("\n");
  doc.contents = toNode(bootstrap) as typeof doc.contents;
  return doc.toString({ lineWidth: 0, indentSeq: true });
}

function main(): void {
  const out = renderEnvoyConfig();
  if (process.argv.includes("--stdout")) {
    process.stdout.write(out);
  } else if (process.argv.includes("--check")) {
    const current = readFileSync(ENVOY_YAML, "utf8");
    if (current !== out) {
      console.error("envoy/envoy.yaml is stale: run node --import tsx scripts/envoy-config.ts");
      process.exit(1);
    }
  } else {
    writeFileSync(ENVOY_YAML, out);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
