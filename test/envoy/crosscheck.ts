// Cross-checks of envoy/envoy.yaml against itself, the contract (platform/policy.ts,
// gen/api.binpb) and envoy/ratelimit/config.yaml. Each returns a list of problems
// (empty = fine), so a test can also show that a broken copy is caught.
import { getOption } from "@bufbuild/protobuf";
import { http } from "../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import { Access, type MethodPolicy } from "../../platform/policy.js";
import { clusterOf } from "../../scripts/envoy-config.js";
import { clusters, filterConfig, httpFilters, JWT, TRANSCODER, vhost, type Inputs, type Json } from "./inputs.js";
import { descriptorsFor, destination, jwtFor, limitFor, routeFor, show } from "./simulate.js";

export const FILTER_ORDER = [
  "envoy.filters.http.lua",
  "envoy.filters.http.cors",
  TRANSCODER,
  JWT,
  "envoy.filters.http.local_ratelimit",
  "envoy.filters.http.ratelimit",
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

/** Filter order (strip, CORS, transcoder, JWT, limits, router) and per-filter config keys. */
export function checkFilterChain(i: Inputs): string[] {
  const problems: string[] = [];
  const names = httpFilters(i.envoy).map((f) => f.name);
  if (JSON.stringify(names) !== JSON.stringify(FILTER_ORDER)) problems.push(`HTTP filters are ${names.join(" > ")}, expected ${FILTER_ORDER.join(" > ")}`);
  const vh = vhost(i.envoy);
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
  }
  const leaves = (ds: Json[] | undefined, prefix: string[]): string[] => (ds ?? []).flatMap((d) => {
    const here = [...prefix, d.value === undefined ? d.key : `${d.key}=${d.value}`];
    return [...(d.rate_limit ? [here.join("/")] : []), ...leaves(d.descriptors, here)];
  });
  for (const leaf of leaves(i.ratelimit.descriptors, [])) if (!used.has(leaf)) problems.push(`envoy/ratelimit/config.yaml: ${leaf} is never sent`);
  return problems;
}
