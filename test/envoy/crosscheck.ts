// Cross-checks of envoy/envoy.yaml against itself, the contract (platform/policy.ts,
// gen/api.binpb) and envoy/ratelimit/config.yaml. Each returns a list of problems
// (empty = fine), so a test can also show that a broken copy is caught.
import { statSync } from "node:fs";
import { getOption } from "@bufbuild/protobuf";
import { corsPolicy } from "../../edge/cors.js";
import { localReplyKind } from "../../edge/errors.js";
import { OPENAPI_PATH } from "../../edge/openapi.js";
import { http } from "../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import { Access, type MethodPolicy } from "../../platform/policy.js";
import { clusterOf, OPENAPI_JSON } from "../../scripts/envoy-config.js";
import { RPC_REFUSALS } from "../../scripts/envoy-config/connection-manager.js";
import { clusters, filterConfig, hcm, httpFilters, JWT, RATELIMIT, TRANSCODER, vhost, type Inputs, type Json } from "./inputs.js";
import { descriptorsFor, destination, GRPC_WEB_CONTENT_TYPES, jwtFor, jwtRealm, limitFor, localReplyOf, routeFor, show } from "./simulate.js";

export const GRPC_WEB = "envoy.filters.http.grpc_web";
export const CORS = "envoy.filters.http.cors";
export const LOCAL_RATELIMIT = "envoy.filters.http.local_ratelimit";

export const FILTER_ORDER = [
  "envoy.filters.http.lua",
  "envoy.filters.http.health_check",
  CORS,
  GRPC_WEB,
  "envoy.filters.http.connect_grpc_bridge",
  "envoy.filters.http.buffer",
  TRANSCODER,
  JWT,
  LOCAL_RATELIMIT,
  RATELIMIT,
  "envoy.filters.http.router",
];

export const ruleText = (r: HttpRule) => r.pattern.case === "custom"
  ? `${r.pattern.value.kind} ${r.pattern.value.path}`
  : `${String(r.pattern.case).toUpperCase()} ${r.pattern.value}`;

/** A concrete REST path for a rule's template: /v1/users/{id} -> /v1/users/x. */
export const restPath = (r: HttpRule) => ruleText(r).split(" ")[1].replace(/\{[^}]*\}/g, "x");

const accessName = (a: Access) => `ACCESS_${Access[a]}`;

/** Every cluster referenced (routes, gRPC services, JWKS) exists, once, with matching load_assignment. */
export function checkClusterRefs(i: Inputs): string[] {
  const problems: string[] = [];
  const names = clusters(i.envoy).map((c) => c.name);
  names.filter((n, k) => names.indexOf(n) !== k).forEach((n) => problems.push(`cluster ${n} defined twice`));
  for (const c of clusters(i.envoy)) {
    if (c.load_assignment?.cluster_name !== c.name) problems.push(`cluster ${c.name}: load_assignment.cluster_name is ${c.load_assignment?.cluster_name}`);
  }
  const walk = (v: Json, path: string, parentKey: string) => {
    if (Array.isArray(v)) return v.forEach((x, k) => walk(x, `${path}[${k}]`, parentKey));
    if (!v || typeof v !== "object") return;
    for (const [k, x] of Object.entries(v)) {
      if (path === "" && k === "node") continue; // node.cluster names this Envoy, not an upstream
      const ref = (k === "cluster" && typeof x === "string") || (k === "cluster_name" && parentKey === "envoy_grpc");
      if (ref && !names.includes(x as string)) problems.push(`${path}.${k}: cluster "${x}" does not exist`);
      walk(x, `${path}.${k}`, k);
    }
  };
  walk(i.envoy, "", "");
  return problems;
}

