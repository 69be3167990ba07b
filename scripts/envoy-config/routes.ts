// The route table: one virtual host with the CORS policy and the rate-limit
// descriptors, and routes matched on the gRPC path (the transcoder rewrites REST paths first).
import { statSync } from "node:fs";
import { join } from "node:path";
import { corsPolicy } from "../../edge/cors.js";
import { DEFAULT_CACHE_CONTROL } from "../../edge/headers.js";
import { OPENAPI_PATH } from "../../edge/openapi.js";
import { DOCS_FILES, DOCS_OWN_CACHE, DOCS_PATH, DOCS_PREFIX, docsHeaders, swaggerUiDir } from "../../edge/docs.js";
import { note } from "./commented-yaml.js";
import { accessName, clusterOf, httpRuleText, type EdgeContract } from "./contract.js";
import { BUFFER, CONNECT_BRIDGE, JWT_FILTER, JWT_PAYLOAD, NO_UPSTREAM, setHeaders, T, TRANSCODER } from "./envoy-values.js";
import type { EdgeSettings } from "./settings.js";

/**
 * gRPC and gRPC-Web requests (application/grpc, application/grpc+proto, application/grpc-web,
 * application/grpc-web+proto, application/grpc-web-text, ...), for the catch-all that refuses
 * other gRPC services. Not `grpc: {}`: Envoy picks the route before the grpc_web filter rewrites
 * a gRPC-Web content-type to application/grpc and grpc_web does not clear the route cache.
 * The service routes match on the gRPC path alone: gRPC, gRPC-Web and Connect calls (whose
 * content-type is application/json or proto until connect_grpc_bridge turns them into gRPC,
 * again without clearing the route cache) all use it, and REST paths never look like one.
 */
const GRPC_CONTENT = { name: "content-type", string_match: { prefix: "application/grpc" } };

/**
 * A gRPC method path, /<package>.<Service>/<Method>: what gRPC, gRPC-Web and Connect clients call.
 * REST paths never look like one (their first segment has no dot, or starts with one: /.well-known).
 * The local reply mappers use it too, to tell a Connect call from a REST call that carries
 * connect-protocol-version.
 */
export const GRPC_METHOD_PATH = "^/[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)+/[^/]*$";

/** Where Connect -> gRPC must not run: REST paths, direct responses, non-gRPC refusals. */
const NO_CONNECT_BRIDGE = {
  [CONNECT_BRIDGE]: note("Not a Connect call: the bridge stays out (a REST request with connect-protocol-version is still REST).",
    { "@type": T("envoy.config.route.v3.FilterConfig"), disabled: true }),
};

/**
 * The largest request a filter may buffer on an RPC route (the Connect bridge holds a unary
 * request whole): MAX_MESSAGE_BYTES (README "Limits", 4 MiB) and its envelope, not the listener's 32 KiB.
 */
export const RPC_BUFFER_LIMIT_BYTES = 4 * 1024 * 1024 + 5;
/** MAX_BODY_BYTES' default (platform/config.ts, README "Limits"): the largest REST body; 413 over it (the buffer filter). */
export const REST_BODY_LIMIT_BYTES = 1024 * 1024;

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

