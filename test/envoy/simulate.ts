// What Envoy does with one request, computed from the config the way Envoy documents
// it: first matching route, first matching jwt_authn rule, the rate-limit descriptors
// the ratelimit filter builds (route + virtual host per vh_rate_limits), and the limit
// envoyproxy/ratelimit applies to a descriptor. Matchers this file does not model
// throw, so a config using them cannot pass by accident.
import { JWT, RATELIMIT, vhost, type Json } from "./inputs.js";

export interface Req {
  path: string;
  /** content-type application/grpc: true for native gRPC and after transcoding. */
  grpc: boolean;
}

const MATCH_FIELDS = new Set(["prefix", "path", "safe_regex", "grpc", "case_sensitive"]);

export function matches(m: Json, req: Req): boolean {
  for (const k of Object.keys(m ?? {})) {
    if (!MATCH_FIELDS.has(k)) throw new Error(`route match field "${k}" is not simulated`);
  }
  if (m.case_sensitive === false) throw new Error("case-insensitive matching is not simulated");
  if (m.grpc && !req.grpc) return false;
  if (m.prefix !== undefined) return req.path.startsWith(m.prefix);
  if (m.path !== undefined) return req.path === m.path;
  if (m.safe_regex) return new RegExp(`^(?:${m.safe_regex.regex})$`).test(req.path);
  return false;
}

/** The route Envoy picks (first match), or undefined (404 NR). */
export function routeFor(envoy: Json, req: Req): Json | undefined {
  return (vhost(envoy).routes ?? []).find((r: Json) => matches(r.match, req));
}

/** Where a route sends the request: a cluster name, or { status } for a direct response. */
export function destination(route: Json | undefined): { cluster?: string; status?: number } {
  if (!route) return { status: 404 };
  if (route.direct_response) return { status: route.direct_response.status };
  if (route.route?.cluster) return { cluster: route.route.cluster };
  throw new Error(`route ${route.name}: only route.cluster and direct_response are simulated`);
}

/** Providers a requirement needs, or [] when it lets the request through without a JWT. */
export function providersOf(jwt: Json, req: Json | undefined): string[] {
  if (!req || req.allow_missing !== undefined || req.allow_missing_or_failed !== undefined) return [];
  if (req.provider_name) return [req.provider_name];
  if (req.provider_and_audiences) return [req.provider_and_audiences.provider_name];
  const list = req.requires_any ?? req.requires_all;
  if (list) return list.requirements.flatMap((r: Json) => providersOf(jwt, r));
  throw new Error(`unsupported JWT requirement ${JSON.stringify(req)}`);
}

/** The JWT providers jwt_authn requires for a gRPC path ([] = exempt). */
export function jwtFor(jwt: Json, path: string): { rule: number; providers: string[] } {
  const rules: Json[] = jwt.rules ?? [];
  const i = rules.findIndex((r) => matches(r.match, { path, grpc: true }));
  if (i < 0) return { rule: -1, providers: [] }; // jwt_authn lets unmatched requests through
  const rule = rules[i];
  const req = rule.requirement_name !== undefined ? jwt.requirement_map?.[rule.requirement_name] : rule.requires;
  if (rule.requirement_name !== undefined && !req) throw new Error(`unknown requirement_name ${rule.requirement_name}`);
  return { rule: i, providers: providersOf(jwt, req) };
}

export interface Ctx {
  ip: string;
  /** Dynamic metadata envoy.filters.http.jwt_authn (set only when a JWT was verified). */
  jwtPayload?: Record<string, string>;
}

function entryOf(action: Json, ctx: Ctx, jwtPayloadKey: string): [string, string] | undefined {
  const [kind, a] = Object.entries(action)[0] as [string, Json];
  if (kind === "remote_address") return ["remote_address", ctx.ip];
  if (kind === "generic_key") return [a.descriptor_key || "generic_key", a.descriptor_value];
  if (kind === "metadata") {
    if ((a.source ?? "DYNAMIC") !== "DYNAMIC") throw new Error("only DYNAMIC metadata is simulated");
    const path = (a.metadata_key.path ?? []).map((p: Json) => p.key);
    let v: Json = a.metadata_key.key === JWT && path[0] === jwtPayloadKey ? ctx.jwtPayload : undefined;
    for (const k of path.slice(1)) v = v?.[k];
    if (typeof v === "string") return [a.descriptor_key, v];
    return a.default_value ? [a.descriptor_key, a.default_value] : undefined;
  }
  if (kind === "request_headers") throw new Error(`descriptor ${a.descriptor_key} comes from client header ${a.header_name}, not from the verified JWT`);
  throw new Error(`rate-limit action ${kind} is not simulated`);
}

/** Descriptors the ratelimit filter sends for a routed request, as [key, value][] each. */
export function descriptorsFor(envoy: Json, route: Json, ctx: Ctx, jwtPayloadKey: string): [string, string][][] {
  const filterStage = 0;
  const policy = (limits: Json[] | undefined) => (limits ?? [])
    .filter((l) => (l.stage ?? 0) === filterStage)
    .flatMap((l) => {
      const entries: [string, string][] = [];
      for (const action of l.actions ?? []) {
        const e = entryOf(action, ctx, jwtPayloadKey);
        if (!e) {
          if (action.metadata?.skip_if_absent) continue;
          return []; // a missing value drops the whole descriptor
        }
        entries.push(e);
      }
      return entries.length ? [entries] : [];
    });
  const routeLimits = policy(route.route?.rate_limits);
  const vhLimits = policy(vhost(envoy).rate_limits);
  const option = route.typed_per_filter_config?.[RATELIMIT]?.vh_rate_limits ?? "OVERRIDE";
  if (option === "INCLUDE") return [...routeLimits, ...vhLimits];
  if (option === "IGNORE") return routeLimits;
  return (route.route?.rate_limits ?? []).length ? routeLimits : vhLimits;
}

/** The rate_limit envoyproxy/ratelimit applies to a descriptor (value match, else key-only). */
export function limitFor(config: Json, descriptor: [string, string][]): { node?: Json; path: string } {
  let level: Json[] | undefined = config.descriptors;
  let node: Json | undefined;
  const path: string[] = [];
  for (const [k, v] of descriptor) {
    node = level?.find((d) => d.key === k && d.value === v) ?? level?.find((d) => d.key === k && d.value === undefined);
    if (!node) return { path: path.join("/") };
    path.push(node.value === undefined ? k : `${k}=${node.value}`);
    level = node.descriptors;
  }
  return { node: node?.rate_limit ? node : undefined, path: path.join("/") };
}

export const show = (d: [string, string][]) => `[${d.map(([k, v]) => `(${k}, ${v})`).join(", ")}]`;