/** jwt_authn: every requirement_name and provider_name resolves; the last rule requires a JWT. */
export function checkJwtRefs(i: Inputs): string[] {
  const problems: string[] = [];
  const jwt = filterConfig(i.envoy, JWT);
  const providers = Object.keys(jwt.providers ?? {});
  const requirementProviders = (req: Json, where: string) => {
    for (const p of [req?.provider_name, req?.provider_and_audiences?.provider_name].filter(Boolean)) {
      if (!providers.includes(p)) problems.push(`${where}: provider "${p}" does not exist`);
    }
    for (const r of (req?.requires_any ?? req?.requires_all)?.requirements ?? []) requirementProviders(r, where);
  };
  for (const [name, req] of Object.entries(jwt.requirement_map ?? {})) requirementProviders(req, `requirement_map.${name}`);
  const checkName = (name: string | undefined, where: string) => {
    if (name !== undefined && !(name in (jwt.requirement_map ?? {}))) problems.push(`${where}: requirement_name "${name}" does not exist`);
  };
  (jwt.rules ?? []).forEach((r: Json, k: number) => {
    checkName(r.requirement_name, `rules[${k}]`);
    requirementProviders(r.requires, `rules[${k}]`);
  });
  for (const route of vhost(i.envoy).routes ?? []) checkName(route.typed_per_filter_config?.[JWT]?.requirement_name, `route ${route.name}`);
  const last = (jwt.rules ?? []).at(-1);
  if (last?.match?.prefix !== "/" || (last.requirement_name === undefined && !last.requires)) {
    problems.push("the last jwt_authn rule must be a catch-all (prefix /) that requires a JWT");
  }
  return problems;
}

/**
 * Filter order (strip, health, CORS, gRPC-Web, Connect, transcoder, JWT, limits, router) and
 * per-filter config keys. grpc_web and connect_grpc_bridge before the transcoder: the transcoder
 * takes any content-type that is not application/grpc[+...] for REST and, with
 * reject_unknown_method, answers 404.
 */
export function checkFilterChain(i: Inputs): string[] {
  const problems: string[] = [];
  const names = httpFilters(i.envoy).map((f) => f.name);
  if (JSON.stringify(names) !== JSON.stringify(FILTER_ORDER)) problems.push(`HTTP filters are ${names.join(" > ")}, expected ${FILTER_ORDER.join(" > ")}`);
  const at = (n: string) => names.indexOf(n);
  if (at(GRPC_WEB) < 0) problems.push("no grpc_web filter: gRPC-Web calls would reach the transcoder as REST (404)");
  else if (at(TRANSCODER) >= 0 && at(GRPC_WEB) > at(TRANSCODER)) problems.push("grpc_web runs after the transcoder, which answers gRPC-Web calls 404 (reject_unknown_method)");
  const vh = vhost(i.envoy);
  // REST bodies are read whole up to MAX_BODY_BYTES on the REST route only; the Connect bridge runs on method routes only.
  const restRoute = (vh.routes ?? []).find((r: Json) => r.name === "rest-before-transcoding");
  if (vh.typed_per_filter_config?.["envoy.filters.http.buffer"]?.disabled !== true) problems.push("the buffer filter is not disabled on the virtual host (it would hold gRPC streams)");
  if (restRoute?.typed_per_filter_config?.["envoy.filters.http.buffer"]?.buffer?.max_request_bytes !== 1024 * 1024) problems.push("the REST route does not buffer REST bodies up to MAX_BODY_BYTES (1 MiB)");
  for (const r of vh.routes ?? []) {
    const methodRoute = r.route && r.name !== "rest-before-transcoding";
    if (!methodRoute && r.typed_per_filter_config?.["envoy.filters.http.connect_grpc_bridge"]?.disabled !== true && !r.name.startsWith("internal:") && r.name !== "unknown-method") {
      problems.push(`route ${r.name}: connect_grpc_bridge runs on it (a REST call with connect-protocol-version would be bridged)`);
    }
  }
  for (const [where, cfg] of [["virtual host", vh.typed_per_filter_config], ...(vh.routes ?? []).map((r: Json) => [`route ${r.name}`, r.typed_per_filter_config])]) {
    for (const key of Object.keys(cfg ?? {})) if (!names.includes(key)) problems.push(`${where}: typed_per_filter_config for "${key}", which is not in the filter chain`);
  }
  return problems;
}