function routes(s: EdgeSettings, { services, routable, routed }: EdgeContract): unknown[] {
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
        ...NO_CONNECT_BRIDGE,
      },
    },
  ));
  routes.push(...docsRoutes(s));
  for (const p of routed.filter((x) => x.rateLimit !== "default")) {
    routes.push(note(`${httpRuleText(p)} -> ${p.method.name}: ${accessName(p.access)}, rate class "${p.rateLimit}".`, {
      name: p.path.slice(1),
      match: { path: p.path },
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
      per_request_buffer_limit_bytes: RPC_BUFFER_LIMIT_BYTES,
      response_headers_to_add: note("Credential endpoint: never cached.", setHeaders({ "cache-control": DEFAULT_CACHE_CONTROL })),
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
    for (const p of rpcs) {
      routes.push(note(`${httpRuleText(p)} -> ${p.method.name}: ${accessName(p.access)} (rate class "default").`, {
        name: p.path.slice(1),
        match: { path: p.path },
        route: { cluster: svc.cluster, max_stream_duration: { grpc_timeout_header_max: "15s" } },
        per_request_buffer_limit_bytes: RPC_BUFFER_LIMIT_BYTES,
      }));
    }
  }
  routes.push(note(
    "Any other method path (an unknown method of a public service, another gRPC service: health,\n" +
    "reflection, ...) is not exposed: gRPC gets UNIMPLEMENTED (grpc-status 12, HTTP 200), Connect\n" +
    "{\"code\":\"unimplemented\"} (local_reply_config), REST the JSON 404. Not the services' own answer.", {
      name: "unknown-method",
      match: { safe_regex: { regex: GRPC_METHOD_PATH } },
      direct_response: { status: 404 },
    }));
  routes.push(note("Any other path sent as gRPC or gRPC-Web (a REST path as application/grpc) is not exposed.", {
    name: "other-grpc", match: { prefix: "/", headers: [GRPC_CONTENT] }, direct_response: { status: 404 },
    typed_per_filter_config: NO_CONNECT_BRIDGE,
  }));
  routes.push(note(
    "REST requests match here only BEFORE transcoding: the CORS filter needs a route entry to find\n" +
    "the virtual host's CORS policy. The transcoder then rewrites the path and routing runs again\n" +
    "on the gRPC path above; requests it cannot map get 404 (reject_unknown_method), so nothing\n" +
    `reaches the router on this route, and if something did, "${NO_UPSTREAM}" has no endpoints.`,
    {
      name: "rest-before-transcoding", match: { prefix: "/" }, route: { cluster: NO_UPSTREAM },
      typed_per_filter_config: {
        ...NO_CONNECT_BRIDGE,
        [BUFFER]: note(`A REST body is read whole before transcoding: MAX_BODY_BYTES (${REST_BODY_LIMIT_BYTES}), 413 over it.`, {
          "@type": T("envoy.extensions.filters.http.buffer.v3.BufferPerRoute"),
          buffer: { max_request_bytes: REST_BODY_LIMIT_BYTES },
        }),
      },
    },
  ));
  return routes;
}

/**
 * The API reference at /docs/ (edge/docs.ts, as the embedded edge serves it): our page and
 * initializer inline, swagger-ui-dist's files from s.swagger_ui_dist (docker-compose.yml mounts
 * them from node_modules; the local profile reads the installed package). Public, without the
 * transcoder and the Connect bridge, like /openapi.json.
 */
function docsRoutes(s: EdgeSettings): unknown[] {
  const filters = {
    [TRANSCODER]: { "@type": T("envoy.config.route.v3.FilterConfig"), disabled: true },
    ...NO_CONNECT_BRIDGE,
  };
  const getOrHead = [{ name: ":method", string_match: { safe_regex: { regex: "GET|HEAD" } } }];
  const localDir = swaggerUiDir();
  const routes: unknown[] = [note(`GET ${DOCS_PATH}: 301 to ${DOCS_PREFIX}.`, {
    name: "docs-redirect",
    match: { path: DOCS_PATH, headers: getOrHead },
    redirect: { path_redirect: DOCS_PREFIX, response_code: "MOVED_PERMANENTLY" },
    response_headers_to_add: setHeaders({ "cache-control": DOCS_OWN_CACHE }),
    typed_per_filter_config: filters,
  })];
  for (const f of DOCS_FILES) {
    const inline = "inline" in f.source;
    const size = "inline" in f.source ? Buffer.byteLength(f.source.inline) : statSync(join(localDir, f.source.packageFile)).size;
    if (size > s.max_direct_response_body_bytes) {
      throw new Error(`${DOCS_PREFIX}${f.name} is ${size} bytes, over max_direct_response_body_bytes ${s.max_direct_response_body_bytes} (envoy/settings.yaml): Envoy would refuse the config`);
    }
    routes.push(note(
      `GET ${DOCS_PREFIX}${f.name}: ${inline ? "edge/docs.ts" : `swagger-ui-dist's ${f.name}, mounted in ${s.swagger_ui_dist}`} (${size} bytes).`,
      {
        name: `docs:${f.name || "index"}`,
        match: { path: DOCS_PREFIX + f.name, headers: getOrHead },
        direct_response: {
          status: 200,
          body: "inline" in f.source ? { inline_string: f.source.inline } : { filename: `${s.swagger_ui_dist}/${f.source.packageFile}` },
        },
        response_headers_to_add: setHeaders(docsHeaders(f)),
        typed_per_filter_config: filters,
      },
    ));
  }
  const served = [DOCS_PATH, ...DOCS_FILES.map((f) => DOCS_PREFIX + f.name)].map((p) => p.replace(/[.]/g, "\\.")).join("|");
  routes.push(note(`Other methods on those paths: 405 (the JSON error, as the embedded edge).`, {
    name: "docs-method",
    match: { safe_regex: { regex: `^(${served})$` } },
    direct_response: { status: 405, body: { inline_string: `Method not allowed on ${DOCS_PREFIX}; allowed: GET, HEAD.` } },
    response_headers_to_add: setHeaders({ allow: "GET, HEAD" }),
    typed_per_filter_config: filters,
  }));
  routes.push(note(`Any other path under ${DOCS_PREFIX}: 404 (not a JWT refusal).`, {
    name: "docs-unknown",
    match: { prefix: DOCS_PREFIX },
    direct_response: { status: 404 },
    typed_per_filter_config: filters,
  }));
  return routes;
}

function cors(s: EdgeSettings) {
  const edgeCors = corsPolicy(s.cors.allowed_origins);
  return {
    "@type": T("envoy.extensions.filters.http.cors.v3.CorsPolicy"),
    allow_origin_string_match: s.cors.allowed_origins.map((o) => ({ exact: o })),
    allow_methods: note("Methods and headers: the embedded edge's lists (edge/cors.ts), for REST, gRPC-Web and Connect clients.", edgeCors.allowMethods),
    allow_headers: edgeCors.allowHeaders,
    expose_headers: edgeCors.exposeHeaders,
    max_age: String(s.cors.max_age_seconds),
    allow_credentials: false,
  };
}

/** The connection manager's route_config. */
export function routeConfig(s: EdgeSettings, contract: EdgeContract) {
  return {
    name: "edge",
    max_direct_response_body_size_bytes: note(`Envoy's default is 4096; gen/openapi.json (${s.openapi_document}) and the /docs/ files (swagger-ui-bundle.js: ${statSync(join(swaggerUiDir(), "swagger-ui-bundle.js")).size} bytes) are served as direct responses.`, s.max_direct_response_body_bytes),
    virtual_hosts: [{
      name: "api",
      domains: ["*"],
      typed_per_filter_config: {
        "envoy.filters.http.cors": note("CORS policy for the whole API.", cors(s)),
        [BUFFER]: note("The REST body buffer runs on the REST route only (rest-before-transcoding).", {
          "@type": T("envoy.extensions.filters.http.buffer.v3.BufferPerRoute"), disabled: true,
        }),
      },
      response_headers_to_add: [
        ...setHeaders(s.response_headers),
        note(`cache-control: ${DEFAULT_CACHE_CONTROL} unless the service set one (the JWKS does), as the embedded edge (edge/headers.ts).`, {
          header: { key: "cache-control", value: DEFAULT_CACHE_CONTROL }, append_action: "ADD_IF_ABSENT",
        }),
      ],
      rate_limits: note("Sent for every routed request (routes with a rate class add theirs: vh_rate_limits INCLUDE).", [
        note("[(remote_address, <client ip>)]: per-IP backstop.", { actions: [{ remote_address: {} }] }),
        userDescriptor("user_per_second"),
        userDescriptor("user_per_minute"),
      ]),
      routes: routes(s, contract),
    }],
  };
}