/** Transcoder services = exactly the non-internal services, all in gen/api.binpb with their http rules. */
export function checkTranscoder(i: Inputs): string[] {
  const problems: string[] = [];
  const t = filterConfig(i.envoy, TRANSCODER);
  const listed: string[] = t.services ?? [];
  const expected = [...new Set(i.policies.filter((p) => !p.internal).map((p) => p.service.typeName))].sort();
  if (JSON.stringify([...listed].sort()) !== JSON.stringify(expected)) problems.push(`transcoder services ${listed.join(", ")} != non-internal services ${expected.join(", ")}`);
  for (const name of listed) {
    const svc = i.api.getService(name);
    if (!svc) { problems.push(`transcoder service ${name} is not in gen/api.binpb (fully qualified?)`); continue; }
    for (const m of svc.methods) {
      const p = i.policies.find((x) => x.path === `/${name}/${m.name}`);
      const inApi = getOption(m, http);
      const rules = [inApi, ...inApi.additionalBindings].filter((r) => r.pattern.case).map(ruleText);
      if (JSON.stringify(rules) !== JSON.stringify(p?.httpRules.map(ruleText))) problems.push(`${name}/${m.name}: gen/api.binpb rules ${rules} differ from the contract (stale npm run generate?)`);
    }
  }
  if (!i.api.getMessage("google.rpc.Status")) problems.push("gen/api.binpb lacks google.rpc.Status (convert_grpc_status needs it)");
  if (t.convert_grpc_status !== true) problems.push("transcoder: convert_grpc_status must be true");
  const v = t.request_validation_options ?? {};
  if (!v.reject_unknown_method || !v.reject_unknown_query_parameters) problems.push("transcoder: reject_unknown_method and reject_unknown_query_parameters must be true");
  if (t.match_incoming_request_route) problems.push("transcoder: routes must match the gRPC path (match_incoming_request_route false)");
  const po = t.print_options ?? {};
  if (po.preserve_proto_field_names || po.always_print_enums_as_ints) problems.push("transcoder: print_options must give canonical proto3 JSON");
  return problems;
}

const IP = "203.0.113.9";
const SUB = "user-42";

/** The descriptors the contract asks for on one RPC. */
export function expectedDescriptors(p: MethodPolicy): [string, string][][] {
  const out: [string, string][][] = [[["remote_address", IP]]];
  if (p.access !== Access.PUBLIC) out.push([["user_per_second", SUB]], [["user_per_minute", SUB]]);
  if (p.rateLimit !== "default") out.push([["rate_class", p.rateLimit], ["remote_address", IP]]);
  return out;
}

/**
 * Per RPC of the contract: internal ones reach no cluster; the others reach their
 * service's cluster, need a JWT unless ACCESS_PUBLIC, send exactly the descriptors of
 * their policy, each with an entry in the ratelimit config; REST paths find a route
 * entry before transcoding (CORS). Unknown gRPC services reach no cluster.
 */
export function checkPolicyRouting(i: Inputs): string[] {
  const problems: string[] = [];
  const jwt = filterConfig(i.envoy, JWT);
  const used = new Set<string>();
  for (const p of i.policies) {
    try {
      const route = routeFor(i.envoy, { path: p.path, grpc: true });
      const dest = destination(route);
      // gRPC-Web: Envoy picks the route on the client's content-type, before grpc_web rewrites it.
      for (const contentType of GRPC_WEB_CONTENT_TYPES) {
        const web = routeFor(i.envoy, { path: p.path, grpc: false, contentType });
        if (p.internal ? destination(web).cluster : web !== route) {
          problems.push(`${p.path} over gRPC-Web (${contentType}) matches route ${web?.name ?? "(none)"}, not ${p.internal ? "a 404" : route?.name}`);
        }
      }
      if (p.internal) {
        if (dest.cluster) problems.push(`${p.path} is internal but routed to cluster ${dest.cluster}`);
        continue;
      }
      const want = clusterOf(p.service.typeName);
      if (dest.cluster !== want) problems.push(`${p.path} reaches ${dest.cluster ?? `status ${dest.status}`}, expected cluster ${want}`);
      const j = jwtFor(jwt, p.path);
      const needsJwt = p.access !== Access.PUBLIC;
      if (needsJwt && !j.providers.length) problems.push(`${p.path} is ${accessName(p.access)} but passes jwt_authn without a JWT`);
      if (!needsJwt && j.providers.length) problems.push(`${p.path} is ACCESS_PUBLIC but jwt_authn requires a JWT (rule ${j.rule})`);
      const payloadKey = jwt.providers?.[j.providers[0]]?.payload_in_metadata;
      const ctx = { ip: IP, jwtPayload: needsJwt && payloadKey ? { sub: SUB } : undefined };
      const got = route ? descriptorsFor(i.envoy, route, ctx, payloadKey) : [];
      const expected = expectedDescriptors(p);
      const key = (ds: [string, string][][]) => ds.map(show).sort().join(" ");
      if (key(got) !== key(expected)) {
        problems.push(`${p.path} (${accessName(p.access)}, rate class ${p.rateLimit}) sends ${key(got) || "no descriptors"}, expected ${key(expected)}`);
      }
      for (const d of got) {
        const limit = limitFor(i.ratelimit, d);
        if (limit.node) used.add(limit.path);
        else problems.push(`${p.path}: descriptor ${show(d)} has no limit in envoy/ratelimit/config.yaml`);
      }
      for (const r of p.httpRules) {
        if (!routeFor(i.envoy, { path: restPath(r), grpc: false })?.route) problems.push(`${ruleText(r)}: no route entry before transcoding (CORS would not apply)`);
      }
    } catch (e) {
      problems.push(`${p.path}: ${(e as Error).message}`);
    }
  }
  for (const path of ["/grpc.health.v1.Health/Check", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"]) {
    const dest = destination(routeFor(i.envoy, { path, grpc: true }));
    if (dest.cluster) problems.push(`${path} is routed to cluster ${dest.cluster}`);
    const web = destination(routeFor(i.envoy, { path, grpc: false, contentType: "application/grpc-web+proto" }));
    if (web.status !== 404) problems.push(`${path} over gRPC-Web: ${web.cluster ? `routed to cluster ${web.cluster}` : `status ${web.status}`}, expected 404`);
  }
  const leaves = (ds: Json[] | undefined, prefix: string[]): string[] => (ds ?? []).flatMap((d) => {
    const here = [...prefix, d.value === undefined ? d.key : `${d.key}=${d.value}`];
    return [...(d.rate_limit ? [here.join("/")] : []), ...leaves(d.descriptors, here)];
  });
  for (const leaf of leaves(i.ratelimit.descriptors, [])) if (!used.has(leaf)) problems.push(`envoy/ratelimit/config.yaml: ${leaf} is never sent`);
  return problems;
}

/** Header names of a comma-separated CORS list. */
const names = (list: string | undefined) => (list ?? "").split(",").map((h) => h.trim().toLowerCase()).filter(Boolean);

/** What browser clients need through either edge (REST, gRPC-Web, Connect). */
export const CORS_ALLOW_HEADERS = ["authorization", "content-type", "x-request-id", "traceparent", "x-grpc-web", "x-user-agent", "connect-protocol-version", "connect-timeout-ms"];
export const CORS_EXPOSE_HEADERS = ["x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after", "grpc-status", "grpc-message"];

/** The virtual host's CORS policy: what browser clients need, and the embedded edge's lists (edge/cors.ts). */
export function checkCors(i: Inputs): string[] {
  const problems: string[] = [];
  const cors = vhost(i.envoy).typed_per_filter_config?.[CORS];
  if (!cors) return ["no CORS policy on the virtual host"];
  const edge = corsPolicy(i.settings.cors.allowed_origins);
  const compare = (field: string, got: string[], need: string[], embedded: string[]) => {
    for (const h of need) if (!got.includes(h)) problems.push(`CORS ${field} lacks ${h}`);
    const key = (l: string[]) => [...l].sort().join(", ");
    if (key(got) !== key(embedded)) problems.push(`CORS ${field} [${got.join(", ")}] differ from the embedded edge's [${embedded.join(", ")}] (edge/cors.ts)`);
  };
  compare("allow_headers", names(cors.allow_headers), CORS_ALLOW_HEADERS, names(edge.allowHeaders));
  compare("expose_headers", names(cors.expose_headers), CORS_EXPOSE_HEADERS, names(edge.exposeHeaders));
  compare("allow_methods", names(cors.allow_methods), ["get", "post", "patch", "delete"], names(edge.allowMethods));
  if (Number(cors.max_age) !== edge.maxAgeSeconds) problems.push(`CORS max_age ${cors.max_age} != the embedded edge's ${edge.maxAgeSeconds}`);
  const origins = (cors.allow_origin_string_match ?? []).map((m: Json) => m.exact);
  if (JSON.stringify(origins) !== JSON.stringify(i.settings.cors.allowed_origins)) problems.push(`CORS origins ${origins} != envoy/settings.yaml`);
  return problems;
}

/**
 * Envoy's own answers (local replies): the security headers of envoy/settings.yaml on each
 * kind the conformance suite sees, and retry-after on 429s from either rate limiter.
 */
export function checkLocalReplies(i: Inputs): string[] {
  const problems: string[] = [];
  const security = i.settings.response_headers;
  const rl = filterConfig(i.envoy, RATELIMIT);
  if (rl.enable_x_ratelimit_headers !== "DRAFT_VERSION_03") problems.push("ratelimit: enable_x_ratelimit_headers must be DRAFT_VERSION_03 (x-ratelimit-reset feeds retry-after)");
  const rlHeaders: Record<string, string> = rl.enable_x_ratelimit_headers === "DRAFT_VERSION_03"
    ? { "x-ratelimit-limit": "3, 3;w=1", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "7" }
    : {};
  const localHeaders: Record<string, string> = {};
  for (const o of filterConfig(i.envoy, LOCAL_RATELIMIT).response_headers_to_add ?? []) localHeaders[String(o.header.key).toLowerCase()] = o.header.value;
  const replies: [string, number, Record<string, string>, Record<string, string>][] = [
    ["jwt_authn 401", 401, { "www-authenticate": 'Bearer realm="http://h/v1/users/me"' }, {}],
    ["jwt_authn 403", 403, {}, {}],
    ["transcoder 404 (unknown path)", 404, {}, {}],
    ["transcoder 400 (unknown query parameter)", 400, {}, {}],
    ["direct_response 404 (internal service)", 404, {}, {}],
    ["ratelimit 429", 429, rlHeaders, { "retry-after": "7" }],
    ["local_ratelimit 429", 429, localHeaders, { "retry-after": String(Math.ceil(parseFloat(i.settings.local_rate_limit.fill_interval))) }],
    ["router 503", 503, {}, {}],
    ["buffer 413", 413, {}, {}],
    ["router 504", 504, {}, {}],
  ];
  for (const [what, status, fromFilter, extra] of replies) {
    let got: Record<string, string>;
    try {
      const text = "the filter's own text";
      const reply = localReplyOf(i.envoy, status, { fromFilter, text });
      got = reply.headers;
      // The one JSON error body (edge/errors.ts): the table's code, and its message or the filter's text.
      const kind = localReplyKind(status);
      const want = JSON.stringify({ code: kind.code, message: kind.replaceText ? kind.message : text });
      if (reply.body !== want) problems.push(`${what}: body ${reply.body || "(empty)"}, expected ${want}`);
      if (got["content-type"] !== "application/json") problems.push(`${what}: content-type ${got["content-type"]}, expected application/json`);
      // A gRPC client's refusal: no JSON body; the text becomes grpc-message. Where Envoy's HTTP -> gRPC
      // mapping misleads (400 -> INTERNAL, 413 -> UNKNOWN, ...) the mapper sets grpc-status and the message.
      const grpc = localReplyOf(i.envoy, status, { fromFilter, text, request: { "content-type": "application/grpc", "metadata:acme.edge/filtered": "true" } });
      const rpc = RPC_REFUSALS[status];
      const wantGrpc = rpc && status !== 404 ? (rpc.replaceText ? rpc.message : text) : text;
      if (grpc.body !== wantGrpc) problems.push(`${what}: a gRPC request's local reply body was rewritten to ${grpc.body}`);
      if (rpc && status !== 404 && grpc.headers["grpc-status"] !== String(rpc.code)) problems.push(`${what}: a gRPC request's grpc-status is ${grpc.headers["grpc-status"]}, expected ${rpc.code}`);
    } catch (e) {
      problems.push(`${what}: ${(e as Error).message}`);
      continue;
    }
    for (const [k, v] of Object.entries({ ...security, ...extra })) {
      if (got[k] !== v) problems.push(`${what}: ${k} is ${got[k] === undefined ? "missing" : JSON.stringify(got[k])}, expected ${JSON.stringify(v)}`);
    }
    if (status !== 429 && got["retry-after"] !== undefined) problems.push(`${what}: unexpected retry-after`);
  }
  // Upstream answers: the virtual host's response headers.
  const vh: Record<string, string> = {};
  for (const o of vhost(i.envoy).response_headers_to_add ?? []) vh[String(o.header.key).toLowerCase()] = o.header.value;
  for (const [k, v] of Object.entries(security)) if (vh[k] !== v) problems.push(`virtual host response_headers_to_add: ${k} is ${vh[k]}, expected ${v}`);
  return problems;
}

/**
 * jwt_authn's refusals as the conformance suite expects them: the reason as body (no
 * strip_failure_response) and `www-authenticate: Bearer realm="http://<host><REST path>"`:
 * the transcoder keeps the path the client sent in x-envoy-original-path, which
 * buildOriginalUri prefers; the Lua strip must run before it or it would delete it.
 */
export function checkJwtReplies(i: Inputs): string[] {
  const problems: string[] = [];
  const jwt = filterConfig(i.envoy, JWT);
  if (jwt.strip_failure_response) problems.push("jwt_authn strip_failure_response drops the reason and www-authenticate");
  for (const p of i.policies.filter((x) => !x.internal && x.access !== Access.PUBLIC)) {
    for (const r of p.httpRules) {
      const path = restPath(r);
      const spoof = { "x-envoy-original-path": "/spoofed" };
      const realm = jwtRealm(i.envoy, { host: "localhost:8080", path, grpcPath: p.path, clientHeaders: spoof });
      if (realm !== `http://localhost:8080${path}`) problems.push(`${ruleText(r)}: www-authenticate realm would be ${realm}, not the REST path`);
    }
    const native = jwtRealm(i.envoy, { host: "localhost:8080", path: p.path });
    if (native !== `http://localhost:8080${p.path}`) problems.push(`${p.path}: native gRPC realm would be ${native}`);
  }
  return problems;
}

/**
 * GET /openapi.json: a direct response of the mounted gen/openapi.json, as JSON, public,
 * without the transcoder (reject_unknown_method would answer 404), within Envoy's limit
 * on direct response bodies.
 */
export function checkOpenApi(i: Inputs): string[] {
  const problems: string[] = [];
  for (const method of ["GET", "HEAD"]) {
    const route = routeFor(i.envoy, { path: OPENAPI_PATH, grpc: false, method });
    const d = route?.direct_response;
    if (d?.status !== 200 || d.body?.filename !== i.settings.openapi_document) {
      problems.push(`${method} ${OPENAPI_PATH}: route ${route?.name} is not a direct response 200 of ${i.settings.openapi_document}`);
      continue;
    }
    const ct = (route.response_headers_to_add ?? []).find((o: Json) => o.header.key.toLowerCase() === "content-type");
    if (ct?.header.value !== "application/json" || ct.append_action !== "OVERWRITE_IF_EXISTS_OR_ADD") problems.push(`${OPENAPI_PATH}: content-type must be set to application/json (a direct response is text/plain otherwise)`);
    const t = route.typed_per_filter_config?.[TRANSCODER];
    if (!(t?.["@type"]?.endsWith("/envoy.config.route.v3.FilterConfig") && t.disabled === true)) problems.push(`${OPENAPI_PATH}: the transcoder is not disabled on route ${route.name} (reject_unknown_method: 404)`);
  }
  const other = destination(routeFor(i.envoy, { path: OPENAPI_PATH, grpc: false, method: "POST" }));
  if (other.status === 200) problems.push(`POST ${OPENAPI_PATH} is served too`);
  const j = jwtFor(filterConfig(i.envoy, JWT), OPENAPI_PATH);
  if (j.providers.length) problems.push(`${OPENAPI_PATH} requires a JWT (jwt_authn rule ${j.rule})`);
  const limit = hcm(i.envoy).route_config?.max_direct_response_body_size_bytes ?? 4096;
  const size = statSync(OPENAPI_JSON).size;
  if (size > limit) problems.push(`gen/openapi.json is ${size} bytes, over max_direct_response_body_size_bytes ${limit}: Envoy refuses the config`);
  return problems;
}
